"""Bring one pass's pointmaps into the frame of another: a robust, confidence-weighted similarity.

Two forward passes that both hold the same anchor views predict, for each anchor pixel, a 3-D point
in their own common frame. Each pass's frame is about view 0's camera frame (OpenCV axes) with a
scale of its own, so the map from one to the other is a similarity ``y = s R x + t`` (mostly a scale,
since view 0 comes first in every pass). :func:`fit_similarity` finds it from the corresponding
pixels:

1. weights: each correspondence is as reliable as its less confident end, ``w = min(c_src, c_dst) - 1``
   (Fast3R confidences are ``1 + exp(.)``, so 0 means "no confidence"), clipped at the 99th
   percentile so that a few huge confidences do not decide alone;
2. hypotheses: weighted Umeyama fits of random 3-point samples (drawn in proportion to the weights),
   plus the plain weighted fit of all points and a pure scale about the origin; the one with the
   smallest weighted median residual wins (least median of squares: up to half of the weight may be
   gross outliers);
3. refinement: iteratively re-weighted Umeyama with Tukey's biweight (residual scale from the
   weighted median absolute residual), which gives gross outliers a weight of exactly zero, then a
   last weighted fit on all points.

:class:`PointmapFusion` averages the aligned predictions of the anchors (confidence-weighted), so
every view ends with one pointmap.

numpy only; float64 inside, float32 pointmaps in and out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fast3r_core.errors import InputError
from fast3r_core.geometry import umeyama_similarity

__all__ = [
    "PointmapFusion",
    "SimilarityFit",
    "align_pointmaps",
    "correspondence_weights",
    "fit_similarity",
]

log = logging.getLogger(__name__)

_TUKEY_C = 4.685  # 95 % efficiency of the biweight under Gaussian noise
_MAD_TO_SIGMA = 1.4826
_SCORE_POINTS = 4096  # points that score the hypotheses
_MIN_POINTS = 3


@dataclass(frozen=True)
class SimilarityFit:
    """A similarity ``y = scale * rotation @ x + translation`` and how well it fits.

    Attributes
    ----------
    scale : float (> 0)
    rotation : (3, 3) float64, a proper rotation (det +1).
    translation : (3,) float64.
    n_points : int
        Finite correspondences with a positive weight that took part.
    inlier_fraction : float
        Share of those within the final Tukey cut-off (residual < 4.685 sigma).
    rmse : float
        Weighted RMS residual of the inliers, in target units.
    sigma : float
        Robust residual scale (1.4826 x the weighted median absolute residual), in target units.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    n_points: int = 0
    inlier_fraction: float = 1.0
    rmse: float = 0.0
    sigma: float = 0.0

    @classmethod
    def identity(cls) -> SimilarityFit:
        return cls(1.0, np.eye(3), np.zeros(3))

    def matrix(self) -> np.ndarray:
        """(4, 4) float64 ``[[s R, t], [0, 1]]``."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m

    def apply(self, pts: np.ndarray) -> np.ndarray:
        """Map points (..., 3) into the target frame; float32 out (non-finite points stay non-finite)."""
        p = np.asarray(pts, dtype=np.float64)
        out = self.scale * (p @ self.rotation.T) + self.translation
        return out.astype(np.float32)

    def rotation_deg(self) -> float:
        """Angle of the rotation in degrees."""
        c = (np.trace(self.rotation) - 1.0) / 2.0
        return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))

    def to_json(self) -> dict[str, float | int]:
        """Summary for the project file (the matrix itself is not needed to reopen a result)."""
        return {
            "scale": float(self.scale),
            "rotation_deg": round(self.rotation_deg(), 4),
            "translation_norm": float(np.linalg.norm(self.translation)),
            "points": int(self.n_points),
            "inlier_fraction": round(float(self.inlier_fraction), 4),
            "rmse": float(self.rmse),
        }


def correspondence_weights(
    conf_src: np.ndarray, conf_dst: np.ndarray, clip_quantile: float = 0.99
) -> np.ndarray:
    """Weight of each correspondence: ``min(c_src, c_dst) - 1``, clipped at its ``clip_quantile``.

    Parameters
    ----------
    conf_src, conf_dst : (N,) confidences (> 1 for Fast3R outputs); NaN or <= 1 gives weight 0.

    Returns
    -------
    (N,) float64, >= 0.
    """
    c = np.minimum(np.asarray(conf_src, np.float64), np.asarray(conf_dst, np.float64)) - 1.0
    c = np.where(np.isnan(c), 0.0, np.maximum(c, 0.0))
    pos = c[c > 0]
    if pos.size:
        top = float(np.quantile(pos[np.isfinite(pos)], clip_quantile)) if np.isfinite(pos).any() else 1.0
        c = np.minimum(c, top)  # also turns +inf (exp overflow in half precision) into the cap
    return c


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    k = int(np.searchsorted(cw, 0.5 * cw[-1]))
    return float(values[order[min(k, len(order) - 1)]])


def _batched_umeyama(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unweighted Umeyama fits of H small point sets at once: x, y (H, k, 3) -> s (H,), R (H,3,3), t (H,3)."""
    mx, my = x.mean(1), y.mean(1)
    xc, yc = x - mx[:, None], y - my[:, None]
    cov = np.einsum("hni,hnj->hij", yc, xc) / x.shape[1]
    var_x = np.einsum("hni,hni->h", xc, xc) / x.shape[1]
    U, D, Vt = np.linalg.svd(cov)
    S = np.ones((len(x), 3))
    S[np.linalg.det(U) * np.linalg.det(Vt) < 0, 2] = -1.0
    R = np.einsum("hij,hj,hjk->hik", U, S, Vt)
    s = np.where(var_x > 0, (D * S).sum(1) / np.where(var_x > 0, var_x, 1.0), 1.0)
    t = my - s[:, None] * np.einsum("hij,hj->hi", R, mx)
    return s, R, t


