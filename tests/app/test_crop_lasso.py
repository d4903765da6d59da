"""Crop box, lasso / rectangle selection, delete / keep / invert (issue 18), in the window and the viewport.

The window tests use the stand-in viewer (its fixed orthographic ``screen_matrix``); the ``gl`` tests
drive the real VisPy viewport with real mouse events on its canvas.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from app.crop_select import CropSelectTools
from app.edits_session import EditsSession
from app.state import ViewerState
from fast3r_core.edits import CropBox, Edits, delete_points, point_ids, scale_by

# VisPy's Qt backend reads QMouseEvent.pos(), deprecated in Qt 6: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Function.*QMouseEvent.pos:DeprecationWarning")


def _inside_even_odd(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Reference point-in-polygon test (crossing number over every edge, no sorting)."""
    inside = np.zeros(len(xy), bool)
    x, y = xy[:, 0], xy[:, 1]
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        if y0 == y1:
            continue
        span = (np.minimum(y0, y1) <= y) & (y < np.maximum(y0, y1))
        with np.errstate(invalid="ignore", divide="ignore"):
            xc = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= span & (x < xc)
    return inside


def _all_ids(rec, source: str = "global") -> np.ndarray:
    ps = rec.points(source)
    return point_ids(ps.view, ps.pixel, [rec.view_shape(v) for v in range(rec.n_views)])


# ---------------------------------------------------------------------------------------- window
@pytest.fixture
def window(make_window, synthetic_rec):
    win = make_window()
    win.state.set_reconstruction(synthetic_rec)
    win.state.top_percent = 100.0
    return win


def _fake_expected(win, polygon: np.ndarray) -> np.ndarray:
    """Ids of the shown points whose projection by the stand-in's matrix is inside ``polygon``."""
    rec = win.state.reconstruction
    ps = rec.global_points
    n = win.state.prefix_count()
    M = win.viewer.screen_matrix()
    xy = ps.xyz[:n].astype(np.float64) @ M[:2, :3].T + M[:2, 3]
    return np.sort(_all_ids(rec)[:n][_inside_even_odd(xy, polygon)])


POLYGON = np.array([[150.0, 100.0], [260.0, 120.0], [240.0, 230.0], [170.0, 180.0]])


def test_lasso_selects_exactly_the_points_inside_and_delete_undoes(window) -> None:
    tools: CropSelectTools = window.crop_select
    tools.set_tool("lasso")
    assert ("set_edit_tool", ("lasso",), {}) in window.viewer.calls
    window.viewer.selection_drawn.emit(POLYGON)
    expected = _fake_expected(window, POLYGON)
    assert 50 < len(expected) < 0.8 * window.state.prefix_count()
    np.testing.assert_array_equal(tools.selected_ids, expected)
    shown = [c for c in window.viewer.calls if c[0] == "show_selection"][-1][1][0]
    assert len(shown) == len(expected), "the selected points are highlighted"
    assert tools.act_delete.isEnabled() and tools.act_keep.isEnabled()

    before = window.edits_session.edits
    tools.act_delete.trigger()
    session = window.edits_session
    assert session.edits == delete_points(before, expected)
    assert session.undo_stack.undoText() == f"Delete {len(expected):,} points"
    assert tools.selected_ids.size == 0 and not tools.act_delete.isEnabled()
    assert [c for c in window.viewer.calls if c[0] == "set_edits"][-1][1][0] == session.edits
    # the deleted points are no longer candidates: the same lasso now takes nothing
    window.viewer.selection_drawn.emit(POLYGON)
    assert tools.selected_ids.size == 0
    session.undo_stack.undo()
    assert session.edits == before
    session.undo_stack.redo()
    assert session.edits == delete_points(before, expected)


