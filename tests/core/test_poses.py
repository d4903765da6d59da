"""Tests of fast3r_core.poses: parity with the published implementation, accuracy, robustness."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from fast3r_core.errors import Cancelled, InputError
from fast3r_core.poses import (
    align_local_to_global,
    estimate_focal,
    estimate_poses,
    estimate_poses_detailed,
    estimate_view_focal,
    intrinsics_for_views,
)
from fast3r_core.progress import ProgressEvent

from .pose_scenes import chordal_deg, synthetic_scene

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "parity" / "poses" / "case.npz"


@pytest.fixture(scope="module")
def case() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as z:
        return {k: z[k] for k in z.files}


def assert_poses_close(c2w: np.ndarray, ref: np.ndarray, rot_deg: float, trans: float) -> None:
    for i in range(len(ref)):
        assert chordal_deg(c2w[i, :3, :3], ref[i, :3, :3]) <= rot_deg, i
        assert np.abs(c2w[i, :3, 3] - ref[i, :3, 3]).max() <= trans, i
        np.testing.assert_array_equal(c2w[i, 3], [0.0, 0.0, 0.0, 1.0])


# --------------------------------------------------------------------------------------------- parity


def test_focal_reproduces_fixture(case: dict[str, np.ndarray]) -> None:
    f = estimate_focal(case["pts3d_global"][0], case["conf"][0])
    assert f == pytest.approx(float(case["ref_focal"]), rel=1e-4)


@pytest.mark.parametrize("ransac_points", [4096, 300])  # whole set (OpenCV path) and the subsample path
def test_poses_reproduce_fixture(case: dict[str, np.ndarray], ransac_points: int) -> None:
    c2w, focal = estimate_poses(case["pts3d_global"], case["conf"], ransac_points=ransac_points)
    assert isinstance(focal, float)
    assert focal == pytest.approx(float(case["ref_focal"]), rel=1e-4)
    assert c2w.shape == (4, 4, 4) and c2w.dtype == np.float64
    assert_poses_close(c2w, case["ref_c2w"], rot_deg=0.05, trans=1e-3)


def test_alignment_reproduces_fixture(case: dict[str, np.ndarray]) -> None:
    out = align_local_to_global(case["pts3d_local"], case["pts3d_global"], case["conf"], 85)
    ref = case["ref_local_aligned_to_global"]
    assert isinstance(out, np.ndarray) and out.shape == ref.shape and out.dtype == np.float32
    assert np.all(np.abs(out - ref) <= 1e-4 * (1.0 + np.abs(ref)))
    # the reference is not simply the global pointmap (the test would be vacuous otherwise)
    assert np.abs(ref - case["pts3d_global"]).max() > 1e-3


# ------------------------------------------------------------------------------------ accuracy, speed


def test_poses_accurate_on_noisy_scene_with_outliers() -> None:
    glob, conf, gt, _ = synthetic_scene([110.0] * 4)
    est = estimate_poses_detailed(glob, conf, ransac_points=2000)  # 12288 points: subsample path
    assert est.ok.all() and est.failed_views == []
    assert est.focal == pytest.approx(110.0, rel=5e-3)
    assert_poses_close(est.c2w, gt, rot_deg=0.1, trans=5e-3)
    assert np.all(est.n_inliers > 0.9 * est.n_points)  # the 5 % outliers are rejected, the rest kept
    assert np.all(est.n_inliers < 0.97 * est.n_points)
    assert np.all(est.reproj_rmse < 1.5)
    np.testing.assert_allclose(est.intrinsics[:, 0, 0], est.focal)
    np.testing.assert_allclose(est.intrinsics[:, :2, 2], [[64.0, 48.0]] * 4)


def test_deterministic() -> None:
    glob, conf, _, _ = synthetic_scene([110.0] * 3, outliers=0.3, seed=3)
    a = estimate_poses(glob, conf, ransac_points=500)
    b = estimate_poses(glob, conf, ransac_points=500, max_workers=1)
    c = estimate_poses(glob, conf, ransac_points=500, max_workers=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0], c[0])
    assert a[1] == b[1] == c[1]


def test_per_view_focal_recovers_known_focals() -> None:
    focals = [80.0, 110.0, 150.0, 210.0]
    glob, conf, gt, loc = synthetic_scene(focals, seed=1)
    c2w, f = estimate_poses(glob, conf, per_view_focal=True)
    assert isinstance(f, np.ndarray) and f.shape == (4,)
    np.testing.assert_allclose(f, focals, rtol=0.01)
    assert_poses_close(c2w, gt, rot_deg=0.3, trans=0.02)
    # initialised from the local pointmaps instead of the scan: same answer
    c2w_l, f_l = estimate_poses(glob, conf, per_view_focal=True, pts3d_local=loc, conf_local=conf)
    np.testing.assert_allclose(f_l, focals, rtol=0.01)
    assert_poses_close(c2w_l, gt, rot_deg=0.3, trans=0.02)
    # a single view, directly
    assert estimate_view_focal(glob[3], conf[3]) == pytest.approx(210.0, rel=0.01)


def test_shared_focal_is_wrong_for_mixed_cameras() -> None:
    """Guards the test above: with view 0's focal for all views, views 2-3 are visibly worse."""
    glob, conf, _, _ = synthetic_scene([80.0, 110.0, 150.0, 210.0], seed=1)
    est = estimate_poses_detailed(glob, conf)
    assert est.reproj_rmse[3] > 3 * estimate_poses_detailed(glob, conf, per_view_focal=True).reproj_rmse[3]


