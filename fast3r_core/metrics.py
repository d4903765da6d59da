"""Evaluation metrics as the Fast3R paper reports them (spec section 9).

* Camera poses (9.1): pairwise relative rotation/translation angle errors, RRA@τ, RTA@τ and mAA(30).
  Relative poses make the metric independent of the world frame and (for translations) of the scale.
* Reconstruction (9.2): accuracy / completion (nearest-neighbour distances both ways) and, when normals
  are given, normal consistency.

Poses are camera-to-world 4x4 matrices (any camera-axis convention, as long as prediction and ground
truth use the same one). Everything is float64 numpy; no torch.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from .errors import InputError
from .geometry import Float64Array, se3_inverse

__all__ = [
    "POSE_THRESHOLDS_DEG",
    "accuracy_completion",
    "mean_average_accuracy",
    "pair_indices",
    "pose_metrics",
    "relative_pose_errors",
]

log = logging.getLogger(__name__)


#: Thresholds (degrees) of RRA@τ / RTA@τ.
POSE_THRESHOLDS_DEG: tuple[int, ...] = (5, 15, 30)

_COS_BOUND = 1e-4  # arccos is extrapolated linearly outside ±(1 - 1e-4), where its slope blows up
_TRANS_EPS = 1e-15
_BAD_ERROR_DEG = 1e6  # what a NaN/inf error becomes, so that it counts as a failure, not a crash


def pair_indices(n: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """All pairs ``i < j`` of ``n`` items in ``torch.combinations`` order: (0,1), (0,2), …, (1,2), ….

    Returns two index arrays of shape ``(n (n - 1) / 2,)``.
    """
    i, j = np.triu_indices(n, k=1)  # row-major upper triangle = lexicographic order
    return i, j


def _acos_linear_extrapolation(x: Float64Array, bound: float = 1.0 - _COS_BOUND) -> Float64Array:
    """``arccos(x)`` inside ``[-bound, bound]``; outside, the tangent line of arccos at the bound.

    The tangent keeps a finite slope ``-1 / sqrt(1 - bound^2)`` where arccos's slope is infinite, so a
    trace slightly above 3 from rounding gives a tiny (possibly negative) angle instead of NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    slope = -1.0 / np.sqrt(1.0 - bound * bound)
    inside = np.arccos(np.clip(x, -bound, bound))
    above = np.arccos(bound) + slope * (x - bound)
    below = np.arccos(-bound) + slope * (x + bound)
    return np.where(x > bound, above, np.where(x < -bound, below, inside))