def test_rectangle_keep_and_invert(window) -> None:
    tools: CropSelectTools = window.crop_select
    tools.set_tool("rectangle")
    corners = np.array([[120.0, 90.0], [230.0, 90.0], [230.0, 200.0], [120.0, 200.0]])
    window.viewer.selection_drawn.emit(corners)
    rec = window.state.reconstruction
    M = window.viewer.screen_matrix()
    xy = rec.global_points.xyz.astype(np.float64) @ M[:2, :3].T + M[:2, 3]
    in_rect = ((xy >= [120, 90]) & (xy <= [230, 200])).all(axis=1)
    ids = _all_ids(rec)
    np.testing.assert_array_equal(tools.selected_ids, np.sort(ids[in_rect]))

    tools.act_invert.trigger()
    np.testing.assert_array_equal(tools.selected_ids, np.sort(ids[~in_rect]))
    tools.act_invert.trigger()
    np.testing.assert_array_equal(tools.selected_ids, np.sort(ids[in_rect]))

    tools.act_keep.trigger()
    edits = window.edits_session.edits
    assert edits.selections[-1].mode == "keep"
    np.testing.assert_array_equal(edits.selections[-1].ids, np.sort(ids[in_rect]))
    # invert now works among the kept points only: nothing is left outside the selection
    tools.act_invert.trigger()
    np.testing.assert_array_equal(tools.selected_ids, np.sort(ids[in_rect]))
    window.edits_session.undo_stack.undo()
    assert window.edits_session.edits == Edits()


def test_clear_selection_then_leave_the_tool(window) -> None:
    tools: CropSelectTools = window.crop_select
    changes: list[str] = []
    tools.tool_changed.connect(changes.append)
    tools.set_tool("lasso")
    window.viewer.selection_drawn.emit(POLYGON)
    assert tools.act_clear.isEnabled()
    tools.act_clear.trigger()
    assert tools.selected_ids.size == 0 and tools.tool == "lasso"
    tools.act_clear.trigger()
    assert tools.tool == "navigate" and changes == ["lasso", "navigate"]
    assert ("set_edit_tool", ("navigate",), {}) in window.viewer.calls
    assert not tools.act_clear.isEnabled(), "Esc stays free for Cancel Run"


def test_tools_menu_lists_the_actions(window) -> None:
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions()}
    texts = [a.text().replace("&", "") for a in menus["Tools"].actions() if not a.isSeparator()]
    at = texts.index("Crop Box")  # after the pick tools (measure, scale, level, floor, origin)
    assert texts[at : at + 2] == ["Crop Box", "Crop Box Numeric..."] and "Measure" in texts[:at]
    assert {"Lasso Select", "Rectangle Select", "Delete Selected", "Keep Selected"} <= set(texts)
    shortcuts = {a.shortcut().toString() for a in window.actions() if not a.shortcut().isEmpty()}
    assert {"B", "Shift+L", "Shift+R", "Del", "Ctrl+Shift+K", "Ctrl+I", "Esc"} <= shortcuts
    # no shortcut is claimed twice (a clash makes Qt ignore both)
    keys = [a.shortcut().toString() for a in window.actions() if not a.shortcut().isEmpty()]
    dup = {k for k in keys if keys.count(k) > 1} - {"Esc"}
    assert not dup, dup


def test_crop_dialog_numeric_entry_gives_the_exact_box(window, qtbot) -> None:
    session = window.edits_session
    # a known scale shown in centimetres: the fields are in cm, the box in edited-world metres
    session.push(Edits(metres_per_unit=1.0, display_unit="cm"), "Scale")
    dlg = window.crop_select.open_crop_dialog()
    assert dlg is not None and dlg.min_spins[0].suffix() == " cm"
    dlg.set_values((-50.0, -20.0, 300.0), (75.5, 30.25, 450.0))
    dlg.accept()
    expected = CropBox.axis_aligned((-0.5, -0.2, 3.0), (0.755, 0.3025, 4.5))
    assert session.edits.crop == expected
    assert session.undo_stack.undoText() == "Crop"
    assert window.crop_select.act_remove_crop.isEnabled()
    # reopened: it shows the current box
    dlg2 = window.crop_select.open_crop_dialog()
    assert dlg2 is not None
    np.testing.assert_allclose(dlg2.shown_values()[0], [-50.0, -20.0, 300.0])
    # max <= min cannot be accepted
    dlg2.set_values((0, 0, 0), (1, -1, 1))
    assert "Y" in dlg2.error_label.text()
    dlg2.reject()
    session.undo_stack.undo()
    assert session.edits.crop is None
    window.crop_select.act_crop.trigger()
    box = [c for c in window.viewer.calls if c[0] == "set_crop_gizmo"][-1][1][0]
    assert isinstance(box, CropBox), "the crop tool shows a box around the shown points"
    ps = window.state.reconstruction.global_points
    assert box.contains(ps.xyz.astype(np.float64)).all()
    assert session.edits.crop is None, "showing the gizmo crops nothing until a face is dragged"
    window.viewer.crop_box_dragged.emit(CropBox.axis_aligned((-1, -1, 3), (1, 1, 5)))
    assert session.edits.crop == CropBox.axis_aligned((-1, -1, 3), (1, 1, 5))


