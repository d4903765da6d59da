"""Pure helpers of the viewport (no OpenGL context, no window): colours, LOD, picking, camera maths,
frame writing."""

from __future__ import annotations

import math

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
from vispy import scene
from vispy.scene.cameras import ArcballCamera, TurntableCamera
from vispy.util.quaternion import Quaternion

from app.viewer.camera_math import (
    arcball_quaternion,
    box_corners,
    camera_axes,
    fit_distance,
    look_basis,
    pose_of_view,
    robust_bounds,
    slerp_rotation,
    turntable_angles,
)
from app.viewer.colors import (
    AUX_FRACTION,
    colormap_lut,
    conf_norm_values,
    pack_aux,
    pack_rgb,
    parse_color,
    view_palette,
)
from app.viewer.frusta import build_atlas, thumbnail
from app.viewer.lod import LevelOfDetail, is_software_renderer, prefix_count
from app.viewer.picking import homogeneous_to_screen, is_click, pick_nearest
from app.viewer.recording import FrameWriter, even_size
from tests.core.recon_factory import make_synthetic_reconstruction

# ------------------------------------------------------------------------------------------ colours


def test_view_palette_one_distinct_hue_per_view() -> None:
    for n in (0, 1, 2, 7, 50):
        pal = view_palette(n)
        assert pal.shape == (n, 3) and pal.dtype == np.float32
        assert np.all((pal >= 0) & (pal <= 1))
    pal = view_palette(8)
    d = np.linalg.norm(pal[:, None] - pal[None], axis=-1) + np.eye(8)
    assert d.min() > 0.1  # all distinct
    with pytest.raises(ValueError):
        view_palette(-1)


def test_colormap_lut_is_viridis_dark_to_bright() -> None:
    lut = colormap_lut("viridis")
    assert lut.shape == (256, 4)
    luma = lut[:, :3] @ np.array([0.299, 0.587, 0.114])
    assert luma[-1] > luma[0] + 0.5
    assert not lut.flags.writeable


def test_parse_color() -> None:
    assert parse_color("#ff0000") == pytest.approx((1.0, 0.0, 0.0))
    assert parse_color("#202124") == pytest.approx((0x20 / 255, 0x21 / 255, 0x24 / 255))


def _shader_unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """What the vertex shader does, in float32."""
    p = packed.astype(np.float32)
    r = np.floor(p / np.float32(65536))
    g = np.floor((p - r * 65536) / np.float32(256))
    b = p - r * 65536 - g * 256
    return np.stack([r, g, b], axis=1)


def test_pack_rgb_round_trips_exactly() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (10_000, 3), dtype=np.uint8)
    rgb[0] = 255
    rgb[1] = 0
    packed = pack_rgb(rgb)
    assert packed.dtype == np.float32
    np.testing.assert_array_equal(_shader_unpack_rgb(packed), rgb.astype(np.float32))
    with pytest.raises(ValueError):
        pack_rgb(rgb.astype(np.float32))


def test_pack_aux_keeps_view_and_conf() -> None:
    rng = np.random.default_rng(1)
    view = rng.integers(0, 2000, 5000).astype(np.uint16)
    c = rng.random(5000).astype(np.float32)
    c[:2] = (0.0, 1.0)
    aux = pack_aux(view, c)
    v = np.floor(aux)
    np.testing.assert_array_equal(v, view)
    np.testing.assert_allclose((aux - v) / AUX_FRACTION, c, atol=1 / 512)


def test_conf_norm_values_global_rank_and_per_view() -> None:
    rec = make_synthetic_reconstruction(3, long_side=48)
    ps = rec.global_points
    g = conf_norm_values(ps, rec.n_views, "global")
    assert g[0] == 1.0 and g[-1] == 0.0 and np.all(np.diff(g) <= 0)
    v = conf_norm_values(ps, rec.n_views, "view")
    for view in range(rec.n_views):
        sel = v[ps.view == view]
        assert sel.min() == pytest.approx(0.0) and sel.max() == pytest.approx(1.0)
        # monotone in confidence within a view
        conf = ps.conf[ps.view == view]
        assert np.all(np.diff(sel[np.argsort(conf)]) >= -1e-6)
    with pytest.raises(ValueError):
        conf_norm_values(ps, rec.n_views, "nope")


