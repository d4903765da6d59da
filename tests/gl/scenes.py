"""Synthetic reconstructions that look like something, for viewer tests, screenshots and benchmarks."""

from __future__ import annotations

import dataclasses

import numpy as np

from fast3r_core.result import Reconstruction
from tests.core.recon_factory import make_synthetic_reconstruction

__all__ = ["showcase_reconstruction", "world_texture"]


def world_texture(xyz: np.ndarray) -> np.ndarray:
    """A colour for each world point: hue bands along x, a checker in x/y, darker with depth.

    Parameters
    ----------
    xyz : np.ndarray, (..., 3) world points (OpenCV axes)

    Returns
    -------
    np.ndarray, (..., 3) uint8
    """
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    t = np.clip((x + 2.5) / 5.0, 0.0, 1.0)
    r = 0.55 + 0.45 * np.cos(2 * np.pi * (t + 0.0))
    g = 0.55 + 0.45 * np.cos(2 * np.pi * (t + 0.33))
    b = 0.55 + 0.45 * np.cos(2 * np.pi * (t + 0.67))
    checker = ((np.floor(x * 2.0) + np.floor(y * 2.0)) % 2).astype(np.float32)
    shade = (0.75 + 0.25 * checker) * np.clip(1.25 - 0.08 * z, 0.4, 1.0)
    rgb = np.stack([r, g, b], axis=-1) * shade[..., None]
    return np.clip(rgb * 255.0, 0, 255).astype(np.uint8)


def showcase_reconstruction(n_views: int = 6, long_side: int = 160, seed: int = 0) -> Reconstruction:
    """:func:`make_synthetic_reconstruction` with colours taken from a world-space texture.

    Every view sees the same coloured surface, so the point cloud and the frustum images agree. Views
    sit on an arc around (0, 0, 4); view 0 is the world frame (identity pose).
    """
    rec = make_synthetic_reconstruction(n_views, long_side=long_side, seed=seed)
    colors = tuple(world_texture(p) for p in rec.pts3d)
    return dataclasses.replace(rec, colors=colors)