# ------------------------------------------------------------------------------------ real viewer
@pytest.fixture
def gl_setup(qtbot) -> Iterator[tuple]:
    from app.viewer import SceneViewer
    from tests.gl.scenes import showcase_reconstruction

    state = ViewerState()
    host = QWidget()
    qtbot.addWidget(host)
    viewer = SceneViewer(state)
    qtbot.addWidget(viewer.native)
    viewer.native.resize(480, 360)
    viewer.native.show()
    qtbot.waitExposed(viewer.native)
    session = EditsSession()
    tools = CropSelectTools(state, session, viewer, host)
    state.set_reconstruction(showcase_reconstruction(4, long_side=96))
    state.top_percent = 100.0
    viewer.idle_budget = 0
    QApplication.processEvents()
    yield state, viewer, session, tools
    viewer.close()


def _mouse(widget: QWidget, kind: QEvent.Type, pos: np.ndarray, buttons: Qt.MouseButton) -> None:
    p = QPointF(float(pos[0]), float(pos[1]))
    ev = QMouseEvent(
        kind, p, widget.mapToGlobal(p), Qt.MouseButton.NoButton, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, ev)


def _drag(widget: QWidget, path: np.ndarray) -> None:
    """Press at path[0], move through path[1:-1], release at path[-1] (left button), as a user would.

    VisPy drops a move that comes less than 10 ms after the previous one: the moves are 15 ms apart.
    """
    left = Qt.MouseButton.LeftButton
    QTest.mousePress(widget, left, Qt.KeyboardModifier.NoModifier, QPoint(*np.round(path[0]).astype(int)))
    for p in path[1:]:
        QTest.qWait(15)
        _mouse(widget, QEvent.Type.MouseMove, p, left)
    QTest.mouseRelease(widget, left, Qt.KeyboardModifier.NoModifier, QPoint(*np.round(path[-1]).astype(int)))


def _project(viewer, xyz: np.ndarray) -> np.ndarray:
    """Scene points to canvas pixels through VisPy's own transform chain (not the viewer's matrix)."""
    tr = viewer._points.get_transform("visual", "canvas")
    h = np.asarray(tr.map(np.asarray(xyz, np.float64)))
    return h[:, :2] / h[:, 3:4]


@pytest.mark.gl
@pytest.mark.parametrize("edited", [False, True])
def test_lasso_with_real_mouse_events(gl_setup, qtbot, edited: bool) -> None:
    state, viewer, session, tools = gl_setup
    if edited:  # the tools work in the edited world; the scene is drawn in the model world (for now)
        session.push(scale_by(Edits(), 2.5), "Scale")
    tools.set_tool("lasso")
    cam_before = viewer.current_pose().eye.copy()
    c = np.array([240.0, 180.0])
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    path = c + np.c_[90 * np.cos(angles), 60 * np.sin(angles) + 20 * np.sin(3 * angles)]
    path = np.vstack([path, path[0] + 1.0])
    with qtbot.waitSignal(viewer.selection_drawn, timeout=2000) as sig:
        _drag(viewer.native, path)
    polygon = np.asarray(sig.args[0])
    np.testing.assert_allclose(polygon[0], np.round(path[0]))
    assert len(polygon) >= 20
    np.testing.assert_allclose(viewer.current_pose().eye, cam_before, err_msg="the camera did not move")

    rec = state.reconstruction
    xy = _project(viewer, rec.global_points.xyz)
    expected = np.sort(_all_ids(rec)[_inside_even_odd(xy, polygon)])
    assert 200 < len(expected) < 0.9 * len(xy)
    np.testing.assert_array_equal(tools.selected_ids, expected)
    assert viewer._crop_select.selection_count == len(expected)

    shown_before = viewer.shown_count
    tools.act_delete.trigger()
    assert viewer.shown_count == shown_before - len(expected), "the deleted points are hidden"
    session.undo_stack.undo()
    assert viewer.shown_count == shown_before
    assert session.edits == (scale_by(Edits(), 2.5) if edited else Edits())