# ------------------------------------------------------------------------------------ level of detail


def test_lod_levels_are_geometric_and_fixed() -> None:
    lod = LevelOfDetail(400_000, seed=3)
    for k in (1, 2, 4, 8):
        frac = np.mean(lod.levels >= k)
        assert frac == pytest.approx(2.0 ** (-k / 2), rel=0.05)
    np.testing.assert_array_equal(lod.levels, LevelOfDetail(400_000, seed=3).levels)


def test_lod_choose_respects_budget_and_prefix_property() -> None:
    n_points = 200_000
    lod = LevelOfDetail(n_points)
    for n in (n_points, 120_000, 30_000, 5_000):
        k, idx, count = lod.choose(n, 10_000)
        if n <= 10_000:
            assert (k, idx, count) == (0, None, n)
            continue
        assert k > 0 and 10_000 / math.sqrt(2) * 0.9 <= count <= 10_000
        assert np.all(np.diff(idx.astype(np.int64)) > 0)  # sorted: a prefix is a confidence prefix
        np.testing.assert_array_equal(idx[:count], idx[idx < n])
    # with a mask of surviving points
    base = np.flatnonzero(np.arange(n_points) % 3 != 0).astype(np.uint32)
    k, idx, count = lod.choose(90_000, 8_000, base, base_key=1)
    assert count <= 8_000 and np.isin(idx, base).all()
    np.testing.assert_array_equal(idx[:count], idx[idx < 90_000])
    # budget 0 = off
    assert lod.choose(90_000, 0, base, 1) == (0, base, prefix_count(base, 90_000))


def test_prefix_count() -> None:
    idx = np.array([0, 3, 5, 9], np.uint32)
    assert [prefix_count(idx, n) for n in (0, 1, 4, 6, 10, 2**40)] == [0, 1, 2, 3, 4, 4]
    assert prefix_count(None, 7) == 7


def test_is_software_renderer() -> None:
    assert is_software_renderer("llvmpipe (LLVM 15.0.6, 256 bits)")
    assert is_software_renderer("Google SwiftShader")
    assert not is_software_renderer("NVIDIA GeForce RTX 3060/PCIe/SSE2")


# ------------------------------------------------------------------------------------------ picking


def test_homogeneous_to_screen_and_pick() -> None:
    h = np.array([[20.0, 40.0, 0.0, 2.0], [5.0, 5.0, 0.0, -1.0], [100.0, 100.0, 0.0, 1.0]])
    xy, front = homogeneous_to_screen(h)
    np.testing.assert_allclose(xy[0], [10.0, 20.0])
    assert front.tolist() == [True, False, True]
    owners = np.array([7, 8, 9])
    assert pick_nearest(xy, owners, (12, 21), valid=front) == 7
    assert pick_nearest(xy, owners, (-5, -5), valid=front) == -1  # only the hidden one is near
    assert pick_nearest(xy, owners, (100, 130), valid=front, radius=20) == -1
    assert pick_nearest(xy, owners, (100, 110), valid=front, radius=20) == 9
    assert pick_nearest(np.zeros((0, 2)), np.zeros(0, int), (0, 0)) == -1
    assert is_click((10, 10), (12, 11)) and not is_click((10, 10), (20, 10))


# ------------------------------------------------------------------------------------- camera maths


def _vispy_axes(cam: TurntableCamera | ArcballCamera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return camera_axes(cam.transform.matrix)


@pytest.fixture
def viewbox() -> scene.widgets.ViewBox:
    return scene.widgets.ViewBox(size=(400, 300))


def _random_views(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    out = [(np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0]))]
    for _ in range(n):
        f = rng.normal(size=3)
        f[1] *= 0.5  # keep away from straight up/down, where turntable azimuth is undefined
        out.append((f / np.linalg.norm(f), rng.normal(size=3)))
    return out


