"""Camera poses and focal lengths from Fast3R pointmaps; local -> global pointmap alignment (spec 7).

Fast3R predicts, for every view, a *global* pointmap (each pixel's 3-D point in the common frame, which
training anchors to the camera of view 0) and a *local* pointmap (each pixel's point in the view's own
camera frame, up to scale). This module turns them into

* a focal length (:func:`estimate_focal`, Weiszfeld on view 0's global pointmap, spec 7.2),
* a camera-to-world pose per view (:func:`estimate_poses`: PnP-RANSAC between the pixel grid and the
  view's global points, spec 7.2, made fast: see below),
* optionally one focal per view (images from different cameras, ``per_view_focal=True``),
* or, for views whose intrinsics are known (``known_intrinsics``, from a file or EXIF via
  :mod:`fast3r_core.intrinsics`), PnP with that K and no focal search; ``PoseEstimate.intrinsics_known``
  marks them. Optional per-view pixel masks (``masks``) keep pixels out of PnP and the focal estimate,
* local pointmaps moved into the global frame (:func:`align_local_to_global`, spec 7.1).

Conventions: OpenCV camera axes (x right, y down, z forward); poses are cam-to-world (``c2w``), world =
the global pointmap frame (≈ camera of view 0); pixel coordinates are integer indices ``u = column``,
``v = row`` of the *model input* image, principal point ``(W/2, H/2)`` as in the published code for
estimated focals (known intrinsics keep their own principal point).
Intrinsics are at model resolution; :func:`fast3r_core.geometry.intrinsics_model_to_original` moves
them to original-image pixels.

Speed. The published code takes ~4.5 s for 8 views of 512x384 on the reference machine and ~337 s
with per-view focals; here (bench/poses.py, synthetic views of that size) 0.16-0.27 s and 0.55-0.77 s
of process CPU time respectively, depending on the load of the machine:

* RANSAC runs on a regular subsample of at most ``ransac_points`` correspondences instead of all
  ~200 000 (OpenCV scores every hypothesis on every point). The inliers are then recomputed on *all*
  points with the pose RANSAC returned (already refined by SQPnP on the subsample's inliers) and the
  pose is re-solved with SQPnP on all of them — the final step OpenCV's ``solvePnPRansac`` also takes.
  On clean data (the parity fixture) the two agree to 1e-5 degrees. On noisy data ours is *more*
  accurate than full-set OpenCV RANSAC, whose inlier set is chosen around a 5-point minimal-sample
  pose: measured 0.007 vs 0.16 degrees worst rotation error against the ground truth.
* Views run in a thread pool (OpenCV and numpy release the GIL). Hot loops avoid BLAS calls and
  large temporaries: on this 2-core machine OpenBLAS threads contending with OpenCV's, and page
  faults of fresh allocations in worker threads, each cost more than the arithmetic.
* Per-view focal: instead of PnP-RANSAC at 100 focals per view, a coarse scan of 32 focals on ≤ 1024
  points and a robust joint refinement of (pose, focal); see :func:`estimate_view_focal`.

No torch here: inputs are numpy arrays (convert tensors with ``.numpy()`` first).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from threading import Event
from typing import ParamSpec, overload

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InputError
from .geometry import Float64Array, intrinsics_matrix, se3_from_rt, se3_inverse, umeyama_similarity
from .progress import ProgressCallback, check_cancel, report
from .result import LOW_POSE_INLIER_SHARE

__all__ = [
    "PixelMasks",
    "PoseEstimate",
    "align_local_to_global",
    "estimate_focal",
    "estimate_poses",
    "estimate_poses_detailed",
    "estimate_view_focal",
    "intrinsics_for_views",
]

PointArray = NDArray[np.floating]
PointmapInput = NDArray[np.floating] | Sequence[NDArray[np.floating]]
#: Per-view boolean masks, True = the pixel may be used: a (V, H, W) array or a list with None entries.
PixelMasks = NDArray[np.bool_] | Sequence[NDArray[np.bool_] | None]
_P = ParamSpec("_P")

log = logging.getLogger(__name__)

#: Global-head confidence above which a pixel takes part in PnP (spec 7.2; the head outputs 1 + exp(.)).
PNP_MIN_CONF = 1.0
#: Quantile of view 0's confidence below which pixels are left out of the focal estimate (spec 7.2).
FOCAL_CONF_QUANTILE = 0.10
#: Weiszfeld/IRLS iterations of the focal estimate (spec 7.2).
FOCAL_ITERATIONS = 100
DEFAULT_SEED = 0
#: A pose that fits fewer than this fraction of a view's points is kept but reported as unreliable.
LOW_INLIER_FRACTION = LOW_POSE_INLIER_SHARE

_FOCAL_SCAN_POINTS = 1024  # correspondences used to scan focals: plenty to rank 32 candidates
_FOCAL_REFINE_POINTS = 4096  # correspondences of the joint (pose, focal) refinement
_FOCAL_SCAN_STEPS = 32  # geometric grid over [S/2, 3S], ~6 % apart
_FOCAL_SCAN_RANSAC_ITERS = 20
_CAUCHY_IRLS_ROUNDS = 5


# --------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PoseEstimate:
    """Everything :func:`estimate_poses_detailed` found out.

    Attributes
    ----------
    c2w : ndarray, shape (V, 4, 4), float64
        Cam-to-world per view, OpenCV axes, world = global pointmap frame. Identity for failed views.
    focal : float or ndarray of shape (V,)
        The shared focal in pixels (a float), or one per view (an array) when per-view focals were
        estimated or given.
    focals : ndarray, shape (V,), float64
        Focal of each view (the shared one repeated), pixels of the model input; ``(fx + fy) / 2`` of
        a view with known intrinsics. A view whose own focal could not be estimated gets the median of
        the others (or ``max(H, W)``).
    intrinsics : ndarray, shape (V, 3, 3), float64
        Model-resolution intrinsics per view: ``[[f, 0, W/2], [0, f, H/2], [0, 0, 1]]`` for estimated
        focals, the given matrix for views with known intrinsics.
    intrinsics_known : ndarray, shape (V,), bool
        True for the views whose intrinsics were given (``known_intrinsics``), False for estimated ones.
    ok : ndarray, shape (V,), bool
        False where PnP failed (fewer than 4 confident points, or no solution).
    n_points : ndarray, shape (V,), int64
        Correspondences that passed the confidence mask (and the pixel mask, when given).
    n_inliers : ndarray, shape (V,), int64
        Correspondences within ``reproj_px`` of the final pose.
    reproj_rmse : ndarray, shape (V,), float64
        RMS reprojection error of the inliers in pixels (NaN for failed views).
    messages : tuple of str
        One human-readable line per failed view, and per view whose pose fits fewer than 25 % of its
        points (kept, ``ok`` stays True, but unreliable); also logged as warnings.
    """

    c2w: Float64Array
    focal: float | Float64Array
    focals: Float64Array
    intrinsics: Float64Array
    intrinsics_known: NDArray[np.bool_]
    ok: NDArray[np.bool_]
    n_points: NDArray[np.int64]
    n_inliers: NDArray[np.int64]
    reproj_rmse: Float64Array
    messages: tuple[str, ...] = field(default=())

    @property
    def failed_views(self) -> list[int]:
        """Indices of the views whose pose could not be estimated (their c2w is the identity)."""
        return [int(i) for i in np.flatnonzero(~self.ok)]


@dataclass
class _ViewResult:
    c2w: Float64Array
    focal: float
    K: Float64Array | None  # the known intrinsics used, or None for an estimated focal
    ok: bool
    n_points: int
    n_inliers: int
    rmse: float
    message: str = ""


# --------------------------------------------------------------------------------------- inputs


def _as_views(arrays: PointmapInput, name: str, trailing: tuple[int, ...]) -> list[NDArray[np.floating]]:
    """Split a (V, H, W, ...) array or a list of (H, W, ...) arrays into per-view arrays (no copies)."""
    if isinstance(arrays, np.ndarray):
        views = list(arrays)
    else:
        views = [np.asarray(a) for a in arrays]
    for i, a in enumerate(views):
        if a.ndim != 2 + len(trailing) or a.shape[2:] != trailing or min(a.shape[:2], default=0) < 1:
            want = "(H, W" + "".join(f", {d}" for d in trailing) + ")"
            raise InputError(f"{name}[{i}] has shape {a.shape}, expected {want}")
    if not views:
        raise InputError(f"{name} holds no views")
    return views


def _pointmaps_and_conf(
    pts3d: PointmapInput, conf: PointmapInput, name: str
) -> tuple[list[NDArray[np.floating]], list[NDArray[np.floating]]]:
    pts_v = _as_views(pts3d, name, (3,))
    conf_v = _as_views(conf, "conf", ())
    if len(pts_v) != len(conf_v):
        raise InputError(f"{name} has {len(pts_v)} views but conf has {len(conf_v)}")
    for i, (p, c) in enumerate(zip(pts_v, conf_v, strict=True)):
        if p.shape[:2] != c.shape:
            raise InputError(f"view {i}: {name} is {p.shape[:2]} but conf is {c.shape}")
    return pts_v, conf_v


def _view_masks(
    masks: PixelMasks | None, shapes: Sequence[tuple[int, ...]]
) -> list[NDArray[np.bool_] | None]:
    """Per-view boolean keep-masks (True = use the pixel) checked against the views' (H, W)."""
    if masks is None:
        return [None] * len(shapes)
    items = list(masks)
    if len(items) != len(shapes):
        raise InputError(f"masks has {len(items)} entries but there are {len(shapes)} views")
    out: list[NDArray[np.bool_] | None] = []
    for i, (m, shape) in enumerate(zip(items, shapes, strict=True)):
        if m is None:
            out.append(None)
            continue
        arr = np.asarray(m)
        if arr.shape != tuple(shape) or arr.dtype != np.bool_:
            raise InputError(
                f"masks[{i}] must be a boolean array of shape {tuple(shape)}, got {arr.dtype} {arr.shape}"
            )
        out.append(arr)
    return out