@pytest.mark.gl
def test_dragging_a_crop_handle_moves_that_face(gl_setup, qtbot) -> None:
    state, viewer, session, tools = gl_setup
    tools.set_tool("crop")
    box = viewer._crop_select.gizmo.box
    assert box is not None and session.edits.crop is None
    from app.viewer.crop_gizmo import face_handles

    centres, normals = face_handles(box)
    M = viewer.screen_matrix()
    face = 1  # +x
    start = _project(viewer, centres[face : face + 1])[0]
    ahead = _project(viewer, centres[face : face + 1] - 0.3 * normals[face : face + 1])[0]
    step = (ahead - start) / np.linalg.norm(ahead - start)
    path = np.array([np.round(start)] + [np.round(start) + step * k for k in (10, 25, 40)])
    with qtbot.waitSignal(viewer.crop_box_dragged, timeout=2000):
        _drag(viewer.native, path)
    new = session.edits.crop
    assert new is not None and session.undo_stack.undoText() == "Crop"
    lo0, hi0 = np.subtract(box.center, box.half_extents), np.add(box.center, box.half_extents)
    lo1, hi1 = np.subtract(new.center, new.half_extents), np.add(new.center, new.half_extents)
    assert hi1[0] < hi0[0] - 0.05, "the +x face moved inwards"
    np.testing.assert_allclose(lo1, lo0, atol=1e-9, err_msg="the other faces stayed")
    np.testing.assert_allclose(hi1[1:], hi0[1:], atol=1e-9)
    # the face follows the cursor: its new centre is drawn under the release position
    moved = np.array(face_handles(new)[0][face])
    h = M @ np.append(moved, 1.0)
    np.testing.assert_allclose(h[:2] / h[3], path[-1], atol=1.5)
    # the points outside the box are hidden
    kept = new.contains(state.reconstruction.global_points.xyz.astype(np.float64))
    assert viewer.shown_count == int(kept.sum()) < len(kept)
    session.undo_stack.undo()
    assert session.edits.crop is None and viewer.shown_count == len(kept)


def test_one_esc_for_every_tool_and_tools_take_turns(window) -> None:
    tools: CropSelectTools = window.crop_select
    stop = window.act_stop_tool
    assert stop.shortcut().toString() == "Esc" and not stop.isEnabled()
    assert tools.act_clear.shortcut().isEmpty()  # Esc is the window's, once
    window.edit_tools.set_mode("measure")
    assert stop.isEnabled()
    tools.set_tool("lasso")  # the crop/selection tools and the pick tools take turns
    assert window.edit_tools.mode == "" and tools.tool == "lasso"
    window.viewer.selection_drawn.emit(POLYGON)
    assert tools.selection_count > 0 and stop.isEnabled()
    stop.trigger()  # Esc 1: the selection goes, the tool stays
    assert tools.selection_count == 0 and tools.tool == "lasso"
    stop.trigger()  # Esc 2: the tool goes
    assert tools.tool == "navigate" and not stop.isEnabled()
    window.edit_tools.set_mode("origin")
    tools.set_tool("crop")
    assert window.edit_tools.mode == ""
    window.edit_tools.set_mode("floor")
    assert tools.tool == "navigate"


def test_counts_leave_out_deleted_and_cropped_points(window, qtbot) -> None:
    """The status bar and the confidence panel count what the viewport shows: deleted points and points
    outside the crop box are not "shown" (and come back with undo)."""
    from fast3r_core.edits import CropBox, set_crop

    rec, session, state = window.state.reconstruction, window.edits_session, window.state
    total = state.shown_count()
    ids = _all_ids(rec)
    session.push(delete_points(session.edits, ids[:250]), "Delete 250 points")
    assert state.shown_count() == total - 250
    assert f"{total - 250:,} of" in window.confidence_panel.count_label.text()
    # the status bar follows through a 100 ms throttle
    qtbot.waitUntil(lambda: f"{total - 250:,} points shown" in window.scene_label.text(), timeout=3000)
    xyz = rec.global_points.xyz.astype(np.float64)
    lo, hi = np.percentile(xyz, 25, axis=0), np.percentile(xyz, 75, axis=0)
    session.push(set_crop(session.edits, CropBox.axis_aligned(lo, hi)), "Crop")
    inside = np.all((xyz >= lo) & (xyz <= hi), axis=1)
    inside[:250] = False
    assert state.shown_count() == int(inside.sum())
    window.act_undo.trigger()
    window.act_undo.trigger()
    assert state.shown_count() == total