def test_turntable_angles_reproduce_the_view(viewbox: scene.widgets.ViewBox) -> None:
    cam = TurntableCamera(up="-y", fov=45, distance=7.0)
    viewbox.camera = cam
    cam.center = (1.0, 2.0, 3.0)
    az, el, roll = turntable_angles(np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0]))
    assert (az, el, roll) == pytest.approx((90.0, 0.0, 0.0), abs=1e-9)
    for fwd, up in _random_views(10):
        cam.azimuth, cam.elevation, cam.roll = turntable_angles(fwd, up)
        eye, f, u = _vispy_axes(cam)
        _, u_want, f_want = look_basis(fwd, up)
        np.testing.assert_allclose(f, f_want, atol=1e-6)
        np.testing.assert_allclose(u, u_want, atol=1e-6)
        np.testing.assert_allclose(eye, np.array([1.0, 2.0, 3.0]) - 7.0 * f_want, atol=1e-6)


def test_arcball_quaternion_reproduces_the_view(viewbox: scene.widgets.ViewBox) -> None:
    cam = ArcballCamera(fov=45, distance=3.0)
    viewbox.camera = cam
    for fwd, up in _random_views(10):
        cam._quaternion = Quaternion(*arcball_quaternion(fwd, up))
        cam.view_changed()
        _, f, u = _vispy_axes(cam)
        _, u_want, f_want = look_basis(fwd, up)
        np.testing.assert_allclose(f, f_want, atol=1e-6)
        np.testing.assert_allclose(u, u_want, atol=1e-6)


def test_pose_of_view_uses_opencv_axes() -> None:
    c2w = np.eye(4)
    c2w[:3, 3] = (1, 2, 3)
    eye, fwd, up = pose_of_view(c2w)
    np.testing.assert_allclose(eye, [1, 2, 3])
    np.testing.assert_allclose(fwd, [0, 0, 1])  # looks along +z
    np.testing.assert_allclose(up, [0, -1, 0])  # image up is -y


def test_look_basis_is_orthonormal() -> None:
    b = look_basis(np.array([0.3, -0.2, 1.0]), np.array([0.0, -1.0, 0.0]))
    np.testing.assert_allclose(b @ b.T, np.eye(3), atol=1e-12)
    r, u, f = b
    np.testing.assert_allclose(np.cross(r, u), -f, atol=1e-12)
    with pytest.raises(ValueError):
        look_basis(np.array([0.0, 1.0, 0.0]), np.array([0.0, 2.0, 0.0]))


def test_fit_distance_frames_every_point() -> None:
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(500, 3)) * (3.0, 1.0, 0.5)
    center = pts.mean(axis=0)
    fwd, up = np.array([0.2, 0.1, 1.0]), np.array([0.0, -1.0, 0.0])
    fov, aspect = 50.0, 16 / 9
    d = fit_distance(center, pts, fwd, up, fov, aspect, margin=1.0)
    r, u, f = look_basis(fwd, up)
    rel = pts - (center - f * d)
    z = rel @ f
    assert (z > 0).all()
    tv = math.tan(math.radians(fov) / 2)
    x_ndc = np.abs(rel @ r) / z / (tv * aspect)
    y_ndc = np.abs(rel @ u) / z / tv
    assert max(x_ndc.max(), y_ndc.max()) == pytest.approx(1.0, abs=1e-9)  # tight: one point on the edge
    assert len(box_corners(np.zeros(3), np.ones(3))) == 8


def test_robust_bounds_ignore_outliers() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, (10_000, 3)).astype(np.float32)
    pts[:20] = 1e4
    center, size = robust_bounds(pts)
    np.testing.assert_allclose(center, 0, atol=0.05)
    np.testing.assert_allclose(size, 1.92, atol=0.05)
    c2, s2 = robust_bounds(np.zeros((0, 3)))
    assert not s2.any() and not c2.any()