def _view_intrinsics(known: Sequence[ArrayLike | None] | None, n_views: int) -> list[Float64Array | None]:
    """Per-view known model-pixel K (3, 3) float64, or None where the focal is to be estimated."""
    if known is None:
        return [None] * n_views
    items = list(known)
    if len(items) != n_views:
        raise InputError(f"known_intrinsics has {len(items)} entries but there are {n_views} views")
    out: list[Float64Array | None] = []
    for i, k in enumerate(items):
        if k is None:
            out.append(None)
            continue
        K = np.asarray(k, dtype=np.float64)
        if (
            K.shape != (3, 3)
            or not np.isfinite(K).all()
            or not (K[0, 0] > 0 and K[1, 1] > 0)
            or np.any(K[2] != (0.0, 0.0, 1.0))
            or K[1, 0] != 0.0
        ):
            raise InputError(f"known_intrinsics[{i}] must be a pinhole (3, 3) matrix with positive focals")
        out.append(K)
    return out


def _workers(n_tasks: int, max_workers: int | None) -> int:
    if max_workers is not None:
        return max(1, min(n_tasks, max_workers))
    return max(1, min(n_tasks, os.cpu_count() or 1))


# ----------------------------------------------------------------------------------------- focal


def estimate_focal(pts3d: ArrayLike, conf: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Focal length of one view from its pointmap (spec 7.2 'first_view_from_global_head').

    Fits ``p ≈ f r`` robustly, with ``r = (X/Z, Y/Z)`` and ``p = (u - W/2, v - H/2)``, ``u = column``,
    ``v = row`` integer pixel indices: least squares to start, then 100 Weiszfeld/IRLS iterations
    (weights ``1 / max(|p - f r|, 1e-8)``) that minimise ``sum |p - f r|``; the loop stops early at a
    fixed point (|Δf| <= 1e-13 f), where further iterations would not change f. Only pixels with confidence
    at or above the view's 10th percentile (linear interpolation) take part; non-finite ratios
    (``Z = 0``) count as ``r = 0``. Float64 inside.

    Parameters
    ----------
    pts3d : array_like, shape (H, W, 3)
        Points of the view. They should be in a frame whose axes are the camera's (OpenCV axes): the
        global pointmap of view 0 (world = camera 0) or any view's local pointmap. The scale does not
        matter.
    conf : array_like, shape (H, W)
        Confidence of each pixel.
    mask : array_like of bool, shape (H, W), optional
        Pixels that may be used (True); the others are left out, the confidence quantile included.

    Returns
    -------
    float
        Focal length in pixels of the model input (may be non-positive or NaN for nonsense input;
        :func:`estimate_poses` checks).

    Raises
    ------
    InputError
        On wrong shapes, or when no pixel has a finite ratio.
    """
    pts = np.asarray(pts3d)
    c = np.asarray(conf, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[2] != 3 or pts.shape[:2] != c.shape:
        raise InputError(f"estimate_focal needs pts3d (H, W, 3) and conf (H, W), got {pts.shape}, {c.shape}")
    H, W = c.shape
    if mask is None:
        keep = c >= np.quantile(c, FOCAL_CONF_QUANTILE)
    else:
        allowed = np.asarray(mask, dtype=bool)
        if allowed.shape != c.shape:
            raise InputError(f"estimate_focal: mask is {allowed.shape}, conf is {c.shape}")
        if not allowed.any():
            raise InputError("cannot estimate a focal length: the mask leaves no pixel")
        keep = allowed & (c >= np.quantile(c[allowed], FOCAL_CONF_QUANTILE))
    rows, cols = np.nonzero(keep)
    xyz = pts[rows, cols].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = xyz[:, :2] / xyz[:, 2:3]
    r[~np.isfinite(r)] = 0.0
    if not np.any(r):
        raise InputError("cannot estimate a focal length: no pixel has a usable 3-D point")
    px = cols - W / 2.0
    py = rows - H / 2.0
    rx, ry = np.ascontiguousarray(r[:, 0]), np.ascontiguousarray(r[:, 1])
    rp = rx * px + ry * py
    rr = rx * rx + ry * ry
    pp = px * px + py * py
    f = float(rp.mean() / rr.mean())
    rp2 = 2.0 * rp
    buf = np.empty_like(rr)
    for _ in range(FOCAL_ITERATIONS):
        # |p - f r|^2 expanded as pp - 2 f rp + f^2 rr: 5x faster than hypot of the differences, and
        # the cancellation error (~1e-16 * |p|^2) is far below the 1e-8 floor of the residuals.
        np.multiply(rr, f, out=buf)
        buf -= rp2
        buf *= f
        buf += pp
        np.maximum(buf, 1e-16, out=buf)  # = max(|res|, 1e-8)^2
        np.sqrt(buf, out=buf)
        np.reciprocal(buf, out=buf)  # IRLS weights
        # einsum, not np.dot: OpenBLAS's threaded ddot was 10x slower on a busy 2-core machine.
        f_new = float(np.einsum("i,i->", buf, rp) / np.einsum("i,i->", buf, rr))
        converged = abs(f_new - f) <= 1e-13 * abs(f_new)
        f = f_new
        if converged:  # a fixed point: further iterations would return the same f
            break
    return f


def intrinsics_for_views(focal: float | ArrayLike, shapes: Sequence[tuple[int, int]]) -> Float64Array:
    """Model-resolution intrinsics of each view.

    Parameters
    ----------
    focal : float or array_like of shape (V,)
        Shared focal or one per view, pixels of the model input.
    shapes : sequence of (H, W)
        Model-input image size of each view.

    Returns
    -------
    ndarray, shape (V, 3, 3), float64
        ``[[f, 0, W/2], [0, f, H/2], [0, 0, 1]]`` per view (principal point as in the published code).
    """
    f = np.broadcast_to(np.asarray(focal, dtype=np.float64), (len(shapes),))
    return np.stack([intrinsics_matrix(float(fv), W, H) for fv, (H, W) in zip(f, shapes, strict=True)])


# -------------------------------------------------------------------------------------------- PnP


@lru_cache(maxsize=8)
def _pixel_grid(H: int, W: int) -> NDArray[np.float32]:
    """Read-only (H*W, 2) float32 ``(u, v) = (column, row)`` pixel indices in row-major order (exact)."""
    grid = np.empty((H * W, 2), dtype=np.float32)
    grid[:, 0] = np.tile(np.arange(W, dtype=np.float32), H)
    grid[:, 1] = np.repeat(np.arange(H, dtype=np.float32), W)
    grid.flags.writeable = False
    return grid


def _correspondences(
    pts: NDArray[np.floating], conf: NDArray[np.floating], keep: NDArray[np.bool_] | None = None
) -> tuple[PointArray, PointArray]:
    """Correspondences PnP uses: pixels with ``conf > 1``, a finite 3-D point and ``keep`` (if given).

    Returns ``X`` (N, 3) points in the pointmap's frame and ``uv`` (N, 2) integer pixel indices
    ``(column, row)``, both float32 for float32 pointmaps (else float64); ``uv`` may be a read-only
    shared array. Float32 loses nothing: the values are the model's float32 outputs and OpenCV's
    solvers work in double internally; it halves the memory traffic, which dominates here.
    """
    H, W = conf.shape
    dtype: type[np.floating] = np.float32 if pts.dtype == np.float32 else np.float64
    flat = pts.reshape(-1, 3)
    mask = conf.reshape(-1) > PNP_MIN_CONF
    if keep is not None:
        mask &= keep.reshape(-1)
    # x + y + z is finite iff all three are (barring overflow of absurd values): one pass, no
    # (N, 3) boolean reduction.
    mask &= np.isfinite(flat[:, 0] + flat[:, 1] + flat[:, 2])
    grid = _pixel_grid(H, W).astype(dtype, copy=False)
    if mask.all():  # the usual case: no gathers, and no copy of a contiguous float32 pointmap
        return np.ascontiguousarray(flat, dtype=dtype), grid
    return np.compress(mask, flat, axis=0).astype(dtype, copy=False), np.compress(mask, grid, axis=0)


def _stride(n: int, k: int) -> slice:
    """A regular subsample of at most ``k`` of ``n`` items (deterministic, spread over the image)."""
    return slice(None, None, max(1, math.ceil(n / k)))


def _reproj_sq_errors(
    X: PointArray, uv: PointArray, R: Float64Array, t: Float64Array, K: Float64Array
) -> PointArray:
    """Squared reprojection errors (pixels²) of points X under w2c ``(R, t)``; inf behind the camera.

    ``X`` (N, 3) world points, ``uv`` (N, 2) observed pixels; returns (N,) in X's dtype (float32
    precision is ~1e-4 px here, ample for a 5 px inlier test).
    """
    # cv2.transform instead of X @ R.T: a BLAS matmul here fights OpenCV's worker threads for the
    # cores and was measured 10x slower inside the thread pool. In-place arithmetic below: fresh
    # large temporaries cost page faults in worker threads (measured 1.6x slower than the main thread).
    Y = cv2.transform(X.reshape(-1, 1, 3), np.hstack([R, t.reshape(3, 1)])).reshape(-1, 3)
    z = Y[:, 2]
    behind = ~(z > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv_z = np.reciprocal(z)
        du = np.multiply(Y[:, 0], inv_z)
        du *= K[0, 0]
        du += K[0, 2]
        du -= uv[:, 0]
        dv = np.multiply(Y[:, 1], inv_z, out=inv_z)
        dv *= K[1, 1]
        dv += K[1, 2]
        dv -= uv[:, 1]
        du *= du
        dv *= dv
        du += dv
    du[behind] = np.inf
    return du


def _ransac(
    X: PointArray, uv: PointArray, K: Float64Array, niter: int, reproj_px: float, seed: int
) -> tuple[Float64Array, Float64Array] | None:
    """OpenCV PnP-RANSAC (SQPnP on the inliers), returning w2c (R, t) or None."""
    # OpenCV 5's PnP-RANSAC draws from its own fixed-seed generator (measured: the seed changes
    # nothing); seeding this thread's RNG too keeps views reproducible should a build use theRNG().
    cv2.setRNGSeed(seed)
    try:
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            X,
            uv,
            K,
            None,
            iterationsCount=int(niter),
            reprojectionError=float(reproj_px),
            confidence=0.99,
            flags=cv2.SOLVEPNP_SQPNP,
        )
    except cv2.error as exc:  # degenerate configurations (all points collinear, ...) raise
        log.debug("solvePnPRansac failed: %s", exc)
        return None
    if not ok or inliers is None or len(inliers) < 4:
        return None
    return _rotation_translation(rvec, tvec)


def _rotation_translation(
    rvec: cv2.typing.MatLike, tvec: cv2.typing.MatLike
) -> tuple[Float64Array, Float64Array]:
    """OpenCV's pose output (Rodrigues vector, translation; float64) as w2c ``R`` (3, 3) and ``t`` (3,)."""
    # float64 already (OpenCV's pose solvers write CV_64F): asarray only states the dtype, no copy
    R = np.asarray(cv2.Rodrigues(rvec)[0], dtype=np.float64)
    return R, np.asarray(tvec, dtype=np.float64).reshape(3)