def test_given_focals_and_mixed_sizes() -> None:
    g1, c1, gt1, _ = synthetic_scene([100.0, 100.0], H=48, W=64, seed=4)
    g2, c2, gt2, _ = synthetic_scene([100.0, 100.0], H=64, W=48, seed=5)
    views = [g1[0], g1[1], g2[1]]
    confs = [c1[0], c1[1], c2[1]]
    c2w, f = estimate_poses(views, confs, 100.0)
    assert c2w.shape == (3, 4, 4) and f == 100.0
    # small, narrow views (35 degrees, 3072 points, noise and outliers): loose bounds
    assert_poses_close(c2w[:2], gt1, rot_deg=0.5, trans=0.03)
    assert_poses_close(c2w[2:], gt2[1:], rot_deg=0.5, trans=0.03)
    # the portrait view is solved with its own principal point: as when solved in its own batch
    np.testing.assert_array_equal(c2w[2], estimate_poses(g2, c2, 100.0)[0][1])
    c2w_pv, f_pv = estimate_poses(views, confs, [100.0, 100.0, 100.0])
    assert isinstance(f_pv, np.ndarray) and f_pv.tolist() == [100.0] * 3
    np.testing.assert_array_equal(c2w_pv, c2w)
    est = estimate_poses_detailed(views, confs, 100.0)
    np.testing.assert_allclose(est.intrinsics[2, :2, 2], [24.0, 32.0])  # (W/2, H/2) of the 64x48 view
    np.testing.assert_allclose(intrinsics_for_views(100.0, [(48, 64), (64, 48)])[1, :2, 2], [24.0, 32.0])


# --------------------------------------------------------------------------- known intrinsics, masks


