"""Synthetic scenes: geometry of the renderer agrees with its own cameras, determinism, scene folders."""

from __future__ import annotations

import numpy as np
import pytest

from fast3r_core.errors import InputError
from fast3r_core.geometry import se3_inverse
from fast3r_core.train.synthetic import (
    Camera,
    Primitive,
    Scene,
    Texture,
    load_scene_folder,
    look_at,
    render_sample,
    render_view,
    save_scene_folder,
)


def _project(c2w: np.ndarray, K: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w2c = se3_inverse(c2w)
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam[:, :2] / cam[:, 2:] * np.diag(K)[:2] + K[:2, 2]
    return uv, cam[:, 2]


@pytest.mark.parametrize("aspect", ["landscape", "square", "portrait"])
def test_sample_shapes_and_reprojection(aspect):
    s = render_sample(3, 3, aspect=aspect, long_side=96)
    V, H, W = s.valid.shape
    assert V == 3 and max(H, W) == 96
    assert (W > H) == (aspect == "landscape") and (H > W) == (aspect == "portrait")
    assert s.images.dtype == np.uint8 and s.images.shape == (V, H, W, 3)
    assert 0.2 <= s.valid.mean() <= 1.0
    assert np.allclose(s.cam_to_world[:, 3], [0, 0, 0, 1])
    for v in range(V):
        R = s.cam_to_world[v, :3, :3]
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.linalg.det(R) == pytest.approx(1.0)
        # every valid world point projects back onto its own pixel centre (OpenCV, centres at +0.5)
        rows, cols = np.nonzero(s.valid[v])
        uv, z = _project(s.cam_to_world[v], s.intrinsics[v], s.pts3d[v][rows, cols].astype(np.float64))
        assert np.abs(uv - np.stack([cols + 0.5, rows + 0.5], 1)).max() < 0.02
        assert np.allclose(z, s.depth[v][rows, cols], rtol=1e-4)
        assert (s.depth[v][~s.valid[v]] == 0).all()
    # horizontal field of view within the documented 45-75 degrees
    hfov = np.degrees(2 * np.arctan(W / 2 / s.intrinsics[0, 0, 0]))
    assert 45 <= hfov <= 75


def test_deterministic_and_varied():
    a = render_sample(11, 2, long_side=64)
    b = render_sample(11, 2, long_side=64)
    c = render_sample(12, 2, long_side=64)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.cam_to_world, b.cam_to_world)
    assert not np.array_equal(a.images, c.images)


def test_room_cameras_look_outward_inside_the_room():
    s = render_sample(5, 4, kind="room", long_side=64)
    assert s.kind == "room"
    assert s.valid.all()  # closed room: no sky
    centres = s.cam_to_world[:, :3, 3]
    assert np.abs(centres[:, :2]).max() < 1.0 and (centres[:, 2] > 0.5).all()


def test_primitives_hit_where_expected():
    tex = [Texture("plain", 1.0, np.array([[0.5, 0.5, 0.5]], np.float32))]
    sphere = Primitive("sphere", np.array([0.0, 0.0, 1.0]), np.eye(3), np.full(3, 1.0), tex)
    box = Primitive("box", np.array([0.0, 0.0, 5.0]), np.eye(3), np.array([1.0, 1.0, 1.0]), tex)
    cyl = Primitive("cylinder", np.array([0.0, 0.0, 3.0]), np.eye(3), np.array([0.5, 0.5, 1.0]), tex)
    o = np.array([0.0, 0.0, 10.0], np.float32)
    d = np.array([[0.0, 0.0, -1.0]], np.float32)
    for prim, expected in ((sphere, 8.0), (box, 4.0), (cyl, 6.0)):
        t = prim.hit(prim.to_local(o.astype(np.float64)).astype(np.float32), d @ prim.R.astype(np.float32))
        assert t[0] == pytest.approx(expected, abs=1e-5)
    scene = Scene([sphere], np.array([0.0, 0.0, 1.0]), 0.3, np.zeros((2, 3), np.float32), "objects", 1.0)
    K = np.array([[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]])
    img, _pts, valid, depth = render_view(
        scene, Camera(look_at(np.array([0.0, 0, 10]), np.zeros(3)), K, 16, 16)
    )
    assert valid[8, 8] and not valid[0, 0]
    assert depth[8, 8] == pytest.approx(8.0, abs=0.05)
    assert img[8, 8].mean() > img[0, 0].mean()  # lit sphere against a black sky


def test_scene_folder_roundtrip(tmp_path):
    s = render_sample(2, 3, aspect="landscape", long_side=80)
    folder = save_scene_folder(s, tmp_path / "scene", image_format="jpg")
    paths, c2w, K = load_scene_folder(folder)
    assert [p.name for p in paths] == ["000.jpg", "001.jpg", "002.jpg"]
    assert np.allclose(c2w, s.cam_to_world) and np.allclose(K, s.intrinsics)
    (folder / "gt.npz").unlink()  # cameras.json alone is enough
    paths2, c2w2, _ = load_scene_folder(folder)
    assert paths2 == paths and np.allclose(c2w2, s.cam_to_world)
    with pytest.raises(InputError):
        load_scene_folder(tmp_path)