def _solve_pnp(
    X: PointArray,
    uv: PointArray,
    K: Float64Array,
    niter: int,
    reproj_px: float,
    seed: int,
    ransac_points: int,
) -> tuple[Float64Array, Float64Array, PointArray] | None:
    """Pose of one view with intrinsics ``K`` (3, 3): RANSAC on a subsample, then SQPnP on all inliers.

    Returns w2c ``(R, t)`` (``x_cam = R X + t``, OpenCV axes) and the squared reprojection errors
    (N,) of all points under it, or None when no pose was found.
    """
    sub = _stride(len(X), ransac_points)
    first = _ransac(np.ascontiguousarray(X[sub]), np.ascontiguousarray(uv[sub]), K, niter, reproj_px, seed)
    if first is None:
        return None
    R, t = first
    e2 = _reproj_sq_errors(X, uv, R, t, K)
    if len(X) > ransac_points:
        # The subsample only chose the inlier set; the pose comes from all inliers, as OpenCV's own
        # final step (SQPnP on the RANSAC inliers) would compute it on the full set.
        inliers = e2 <= reproj_px * reproj_px
        if np.count_nonzero(inliers) < 4:
            return None
        # np.compress: 4x faster than boolean indexing of (N, 3) rows
        X_in = np.compress(inliers, X, axis=0)
        uv_in = np.compress(inliers, uv, axis=0)
        try:
            ok, rvec, tvec = cv2.solvePnP(X_in, uv_in, K, None, flags=cv2.SOLVEPNP_SQPNP)
        except cv2.error as exc:
            log.debug("solvePnP failed: %s", exc)
            return None
        if not ok:
            return None
        R, t = _rotation_translation(rvec, tvec)
        e2 = _reproj_sq_errors(X, uv, R, t, K)
    return R, t, e2


