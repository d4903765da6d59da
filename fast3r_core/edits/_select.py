"""Screen-space selection: lasso (polygon, even-odd rule), rectangle, inversion."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fast3r_core.errors import EditsError

from ._model import IdArray

MAX_POLYGON_VERTICES = 100_000


def _screen_points(xy_screen: ArrayLike) -> NDArray[np.float64]:
    xy = np.asarray(xy_screen, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise EditsError(f"screen points must be (N, 2), got shape {xy.shape}")
    return xy


def lasso_select(xy_screen: ArrayLike, polygon: ArrayLike) -> NDArray[np.bool_]:
    """Which screen points lie inside a closed polygon (even-odd rule), exactly.

    Parameters
    ----------
    xy_screen : array_like, (N, 2) float
        Points projected to the screen (any 2-D pixel frame, the same as the polygon's); points behind
        the camera or non-finite are the caller's to leave out (a NaN is never selected).
    polygon : array_like, (M, 2) float
        The lasso's vertices in order; the last joins the first. Fewer than 3 vertices select nothing.

    Returns
    -------
    np.ndarray, (N,) bool

    Notes
    -----
    The crossing-number test, organised so that its cost is about N log N plus, per edge, the points of
    its horizontal band: the points are sorted by y once and each edge only looks at the contiguous
    range of points whose y is within its span (half-open, so a vertex is never counted twice). A point
    exactly on an edge may fall on either side, as in any even-odd rasteriser.
    """
    xy = _screen_points(xy_screen)
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2:
        raise EditsError(f"polygon must be (M, 2), got shape {poly.shape}")
    if len(poly) > MAX_POLYGON_VERTICES or not np.isfinite(poly).all():
        raise EditsError(f"polygon must have at most {MAX_POLYGON_VERTICES} finite vertices")
    inside = np.zeros(len(xy), dtype=bool)
    if len(poly) < 3 or len(xy) == 0:
        return inside
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    cand = np.flatnonzero((xy >= lo).all(axis=1) & (xy <= hi).all(axis=1))
    if cand.size == 0:
        return inside
    order = cand[np.argsort(xy[cand, 1], kind="stable")]
    ys = xy[order, 1]
    xs = xy[order, 0]
    parity = np.zeros(order.size, dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        if y0 == y1:
            continue  # a horizontal edge never crosses a horizontal ray
        start, end = np.searchsorted(ys, [min(y0, y1), max(y0, y1)], side="left")
        if start == end:
            continue
        py = ys[start:end]
        x_cross = x0 + (py - y0) * ((x1 - x0) / (y1 - y0))
        parity[start:end] ^= xs[start:end] < x_cross
    inside[order] = parity
    return inside


def rect_select(xy_screen: ArrayLike, corner_a: ArrayLike, corner_b: ArrayLike) -> NDArray[np.bool_]:
    """Which screen points (N, 2) lie in the rectangle spanned by two opposite corners (2,), boundary
    included (the corners may be given in any order)."""
    xy = _screen_points(xy_screen)
    a = np.asarray(corner_a, dtype=np.float64).reshape(2)
    b = np.asarray(corner_b, dtype=np.float64).reshape(2)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    mask: NDArray[np.bool_] = np.logical_and((xy >= lo).all(axis=1), (xy <= hi).all(axis=1))
    return mask


def invert_selection(selected_ids: ArrayLike, candidate_ids: ArrayLike) -> IdArray:
    """The candidates that are not selected: sorted unique int64 ids.

    ``candidate_ids`` are the ids the user can currently select (e.g. the kept points above the
    confidence threshold); a viewer holding a boolean mask inverts it with ``~mask`` instead.
    """
    sel = np.asarray(selected_ids, dtype=np.int64).reshape(-1)
    cand = np.unique(np.asarray(candidate_ids, dtype=np.int64).reshape(-1))
    keep = np.isin(cand, sel, invert=True)
    out: IdArray = cand[keep]
    return out