def _residuals(s: float, R: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.norm(s * (x @ R.T) + t - y, axis=1)


def fit_similarity(
    src: np.ndarray,
    dst: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    hypotheses: int = 128,
    max_points: int = 50_000,
    irls_iterations: int = 30,
    seed: int = 0,
) -> SimilarityFit:
    """Robust weighted similarity with ``dst ≈ s R src + t`` (see the module docstring).

    Parameters
    ----------
    src, dst : (N, 3) corresponding points (any float dtype); rows with a non-finite value are left out.
    weights : (N,) non-negative weights (None: all ones), e.g. :func:`correspondence_weights`.
    hypotheses : 3-point samples tried.
    max_points : refinement runs on a random subset of at most this many points (the last fit uses all).
    irls_iterations : rounds of the re-weighted refinement.
    seed : seed of the sampling (same input and seed -> same result).

    Returns
    -------
    SimilarityFit

    Raises
    ------
    InputError
        Shapes that differ or are not (N, 3), or fewer than 3 usable correspondences.
    """
    x = np.asarray(src, dtype=np.float64)
    y = np.asarray(dst, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape != y.shape:
        raise InputError(f"fit_similarity needs two (N, 3) arrays, got {x.shape} and {y.shape}")
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (len(x),):
        raise InputError(f"fit_similarity needs {len(x)} weights, got {w.shape}")
    ok = np.isfinite(x).all(1) & np.isfinite(y).all(1) & np.isfinite(w) & (w > 0)
    x, y, w = x[ok], y[ok], w[ok]
    n = len(x)
    if n < _MIN_POINTS:
        raise InputError(f"only {n} usable correspondences to align the passes (at least 3 needed)")
    rng = np.random.default_rng(seed)

    # -- work on a subset (7 unknowns do not need a million points) -------------------------------
    sub = np.sort(rng.choice(n, max_points, replace=False)) if n > max_points else np.arange(n)
    xs, ys, ws = x[sub], y[sub], w[sub]
    score_idx = (
        np.sort(rng.choice(len(sub), _SCORE_POINTS, replace=False)) if len(sub) > _SCORE_POINTS else None
    )
    xsc, ysc, wsc = (xs, ys, ws) if score_idx is None else (xs[score_idx], ys[score_idx], ws[score_idx])

    # -- hypotheses: 3-point samples, the plain weighted fit, a pure scale about the origin -----------
    cands: list[tuple[float, np.ndarray, np.ndarray]] = []
    if hypotheses > 0:
        p = ws / ws.sum()
        picks = np.stack([rng.choice(len(xs), 3, replace=False, p=p) for _ in range(hypotheses)])
        s_h, R_h, t_h = _batched_umeyama(xs[picks], ys[picks])
        good = np.isfinite(s_h) & (s_h > 0) & np.isfinite(t_h).all(1)
        cands.extend((float(s_h[i]), R_h[i], t_h[i]) for i in np.flatnonzero(good))
    s0, R0, t0 = umeyama_similarity(xs, ys, ws)
    cands.append((s0, R0, t0))
    nx, ny = np.linalg.norm(xs, axis=1), np.linalg.norm(ys, axis=1)
    pos = nx > 0
    if pos.any():
        cands.append((_weighted_median(ny[pos] / nx[pos], ws[pos]), np.eye(3), np.zeros(3)))
    scores = [_weighted_median(_residuals(s, R, t, xsc, ysc), wsc) for s, R, t in cands]
    s, R, t = cands[int(np.argmin(scores))]

    # -- Tukey-biweight IRLS ----------------------------------------------------------------------
    spread = float(np.sqrt(np.average(((ys - np.average(ys, 0, ws)) ** 2).sum(1), weights=ws)))
    # exact data: a tiny residual scale instead of 0 (pointmaps are float32: ~1e-7 relative rounding)
    floor = max(spread, 1e-30) * 1e-6

    def tukey(res: np.ndarray, wt: np.ndarray) -> tuple[np.ndarray, float]:
        sigma = max(_MAD_TO_SIGMA * _weighted_median(res, wt), floor)
        u = res / (_TUKEY_C * sigma)
        return np.where(u < 1.0, (1.0 - u * u) ** 2, 0.0), sigma

    for _ in range(irls_iterations):
        rw, _sigma = tukey(_residuals(s, R, t, xs, ys), ws)
        if not (rw * ws).sum() > 0:
            break
        s_new, R_new, t_new = umeyama_similarity(xs, ys, rw * ws)
        change = abs(s_new - s) / s + np.abs(R_new - R).max() + np.linalg.norm(t_new - t) / max(spread, 1e-30)
        s, R, t = s_new, R_new, t_new
        if change < 1e-10:
            break

    # -- last fit on every point, with the weights of the final residual scale ---------------------
    res = _residuals(s, R, t, x, y)
    rw, sigma = tukey(res, w)
    if (rw * w).sum() > 0 and n > len(xs):
        s, R, t = umeyama_similarity(x, y, rw * w)
        res = _residuals(s, R, t, x, y)
        rw, sigma = tukey(res, w)
    inl = rw > 0
    rmse = float(np.sqrt(np.average(res[inl] ** 2, weights=w[inl]))) if inl.any() else float("nan")
    fit = SimilarityFit(float(s), R, t, n, float(inl.mean()), rmse, float(sigma))
    log.debug(
        "similarity: scale %.4g, rotation %.3g deg, %d points, %.0f %% inliers, rmse %.3g",
        fit.scale,
        fit.rotation_deg(),
        n,
        100 * fit.inlier_fraction,
        rmse,
    )
    return fit


def align_pointmaps(
    src_pts: Sequence[np.ndarray],
    src_conf: Sequence[np.ndarray],
    dst_pts: Sequence[np.ndarray],
    dst_conf: Sequence[np.ndarray],
    *,
    seed: int = 0,
) -> SimilarityFit:
    """The similarity taking the pointmaps ``src_pts`` onto ``dst_pts`` (the same views and pixels).

    Parameters
    ----------
    src_pts, dst_pts : per view (H_v, W_v, 3) pointmaps of the same anchor views, each in its own
        pass's frame (OpenCV axes, about view 0's camera).
    src_conf, dst_conf : per view (H_v, W_v) confidences.

    Returns
    -------
    SimilarityFit mapping the src frame into the dst frame.
    """
    if not (len(src_pts) == len(src_conf) == len(dst_pts) == len(dst_conf)) or not src_pts:
        raise InputError("align_pointmaps needs the same non-empty list of views on both sides")
    for v, (a, b) in enumerate(zip(src_pts, dst_pts, strict=True)):
        if a.shape != b.shape:
            raise InputError(f"anchor {v}: pointmaps of shapes {a.shape} and {b.shape} do not correspond")
    x = np.concatenate([p.reshape(-1, 3) for p in src_pts])
    y = np.concatenate([p.reshape(-1, 3) for p in dst_pts])
    w = correspondence_weights(
        np.concatenate([c.reshape(-1) for c in src_conf]), np.concatenate([c.reshape(-1) for c in dst_conf])
    )
    return fit_similarity(x, y, w, seed=seed)


class PointmapFusion:
    """Confidence-weighted mean of several aligned predictions of the same views, accumulated pass by pass.

    For each pixel: ``X = sum_p c_p X_p / sum_p c_p`` and ``c = sum_p c_p^2 / sum_p c_p`` (the
    confidence-weighted mean confidence: equal to ``c`` when all passes agree on it). Predictions with
    a non-finite point or confidence at a pixel do not count there. Only running sums are kept, so the
    memory does not grow with the number of passes.
    """

    def __init__(self) -> None:
        self._wx: dict[int, np.ndarray] = {}
        self._w: dict[int, np.ndarray] = {}
        self._wc: dict[int, np.ndarray] = {}
        self._count: dict[int, int] = {}

    def add(self, view: int, pts: np.ndarray, conf: np.ndarray) -> None:
        """Add one prediction of ``view``: pts (H, W, 3) in the common frame, conf (H, W)."""
        p = np.asarray(pts, np.float64)
        c = np.asarray(conf, np.float64)
        c = np.where(np.isposinf(c), 1e30, c)  # exp overflow in half precision: very confident, keep it
        ok = np.isfinite(p).all(-1) & np.isfinite(c)
        c = np.where(ok, c, 0.0)
        p = np.where(ok[..., None], p, 0.0)
        if view not in self._w:
            self._wx[view] = np.zeros_like(p)
            self._w[view] = np.zeros_like(c)
            self._wc[view] = np.zeros_like(c)
            self._count[view] = 0
        self._wx[view] += c[..., None] * p
        self._w[view] += c
        self._wc[view] += c * c
        self._count[view] += 1

    def count(self, view: int) -> int:
        """Predictions added for ``view``."""
        return self._count.get(view, 0)

    def result(self, view: int) -> tuple[np.ndarray, np.ndarray]:
        """(pts (H, W, 3) float32, conf (H, W) float32); NaN where no prediction counted."""
        w = self._w[view]
        with np.errstate(invalid="ignore", divide="ignore"):
            pts = self._wx[view] / w[..., None]
            conf = self._wc[view] / w
        bad = w <= 0
        pts[bad] = np.nan
        conf[bad] = np.nan
        return pts.astype(np.float32), conf.astype(np.float32)