# ----------------------------------------------------------------------------------- per-view focal


def _refine_pose_focal(
    X_coarse: PointArray,
    uv_coarse: PointArray,
    X_fine: PointArray,
    uv_fine: PointArray,
    R: Float64Array,
    t: Float64Array,
    f: float,
    W: int,
    H: int,
    reproj_px: float,
) -> float | None:
    """Joint least squares of (rotation vector, translation, log f) on reprojection errors.

    Two stages: a Cauchy loss of scale ``reproj_px`` on the coarse subsample from the scanned start
    (outliers get vanishing influence; soft-L1/Huber were measured to leave a 5-8 % focal bias with
    5 % gross outliers), then plain Levenberg-Marquardt on the points of the larger fine subsample
    within ``reproj_px`` of that fit, which removes the bias the Cauchy weights leave (measured: focal
    within 0.2 % on synthetic views with ~1 px noise and 5 % outliers). Points ``X_*`` (N, 3) in the
    world frame, pixels ``uv_*`` (N, 2); ``(R, t)`` the w2c start. Returns the focal or None.
    """
    # scipy.optimize costs ~0.3 s to import and only the per-view focal needs it: not on the default path
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    cx, cy = W / 2.0, H / 2.0

    def residuals(x: Float64Array, pts: PointArray, obs: PointArray) -> Float64Array:
        Y = pts @ Rotation.from_rotvec(x[:3]).as_matrix().T + x[3:6]
        z = np.where(np.abs(Y[:, 2]) > 1e-12, Y[:, 2], 1e-12)
        fx = math.exp(x[6])
        return np.concatenate([fx * Y[:, 0] / z + cx - obs[:, 0], fx * Y[:, 1] / z + cy - obs[:, 1]])

    x1 = np.concatenate([Rotation.from_matrix(R).as_rotvec(), t, [math.log(f)]])
    c2 = reproj_px * reproj_px
    try:
        # Cauchy loss by iteratively reweighted least squares: MINPACK's LM on fixed weights
        # (scipy's 'trf' with a loss calls a LAPACK SVD per step, measured 15 ms each when BLAS
        # threads fight OpenCV's for the cores).
        for _ in range(_CAUCHY_IRLS_ROUNDS):
            r = residuals(x1, X_coarse, uv_coarse).reshape(2, -1)
            sqrt_w = np.tile(1.0 / np.sqrt(1.0 + (r[0] ** 2 + r[1] ** 2) / c2), 2)
            x1 = least_squares(
                lambda x, sw=sqrt_w: sw * residuals(x, X_coarse, uv_coarse), x1, method="lm", x_scale="jac"
            ).x
        res = residuals(x1, X_fine, uv_fine).reshape(2, -1)
        inliers = res[0] ** 2 + res[1] ** 2 <= c2
        if inliers.sum() >= 6:
            x1 = least_squares(
                residuals, x1, method="lm", x_scale="jac", args=(X_fine[inliers], uv_fine[inliers])
            ).x
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.debug("focal refinement failed: %s", exc)
        return None
    f_new = math.exp(x1[6])
    return f_new if math.isfinite(f_new) else None


