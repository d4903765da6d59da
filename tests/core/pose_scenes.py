"""Synthetic pointmaps with known poses and focals, for the pose tests and bench/poses.py."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fast3r_core.geometry import se3_inverse

from .recon_factory import look_at_c2w

__all__ = ["chordal_deg", "synthetic_scene"]


def chordal_deg(R1: np.ndarray, R2: np.ndarray) -> float:
    """Rotation difference in degrees, float64, accurate near zero (the parity README's formula)."""
    d = np.linalg.norm(np.asarray(R1, np.float64) - np.asarray(R2, np.float64))
    return math.degrees(2.0 * math.asin(min(1.0, d / (2.0 * math.sqrt(2.0)))))


def synthetic_scene(
    focals: Sequence[float],
    H: int = 96,
    W: int = 128,
    noise: float = 0.002,
    outliers: float = 0.05,
    seed: int = 0,
    step_rad: float = 0.35,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Global pointmaps (V,H,W,3) float32, conf (V,H,W), GT c2w (V,4,4) with world = camera 0, and the
    local pointmaps (each camera's frame, scaled by 1/(v+2)). Camera ``i`` sits at ``step_rad * i`` on
    an arc around the scene; its pixels follow K = ``[[f, 0, W/2], [0, f, H/2], [0, 0, 1]]``. Depth
    varies smoothly; 3-D noise is proportional to depth; a fraction of pixels are gross outliers with
    low (but > 1) confidence."""
    rng = np.random.default_rng(seed)
    V = len(focals)
    c2w = []
    for i in range(V):
        a = step_rad * i
        centre = np.array([3 * math.sin(a), 0.3 * rng.standard_normal(), 3 - 3 * math.cos(a)])
        c2w.append(look_at_c2w(centre, np.array([0.0, 0.0, 3.0]) + 0.2 * rng.standard_normal(3)))
    c2w_arr = se3_inverse(c2w[0]) @ np.stack(c2w)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    glob, loc, conf = [], [], []
    for i, f in enumerate(focals):
        depth = 3 + 0.5 * np.sin(u / (W / 8) + i) * np.cos(v / (H / 8)) + 0.3 * u / W
        cam = np.stack([(u - W / 2) / f * depth, (v - H / 2) / f * depth, depth], -1)
        cam_noisy = cam + noise * depth[..., None] * rng.standard_normal(cam.shape)
        world = cam_noisy @ c2w_arr[i, :3, :3].T + c2w_arr[i, :3, 3]
        c = 1 + np.exp(rng.uniform(0, 3, (H, W)))
        bad = rng.random((H, W)) < outliers
        world[bad] += rng.normal(scale=1.0, size=(int(bad.sum()), 3))
        c[bad] = 1 + rng.uniform(0.01, 0.5, int(bad.sum()))
        glob.append(world.astype(np.float32))
        loc.append((cam_noisy / (i + 2)).astype(np.float32))
        conf.append(c.astype(np.float32))
    return np.stack(glob), np.stack(conf), c2w_arr, np.stack(loc)
