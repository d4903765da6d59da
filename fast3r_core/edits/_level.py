"""The up direction of a scene: the cameras' mean up vector, refined by a dominant floor plane (RANSAC)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fast3r_core.errors import EditsError

from ._model import Float64Array

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpEstimate:
    """The result of :func:`estimate_up`.

    Attributes
    ----------
    up : (3,) float64
        Unit up vector in the frame of the inputs.
    source : "plane" or "cameras"
        Whether a floor plane refined the cameras' mean up vector.
    inlier_fraction : float
        Fraction of the sampled points on the plane (0 when ``source == "cameras"``).
    camera_up : (3,) float64
        The cameras' mean up vector alone.
    """

    up: Float64Array
    source: Literal["plane", "cameras"]
    inlier_fraction: float
    camera_up: Float64Array


def cameras_mean_up(cam_to_world: ArrayLike) -> Float64Array:
    """Unit mean of the cameras' up vectors.

    OpenCV camera axes have y down, so a camera's up is minus the second column of its cam-to-world
    rotation. ``cam_to_world`` is (V, 4, 4) (or (V, 3, 3) rotations); the result is in its world frame.
    Raises :class:`EditsError` when there is no camera or the up vectors cancel out.
    """
    T = np.asarray(cam_to_world, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] not in ((4, 4), (3, 3)) or T.shape[0] == 0:
        raise EditsError(f"cam_to_world must be (V, 4, 4) with V >= 1, got shape {T.shape}")
    ups = -T[:, :3, 1]
    ups = ups / np.linalg.norm(ups, axis=1, keepdims=True)
    mean = ups.mean(axis=0)
    n = float(np.linalg.norm(mean))
    if not np.isfinite(n) or n < 1e-3:
        raise EditsError("the cameras' up vectors cancel out: no up direction from the cameras")
    out: Float64Array = mean / n
    return out


def _plane_sample(
    xyz: NDArray[np.floating], conf: ArrayLike | None, n_max: int, rng: np.random.Generator
) -> Float64Array:
    pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    finite = np.isfinite(pts).all(axis=1)
    if conf is not None:
        c = np.asarray(conf, dtype=np.float64).reshape(-1)
        if c.shape[0] != pts.shape[0]:
            raise EditsError(f"conf must have one value a point, got {c.shape[0]} for {pts.shape[0]} points")
        finite &= np.isfinite(c)
        # the more confident half: the floor is usually well reconstructed, the background is not
        if finite.sum() > 2 * n_max:
            finite &= c >= np.median(c[finite])
    idx = np.flatnonzero(finite)
    if idx.size > n_max:
        idx = rng.choice(idx, size=n_max, replace=False)
    sample: Float64Array = pts[idx]
    return sample


def estimate_up(
    cam_to_world: ArrayLike,
    xyz: ArrayLike | None = None,
    conf: ArrayLike | None = None,
    *,
    max_tilt_deg: float = 30.0,
    min_inlier_fraction: float = 0.15,
    iterations: int = 300,
    sample_size: int = 20_000,
    seed: int = 0,
) -> UpEstimate:
    """Up direction of a scene, in the frame of its inputs.

    First the cameras' mean up vector (people hold cameras roughly upright). Then RANSAC looks for the
    largest plane whose normal is within ``max_tilt_deg`` of it; if at least ``min_inlier_fraction`` of
    the sampled points lie on it (a floor or the ground), its least-squares normal, oriented like the
    cameras' up, is the answer.

    Parameters
    ----------
    cam_to_world : array_like, (V, 4, 4)
        Camera-to-world poses, OpenCV camera axes.
    xyz : array_like, (N, 3), optional
        Scene points in the same world frame. None: cameras only.
    conf : array_like, (N,), optional
        Their confidences: the less confident half is left out of the plane search.
    seed : int
        Seed of the sampling: the same inputs give the same answer.
    """
    cam_up = cameras_mean_up(cam_to_world)
    fallback = UpEstimate(cam_up, "cameras", 0.0, cam_up)
    if xyz is None:
        return fallback
    rng = np.random.default_rng(seed)
    pts = _plane_sample(np.asarray(xyz), conf, sample_size, rng)
    if len(pts) < 3:
        return fallback
    centre = np.median(pts, axis=0)
    extent = float(np.percentile(np.linalg.norm(pts - centre, axis=1), 90))
    if not extent > 0:
        return fallback
    thr = 0.01 * extent  # inlier distance: 1 % of the scene's size, whatever its units
    cos_max = np.cos(np.radians(max_tilt_deg))

    tri = pts[rng.integers(0, len(pts), size=(iterations, 3))]  # (I, 3 points, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12 * extent**2
    normals = normals[ok] / norms[ok, None]
    anchors = tri[ok, 0]
    near_up = np.abs(normals @ cam_up) >= cos_max
    normals, anchors = normals[near_up], anchors[near_up]
    if len(normals) == 0:
        return fallback
    offsets = np.einsum("ij,ij->i", normals, anchors)
    counts = np.zeros(len(normals), dtype=np.int64)
    for s in range(0, len(normals), 32):  # bounded (32, N) temporaries
        d = np.abs(pts @ normals[s : s + 32].T - offsets[s : s + 32])
        counts[s : s + 32] = (d <= thr).sum(axis=0)
    best = int(np.argmax(counts))
    inliers = np.abs(pts @ normals[best] - offsets[best]) <= thr
    # least-squares refinement on the inliers, twice (the second pass with the refined plane)
    n = normals[best]
    for _ in range(2):
        on = pts[inliers]
        mean = on.mean(axis=0)
        n = np.linalg.svd(on - mean, full_matrices=False)[2][-1]
        inliers = np.abs((pts - mean) @ n) <= thr
    fraction = float(inliers.mean())
    if n @ cam_up < 0:
        n = -n
    if fraction < min_inlier_fraction or n @ cam_up < cos_max:
        log.debug("no floor plane (%.0f %% of points on the best one): up from the cameras", 100 * fraction)
        return fallback
    log.debug("floor plane with %.0f %% of the points refines the up direction", 100 * fraction)
    return UpEstimate(n / np.linalg.norm(n), "plane", fraction, cam_up)


def rotation_to_z(up: ArrayLike) -> Float64Array:
    """The smallest rotation (3, 3) taking the unit vector ``up`` to +Z (Rodrigues' formula).

    The smallest rotation keeps the heading: before any levelling (OpenCV world, up ~ -Y) the first
    camera ends up looking along +Y with X to its right, as in Blender's front view.
    """
    u = np.asarray(up, dtype=np.float64)
    u = u / np.linalg.norm(u)
    z = np.array([0.0, 0.0, 1.0])
    c = float(u @ z)
    if c < -1.0 + 1e-12:  # upside down: half a turn about X
        return np.diag([1.0, -1.0, -1.0])
    v = np.cross(u, z)
    K = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    R: Float64Array = np.eye(3) + K + K @ K / (1.0 + c)
    return R
