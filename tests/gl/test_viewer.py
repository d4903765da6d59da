"""The VisPy viewport with a real OpenGL context (Xvfb + Mesa llvmpipe): what it draws and how it reacts.

Every check looks at rendered pixels, signals or the camera after real state changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from app.state import ViewerState
from app.viewer import SceneViewer, view_palette
from fast3r_core.geometry import transform_points
from fast3r_core.result import Reconstruction
from tests.gl.scenes import showcase_reconstruction

pytestmark = [
    pytest.mark.gl,
    # VisPy's Qt backend reads QMouseEvent.pos(), deprecated in Qt 6: not ours to fix.
    pytest.mark.filterwarnings("ignore:Function.*QMouseEvent.pos:DeprecationWarning"),
]

SIZE = (320, 240)


@pytest.fixture(scope="module")
def rec() -> Reconstruction:
    return showcase_reconstruction(4, long_side=96)


@pytest.fixture
def state() -> ViewerState:
    return ViewerState()


@pytest.fixture
def viewer(qtbot, state: ViewerState) -> Iterator[SceneViewer]:
    v = SceneViewer(state)
    qtbot.addWidget(v.native)
    v.native.resize(480, 360)
    v.native.show()
    qtbot.waitExposed(v.native)
    yield v
    v.close()


@pytest.fixture
def shown(viewer: SceneViewer, state: ViewerState, rec: Reconstruction) -> SceneViewer:
    state.set_reconstruction(rec)
    return viewer


def _bg(state: ViewerState) -> np.ndarray:
    h = state.background.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)])


def _foreground(img: np.ndarray, state: ViewerState, tol: int = 6) -> np.ndarray:
    """(H, W) bool: pixels that differ from the background colour."""
    return np.abs(img[..., :3].astype(int) - _bg(state)).max(axis=-1) > tol


def _near_color(img: np.ndarray, rgb01: np.ndarray, tol: int = 20) -> int:
    """Number of pixels within ``tol`` (per channel) of a colour given in 0..1."""
    target = np.round(np.asarray(rgb01) * 255).astype(int)
    return int((np.abs(img[..., :3].astype(int) - target).max(axis=-1) <= tol).sum())


def _project(viewer: SceneViewer, xyz: np.ndarray) -> np.ndarray:
    """World points to canvas pixels (logical, y down)."""
    tr = viewer._points.get_transform("visual", "canvas")
    h = np.asarray(tr.map(np.atleast_2d(xyz)))
    return h[:, :2] / h[:, 3:4]


def test_render_shows_the_points_and_follows_the_confidence_filter(
    shown: SceneViewer, state: ViewerState, rec: Reconstruction
) -> None:
    img = shown.render_image(*SIZE)
    assert img.shape == (SIZE[1], SIZE[0], 4) and img.dtype == np.uint8
    full = _foreground(img, state).mean()
    assert full > 0.08, "the point cloud covers a good part of the picture"
    n_all = len(rec.global_points)
    assert shown.drawn_count == state.prefix_count() == round(0.9 * n_all)

    state.top_percent = 5.0
    assert shown.drawn_count == round(0.05 * n_all)
    assert _foreground(shown.render_image(*SIZE), state).mean() < 0.6 * full

    state.conf_mode = "threshold"
    state.threshold = 1e9
    assert shown.drawn_count == 0


def test_hiding_views_drops_their_points(shown: SceneViewer, state: ViewerState, rec: Reconstruction) -> None:
    state.top_percent = 100.0
    state.show_cameras = False
    before = _foreground(shown.render_image(*SIZE), state).sum()
    ps = rec.global_points
    state.set_visible_views(np.array([False, False, True, False]))
    assert shown.drawn_count == int((ps.view == 2).sum())
    after = _foreground(shown.render_image(*SIZE), state).sum()
    assert 0 < after < 0.9 * before
    # the confidence filter still works on the masked points (a prefix of the index buffer)
    state.top_percent = 50.0
    n = ps.count_top_percent(50.0)
    assert shown.drawn_count == int((ps.view[:n] == 2).sum())
    state.set_visible_views(np.zeros(rec.n_views, bool))
    assert shown.drawn_count == 0
    assert _foreground(shown.render_image(*SIZE), state).sum() == 0


def test_point_size_grows_the_coverage(shown: SceneViewer, state: ViewerState) -> None:
    state.top_percent = 20.0
    state.show_cameras = False
    state.point_size = 1.0
    small = _foreground(shown.render_image(*SIZE), state).sum()
    state.point_size = 5.0
    big = _foreground(shown.render_image(*SIZE), state).sum()
    assert big > 1.5 * small


def test_color_modes(shown: SceneViewer, state: ViewerState, rec: Reconstruction) -> None:
    state.show_cameras = False
    rgb = shown.render_image(*SIZE)
    state.color_mode = "confidence"
    conf = shown.render_image(*SIZE)
    state.color_mode = "view"
    view = shown.render_image(*SIZE)
    fg = _foreground(rgb, state) & _foreground(conf, state) & _foreground(view, state)
    assert fg.sum() > 1000
    diff = lambda a, b: np.abs(a[fg, :3].astype(int) - b[fg, :3].astype(int)).mean()  # noqa: E731
    assert diff(rgb, conf) > 20 and diff(rgb, view) > 20 and diff(conf, view) > 20
    # "view" colours are the view hues shaded by the image's brightness: hue channels order matches
    pal = view_palette(rec.n_views)
    dominant = [int(np.argmax(c)) for c in pal]
    px = view[fg, :3].astype(int)
    assert np.isin(np.argmax(px, axis=1), dominant).mean() > 0.9
    # the confidence normalisation can be switched (per-view min-max)
    state.color_mode = "confidence"
    state.conf_norm = "view"
    per_view = shown.render_image(*SIZE)
    assert np.abs(per_view[fg, :3].astype(int) - conf[fg, :3].astype(int)).mean() > 5


def test_frusta_are_drawn_in_the_view_hues_with_their_images(
    shown: SceneViewer, state: ViewerState, rec: Reconstruction
) -> None:
    state.top_percent = 0.0  # no points: only the cameras
    assert shown.drawn_count == 0
    shown.reset_view()
    img = shown.render_image(640, 480)
    assert _foreground(img, state).sum() > 300
    pal = view_palette(rec.n_views)
    for v in range(rec.n_views):
        assert _near_color(img, pal[v], tol=12) >= 5, f"view {v}'s hue is drawn"
    state.show_cameras = False
    assert _foreground(shown.render_image(640, 480), state).sum() == 0


def test_highlight_emphasises_one_view(shown: SceneViewer, state: ViewerState, rec: Reconstruction) -> None:
    fg0 = shown.render_image(*SIZE)
    mask = _foreground(fg0, state)
    bright0 = np.abs(fg0[mask, :3].astype(int) - _bg(state)).mean()
    state.set_highlighted_view(2)
    img = shown.render_image(*SIZE)
    bright = np.abs(img[_foreground(img, state), :3].astype(int) - _bg(state)).mean()
    assert bright < 0.8 * bright0, "the other views are dimmed"
    hl = 0.45 * view_palette(rec.n_views)[2] + 0.55  # the highlighted frustum's colour
    assert _near_color(img, hl, tol=12) >= 5
    state.set_highlighted_view(-1)
    np.testing.assert_array_equal(shown.render_image(*SIZE), fg0)


def test_clicking_a_frustum_emits_view_clicked(qtbot, shown: SceneViewer, state: ViewerState) -> None:
    from PySide6.QtCore import QPoint, Qt

    xy, owners, front = shown.view_screen_positions()
    assert front.all() and len(owners) == 2 * 4
    # the far-plane centre of the view whose anchor is farthest from the other views' anchors
    dist = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    dist[owners[:, None] == owners[None]] = np.inf
    i = int(np.argmax(dist.min(axis=1)))
    target = int(owners[i])
    pos = QPoint(round(xy[i, 0]), round(xy[i, 1]))
    with qtbot.waitSignal(shown.view_clicked, timeout=2000) as blocker:
        qtbot.mouseClick(shown.native, Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [target]
    assert state.highlighted_view == target
    # a click far from every frustum picks nothing; a drag is not a click
    assert shown.pick((-500.0, -500.0)) == -1
    with qtbot.assertNotEmitted(shown.view_clicked):
        qtbot.mouseClick(shown.native, Qt.MouseButton.LeftButton, pos=QPoint(2, 2))


def test_level_of_detail_while_the_camera_moves(qtbot, shown: SceneViewer, state: ViewerState) -> None:
    state.top_percent = 100.0
    full = shown.drawn_count
    shown.point_budget = 4000
    shown.idle_ms = 150
    qtbot.waitUntil(lambda: not shown.lod_active, timeout=3000)
    assert shown.drawn_count == full == shown.shown_count

    shown.camera.azimuth = shown.camera.azimuth + 10.0
    assert shown.lod_active
    assert 4000 / math.sqrt(2) * 0.8 <= shown.drawn_count <= 4000
    assert _foreground(shown.render_image(*SIZE), state).sum() > 0  # renders at full density anyway
    qtbot.waitUntil(lambda: not shown.lod_active, timeout=3000)
    assert shown.drawn_count == full

    # the slider during motion keeps the budget; masks combine with it
    shown.camera.azimuth = shown.camera.azimuth + 10.0
    state.set_view_visible(0, False)
    assert shown.drawn_count <= 4000
    qtbot.waitUntil(lambda: not shown.lod_active, timeout=3000)
    assert shown.drawn_count == shown.shown_count < full

    # dragging the confidence slider redraws with the budget too, full density once it stops
    state.top_percent = 90.0
    assert shown.lod_active and shown.drawn_count <= 4000
    qtbot.waitUntil(lambda: not shown.lod_active, timeout=3000)
    assert shown.drawn_count == shown.shown_count


def test_reset_view_looks_from_behind_view_0_upright(shown: SceneViewer, rec: Reconstruction) -> None:
    from app.viewer.camera_math import default_view_direction

    pose = shown.current_pose()
    fwd, up = default_view_direction(rec.cam_to_world[0])  # view 0's +z, turned aside and tilted down
    np.testing.assert_allclose(pose.forward, fwd, atol=1e-6)
    np.testing.assert_allclose(pose.up, up, atol=1e-6)
    assert up @ np.array([0, -1.0, 0]) > 0.8  # world up (-y) stays up
    w, h = shown.canvas.size
    c, above, right = _project(shown, pose.center + np.array([[0, 0, 0], [0, -1, 0], [1, 0, 0]]))
    np.testing.assert_allclose(c, [w / 2, h / 2], atol=1.0)
    assert above[1] < c[1] - 5 and abs(above[0] - c[0]) < 1  # -y is drawn above
    assert right[0] > c[0] + 5  # +x is drawn to the right
    # everything shown is in the picture
    xy = _project(shown, rec.cam_to_world[:, :3, 3])
    assert (xy >= 0).all() and (xy[:, 0] <= w).all() and (xy[:, 1] <= h).all()


def test_fly_to_view_sees_what_that_camera_saw(qtbot, shown: SceneViewer, rec: Reconstruction) -> None:
    view = 2
    shown.fly_to_view(view, duration_ms=0)
    pose = shown.current_pose()
    np.testing.assert_allclose(pose.eye, rec.cam_to_world[view][:3, 3], atol=1e-6)
    np.testing.assert_allclose(pose.forward, rec.cam_to_world[view][:3, 2], atol=1e-6)
    # a pixel of the view projects to the same relative place on the canvas (OpenCV image axes)
    hh, ww = rec.view_shape(view)
    w, h = shown.canvas.size
    for u, v in ((5, 5), (ww - 6, 5), (ww // 2, hh // 2), (5, hh - 6)):
        p = _project(shown, rec.pts3d[view][v, u])[0]
        expect_y = (v + 0.5) / hh * h
        assert abs(p[1] - expect_y) < 0.06 * h, (u, v, p)
        assert np.sign(p[0] - w / 2) == np.sign(u - (ww - 1) / 2) or abs(u - (ww - 1) / 2) < 2
    # animated: the camera arrives at the target
    shown.reset_view()
    shown.fly_to_view(1, duration_ms=150)
    assert shown.animating
    qtbot.waitUntil(lambda: not shown.animating, timeout=3000)
    np.testing.assert_allclose(shown.current_pose().eye, rec.cam_to_world[1][:3, 3], atol=1e-6)
    with pytest.raises(IndexError):
        shown.fly_to_view(99)


def test_fit_to_scene_and_camera_modes(shown: SceneViewer, rec: Reconstruction) -> None:
    shown.camera.distance = shown.camera.distance * 6
    far = shown.current_pose().distance
    shown.fit_to_scene()
    fitted = shown.current_pose()
    assert fitted.distance < far / 3
    shown.set_camera_mode("arcball")
    assert shown.camera_mode == "arcball"
    arc = shown.current_pose()
    np.testing.assert_allclose(arc.eye, fitted.eye, atol=1e-6)
    np.testing.assert_allclose(arc.forward, fitted.forward, atol=1e-6)
    np.testing.assert_allclose(arc.up, fitted.up, atol=1e-6)
    shown.fly_to_view(3, duration_ms=0)  # arcball can take any orientation
    np.testing.assert_allclose(shown.current_pose().up, -rec.cam_to_world[3][:3, 1], atol=1e-6)
    shown.set_camera_mode("turntable")
    with pytest.raises(ValueError):
        shown.set_camera_mode("fly")


def test_render_turntable_gif_and_mp4(tmp_path, shown: SceneViewer) -> None:
    before = shown.current_pose()
    calls: list[tuple[int, int]] = []
    gif = tmp_path / "turn.gif"
    shown.render_turntable(gif, frames=6, fps=10, size=(160, 120), progress=lambda d, t: calls.append((d, t)))
    frames = iio.imread(gif, index=None)
    assert frames.shape[:3] == (6, 120, 160)
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 1  # it turns
    assert calls == [(i, 6) for i in range(1, 7)]
    after = shown.current_pose()
    np.testing.assert_allclose(after.eye, before.eye, atol=1e-6)  # camera restored

    mp4 = tmp_path / "turn.mp4"
    shown.render_turntable(mp4, frames=4, fps=8, size=(161, 121))
    cap = cv2.VideoCapture(str(mp4))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and count == 4 and frame.shape == (120, 160, 3)


def test_render_playback_adds_views_one_by_one(tmp_path, shown: SceneViewer, state: ViewerState) -> None:
    state.show_cameras = False
    full = shown.drawn_count
    path = tmp_path / "play.gif"
    shown.render_playback(path, fps=4, size=(160, 120))
    frames = iio.imread(path, index=None)
    assert len(frames) == 4
    cover = [_foreground(f, state).sum() for f in frames]
    assert cover[0] > 0 and cover[-1] > cover[0]
    assert shown.drawn_count == full  # back to every view


def test_sources_sky_and_no_reconstruction(
    shown: SceneViewer, state: ViewerState, rec: Reconstruction
) -> None:
    state.top_percent = 100.0
    state.source = "local"
    assert shown.drawn_count == len(rec.local_points)
    assert _foreground(shown.render_image(*SIZE), state).mean() > 0.1
    state.mask_sky = True
    assert shown.drawn_count <= len(rec.local_points)
    state.set_reconstruction(None)
    assert shown.drawn_count == 0
    img = shown.render_image(*SIZE)
    assert _foreground(img, state).sum() == 0
    state.background = "#ffffff"
    assert (shown.render_image(*SIZE)[..., :3] == 255).all()


def test_frustum_geometry_matches_the_poses(shown: SceneViewer, rec: Reconstruction) -> None:
    pts, owners = shown._frusta.anchors()
    centers = pts[len(pts) // 2 :]
    np.testing.assert_allclose(centers, rec.cam_to_world[owners[len(pts) // 2 :], :3, 3])
    far = pts[: len(pts) // 2]
    local = transform_points(np.linalg.inv(rec.cam_to_world[0]), far[:1])
    assert local[0, 2] > 0  # in front of its camera (+z)


def test_resting_frame_is_capped_on_software_opengl(qtbot, shown: SceneViewer, state: ViewerState) -> None:
    """Issue 17.9: on llvmpipe a full-density frame of millions of points blocked input for seconds at
    every pause of a drag; the resting frame is capped there, screenshots still draw every point."""
    state.top_percent = 100.0
    full = shown.shown_count
    shown.idle_ms = 100
    cap = full // 3
    shown.idle_budget = cap
    qtbot.waitUntil(lambda: shown.idle_capped, timeout=3000)  # once the camera rests
    assert cap / math.sqrt(2) * 0.8 <= shown.drawn_count <= cap
    img = shown.render_image(*SIZE)  # full density offscreen
    assert _foreground(img, state).sum() > 0
    assert shown.drawn_count <= cap  # and capped again on screen afterwards
    shown.idle_budget = 0
    assert not shown.idle_capped and shown.drawn_count == full


def test_slider_under_the_cap_uploads_nothing(
    qtbot, monkeypatch, shown: SceneViewer, state: ViewerState
) -> None:
    """Issue 17.9: slider moves while the resting frame is capped (software OpenGL) or the camera
    moves change only a draw count: each level of detail's index buffer is built once per mask (the
    first time the slider reaches it), never again on later moves."""
    from app.viewer import scene_viewer as sv

    state.top_percent = 100.0
    full = shown.shown_count
    shown.idle_ms = 50
    shown.idle_budget = full // 3
    shown.point_budget = full // 8
    percents = (75.0, 65.0, 55.0, 45.0)  # all above the cap (a third of the points)

    def sweep() -> list[int]:
        counts = []
        for p in percents:
            state.top_percent = p  # "moving" while the slider is dragged: the moving subset
            counts.append(shown.drawn_count)
            qtbot.waitUntil(lambda: shown.idle_capped, timeout=3000)  # at rest: the capped subset
        return counts

    first = sweep()  # builds each level's subset once
    built: list[object] = []
    real = sv.gloo.IndexBuffer
    monkeypatch.setattr(sv.gloo, "IndexBuffer", lambda *a, **kw: built.append(1) or real(*a, **kw))
    assert sweep() == first
    assert built == []
    assert all(0 < c <= full // 8 for c in first)  # within the moving budget
    assert shown.drawn_count <= full // 3