def pose_errors(c2w: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Mean rotation error (degrees) and mean camera-centre error over the views."""
    rot = np.mean([chordal_deg(a[:3, :3], b[:3, :3]) for a, b in zip(c2w, gt, strict=True)])
    return float(rot), float(np.linalg.norm(c2w[:, :3, 3] - gt[:, :3, 3], axis=1).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_true_intrinsics_at_least_as_accurate_as_the_estimate(seed: int) -> None:
    focals = [105.0] * 5
    glob, conf, gt, _ = synthetic_scene(focals, noise=0.01, seed=seed)
    true_k = list(intrinsics_for_views(focals, [(96, 128)] * 5))
    known = estimate_poses_detailed(glob, conf, known_intrinsics=true_k)
    guess = estimate_poses_detailed(glob, conf)
    assert known.intrinsics_known.all() and not guess.intrinsics_known.any()
    np.testing.assert_array_equal(known.intrinsics, true_k)
    assert isinstance(known.focal, np.ndarray) and known.focals.tolist() == focals
    rot_k, pos_k = pose_errors(known.c2w, gt)
    rot_g, pos_g = pose_errors(guess.c2w, gt)
    assert rot_k <= rot_g * 1.05 + 1e-4 and pos_k <= pos_g * 1.05 + 1e-5


def test_known_intrinsics_per_camera_beat_a_shared_estimate() -> None:
    focals = [80.0, 110.0, 150.0, 210.0]
    glob, conf, gt, _ = synthetic_scene(focals, seed=1)
    ks = intrinsics_for_views(focals, [(96, 128)] * 4)
    known = estimate_poses_detailed(glob, conf, known_intrinsics=list(ks))
    assert_poses_close(known.c2w, gt, rot_deg=0.1, trans=5e-3)
    assert pose_errors(known.c2w, gt)[0] < 0.2 * pose_errors(estimate_poses_detailed(glob, conf).c2w, gt)[0]
    # a principal point off the centre is used as given (not replaced by (W/2, H/2))
    off = ks.copy()
    off[:, 0, 2] += 6.0
    shifted = estimate_poses_detailed(glob, conf, known_intrinsics=list(off))
    np.testing.assert_array_equal(shifted.intrinsics, off)
    assert shifted.reproj_rmse.mean() > known.reproj_rmse.mean()


def test_mixed_known_and_estimated_views() -> None:
    focals = [80.0, 110.0, 150.0, 210.0]
    glob, conf, gt, _ = synthetic_scene(focals, seed=1)
    ks = intrinsics_for_views(focals, [(96, 128)] * 4)
    # view 0 known: the others get their own focal (view 0's pointmap says nothing about them)
    est = estimate_poses_detailed(glob, conf, known_intrinsics=[ks[0], None, None, ks[3]])
    assert est.intrinsics_known.tolist() == [True, False, False, True]
    np.testing.assert_allclose(est.focals, focals, rtol=0.01)
    assert_poses_close(est.c2w, gt, rot_deg=0.3, trans=0.02)
    # view 0 estimated: today's path (view 0's focal shared by the unknown views)
    same = [80.0] * 3 + [210.0]
    glob2, conf2, gt2, _ = synthetic_scene(same, seed=2)
    ks2 = intrinsics_for_views(same, [(96, 128)] * 4)
    est2 = estimate_poses_detailed(glob2, conf2, known_intrinsics=[None, None, None, ks2[3]])
    assert est2.focals[0] == est2.focals[1] == est2.focals[2] == pytest.approx(80.0, rel=0.01)
    assert est2.focals[3] == 210.0 and est2.intrinsics_known.tolist() == [False, False, False, True]
    assert_poses_close(est2.c2w, gt2, rot_deg=0.3, trans=0.02)


def test_masked_pixels_leave_pnp() -> None:
    glob, conf, gt, _ = synthetic_scene([100.0] * 3, seed=3, outliers=0.0)
    # a confident but wrong region (a moving object): the mask removes it from the correspondences
    bad = np.zeros(conf.shape, dtype=bool)
    bad[1:, :, :70] = True
    glob[bad] += np.array([0.5, 0.2, -0.3], dtype=np.float32)
    conf[bad] = 50.0
    keep = ~bad
    plain = estimate_poses_detailed(glob, conf, 100.0)
    masked = estimate_poses_detailed(glob, conf, 100.0, masks=keep)
    assert masked.n_points.tolist() == keep.reshape(3, -1).sum(1).tolist()
    assert_poses_close(masked.c2w, gt, rot_deg=0.1, trans=5e-3)
    # unmasked, the larger (shifted) region wins RANSAC: the cameras move with it
    assert pose_errors(plain.c2w, gt)[1] > 10 * pose_errors(masked.c2w, gt)[1]
    # list form with None (no mask) for a view; the focal estimate respects the mask too
    listed = estimate_poses_detailed(glob, conf, masks=[None, keep[1], keep[2]])
    assert listed.n_points[0] == 96 * 128
    f_masked = estimate_focal(glob[0], conf[0], np.ones((96, 128), dtype=bool))
    assert f_masked == estimate_focal(glob[0], conf[0])


def test_known_intrinsics_and_mask_errors(case: dict[str, np.ndarray]) -> None:
    glob, conf = case["pts3d_global"], case["conf"]
    V, H, W = conf.shape
    with pytest.raises(InputError, match="masks"):
        estimate_poses_detailed(glob, conf, masks=[np.ones((H, W), bool)] * (V - 1))
    with pytest.raises(InputError, match=r"masks\[0\]"):
        estimate_poses_detailed(glob, conf, masks=np.ones((V, H, W - 1), bool))
    with pytest.raises(InputError, match=r"masks\[0\]"):
        estimate_poses_detailed(glob, conf, masks=np.ones((V, H, W), np.uint8))
    with pytest.raises(InputError, match="known_intrinsics"):
        estimate_poses_detailed(glob, conf, known_intrinsics=[None])
    with pytest.raises(InputError, match="pinhole"):
        estimate_poses_detailed(glob, conf, known_intrinsics=[np.zeros((3, 3))] + [None] * (V - 1))
    with pytest.raises(InputError, match="no pixel"):
        estimate_focal(glob[0], conf[0], np.zeros((H, W), bool))


def test_estimate_poses_is_the_detailed_estimate() -> None:
    glob, conf, _, _ = synthetic_scene([100.0] * 3, seed=3)
    c2w, f = estimate_poses(glob, conf, niter=50, ransac_points=500)
    est = estimate_poses_detailed(glob, conf, niter=50, ransac_points=500)
    np.testing.assert_array_equal(c2w, est.c2w)
    assert f == est.focal and isinstance(f, float)
    assert estimate_poses.__name__ == "estimate_poses" and "c2w" in (estimate_poses.__doc__ or "")


# -------------------------------------------------------------------------------------- failure paths


def test_too_few_points_gives_identity_and_is_reported(
    case: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    conf = case["conf"].copy()
    conf[2] = 1.0  # no pixel above the PnP threshold
    conf[3, :, :] = 0.5
    conf[3, 0, :3] = 5.0  # three confident pixels: not enough
    with caplog.at_level(logging.WARNING, logger="fast3r_core.poses"):
        est = estimate_poses_detailed(case["pts3d_global"], conf)
    assert est.failed_views == [2, 3]
    assert est.ok.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(est.c2w[2], np.eye(4))
    np.testing.assert_array_equal(est.c2w[3], np.eye(4))
    assert est.n_points.tolist()[2:] == [0, 3]
    assert "view 2" in caplog.text and "view 3" in caplog.text
    assert len(est.messages) == 2
    assert_poses_close(est.c2w[:2], case["ref_c2w"][:2], rot_deg=0.05, trans=1e-3)


def test_garbage_view_is_flagged_and_unusable_view0_falls_back(case: dict[str, np.ndarray]) -> None:
    pts = case["pts3d_global"].copy()
    pts[1] = np.random.default_rng(0).normal(size=pts[1].shape)  # points unrelated to the pixels
    est = estimate_poses_detailed(pts, case["conf"])
    assert est.ok.all()  # a pose is returned, as the published code would ...
    assert est.n_inliers[1] < 0.25 * est.n_points[1]  # ... but it fits few points
    assert len(est.messages) == 1 and "view 1" in est.messages[0] and "unreliable" in est.messages[0]
    assert_poses_close(est.c2w[[0, 2, 3]], case["ref_c2w"][[0, 2, 3]], rot_deg=0.05, trans=1e-3)
    # view 0 without a single usable point: no focal from it, the fallback max(H, W) is used
    pts[0] = 0.0
    est = estimate_poses_detailed(pts, case["conf"])
    assert est.focal == 64.0 and est.failed_views == [0]


def test_non_finite_points_are_ignored(case: dict[str, np.ndarray]) -> None:
    pts = case["pts3d_global"].copy()
    pts[1, :10] = np.nan
    pts[1, 10:12] = np.inf
    est = estimate_poses_detailed(pts, case["conf"])
    assert est.ok.all() and est.n_points[1] == 48 * 64 - 12 * 64
    assert_poses_close(est.c2w, case["ref_c2w"], rot_deg=0.05, trans=1e-3)


def test_focal_errors() -> None:
    pts = np.zeros((4, 5, 3), np.float32)  # every Z = 0
    with pytest.raises(InputError):
        estimate_focal(pts, np.ones((4, 5)))
    with pytest.raises(InputError):
        estimate_focal(np.zeros((4, 5, 3)), np.ones((5, 4)))


def test_bad_arguments(case: dict[str, np.ndarray]) -> None:
    with pytest.raises(InputError):
        estimate_poses(case["pts3d_global"], case["conf"][:3])
    with pytest.raises(InputError):
        estimate_poses(case["pts3d_global"], case["conf"], focal=[50.0, 60.0])
    with pytest.raises(InputError):
        estimate_poses(case["pts3d_global"], case["conf"], focal=-1.0)
    with pytest.raises(InputError):
        estimate_poses([], [])


def test_cancel_and_progress(case: dict[str, np.ndarray]) -> None:
    events: list[ProgressEvent] = []
    estimate_poses(case["pts3d_global"], case["conf"], progress=events.append)
    assert [e.done for e in events] == [0, 1, 2, 3, 4] and all(e.stage == "poses" for e in events)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        estimate_poses(case["pts3d_global"], case["conf"], cancel=cancel)


# ------------------------------------------------------------------------------------------ alignment


def test_alignment_exact_and_list_input() -> None:
    glob, conf, _, loc = synthetic_scene([110.0] * 2, H=24, W=32, noise=0.0, outliers=0.0, seed=6)
    aligned = align_local_to_global(list(loc), list(glob), list(conf))
    assert isinstance(aligned, list) and len(aligned) == 2
    for a, g in zip(aligned, glob, strict=True):
        np.testing.assert_allclose(a, g, atol=1e-5)


def test_alignment_fallbacks(case: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture) -> None:
    loc = case["pts3d_local"][:1].copy()
    glob = case["pts3d_global"][:1]
    # constant confidence: the 85th-percentile mask keeps every pixel (conf >= tau)
    out = align_local_to_global(loc, glob, np.ones_like(case["conf"][:1]))
    assert np.abs(out - glob).max() < 0.05
    # fewer than 3 finite points: identity, with a warning
    loc[0, :, :] = np.nan
    loc[0, 0, :2] = 1.0
    with caplog.at_level(logging.WARNING, logger="fast3r_core.poses"):
        out = align_local_to_global(loc, glob, case["conf"][:1])
    np.testing.assert_array_equal(out, loc)
    assert "identity" in caplog.text
    with pytest.raises(InputError):
        align_local_to_global(loc, glob, case["conf"][:1], percentile=120)
