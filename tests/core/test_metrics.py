"""Tests of fast3r_core.metrics against the parity fixture and known cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fast3r_core.errors import InputError
from fast3r_core.geometry import se3_from_rt
from fast3r_core.metrics import (
    accuracy_completion,
    mean_average_accuracy,
    pair_indices,
    pose_metrics,
    relative_pose_errors,
)

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "parity" / "metrics" / "case.npz"
KEYS = ("RRA@5", "RTA@5", "RRA@15", "RTA@15", "RRA@30", "RTA@30", "mAA@30")

# Angle PyTorch3D-style extrapolated arccos reports for identical rotations: the tangent of arccos at
# 1 - 1e-4 evaluated at 1 (not 0).
_B = 1.0 - 1e-4
FLOOR_DEG = math.degrees(math.acos(_B) - (1.0 - _B) / math.sqrt(1.0 - _B * _B))


@pytest.fixture(scope="module")
def case() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as z:
        return {k: z[k] for k in z.files}


def test_pair_order_is_torch_combinations() -> None:
    i, j = pair_indices(4)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def test_relative_errors_reproduce_fixture(case: dict[str, np.ndarray]) -> None:
    rot, trans = relative_pose_errors(case["pred_c2w"], case["gt_c2w"])
    assert rot.shape == trans.shape == (21,)
    # The reference was computed in float32 (~1e-4 deg of rounding on 20 deg); we compute in float64.
    for ours, ref in ((rot, case["rel_rangle_deg"]), (trans, case["rel_tangle_deg"])):
        ref = ref.astype(np.float64)
        assert np.all(np.abs(ours - ref) <= 1e-4 * (1.0 + np.abs(ref))), np.abs(ours - ref).max()


def test_pose_metrics_reproduce_fixture(case: dict[str, np.ndarray]) -> None:
    m = pose_metrics(case["pred_c2w"], case["gt_c2w"])
    assert set(m) == set(KEYS)
    for k in KEYS:
        assert m[k] == pytest.approx(float(case[k]), abs=1e-4), k


def test_perfect_prediction_and_frame_invariance() -> None:
    rng = np.random.default_rng(0)
    gt = se3_from_rt(Rotation.random(5, random_state=1).as_matrix(), rng.normal(size=(5, 3)))
    rot, trans = relative_pose_errors(gt, gt)
    np.testing.assert_allclose(rot, FLOOR_DEG, atol=1e-9)  # ≈ 0.405 deg, by the extrapolation
    assert trans.max() < 1e-5
    # a different world frame and scale for the prediction changes nothing
    S = se3_from_rt(Rotation.random(random_state=2).as_matrix(), [3.0, -1.0, 2.0])
    pred = S @ gt
    pred[:, :3, 3] *= 7.5
    rot2, trans2 = relative_pose_errors(pred, gt)
    np.testing.assert_allclose(rot2, FLOOR_DEG, atol=1e-6)
    assert trans2.max() < 1e-4
    m = pose_metrics(pred, gt)
    assert all(m[k] == 1.0 for k in KEYS if k != "mAA@30")
    assert m["mAA@30"] == pytest.approx(1.0)


def test_known_rotation_and_translation_errors() -> None:
    gt = np.stack([np.eye(4)] * 3)
    gt[1, :3, 3] = [1.0, 0.0, 0.0]
    gt[2, :3, 3] = [0.0, 0.0, 1.0]
    pred = gt.copy()
    pred[2, :3, :3] = Rotation.from_euler("y", 10.0, degrees=True).as_matrix()  # camera 2 turned 10°
    pred[1, :3, 3] = [-2.0, 0.0, 0.0]  # opposite direction: the translation error is sign-agnostic
    rot, trans = relative_pose_errors(pred, gt)
    np.testing.assert_allclose(rot, [FLOOR_DEG, 10.0, 10.0], atol=1e-9)
    # pair (0, 1): same line, 0°; pair (0, 2): same direction, 0°;
    # pair (1, 2): gt direction (-1, 0, 1)/√2 vs pred (2, 0, 1)/√5 (rotation of 2 does not enter t)
    expected_12 = math.degrees(math.acos(abs(-2 + 1) / math.sqrt(2 * 5)))
    np.testing.assert_allclose(trans, [0.0, 0.0, expected_12], atol=1e-5)


def test_non_finite_errors_become_1e6() -> None:
    gt = np.stack([np.eye(4)] * 2)
    gt[1, 0, 3] = 1.0
    pred = gt.copy()
    pred[1, 0, 3] = np.nan
    _, trans = relative_pose_errors(pred, gt)
    assert trans[0] == 1e6
    m = pose_metrics(pred, gt)
    assert m["RTA@30"] == 0.0 and m["mAA@30"] == 0.0


def test_maa_histogram() -> None:
    # m = max(rot, trans) per pair; 31 bins over [0, 30]; > 30 dropped
    rot = np.array([0.5, 10.0, 29.9, 31.0])
    trans = np.array([0.1, 12.0, 1.0, 0.0])
    edges = np.linspace(0, 30, 32)
    expected = np.mean([np.mean([m <= e for m in (0.5, 12.0, 29.9)]) * 3 / 4 for e in edges[1:]])
    assert mean_average_accuracy(rot, trans) == pytest.approx(expected)


def test_relative_errors_bad_input() -> None:
    with pytest.raises(InputError):
        relative_pose_errors(np.eye(4)[None], np.eye(4)[None])
    with pytest.raises(InputError):
        relative_pose_errors(np.stack([np.eye(4)] * 3), np.stack([np.eye(4)] * 2))


# ------------------------------------------------------------------------------ accuracy / completion


def test_accuracy_completion_known_distances() -> None:
    g = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0), [0.0], indexing="ij"), -1).reshape(-1, 3)
    out = accuracy_completion(g + np.array([0.0, 0.0, 0.1]), g)
    for k in ("acc_mean", "acc_median", "comp_mean", "comp_median"):
        assert out[k] == pytest.approx(0.1)
    # half of the GT predicted exactly: accuracy 0; the missing GT points are 5 grid units away on
    # average (rows 5..9 to row 4: 1..5)
    half = g[g[:, 0] < 5]
    out = accuracy_completion(half, g)
    assert out["acc_mean"] == 0.0
    assert out["comp_mean"] == pytest.approx(np.mean([0] * 50 + [1, 2, 3, 4, 5] * 10))
    assert out["comp_median"] == pytest.approx(0.5)
    assert "nc1_mean" not in out


def test_normal_consistency() -> None:
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(200, 3))
    n = rng.normal(size=(200, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    out = accuracy_completion(pts, pts, -n, n)  # flipped normals count as consistent
    assert out["nc1_mean"] == pytest.approx(1.0) and out["nc2_median"] == pytest.approx(1.0)
    perp = np.cross(n, rng.normal(size=(200, 3)))
    perp /= np.linalg.norm(perp, axis=1, keepdims=True)
    out = accuracy_completion(pts, pts, perp, n)
    assert out["nc_mean"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError):
        accuracy_completion(pts, pts, n, None)
    with pytest.raises(InputError):
        accuracy_completion(np.zeros((0, 3)), pts)