def estimate_view_focal(
    pts3d: ArrayLike,
    conf: ArrayLike,
    *,
    initial_focal: float | None = None,
    reproj_px: float = 5.0,
    seed: int = DEFAULT_SEED,
) -> float:
    """Focal of one view from its global pointmap alone (pose unknown): fast per-view calibration.

    Replaces the published 'individual' method (PnP-RANSAC at 100 focals, most inliers wins) with:

    1. unless ``initial_focal`` is given, a scan of 32 focals geometrically spaced over
       ``[S/2, 3S]`` (``S = max(H, W)``, the published range), each with a short PnP-RANSAC on a
       regular subsample of ≤ 1024 correspondences, scored by the truncated squared reprojection
       error ``mean(min(e², (4 reproj_px)²))`` (finer-grained than an inlier count, robust to outliers);
    2. a joint refinement of (pose, focal) from the best candidate: a Cauchy-loss fit (scale
       ``reproj_px``, by reweighted Levenberg-Marquardt) on the scan subsample, then plain least
       squares on the points of a ≤ 4096 subsample within ``reproj_px`` of it.

    Measured on synthetic 512x384 views (~1 px noise, 5 % gross outliers): focal within 0.2 %, about
    0.06 s per view (the published method: ~40 s per view on the same machine).

    A good ``initial_focal`` is the Weiszfeld focal of the view's *local* pointmap
    (:func:`estimate_focal` on ``pts3d_local``), which is in the view's camera frame.

    Parameters
    ----------
    pts3d : array_like, shape (H, W, 3)
        The view's global pointmap (any world frame; OpenCV camera model, pixels ``u = column``,
        ``v = row``, principal point ``(W/2, H/2)``).
    conf : array_like, shape (H, W)
        Confidence; pixels with ``conf > 1`` are used.
    initial_focal : float, optional
        Skip the scan and refine from this focal.
    reproj_px : float
        Inlier scale in pixels.
    seed : int
        Seed of OpenCV's RNG for the RANSAC runs.

    Returns
    -------
    float
        Focal in pixels of the model input.

    Raises
    ------
    InputError
        If fewer than 6 usable points remain or no candidate focal gives a pose.
    """
    pts = np.asarray(pts3d)
    c = np.asarray(conf)
    H, W = c.shape
    X, uv = _correspondences(pts, c)
    f = _view_focal(X, uv, W, H, initial_focal, reproj_px, seed)
    if f is None:
        raise InputError("cannot estimate this view's focal: too few usable points or no consistent pose")
    return f