def relative_pose_errors(pred_c2w: ArrayLike, gt_c2w: ArrayLike) -> tuple[Float64Array, Float64Array]:
    """Rotation and translation angle errors of all relative poses, in degrees (spec 9.1).

    For every pair ``i < j`` (``torch.combinations`` order) the relative pose is ``Q = T_i^-1 T_j``
    for prediction and ground truth. The rotation error is the angle of ``R_gt R_pred^T``; the
    translation error is the sign-agnostic angle between the directions of the relative translations
    ``arccos(|t̂_gt · t̂_pred|)`` (scale-free). Non-finite errors become 1e6 degrees.

    As in PyTorch3D (and so in the paper's numbers), arccos is replaced by its tangent line outside
    ``±(1 - 1e-4)``: rotation errors below ~0.81 degrees are not exact, and identical rotations report
    ~0.405 degrees, not 0.

    Parameters
    ----------
    pred_c2w, gt_c2w : array_like, shape (V, 4, 4)
        Cam-to-world matrices of the same V views (same camera-axis convention for both).

    Returns
    -------
    rot_deg, trans_deg : ndarray, shape (V (V - 1) / 2,), float64
    """
    pred = np.asarray(pred_c2w, dtype=np.float64)
    gt = np.asarray(gt_c2w, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[1:] != (4, 4):
        raise InputError(f"need two (V, 4, 4) pose arrays of the same shape, got {pred.shape} and {gt.shape}")
    if len(pred) < 2:
        raise InputError("relative pose errors need at least two views")
    i, j = pair_indices(len(pred))
    rel_pred = se3_inverse(pred[i]) @ pred[j]
    rel_gt = se3_inverse(gt[i]) @ gt[j]

    R_err = rel_gt[:, :3, :3] @ np.swapaxes(rel_pred[:, :3, :3], -1, -2)
    cos_r = (np.trace(R_err, axis1=-2, axis2=-1) - 1.0) / 2.0
    rot_deg = np.degrees(_acos_linear_extrapolation(cos_r))

    def unit(t: Float64Array) -> Float64Array:
        return t / (np.linalg.norm(t, axis=-1, keepdims=True) + _TRANS_EPS)

    with np.errstate(invalid="ignore"):
        c = np.einsum("ij,ij->i", unit(rel_gt[:, :3, 3]), unit(rel_pred[:, :3, 3]))
        sin2 = np.maximum(1.0 - c * c, _TRANS_EPS)
        trans_deg = np.degrees(np.arccos(np.sqrt(1.0 - sin2)))
    rot_deg = np.where(np.isfinite(rot_deg), rot_deg, _BAD_ERROR_DEG)
    trans_deg = np.where(np.isfinite(trans_deg), trans_deg, _BAD_ERROR_DEG)
    return rot_deg, trans_deg


def mean_average_accuracy(rot_deg: ArrayLike, trans_deg: ArrayLike, max_threshold: int = 30) -> float:
    """mAA(max_threshold) as the Fast3R/Co3D evaluation computes it (the 31-bin variant for 30).

    Per pair ``m = max(rot_err, trans_err)``; histogram with ``max_threshold + 1`` equal bins over
    ``[0, max_threshold]`` (larger values are dropped), divided by the number of pairs, cumulative
    sum, mean over the bins.
    """
    m = np.maximum(np.asarray(rot_deg, dtype=np.float64), np.asarray(trans_deg, dtype=np.float64))
    if m.size == 0:
        raise InputError("mAA needs at least one pair")
    hist, _ = np.histogram(m, bins=max_threshold + 1, range=(0.0, float(max_threshold)))
    return float(np.mean(np.cumsum(hist / m.size)))


def pose_metrics(pred_c2w: ArrayLike, gt_c2w: ArrayLike) -> dict[str, float]:
    """RRA@τ, RTA@τ (τ = 5, 15, 30 degrees) and mAA@30 of predicted cam-to-world poses (spec 9.1).

    Parameters
    ----------
    pred_c2w, gt_c2w : array_like, shape (V, 4, 4)
        Cam-to-world matrices; any world frame and scale (only relative poses are compared).

    Returns
    -------
    dict
        Keys ``"RRA@5"``, ``"RTA@5"``, ``"RRA@15"``, ``"RTA@15"``, ``"RRA@30"``, ``"RTA@30"``,
        ``"mAA@30"``; fractions in [0, 1]. RRA/RTA count pairs with error strictly below τ.
    """
    rot, trans = relative_pose_errors(pred_c2w, gt_c2w)
    out: dict[str, float] = {}
    for tau in POSE_THRESHOLDS_DEG:
        out[f"RRA@{tau}"] = float(np.mean(rot < tau))
        out[f"RTA@{tau}"] = float(np.mean(trans < tau))
    out["mAA@30"] = mean_average_accuracy(rot, trans, 30)
    return out


def _points(a: ArrayLike, name: str) -> Float64Array:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or len(arr) == 0:
        raise InputError(f"{name} must be a non-empty (N, 3) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains non-finite values")
    return arr


def accuracy_completion(
    pred_pts: ArrayLike,
    gt_pts: ArrayLike,
    pred_normals: ArrayLike | None = None,
    gt_normals: ArrayLike | None = None,
    *,
    workers: int = 1,
) -> dict[str, float]:
    """Accuracy, completion and (optionally) normal consistency of a point cloud (spec 9.2).

    The prediction must already be in the ground truth's frame and units (align it first, e.g. with
    :func:`fast3r_core.geometry.umeyama_similarity`).

    Parameters
    ----------
    pred_pts : array_like, shape (N, 3)
    gt_pts : array_like, shape (M, 3)
    pred_normals, gt_normals : array_like, shapes (N, 3) and (M, 3), optional
        Unit normals; both or neither. Their sign does not matter (absolute dot products).
    workers : int
        Threads for the KD-tree queries (-1 = all cores).

    Returns
    -------
    dict
        ``acc_mean``, ``acc_median``: distance of each predicted point to its nearest GT point;
        ``comp_mean``, ``comp_median``: distance of each GT point to its nearest predicted point
        (GT units). With normals also ``nc1_mean``, ``nc1_median`` (|n_gt · n_pred| at each predicted
        point's nearest GT point), ``nc2_mean``, ``nc2_median`` (at each GT point's nearest predicted
        point) and ``nc_mean`` = (nc1_mean + nc2_mean) / 2.
    """
    pred = _points(pred_pts, "pred_pts")
    gt = _points(gt_pts, "gt_pts")
    if (pred_normals is None) != (gt_normals is None):
        raise InputError("give both pred_normals and gt_normals, or neither")
    d_acc, idx_acc = cKDTree(gt).query(pred, k=1, workers=workers)
    d_comp, idx_comp = cKDTree(pred).query(gt, k=1, workers=workers)
    out = {
        "acc_mean": float(np.mean(d_acc)),
        "acc_median": float(np.median(d_acc)),
        "comp_mean": float(np.mean(d_comp)),
        "comp_median": float(np.median(d_comp)),
    }
    if pred_normals is not None and gt_normals is not None:
        n_pred = np.asarray(pred_normals, dtype=np.float64)
        n_gt = np.asarray(gt_normals, dtype=np.float64)
        if n_pred.shape != pred.shape or n_gt.shape != gt.shape:
            raise InputError("normals must have the shapes of their point arrays")
        nc1 = np.abs(np.einsum("ij,ij->i", n_gt[idx_acc], n_pred))
        nc2 = np.abs(np.einsum("ij,ij->i", n_gt, n_pred[idx_comp]))
        out.update(
            nc1_mean=float(np.mean(nc1)),
            nc1_median=float(np.median(nc1)),
            nc2_mean=float(np.mean(nc2)),
            nc2_median=float(np.median(nc2)),
            nc_mean=float((np.mean(nc1) + np.mean(nc2)) / 2.0),
        )
    return out