def test_slerp_rotation_endpoints_and_midpoint() -> None:
    a = np.eye(3)
    th = math.radians(90)
    b = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]])
    np.testing.assert_allclose(slerp_rotation(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(slerp_rotation(a, b, 1.0), b, atol=1e-12)
    mid = slerp_rotation(a, b, 0.5)
    assert math.degrees(math.atan2(mid[1, 0], mid[0, 0])) == pytest.approx(45.0)


# ----------------------------------------------------------------------------------- frusta atlas


def test_thumbnail_and_atlas() -> None:
    img = np.zeros((384, 512, 3), np.uint8)
    img[:, :256] = (255, 0, 0)
    th = thumbnail(img)
    assert th.shape == (96, 128, 3)
    imgs = [th, np.full((128, 96, 3), 7, np.uint8), np.full((40, 60, 3), 200, np.uint8)]
    atlas, uv = build_atlas(imgs)
    side = atlas.shape[0]
    assert atlas.shape == (side, side, 3) and side == 256
    assert np.all((uv >= 0) & (uv <= 1))
    for im, (u0, v0, u1, v1) in zip(imgs, uv, strict=True):
        x0, y0 = round(u0 * side - 0.5), round(v0 * side - 0.5)
        x1, y1 = round(u1 * side + 0.5), round(v1 * side + 0.5)
        np.testing.assert_array_equal(atlas[y0:y1, x0:x1], im)


# ----------------------------------------------------------------------------------- frame writing


def _frames(n: int, h: int = 48, w: int = 66) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros((h, w, 4), np.uint8)
        f[..., 3] = 255
        f[:, : (i + 1) * 6, 0] = 255
        out.append(f)
    return out


def test_frame_writer_gif(tmp_path) -> None:
    path = tmp_path / "anim.gif"
    with FrameWriter(path, fps=10) as w:
        for f in _frames(5):
            w.add(f)
    frames = iio.imread(path, index=None)
    assert frames.shape[:3] == (5, 48, 66)
    assert not list(tmp_path.glob(".*partial*"))


def test_frame_writer_mp4_even_size(tmp_path) -> None:
    path = tmp_path / "anim.mp4"
    with FrameWriter(path, fps=10) as w:
        for f in _frames(4, h=49, w=67):
            w.add(f)
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        assert frame.shape == (48, 66, 3)
    cap.release()
    assert n == 4
    assert even_size((67, 49)) == (66, 48)


def test_frame_writer_errors(tmp_path) -> None:
    with pytest.raises(ValueError):
        FrameWriter(tmp_path / "x.avi", fps=10)
    with pytest.raises(ValueError):
        FrameWriter(tmp_path / "x.gif", fps=0)
    w = FrameWriter(tmp_path / "x.gif", fps=5)
    with pytest.raises(ValueError):
        w.add(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        w.write()
    with pytest.raises(RuntimeError), FrameWriter(tmp_path / "y.gif", fps=5) as w2:
        w2.add(_frames(1)[0])
        raise RuntimeError("boom")
    assert not (tmp_path / "y.gif").exists()


def test_default_view_keeps_view_0s_frustum_off_the_cloud():
    """The default view is a three-quarter view: camera 0 (whose frustum used to sit in front of the
    cloud, covering its middle) is projected well away from the picture's centre, and the whole cloud
    is framed."""
    from app.viewer.camera_math import default_view_direction, fit_distance, look_basis, robust_bounds

    rng = np.random.default_rng(0)
    cloud = rng.normal([0.0, 0.0, 3.0], [1.0, 0.6, 0.5], (4000, 3))  # in front of camera 0
    c2w0 = np.eye(4)
    fwd, up = default_view_direction(c2w0)
    assert 30 < np.degrees(np.arccos(np.clip(fwd @ np.array([0, 0, 1.0]), -1, 1))) < 60
    center, _ = robust_bounds(cloud)
    fov, aspect = 40.0, 1.5
    d = fit_distance(center, np.vstack([cloud, np.zeros((1, 3))]), fwd, up, fov, aspect)
    eye = center - fwd * d
    basis = look_basis(fwd, up)

    def ndc(p: np.ndarray) -> np.ndarray:
        rel = (p - eye) @ basis.T  # right, up, forward
        t = np.tan(np.radians(fov) / 2)
        return np.array([rel[..., 0] / (rel[..., 2] * t * aspect), rel[..., 1] / (rel[..., 2] * t)]).T

    cam0 = ndc(np.zeros(3))
    assert np.hypot(*cam0) > 0.35  # not in the middle of the picture
    inside = np.abs(ndc(cloud)) <= 1.0
    assert inside.all(axis=1).mean() > 0.99  # the cloud is framed
