"""Tests of fast3r_core.geometry: SE(3), quaternions, axes, intrinsics mapping, frusta, Umeyama."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from fast3r_core.errors import InputError
from fast3r_core.geometry import (
    frustum_corners,
    intrinsics_matrix,
    intrinsics_model_to_original,
    model_pixels_to_original,
    opencv_to_opengl_c2w,
    opengl_to_opencv_c2w,
    quat_wxyz_to_rotmat,
    rotmat_to_quat_wxyz,
    se3_compose,
    se3_from_rt,
    se3_inverse,
    transform_points,
    umeyama_similarity,
)


def random_rigid(rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
    n = int(np.prod(shape)) if shape else 1
    R = Rotation.random(n, random_state=rng.integers(1 << 31)).as_matrix()
    T = se3_from_rt(R, rng.normal(size=(n, 3)) * 3)
    return T.reshape(*shape, 4, 4)


# ------------------------------------------------------------------------------------------ SE(3)


def test_se3_inverse_matches_linalg_inv_batched() -> None:
    rng = np.random.default_rng(0)
    T = random_rigid(rng, (2, 3))
    inv = se3_inverse(T)
    assert inv.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(inv, np.linalg.inv(T), atol=1e-12)
    np.testing.assert_allclose(inv @ T, np.broadcast_to(np.eye(4), T.shape), atol=1e-12)


def test_se3_inverse_rejects_wrong_shape() -> None:
    with pytest.raises(InputError):
        se3_inverse(np.eye(3))


def test_compose_and_transform_points() -> None:
    rng = np.random.default_rng(1)
    A, B, C = random_rigid(rng, (3,))
    np.testing.assert_allclose(se3_compose(A, B, C), A @ B @ C, atol=1e-12)
    np.testing.assert_array_equal(se3_compose(), np.eye(4))
    p = rng.normal(size=(5, 3))
    hom = np.c_[p, np.ones(5)] @ (A @ B).T
    np.testing.assert_allclose(transform_points(se3_compose(A, B), p), hom[:, :3], atol=1e-12)


# ------------------------------------------------------------------------------------ quaternions


def test_quaternion_is_scalar_first() -> None:
    # 90 degrees about +z: (w, x, y, z) = (cos 45, 0, 0, sin 45); scipy would give (0, 0, s, c).
    Rz = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    h = math.sqrt(0.5)
    np.testing.assert_allclose(rotmat_to_quat_wxyz(Rz), [h, 0.0, 0.0, h], atol=1e-12)
    np.testing.assert_allclose(quat_wxyz_to_rotmat([h, 0.0, 0.0, h]), Rz, atol=1e-12)
    np.testing.assert_allclose(rotmat_to_quat_wxyz(np.eye(3)), [1.0, 0.0, 0.0, 0.0])


def test_quaternion_round_trip_and_sign() -> None:
    rng = np.random.default_rng(2)
    R = Rotation.random(50, random_state=3).as_matrix().reshape(5, 10, 3, 3)
    q = rotmat_to_quat_wxyz(R)
    assert q.shape == (5, 10, 4)
    assert np.all(q[..., 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(quat_wxyz_to_rotmat(q), R, atol=1e-12)
    # -q is the same rotation; an unnormalised quaternion is normalised
    np.testing.assert_allclose(quat_wxyz_to_rotmat(-3.0 * q), R, atol=1e-12)
    del rng


# ------------------------------------------------------------------------------------------- axes


def test_opencv_opengl_axes_change() -> None:
    rng = np.random.default_rng(4)
    c2w = random_rigid(rng, (4,))
    gl = opencv_to_opengl_c2w(c2w)
    np.testing.assert_allclose(gl[:, :3, 3], c2w[:, :3, 3])  # same camera centre
    np.testing.assert_allclose(gl[:, :3, 0], c2w[:, :3, 0])  # x stays right
    np.testing.assert_allclose(gl[:, :3, 1], -c2w[:, :3, 1])  # OpenGL y up = -(OpenCV y down)
    np.testing.assert_allclose(gl[:, :3, 2], -c2w[:, :3, 2])  # OpenGL looks along -z
    np.testing.assert_allclose(np.linalg.det(gl[:, :3, :3]), 1.0)
    np.testing.assert_allclose(opengl_to_opencv_c2w(gl), c2w, atol=1e-15)


# ------------------------------------------------------------------------------------- intrinsics


def test_intrinsics_matrix_principal_point_is_w_over_2() -> None:
    K = intrinsics_matrix(400.0, 512, 384)
    np.testing.assert_array_equal(K, [[400.0, 0.0, 256.0], [0.0, 400.0, 192.0], [0.0, 0.0, 1.0]])


def spec_resize_crop(
    orig_w: int, orig_h: int, size: int
) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Resized size and crop box of the published preprocessing (spec 5), for the test only."""
    S = max(orig_w, orig_h)
    if size == 224:
        long_target = round(224 * max(orig_w / orig_h, orig_h / orig_w))
        scale = long_target / S
    else:
        scale = size / S
    rw, rh = round(orig_w * scale), round(orig_h * scale)
    cx, cy = rw // 2, rh // 2
    if size == 224:
        half = min(cx, cy)
        return (rw, rh), (cx - half, cy - half, cx + half, cy + half)
    hw, hh = 8 * ((2 * cx) // 16), 8 * ((2 * cy) // 16)
    return (rw, rh), (cx - hw, cy - hh, cx + hw, cy + hh)


@pytest.mark.parametrize(
    ("orig", "size", "expect_box"),
    [
        ((700, 500), 512, (0, 7, 512, 359)),  # 512 style: 512x366, 7 rows cropped top and bottom
        ((700, 500), 224, (45, 0, 269, 224)),  # 224 style: 314x224, centre square
        ((200, 300), 512, (2, 0, 338, 512)),  # portrait, upscaled 341x512, columns cropped
    ],
)
def test_model_pixels_map_back_to_original_blob(
    orig: tuple[int, int], size: int, expect_box: tuple[int, int, int, int]
) -> None:
    """A blob's centre found in the resized+cropped image maps back to where it is in the original."""
    ow, oh = orig
    resized, box = spec_resize_crop(ow, oh, size)
    assert box == expect_box
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float64)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x0 = rng.uniform(0.3, 0.7) * ow + 0.37
        y0 = rng.uniform(0.3, 0.7) * oh + 0.21
        blob = np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * 9.0**2)).astype(np.float32)
        filt = Image.Resampling.LANCZOS if max(ow, oh) > size else Image.Resampling.BICUBIC
        model = np.asarray(Image.fromarray(blob, mode="F").resize(resized, filt).crop(box), dtype=np.float64)
        vv, uu = np.mgrid[0 : model.shape[0], 0 : model.shape[1]]
        w = model.sum()
        uv_model = np.array([(uu * model).sum() / w, (vv * model).sum() / w])
        back = model_pixels_to_original(uv_model, box, resized, orig)
        np.testing.assert_allclose(back, [x0, y0], atol=1e-3)  # a half-pixel slip is >= 0.2 px here