def _view_focal(
    X: PointArray,
    uv: PointArray,
    W: int,
    H: int,
    initial_focal: float | None,
    reproj_px: float,
    seed: int,
) -> float | None:
    if len(X) < 6:  # the refinement has 7 unknowns: 2 residuals per point
        return None
    scan = _stride(len(X), _FOCAL_SCAN_POINTS)
    Xs, uvs = np.ascontiguousarray(X[scan]), np.ascontiguousarray(uv[scan])
    trunc2 = (4.0 * reproj_px) ** 2
    S = max(H, W)
    candidates = (
        [float(initial_focal)]
        if initial_focal is not None and math.isfinite(initial_focal) and initial_focal > 0
        else list(np.geomspace(S / 2.0, 3.0 * S, _FOCAL_SCAN_STEPS))
    )
    best: tuple[float, float, Float64Array, Float64Array] | None = None
    for fc in candidates:
        K = intrinsics_matrix(fc, W, H)
        sol = _ransac(Xs, uvs, K, _FOCAL_SCAN_RANSAC_ITERS, reproj_px, seed)
        if sol is None:
            continue
        R, t = sol
        score = float(np.minimum(_reproj_sq_errors(Xs, uvs, R, t, K), trunc2).mean())
        if best is None or score < best[0]:
            best = (score, fc, R, t)
    if best is None:
        return None
    _, f0, R0, t0 = best
    ref = _stride(len(X), _FOCAL_REFINE_POINTS)
    f = _refine_pose_focal(Xs, uvs, X[ref], uv[ref], R0, t0, f0, W, H, reproj_px)
    if f is None or not (S / 20.0 < f < 50.0 * S):  # a runaway fit: keep the scanned value
        log.warning("per-view focal refinement diverged; keeping the scanned focal %.1f px", f0)
        return f0
    return f


# --------------------------------------------------------------------------------------- per view


def _pose_one_view(
    index: int,
    pts: NDArray[np.floating],
    conf: NDArray[np.floating],
    keep: NDArray[np.bool_] | None,
    known_K: Float64Array | None,
    focal: float | None,
    initial_focal: float | None,
    niter: int,
    reproj_px: float,
    seed: int,
    ransac_points: int,
    cancel: Event | None,
) -> _ViewResult:
    """One view's pose: with ``known_K`` (no focal search), else at ``focal``, else its own focal."""
    check_cancel(cancel)
    H, W = conf.shape
    X, uv = _correspondences(pts, conf, keep)
    if known_K is not None:
        focal = 0.5 * float(known_K[0, 0] + known_K[1, 1])
    fail_focal = float(focal) if focal is not None else float("nan")
    if len(X) < 4:
        msg = f"view {index}: only {len(X)} confident points (PnP needs 4); pose set to identity"
        return _ViewResult(np.eye(4), fail_focal, known_K, False, len(X), 0, float("nan"), msg)
    if focal is None:
        f_est = _view_focal(X, uv, W, H, initial_focal, reproj_px, seed)
        if f_est is None:
            msg = f"view {index}: could not estimate its focal; pose set to identity"
            return _ViewResult(np.eye(4), fail_focal, None, False, len(X), 0, float("nan"), msg)
        focal = f_est
    K = known_K if known_K is not None else intrinsics_matrix(focal, W, H)
    sol = _solve_pnp(X, uv, K, niter, reproj_px, seed, ransac_points)
    if sol is None:
        msg = f"view {index}: PnP-RANSAC found no pose; pose set to identity"
        return _ViewResult(np.eye(4), focal, known_K, False, len(X), 0, float("nan"), msg)
    R, t, e2 = sol
    inliers = e2 <= reproj_px * reproj_px
    n_inliers = int(np.count_nonzero(inliers))
    rmse = float(np.sqrt(np.compress(inliers, e2).mean())) if n_inliers else float("nan")
    c2w = se3_inverse(se3_from_rt(R, t))  # OpenCV returns world->camera
    msg = ""
    if n_inliers < LOW_INLIER_FRACTION * len(X):
        msg = f"view {index}: only {n_inliers} of {len(X)} points fit its pose; the pose is unreliable"
    return _ViewResult(c2w, focal, known_K, True, len(X), n_inliers, rmse, msg)


