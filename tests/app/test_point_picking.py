"""Exact point picking (app.viewer.point_picking) and the viewer's edited-world frames, without OpenGL."""

from __future__ import annotations

import numpy as np
import pytest

from app.viewer.edited_world import LEVEL_TO_DISPLAY, display_rotation, filter_key, similarity_change
from app.viewer.point_picking import PICK_TOLERANCE, pick_point_index, transform_matrix
from fast3r_core.edits import CropBox, Edits, delete_points, level_auto, scale_by, set_crop, translate


def _perspective(eye_dist: float = 5.0, f: float = 300.0, c: tuple[float, float] = (200, 150)) -> np.ndarray:
    """Row-vector matrix: camera at z = -eye_dist looking along +z, pinhole f, principal point c (y down)."""
    M = np.zeros((4, 4))
    M[0, 0] = f
    M[1, 1] = f
    M[2, 0], M[2, 1], M[2, 3] = c[0], c[1], 1.0
    M[3, 0], M[3, 1], M[3, 3] = c[0] * eye_dist, c[1] * eye_dist, eye_dist
    return M


def _brute(xyz: np.ndarray, M: np.ndarray, click, tol: float, radius: float) -> int:
    h = np.c_[xyz.astype(np.float64), np.ones(len(xyz))] @ M
    w = h[:, 3]
    xy = h[:, :2] / w[:, None]
    d = np.hypot(xy[:, 0] - click[0], xy[:, 1] - click[1])
    d[w <= 0] = np.inf
    under = np.flatnonzero(d <= tol)
    if under.size:
        return int(under[np.lexsort((d[under], w[under]))[0]])
    near = np.flatnonzero(d <= radius)
    return int(near[np.lexsort((w[near], d[near]))[0]]) if near.size else -1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pick_matches_brute_force(dtype) -> None:
    rng = np.random.default_rng(3)
    xyz = rng.uniform(-2, 2, size=(50_000, 3)).astype(dtype)
    M = _perspective()
    for click in rng.uniform([0, 0], [400, 300], size=(40, 2)):
        i, d = pick_point_index(xyz, M, click)
        assert i == _brute(xyz, M, click, PICK_TOLERANCE, 12.0)
        if i >= 0:
            h = np.r_[xyz[i].astype(np.float64), 1.0] @ M
            assert d == pytest.approx(np.hypot(*(h[:2] / h[3] - click)), abs=1e-3)


def test_the_front_point_under_the_cursor_wins_and_behind_the_eye_never() -> None:
    M = _perspective()
    # three points on the ray through the principal point, one of them behind the eye
    xyz = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0], [0.0, 0.0, -9.0], [0.004, 0.0, -1.0]], np.float32)
    i, d = pick_point_index(xyz, M, (200.0, 150.0))
    assert i == 1 and d == 0.0  # nearest to the eye, not the one behind it (z = -9 is behind)
    assert pick_point_index(xyz, M, (390.0, 10.0)) == (-1, float("inf"))
    # nothing under the cursor: the nearest on screen within the radius
    i, d = pick_point_index(xyz, M, (200.0 + 8.0, 150.0))
    assert i == 3 and d == pytest.approx(8.0 - 0.004 * 300 / 4, abs=1e-3)
    assert pick_point_index(np.zeros((0, 3), np.float32), M, (0, 0))[0] == -1


def test_transform_matrix_of_a_vispy_chain() -> None:
    from vispy.visuals.transforms import ChainTransform, MatrixTransform, STTransform

    m = MatrixTransform()
    P = _perspective()
    P[2, 2], P[3, 2] = 1.0, -0.1  # a depth row, as a GL projection has (else singular)
    m.matrix = P
    chain = ChainTransform([STTransform(scale=(2.0, 0.5, 1.0), translate=(3.0, -1.0, 0.0)), m])
    M = transform_matrix(chain)
    pts = np.random.default_rng(0).normal(size=(20, 3))
    np.testing.assert_allclose(np.c_[pts, np.ones(20)] @ M, chain.map(pts), rtol=1e-12, atol=1e-9)


def test_display_rotation_and_filter_key(synthetic_rec) -> None:
    c2w = synthetic_rec.cam_to_world
    assert np.array_equal(display_rotation(Edits(), c2w), np.eye(3))
    assert np.array_equal(display_rotation(scale_by(Edits(), 3.0), c2w), np.eye(3))
    levelled = level_auto(Edits(), c2w)
    assert np.array_equal(display_rotation(levelled, c2w), LEVEL_TO_DISPLAY)
    assert np.allclose(LEVEL_TO_DISPLAY @ [0, 0, 1], [0, -1, 0])  # Z up shows as the display's up
    # the filter key ignores the transform unless there is a crop box
    e = delete_points(Edits(), [1, 2])
    assert filter_key(scale_by(e, 2.0)) == filter_key(e) != filter_key(Edits()) == ()
    boxed = set_crop(Edits(), CropBox((0.0, 0.0, 0.0)))
    assert filter_key(translate(boxed, (1.0, 0.0, 0.0))) != filter_key(boxed)
    T0, T1 = np.eye(4), np.diag([2.0, 2.0, 2.0, 1.0])
    T1[:3, 3] = (1.0, 2.0, 3.0)
    k, Q, t = similarity_change(T0, T1)
    assert k == pytest.approx(2.0) and np.allclose(Q, np.eye(3)) and np.allclose(t, (1, 2, 3))