@pytest.mark.parametrize("size", [512, 224])
def test_intrinsics_to_original_projects_to_the_mapped_pixel(size: int) -> None:
    orig = (1000, 713)
    resized, box = spec_resize_crop(*orig, size)
    W, H = box[2] - box[0], box[3] - box[1]
    K = intrinsics_matrix(0.9 * max(W, H), W, H)
    K_orig = intrinsics_model_to_original(K, box, resized, orig)
    assert K_orig[0, 0] != K_orig[1, 1] or resized[0] * orig[1] == resized[1] * orig[0]
    rng = np.random.default_rng(6)
    X = rng.normal(size=(20, 3)) + np.array([0.0, 0.0, 4.0])
    uv_model = (X @ K.T)[:, :2] / X[:, 2:]
    uv_orig = (X @ K_orig.T)[:, :2] / X[:, 2:]
    np.testing.assert_allclose(model_pixels_to_original(uv_model, box, resized, orig), uv_orig, atol=1e-9)
    # the closed form stated in the docstring
    sx = resized[0] / orig[0]
    np.testing.assert_allclose(K_orig[0, 0], K[0, 0] / sx)
    np.testing.assert_allclose(K_orig[0, 2], (K[0, 2] + box[0] + 0.5) / sx - 0.5)


def test_intrinsics_to_original_batched_and_bad_size() -> None:
    K = np.stack([intrinsics_matrix(f, 512, 384) for f in (300.0, 400.0)])
    out = intrinsics_model_to_original(K, (0, 0, 512, 384), (512, 384), (1024, 768))
    np.testing.assert_allclose(out[:, 0, 0], [600.0, 800.0])
    np.testing.assert_allclose(out[:, 0, 2], (256.0 + 0.5) * 2 - 0.5)
    with pytest.raises(InputError):
        intrinsics_model_to_original(K, (0, 0, 512, 384), (0, 384), (1024, 768))


