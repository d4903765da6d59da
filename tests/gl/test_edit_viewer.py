"""The edit tools on the real viewport (issue 18): real mouse clicks on the canvas, exact picking at full
density, the viewer following the undo stack. Needs OpenGL (Xvfb + Mesa llvmpipe)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.viewer.point_picking import pick_point_index, transform_matrix
from fast3r_core.edits import apply_to_points, delete_points, level_auto, scale_by
from tests.gl.scenes import showcase_reconstruction

pytestmark = [
    pytest.mark.gl,
    pytest.mark.filterwarnings("ignore:Function.*QMouseEvent.pos:DeprecationWarning"),
]


@pytest.fixture
def win(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from app.main_window import MainWindow

    for key, sub in (("FAST3R_CONFIG_DIR", "config"), ("FAST3R_LOG_DIR", "logs"), ("FAST3R_CACHE_DIR", "c")):
        monkeypatch.setenv(key, str(tmp_path / sub))
    w = MainWindow(interactive=False)
    qtbot.addWidget(w)
    w.resize(1100, 760)
    w.show()
    qtbot.waitExposed(w)
    w.controller._show(showcase_reconstruction(4, long_side=96))
    qtbot.wait(200)
    yield w
    w.close()


def _targets(viewer, n: int = 2) -> list[QPoint]:
    """Canvas pixels over shown points, far apart and well inside the canvas."""
    xyz, _ = viewer.shown_points()
    xy, front = viewer.project_edited(xyz)
    w, h = viewer.native.width(), viewer.native.height()
    ok = front & (xy[:, 0] > 0.2 * w) & (xy[:, 0] < 0.8 * w) & (xy[:, 1] > 0.2 * h) & (xy[:, 1] < 0.8 * h)
    cand = xy[ok]
    a = cand[np.argmin(cand[:, 0])]
    b = cand[np.argmax(cand[:, 0])]
    return [QPoint(round(a[0]), round(a[1])), QPoint(round(b[0]), round(b[1]))][:n]


def _expected_pick(viewer, pos: QPoint) -> np.ndarray:
    """Brute force over every shown point: the edited-world point the click must pick."""
    rec = viewer._state.reconstruction
    ps = rec.points(viewer._source)
    idx = viewer.shown_indices()
    M = transform_matrix(viewer._points.get_transform("visual", "canvas"))
    i, _ = pick_point_index(ps.xyz[idx].astype(np.float64), M, (pos.x(), pos.y()))
    assert i >= 0
    return np.asarray(apply_to_points(viewer.edits, ps.xyz[idx[i]][None].astype(np.float64)))[0]


def test_measure_with_real_clicks_then_set_the_scale(qtbot, win) -> None:
    viewer = win.viewer
    assert win.act_measure.shortcut().toString() == "M"
    win.act_measure.trigger()
    assert win.edit_tools.mode == "measure"
    a, b = _targets(viewer)
    want_a, want_b = _expected_pick(viewer, a), _expected_pick(viewer, b)
    with qtbot.waitSignal(viewer.point_clicked, timeout=3000):
        qtbot.mouseClick(viewer.native, Qt.MouseButton.LeftButton, pos=a)
    assert np.array_equal(np.array(win.edit_tools.picks[0]), want_a)
    with qtbot.assertNotEmitted(viewer.view_clicked):  # in measure mode a click picks points, not frusta
        qtbot.mouseClick(viewer.native, Qt.MouseButton.LeftButton, pos=b)
    e = win.edits_session.edits
    m = e.measurement("d1")
    np.testing.assert_allclose(apply_to_points(e, np.array([m.a, m.b])), [want_a, want_b], rtol=0, atol=1e-12)
    assert m.distance(e) == pytest.approx(float(np.linalg.norm(want_a - want_b)))
    assert len(viewer.overlay.segments) == 1 and viewer.overlay.segments[0].label.startswith("d1 ")
    # the line is drawn (the overlay's yellow over the scene)
    img = viewer.render_image(480, 330)
    yellow = (img[..., 0] > 200) & (img[..., 1] > 170) & (img[..., 2] < 110)
    assert yellow.sum() > 30

    dlg = win.open_scale_dialog("d1")
    dlg.distance.setValue(1.5)
    dlg.unit.setCurrentText("m")
    dlg.accept()
    e = win.edits_session.edits
    assert e.measurement("d1").distance(e) == pytest.approx(1.5)
    assert win.measurements_panel.lengths() == ["1.5 m"]
    # the viewer shows the scaled world: the same click picks the same point, scaled
    np.testing.assert_allclose(_expected_pick(viewer, a), want_a * e.scale, rtol=1e-9, atol=1e-9)


def test_undo_redo_restore_the_displayed_points(qtbot, win) -> None:
    viewer = win.viewer
    rec = win.state.reconstruction
    before = viewer.shown_points()
    pose0 = viewer.current_pose()
    session = win.edits_session
    session.push(level_auto(session.edits, rec.cam_to_world), "Level")
    session.push(scale_by(session.edits, 2.0), "Scale")
    _, ids = viewer.shown_points()
    session.push(delete_points(session.edits, ids[::3]), "Delete")
    after = viewer.shown_points()
    assert len(after[0]) == len(before[0]) - len(ids[::3])
    assert not np.isin(after[1], ids[::3]).any()
    # distances doubled, Z is up in the display (the navigation's up is the display's -y)
    keep = np.isin(before[1], after[1])
    d0 = np.linalg.norm(before[0][keep][1:] - before[0][keep][:-1], axis=1)
    d1 = np.linalg.norm(after[0][1:] - after[0][:-1], axis=1)
    np.testing.assert_allclose(d1, 2 * d0, rtol=1e-9)
    assert viewer._levelled
    for _ in range(3):
        win.act_undo.trigger()
    back = viewer.shown_points()
    assert np.array_equal(back[0], before[0]) and np.array_equal(back[1], before[1])
    assert np.allclose(viewer.current_pose().center, pose0.center)  # the camera was carried back too
    for _ in range(3):
        win.act_redo.trigger()
    again = viewer.shown_points()
    assert np.array_equal(again[0], after[0]) and np.array_equal(again[1], after[1])
    # the confidence filter still works on the kept points: a prefix of them
    win.state.top_percent = 30.0
    few = viewer.shown_points()
    assert 0 < len(few[0]) < len(after[0])
    assert np.array_equal(few[1], after[1][: len(few[1])])


def test_picking_is_exact_at_full_density_while_the_level_of_detail_draws_fewer(qtbot, win) -> None:
    viewer = win.viewer
    win.state.top_percent = 100.0
    viewer.point_budget = 500
    viewer.idle_budget = 500  # a resting frame draws 500 points: picking must still see all
    assert viewer.drawn_count <= 500 < viewer.shown_count
    rng = np.random.default_rng(0)
    w, h = viewer.native.width(), viewer.native.height()
    for x, y in rng.uniform([0.3 * w, 0.3 * h], [0.7 * w, 0.7 * h], size=(8, 2)):
        pos = QPoint(round(x), round(y))
        p = viewer.pick_point((pos.x(), pos.y()))
        if p is None:
            continue
        np.testing.assert_array_equal(np.array(p.xyz), _expected_pick(viewer, pos))


def test_exports_hold_what_the_viewer_shows_after_each_kind_of_edit(qtbot, win, tmp_path: Path) -> None:
    """Issue 18: the viewer and every export go through the same edits: after a level, a scale, an
    origin, a crop and a deletion, the PLY written by the window's export path holds exactly the points
    the viewport shows (same edited-world coordinates, to float32), and cameras.json's cameras are the
    viewer's edited cameras."""
    import json

    import trimesh

    from fast3r_core.edits import CropBox, apply_to_cameras, set_crop, set_origin
    from fast3r_core.export import FORMATS, export_cameras_json

    viewer, session = win.viewer, win.edits_session
    rec = win.state.reconstruction
    win.state.top_percent = 70.0
    _, ids = viewer.shown_points()
    steps = [
        ("Level", lambda e: level_auto(e, rec.cam_to_world)),
        ("Scale", lambda e: scale_by(e, 3.0)),
        ("Origin", lambda e: set_origin(e, viewer.shown_points()[0][0])),
        ("Delete", lambda e: delete_points(e, ids[::4])),
    ]
    for text, op in steps:
        session.push(op(session.edits), text)
        shown_xyz, _ = viewer.shown_points()
        lo, hi = np.percentile(shown_xyz, 10, axis=0), np.percentile(shown_xyz, 90, axis=0)
        for crop in (None, CropBox.axis_aligned(lo, hi)):
            session.push(set_crop(session.edits, crop), "Crop")
            xyz, _ = viewer.shown_points()
            path = tmp_path / f"{text}-{crop is not None}.ply"
            FORMATS["ply"].export(
                win.controller.edited_reconstruction(), path, win.controller.export_selection()
            )
            cloud = trimesh.load(path, process=False)
            got = np.asarray(cloud.vertices, np.float64)
            assert got.shape == xyz.shape, (text, crop)
            np.testing.assert_allclose(got, xyz, rtol=0, atol=1e-4 * (1 + np.abs(xyz).max()))
    c2w = apply_to_cameras(session.edits, rec.cam_to_world)
    export_cameras_json(win.controller.edited_reconstruction(), tmp_path / "cameras.json")
    cams = json.loads((tmp_path / "cameras.json").read_text())
    centres = np.array([np.asarray(v["cam_to_world"])[:3, 3] for v in cams["views"]])
    np.testing.assert_allclose(centres, c2w[:, :3, 3], atol=1e-6)


def test_renders_leave_the_crop_box_out(qtbot, win) -> None:
    """A screenshot taken while the crop tool is on shows the scene, not the box and its handles."""
    viewer = win.viewer
    plain = viewer.render_image(240, 160)
    win.crop_select.set_tool("crop")
    gizmo = viewer._crop_select.gizmo
    assert gizmo.visible and gizmo.box is not None
    with_tool = viewer.render_image(240, 160)
    assert gizmo.visible  # still drawn on the screen afterwards
    np.testing.assert_array_equal(with_tool, plain)
