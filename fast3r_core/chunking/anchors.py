"""Anchor views shared by every pass of a chunked run: view 0 first, then views chosen for coverage.

Coverage: farthest-point sampling on a cheap global image descriptor (a 6x6 grid of mean colours and
a coarse colour histogram of the model-resolution image), so that the anchors look at different parts
of the scene and most views of a pass share content with one of them. "even" takes views evenly spread
by input order instead (videos, ordered walk-throughs).

numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fast3r_core.errors import InputError
from fast3r_core.options import ANCHOR_METHODS

__all__ = ["ANCHOR_METHODS", "even_anchors", "farthest_point_order", "image_descriptor", "select_anchors"]

_GRID = 6
_HIST_BINS = 4  # per channel: 4^3 = 64 joint colour bins


def image_descriptor(rgb: np.ndarray) -> np.ndarray:
    """A small global descriptor of one image.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 image (any size of at least 6x6 pixels).

    Returns
    -------
    (6 * 6 * 3 + 64,) float32: the mean colour of each cell of a 6x6 grid (in [0, 1], layout) followed
    by the joint RGB histogram in 4x4x4 bins (fractions summing to 1, colour content).
    """
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < _GRID or a.shape[1] < _GRID:
        raise InputError(f"an image descriptor needs an (H, W, 3) image of at least 6x6, got {a.shape}")
    h, w = a.shape[:2]
    rows = np.linspace(0, h, _GRID + 1).astype(int)
    cols = np.linspace(0, w, _GRID + 1).astype(int)
    f = a.astype(np.float32) / 255.0
    # block means via cumulative sums: exact cell means without resampling
    cs = np.zeros((h + 1, w + 1, 3), np.float64)
    cs[1:, 1:] = f.cumsum(0).cumsum(1)
    r0, r1 = rows[:-1], rows[1:]
    c0, c1 = cols[:-1], cols[1:]
    sums = cs[r1][:, c1] - cs[r0][:, c1] - cs[r1][:, c0] + cs[r0][:, c0]
    area = np.outer(r1 - r0, c1 - c0)[..., None]
    grid = (sums / area).astype(np.float32).reshape(-1)
    q = (a.astype(np.int32) * _HIST_BINS) // 256
    code = (q[..., 0] * _HIST_BINS + q[..., 1]) * _HIST_BINS + q[..., 2]
    hist = np.bincount(code.reshape(-1), minlength=_HIST_BINS**3).astype(np.float32)
    hist /= max(1.0, float(hist.sum()))
    return np.concatenate([grid, hist])


def farthest_point_order(descriptors: np.ndarray, count: int, first: int = 0) -> list[int]:
    """Farthest-point sampling: ``first``, then repeatedly the item farthest from those chosen.

    Parameters
    ----------
    descriptors : (N, D) float array.
    count : how many indices to return (at most N).

    Returns
    -------
    ``count`` distinct indices, ``first`` first; ties go to the lowest index (deterministic).
    """
    d = np.asarray(descriptors, dtype=np.float64)
    n = d.shape[0]
    count = max(0, min(count, n))
    if count == 0:
        return []
    chosen = [first]
    dist = np.linalg.norm(d - d[first], axis=1)
    dist[first] = -1.0
    while len(chosen) < count:
        nxt = int(np.argmax(dist))  # first maximum: lowest index on ties
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(d - d[nxt], axis=1))
        dist[chosen] = -1.0
    return chosen


def even_anchors(n_views: int, count: int) -> list[int]:
    """``count`` views evenly spread over ``0..n_views-1`` by input order, view 0 first."""
    count = max(0, min(count, n_views))
    if count == 0:
        return []
    # the points of an even split of the sequence into ``count`` parts; 0 is always the first
    picks = [round(i * n_views / count) for i in range(count)]
    return list(dict.fromkeys(min(p, n_views - 1) for p in picks))


def select_anchors(
    images: Sequence[np.ndarray] | None,
    n_views: int,
    count: int,
    method: str = "coverage",
) -> list[int]:
    """Indices of ``count`` anchor views, view 0 first, in order of preference.

    Parameters
    ----------
    images : the views' (H, W, 3) uint8 model-resolution images (needed for "coverage").
    n_views : number of views.
    count : anchors wanted (capped at ``n_views``).
    method : "coverage" (farthest-point sampling on :func:`image_descriptor`) or "even" (by order).
    """
    if method not in ANCHOR_METHODS:
        raise InputError(f"anchor method must be one of {', '.join(ANCHOR_METHODS)}, not {method!r}")
    if method == "even" or count <= 1:
        return even_anchors(n_views, count)
    if images is None or len(images) != n_views:
        raise InputError("coverage anchors need the image of every view")
    desc = np.stack([image_descriptor(im) for im in images])
    return farthest_point_order(desc, count, first=0)