# -------------------------------------------------------------------------------------------- frusta


def test_frustum_corners() -> None:
    rng = np.random.default_rng(7)
    c2w = random_rigid(rng)
    W, H, depth = 64, 48, 0.7
    K = intrinsics_matrix(50.0, W, H)
    pts = frustum_corners(c2w, K, W, H, depth)
    assert pts.shape == (5, 3)
    np.testing.assert_allclose(pts[0], c2w[:3, 3], atol=1e-12)  # apex = camera centre
    cam = transform_points(se3_inverse(c2w), pts[1:])
    np.testing.assert_allclose(cam[:, 2], depth, atol=1e-12)
    uv = (cam @ K.T)[:, :2] / cam[:, 2:]
    np.testing.assert_allclose(
        uv, [[-0.5, -0.5], [W - 0.5, -0.5], [W - 0.5, H - 0.5], [-0.5, H - 0.5]], atol=1e-9
    )


# -------------------------------------------------------------------------------------------- Umeyama


def test_umeyama_exact_recovery() -> None:
    rng = np.random.default_rng(8)
    src = rng.normal(size=(100, 3))
    R = Rotation.random(random_state=9).as_matrix()
    s, t = 2.7, np.array([1.0, -2.0, 0.5])
    dst = s * src @ R.T + t
    s2, R2, t2 = umeyama_similarity(src, dst)
    assert s2 == pytest.approx(s, rel=1e-12)
    np.testing.assert_allclose(R2, R, atol=1e-12)
    np.testing.assert_allclose(t2, t, atol=1e-12)


def test_umeyama_weights() -> None:
    rng = np.random.default_rng(10)
    src = rng.normal(size=(60, 3))
    R = Rotation.random(random_state=11).as_matrix()
    dst = 0.4 * src @ R.T + [3.0, 0.0, -1.0]
    dst[:15] += rng.normal(scale=5.0, size=(15, 3))  # outliers
    w = np.ones(60)
    w[:15] = 0.0
    s, R2, _ = umeyama_similarity(src, dst, w)  # zero weight = absent
    assert s == pytest.approx(0.4, rel=1e-12)
    np.testing.assert_allclose(R2, R, atol=1e-12)
    # without the weights the outliers spoil the fit (the weights really are used)
    s_unw, _, _ = umeyama_similarity(src, dst)
    assert abs(s_unw - 0.4) > 1e-3
    # an integer weight equals duplicating the point
    noisy = dst + rng.normal(scale=0.1, size=dst.shape)
    w2 = rng.integers(1, 4, size=60)
    fit_w = umeyama_similarity(src, noisy, w2)
    fit_dup = umeyama_similarity(np.repeat(src, w2, axis=0), np.repeat(noisy, w2, axis=0))
    assert fit_w[0] == pytest.approx(fit_dup[0], rel=1e-12)
    np.testing.assert_allclose(fit_w[1], fit_dup[1], atol=1e-12)
    np.testing.assert_allclose(fit_w[2], fit_dup[2], atol=1e-12)


def test_umeyama_never_returns_a_reflection() -> None:
    rng = np.random.default_rng(12)
    src = rng.normal(size=(30, 3))
    dst = src * [1.0, 1.0, -1.0]  # a mirror image
    _, R, _ = umeyama_similarity(src, dst)
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_umeyama_bad_input() -> None:
    with pytest.raises(InputError):
        umeyama_similarity(np.zeros((4, 3)), np.zeros((5, 3)))
    with pytest.raises(InputError):
        umeyama_similarity(np.zeros((4, 3)), np.zeros((4, 3)), np.zeros(4))