def estimate_poses_detailed(
    pts3d_global: PointmapInput,
    conf: PointmapInput,
    focal: float | ArrayLike | None = None,
    *,
    niter: int = 100,
    reproj_px: float = 5.0,
    per_view_focal: bool = False,
    known_intrinsics: Sequence[ArrayLike | None] | None = None,
    masks: PixelMasks | None = None,
    pts3d_local: PointmapInput | None = None,
    conf_local: PointmapInput | None = None,
    seed: int = DEFAULT_SEED,
    ransac_points: int = 4096,
    max_workers: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: Event | None = None,
) -> PoseEstimate:
    """Camera-to-world pose (and focal) of every view by PnP-RANSAC on its global pointmap (spec 7.2).

    Per view: pixels with ``conf > 1``, a finite point and (with ``masks``) a True mask give
    correspondences (pixel ``(u, v) = (column, row)`` <-> global 3-D point); with at least 4, OpenCV
    PnP-RANSAC (SQPnP, ``niter`` iterations, ``reproj_px`` threshold, no distortion) gives
    world->camera ``[R | t]``, which is inverted. K is the view's known intrinsics when given (no focal
    search), else ``[[f, 0, W/2], [0, f, H/2], [0, 0, 1]]`` with the estimated focal. Deterministic:
    the same input gives the same output, whatever the thread scheduling (OpenCV's RNG is seeded with
    ``seed`` before each view). See the module docstring for how this is made ~20x faster than the
    published code, and why its poses can differ from full-set RANSAC on noisy data by ~0.1 degree
    (they are closer to the truth).

    Parameters
    ----------
    pts3d_global : ndarray (V, H, W, 3) or list of (H_i, W_i, 3) arrays
        Global pointmaps (common frame ≈ camera of view 0, OpenCV axes); views may differ in size.
    conf : ndarray (V, H, W) or list of (H_i, W_i) arrays
        Global-head confidences.
    focal : float or array_like of shape (V,), optional
        Focal in model-input pixels of the views without known intrinsics. Default:
        :func:`estimate_focal` on view 0, shared by those views (or per view with ``per_view_focal``).
    niter : int
        RANSAC iterations.
    reproj_px : float
        RANSAC inlier threshold in pixels.
    per_view_focal : bool
        Estimate one focal per view (photos from different cameras or zooms) with
        :func:`estimate_view_focal` instead of sharing view 0's.
    known_intrinsics : sequence of (3, 3) array_like or None, optional
        One entry per view: its intrinsics in model-input pixels (``u`` = column, ``v`` = row of the
        cropped model image; :func:`fast3r_core.intrinsics.to_model_pixels` maps a photo's), used as
        they are, or None to estimate that view's focal. When view 0's are known and no ``focal`` is
        given, each other view without known intrinsics gets its own focal (as ``per_view_focal``):
        view 0's pointmap only tells view 0's focal, and a camera whose intrinsics are unknown is
        likely another camera.
    masks : (V, H, W) bool array or sequence of (H_i, W_i) bool arrays or None, optional
        Pixels that may take part (True); masked-out pixels are left out of the correspondences and
        of view 0's focal estimate.
    pts3d_local, conf_local : (V, H, W, 3) and (V, H, W) arrays or lists, optional
        Local pointmaps (each view's camera frame) and their confidences. Only used with
        ``per_view_focal``: each view's focal is then initialised by Weiszfeld on its local pointmap
        (skipping the focal scan) and refined on the global one.
    seed : int
        Seed of OpenCV's RNG.
    ransac_points : int
        Size of the regular subsample RANSAC runs on (the final pose uses all inliers).
    max_workers : int, optional
        Threads (default: one per core, at most one per view).
    progress, cancel
        Progress callback (stage ``"poses"``, one unit per view, called from the calling thread) and
        cancellation event (raises :class:`~fast3r_core.errors.Cancelled`).

    Returns
    -------
    PoseEstimate
        Poses, focal(s), intrinsics, which views had known intrinsics and which failed. Failed views
        get an identity pose and a logged warning; they do not raise.
    """
    pts_v, conf_v = _pointmaps_and_conf(pts3d_global, conf, "pts3d_global")
    V = len(pts_v)
    shapes = [c.shape for c in conf_v]
    if niter < 1 or not reproj_px > 0 or ransac_points < 4:
        raise InputError("niter must be >= 1, reproj_px > 0 and ransac_points >= 4")
    keep_v = _view_masks(masks, shapes)
    known_v = _view_intrinsics(known_intrinsics, V)
    any_known = any(k is not None for k in known_v)
    # view 0 known: its pointmap tells nothing about the other cameras' focals
    own_focals = per_view_focal or (focal is None and known_v[0] is not None)

    per_view_given = focal is not None and np.ndim(focal) > 0
    if focal is None:
        view_focals: list[float | None] = [None] * V
        if not own_focals:
            try:
                f0 = estimate_focal(pts_v[0], conf_v[0], keep_v[0])
            except InputError:
                f0 = math.nan  # view 0 has no usable point: fall back below, the others may be fine
            if not (math.isfinite(f0) and f0 > 0):
                f0 = float(max(shapes[0]))
                log.warning("focal estimate from view 0 is unusable; falling back to %.0f px", f0)
            view_focals = [f0] * V
    else:
        farr = np.asarray(focal, dtype=np.float64).reshape(-1)
        if farr.size not in (1, V) or not np.all(np.isfinite(farr) & (farr > 0)):
            raise InputError(f"focal must be one positive number or {V} of them, got {focal!r}")
        view_focals = [float(x) for x in np.broadcast_to(farr, (V,))]

    initial: list[float | None] = [None] * V
    if own_focals and focal is None and pts3d_local is not None:
        if conf_local is None:
            raise InputError("pts3d_local needs conf_local")
        loc_v, cloc_v = _pointmaps_and_conf(pts3d_local, conf_local, "pts3d_local")
        if [c.shape for c in cloc_v] != shapes:
            raise InputError("local and global pointmaps must have the same views and shapes")
        for i in range(V):
            if known_v[i] is not None:
                continue
            try:
                initial[i] = estimate_focal(loc_v[i], cloc_v[i], keep_v[i])
            except InputError:
                initial[i] = None  # the scan takes over

    results: list[_ViewResult | None] = [None] * V
    report(progress, "poses", 0, V)
    with ThreadPoolExecutor(max_workers=_workers(V, max_workers), thread_name_prefix="pnp") as pool:
        futures = {
            pool.submit(
                _pose_one_view,
                i,
                pts_v[i],
                conf_v[i],
                keep_v[i],
                known_v[i],
                view_focals[i],
                initial[i],
                niter,
                reproj_px,
                seed,
                ransac_points,
                cancel,
            ): i
            for i in range(V)
        }
        try:
            for done, fut in enumerate(as_completed(futures), start=1):
                results[futures[fut]] = fut.result()
                report(progress, "poses", done, V)  # from this thread, not the workers
        except BaseException:
            for fut in futures:
                fut.cancel()  # tasks not started yet are dropped; running ones are short
            raise
    check_cancel(cancel)

    res = [r for r in results if r is not None]
    messages = tuple(r.message for r in res if r.message)
    for m in messages:
        log.warning(m)
    focals = np.array([r.focal for r in res], dtype=np.float64)
    if not np.isfinite(focals).all():
        # Views whose own focal could not be estimated borrow the median of the others (or a
        # 53-degree field of view, f = max(H, W)), so that every view has usable intrinsics.
        good = focals[np.isfinite(focals)]
        for j in np.flatnonzero(~np.isfinite(focals)):
            focals[j] = float(np.median(good)) if len(good) else float(max(shapes[j]))
    per_view_out = per_view_focal or per_view_given or any_known
    focal_out: float | Float64Array = focals if per_view_out else float(focals[0])
    intrinsics = intrinsics_for_views(focals, shapes)
    for i, r in enumerate(res):
        if r.K is not None:
            intrinsics[i] = r.K
    return PoseEstimate(
        c2w=np.stack([r.c2w for r in res]),
        focal=focal_out,
        focals=focals,
        intrinsics=intrinsics,
        intrinsics_known=np.array([k is not None for k in known_v], dtype=bool),
        ok=np.array([r.ok for r in res], dtype=bool),
        n_points=np.array([r.n_points for r in res], dtype=np.int64),
        n_inliers=np.array([r.n_inliers for r in res], dtype=np.int64),
        reproj_rmse=np.array([r.rmse for r in res], dtype=np.float64),
        messages=messages,
    )


