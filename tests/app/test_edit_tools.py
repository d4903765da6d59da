"""The edit tools in the window (issue 18): undo/redo, measure, scale, level, origin, saves and exports.

Offscreen with the stand-in viewer: a "click" is the viewer's ``point_clicked`` signal with a picked
point, exactly what the real viewer emits (tests/gl/test_edit_viewer.py drives the real canvas).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.edit_types import PickedPoint
from fast3r_core.edits import Edits, apply_to_cameras, apply_to_points, format_length, scale_by


def _shown(win, rec):
    win.controller._show(rec)
    return win


def _click(win, xyz) -> None:
    """What the real viewer emits for a click on a point at edited-world ``xyz``."""
    p = tuple(float(x) for x in xyz)
    win.viewer.point_clicked.emit(PickedPoint(index=0, point_id=0, view=0, xyz=p, screen=(0.0, 0.0)))


def _last(win, name: str):
    return [c for c in win.viewer.calls if c[0] == name][-1][1][0]


def test_a_shown_result_resets_the_session_to_its_edits(make_window, synthetic_rec) -> None:
    win = make_window()
    stored = scale_by(Edits(), 2.0)
    _shown(win, dataclasses.replace(synthetic_rec, edits=stored))
    assert win.edits_session.edits == stored
    assert win.edits_session.undo_stack.count() == 0
    assert _last(win, "set_edits") == stored
    assert win.act_measure.isEnabled() and win.act_level.isEnabled()


def test_undo_and_redo_restore_the_exact_edits(make_window, synthetic_rec) -> None:
    win = _shown(make_window(), synthetic_rec)
    states = [win.edits_session.edits]
    win.edit_tools.level_automatically()
    states.append(win.edits_session.edits)
    win.edit_tools.set_mode("origin")
    _click(win, (0.1, 0.2, 0.3))
    states.append(win.edits_session.edits)
    win.edit_tools.set_mode("measure")
    _click(win, (0.0, 0.0, 0.0))
    _click(win, (1.0, 0.0, 0.0))
    states.append(win.edits_session.edits)
    assert len(set(states)) == 4 and win.undo_view.stack().count() == 3
    for want in reversed(states[:-1]):
        win.act_undo.trigger()
        assert win.edits_session.edits == want
        assert _last(win, "set_edits") == want  # the viewer follows
    for want in states[1:]:
        win.act_redo.trigger()
        assert win.edits_session.edits == want
    assert win.act_undo.text().startswith("&Undo") or "Undo" in win.act_undo.text()
    keys = {k.toString() for k in win.act_redo.shortcuts()}
    assert {"Ctrl+Shift+Z", "Ctrl+Y"} <= keys
    assert [k.toString() for k in win.act_undo.shortcuts()] == ["Ctrl+Z"]
    menus = [a.text() for a in win.menuBar().actions()]
    assert menus[:4] == ["&File", "&Edit", "&Tools", "&View"]


def test_measure_two_clicks_add_a_measurement_listed_in_the_dock(make_window, synthetic_rec) -> None:
    win = _shown(make_window(), synthetic_rec)
    win.act_measure.trigger()
    assert win.edit_tools.mode == "measure" and win.act_measure.isChecked()
    assert _last(win, "set_pick_mode") is True
    _click(win, (0.0, 0.0, 1.0))
    assert _last(win, "set_overlay").markers == ((0.0, 0.0, 1.0),)  # the first end is shown
    _click(win, (0.0, 3.0, 5.0))
    e = win.edits_session.edits
    assert [m.name for m in e.measurements] == ["d1"]
    assert e.measurement("d1").distance(e) == pytest.approx(5.0)
    overlay = _last(win, "set_overlay")
    assert overlay.markers == () and len(overlay.segments) == 1
    assert overlay.segments[0].label == "d1 5 units"
    assert win.measurements_panel.names() == ["d1"]
    assert win.measurements_panel.lengths() == ["5 units"]
    # the first measurement shows its dock (made then, tabbed beside the Image dock)
    dock = win.edit_docks["measurements"]
    assert not dock.isHidden() and dock.widget() is win.measurements_panel
    assert win.act_show_measurements.isChecked()
    assert dock in win.tabifiedDockWidgets(win.preview_dock)
    win.act_show_history.trigger()
    assert win.edit_docks["history"].widget() is win.undo_view and not win.edit_docks["history"].isHidden()
    win.act_show_measurements.trigger()
    assert dock.isHidden() and not win.act_show_measurements.isChecked()
    assert win.edit_tools.mode == "measure"  # stays on for the next measurement
    win.act_stop_tool.trigger()  # Esc
    assert win.edit_tools.mode == "" and not win.act_measure.isChecked()
    assert _last(win, "set_pick_mode") is False


def test_rename_and_delete_in_the_measurements_dock(make_window, synthetic_rec) -> None:
    win = _shown(make_window(), synthetic_rec)
    win.edit_tools.set_mode("measure")
    for p in ((0, 0, 0), (1, 0, 0), (0, 0, 0), (0, 2, 0)):
        _click(win, p)
    panel = win.measurements_panel
    assert panel.names() == ["d1", "d2"]
    panel.table.item(0, 0).setText("door")
    assert [m.name for m in win.edits_session.edits.measurements] == ["door", "d2"]
    panel.table.item(1, 0).setText("door")  # taken: refused, the old name comes back
    assert panel.names() == ["door", "d2"]
    panel.table.item(1, 0).setText("   ")  # blank: refused too
    assert panel.names() == ["door", "d2"]
    panel.table.item(1, 0).setText(" window ")  # trimmed
    assert [m.name for m in win.edits_session.edits.measurements] == ["door", "window"]
    panel.table.item(1, 0).setText("d2")
    panel.table.selectRow(1)
    panel.delete_button.click()
    assert panel.names() == ["door"]
    win.act_undo.trigger()
    assert panel.names() == ["door", "d2"]


def test_scale_dialog_from_a_measurement(make_window, synthetic_rec) -> None:
    win = _shown(make_window(), synthetic_rec)
    assert win.units_label.text() == "Units: arbitrary (no scale set)"
    win.edit_tools.set_mode("measure")
    _click(win, (0.0, 0.0, 0.0))
    _click(win, (0.3, 0.4, 0.0))  # 0.5 units
    dlg = win.open_scale_dialog("d1")
    assert dlg.by_measurement.isChecked() and dlg.measurement.currentText() == "d1"
    dlg.distance.setValue(250.0)
    dlg.unit.setCurrentText("cm")
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    e = win.edits_session.edits
    assert e.metres_per_unit == 1.0 and e.display_unit == "cm"
    assert e.measurement("d1").distance(e) == pytest.approx(2.5)
    assert win.measurements_panel.lengths() == ["250 cm"]
    assert win.units_label.text() == "Units: cm"
    win.act_undo.trigger()
    assert win.units_label.text() == "Units: arbitrary (no scale set)"


def test_scale_dialog_from_two_camera_centres(make_window, synthetic_rec) -> None:
    win = _shown(make_window(), synthetic_rec)
    dlg = win.open_scale_dialog()
    assert not dlg.by_measurement.isEnabled() and dlg.by_views.isChecked()  # nothing measured yet
    dlg.view_a.setCurrentIndex(1)
    dlg.view_b.setCurrentIndex(3)
    dlg.distance.setValue(12.0)
    dlg.unit.setCurrentText("ft")
    dlg.accept()
    e = win.edits_session.edits
    centres = apply_to_cameras(e, synthetic_rec.cam_to_world)[:, :3, 3]
    assert np.linalg.norm(centres[1] - centres[3]) == pytest.approx(12 * 0.3048)
    assert format_length(e, float(np.linalg.norm(centres[1] - centres[3]))) == "12 ft"
    dlg = win.open_scale_dialog()
    dlg.view_b.setCurrentIndex(dlg.view_a.currentIndex())  # the same view twice cannot be accepted
    assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()


def test_level_automatically_puts_the_cameras_up_along_z(make_window, synthetic_rec) -> None:
    win = _shown(make_window(), synthetic_rec)
    win.act_level.trigger()
    e = win.edits_session.edits
    c2w = apply_to_cameras(e, synthetic_rec.cam_to_world)
    ups = -c2w[:, :3, 1]  # OpenCV: image up is -y
    mean = ups.mean(axis=0) / np.linalg.norm(ups.mean(axis=0))
    assert np.degrees(np.arccos(mean[2])) < 5.0


def test_pick_floor_levels_three_points_and_set_origin(make_window, synthetic_rec) -> None:
    win = _shown(make_window(), synthetic_rec)
    # a tilted "floor" below the cameras (model world: y down), normal roughly -y
    normal = np.array([0.2, -1.0, 0.1]) / np.linalg.norm([0.2, -1.0, 0.1])
    u = np.cross(normal, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    base = np.array([0.0, 1.5, 3.0])
    pts = [base, base + u, base + v]
    win.act_pick_floor.trigger()
    for p in pts:
        _click(win, p)
    e = win.edits_session.edits
    assert win.edit_tools.mode == ""  # one-shot
    z = apply_to_points(e, np.array(pts))[:, 2]
    assert np.ptp(z) < 1e-9  # the three points are level
    up = apply_to_points(e, np.array([base + normal]))[0] - apply_to_points(e, np.array([base]))[0]
    assert up[2] > 0.99  # and the floor's up (towards the cameras) is +Z
    win.act_set_origin.trigger()
    _click(win, apply_to_points(e, np.array([base]))[0])
    e2 = win.edits_session.edits
    np.testing.assert_allclose(apply_to_points(e2, np.array([base]))[0], 0.0, atol=1e-12)
    assert [win.undo_view.stack().text(i) for i in range(2)] == ["Level from Floor", "Set Origin"]


def test_saves_and_exports_write_the_current_edits(make_window, synthetic_rec, monkeypatch, tmp_path) -> None:
    import fast3r_core

    win = _shown(make_window(), synthetic_rec)
    assert win.controller.edited_reconstruction() is synthetic_rec  # nothing edited: the same object
    win.edit_tools.level_automatically()
    rec = win.controller.edited_reconstruction()
    assert rec is not synthetic_rec and rec.edits == win.edits_session.edits
    assert rec.pts3d[0] is synthetic_rec.pts3d[0]  # the model's arrays are shared
    assert rec.global_points is synthetic_rec.global_points  # and so are the sorted points
    saved = []
    monkeypatch.setattr(fast3r_core, "save_project", lambda r, dest: saved.append(r) or tmp_path / "p.f3r")
    win.controller.save_project(tmp_path / "p.f3r")
    win.controller.tasks.wait()
    assert saved and saved[0].edits == win.edits_session.edits


def test_edits_made_while_images_are_added_are_kept(qtbot, make_window, tiny_model, tmp_path) -> None:
    """Add Images runs in the background with the edits of its start; an edit made meanwhile (a keep
    selection, a scale) is still there when the larger result arrives, and the kept selection lets the
    new photos' points in."""
    import fast3r_core
    from fast3r_core.edits import edit_points, keep_only, point_ids
    from fast3r_core.pipeline import ReconstructOptions, reconstruct
    from tests.tiny import write_views

    win = make_window()
    model = fast3r_core.load_model(tiny_model, device="cpu")
    base = reconstruct(write_views(tmp_path / "photos", 3), model, ReconstructOptions(size=224))
    win.controller._show(base)
    session = win.edits_session
    ps = base.global_points
    ids = point_ids(ps.view, ps.pixel, [base.view_shape(v) for v in range(base.n_views)])
    more = [str(p) for p in write_views(tmp_path / "more", 1)]
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        assert win.add_images(more)
        session.push(scale_by(keep_only(session.edits, ids[:40]), 2.0), "Keep and scale")
    rec = win.state.reconstruction
    assert rec.n_views == 4 and session.edits.scale == 2.0
    ps = rec.global_points
    shapes = [rec.view_shape(v) for v in range(4)]
    _, keep = edit_points(session.edits, ps.xyz, point_ids(ps.view, ps.pixel, shapes))
    per_view = np.bincount(ps.view[keep], minlength=4)
    assert per_view[:3].sum() == 40 and per_view[3] == np.count_nonzero(ps.view == 3) > 0