def _c2w_and_focal(
    detailed: Callable[_P, PoseEstimate],
) -> Callable[_P, tuple[Float64Array, float | Float64Array]]:
    """``detailed`` with the same parameters, returning only ``(c2w, focal)`` of its PoseEstimate."""

    @wraps(detailed)
    def poses_and_focal(*args: _P.args, **kwargs: _P.kwargs) -> tuple[Float64Array, float | Float64Array]:
        est = detailed(*args, **kwargs)
        return est.c2w, est.focal

    return poses_and_focal


estimate_poses = _c2w_and_focal(estimate_poses_detailed)
estimate_poses.__name__ = estimate_poses.__qualname__ = "estimate_poses"
estimate_poses.__doc__ = """Camera-to-world pose of every view by PnP-RANSAC on its global pointmap.

    Same parameters as :func:`estimate_poses_detailed`, which also says which views failed.

    Returns
    -------
    c2w : ndarray, shape (V, 4, 4), float64
        Cam-to-world, OpenCV axes; identity (and a logged warning) for views whose pose failed.
    focal : float or ndarray of shape (V,)
        The shared focal (float), or per-view focals (array) when ``per_view_focal``, a per-view
        ``focal`` or ``known_intrinsics`` were given.
    """


# ------------------------------------------------------------------------------------ local→global


def _align_one(
    local: NDArray[np.floating], glob: NDArray[np.floating], conf: NDArray[np.floating], percentile: float
) -> NDArray[np.float32]:
    """Similarity-align one view's local pointmap (H, W, 3) to its global one; returns float32."""
    loc = local.reshape(-1, 3)
    gl = glob.reshape(-1, 3)
    tau = np.quantile(np.asarray(conf, dtype=np.float64), percentile / 100.0)
    # a sum is finite iff all its terms are (one pass instead of an (N, 3) boolean reduction)
    finite = np.isfinite(loc[:, 0] + loc[:, 1] + loc[:, 2] + gl[:, 0] + gl[:, 1] + gl[:, 2])
    mask = (conf.reshape(-1) >= tau) & finite
    if np.count_nonzero(mask) < 3:
        mask = finite
    if np.count_nonzero(mask) < 3:
        log.warning("local->global alignment: fewer than 3 valid points, using the identity")
        return np.asarray(local, dtype=np.float32).copy()
    s, R, t = umeyama_similarity(np.compress(mask, loc, axis=0), np.compress(mask, gl, axis=0))
    # cv2.transform, not a BLAS matmul (thread contention, see _reproj_sq_errors)
    out = cv2.transform(
        np.ascontiguousarray(loc, dtype=np.float32).reshape(-1, 1, 3), np.hstack([s * R, t.reshape(3, 1)])
    )
    # float32 already (cv2.transform keeps the input's depth): asarray only states the dtype, no copy
    return np.asarray(out, dtype=np.float32).reshape(local.shape)


@overload
def align_local_to_global(
    pts3d_local: NDArray[np.floating],
    pts3d_global: PointmapInput,
    conf: PointmapInput,
    percentile: float = ...,
    *,
    max_workers: int | None = ...,
) -> NDArray[np.float32]: ...
@overload
def align_local_to_global(
    pts3d_local: Sequence[NDArray[np.floating]],
    pts3d_global: PointmapInput,
    conf: PointmapInput,
    percentile: float = ...,
    *,
    max_workers: int | None = ...,
) -> list[NDArray[np.float32]]: ...
def align_local_to_global(
    pts3d_local: PointmapInput,
    pts3d_global: PointmapInput,
    conf: PointmapInput,
    percentile: float = 85.0,
    *,
    max_workers: int | None = None,
) -> NDArray[np.float32] | list[NDArray[np.float32]]:
    """Move each view's local pointmap into the global frame with a similarity (spec 7.1).

    Per view: ``tau`` = the ``percentile`` of that view's *global* confidence (linear interpolation);
    the pixels with ``conf >= tau`` (and finite points) give correspondences local -> global (all
    finite pixels if fewer than 3; the identity if still fewer than 3); an unweighted Umeyama
    similarity ``(s, R, t)`` is fitted and applied to **all** pixels.

    Parameters
    ----------
    pts3d_local : ndarray (V, H, W, 3) or list of (H_i, W_i, 3)
        Local pointmaps (each in its own camera frame, OpenCV axes, arbitrary scale).
    pts3d_global : same shapes
        Global pointmaps (common frame).
    conf : ndarray (V, H, W) or list of (H_i, W_i)
        Global-head confidences.
    percentile : float
        In [0, 100]; 85 as in the demo.
    max_workers : int, optional
        Threads (default one per core).

    Returns
    -------
    ndarray (V, H, W, 3) float32, or a list of (H_i, W_i, 3) float32 arrays when the input was a list
        Local points in the global frame.
    """
    if not 0.0 <= percentile <= 100.0:
        raise InputError(f"percentile must be in [0, 100], got {percentile}")
    glob_v, conf_v = _pointmaps_and_conf(pts3d_global, conf, "pts3d_global")
    loc_v = _as_views(pts3d_local, "pts3d_local", (3,))
    if len(loc_v) != len(glob_v) or any(a.shape != b.shape for a, b in zip(loc_v, glob_v, strict=True)):
        raise InputError("pts3d_local and pts3d_global must have the same views and shapes")
    with ThreadPoolExecutor(max_workers=_workers(len(loc_v), max_workers)) as pool:
        out = list(pool.map(_align_one, loc_v, glob_v, conf_v, [percentile] * len(loc_v)))
    if isinstance(pts3d_local, np.ndarray):
        return np.stack(out)
    return out
