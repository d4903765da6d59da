"""Confidence-ordered point sets: :class:`PointSet` and how one is built from per-view pointmaps.

A :class:`~fast3r_core.result.Reconstruction` builds one set per head (global, local) on first use;
every confidence filter of the viewer and the exporters is then a prefix of it ("every point above a
threshold" and "the top p %" alike), so moving a slider never sorts again.

Conventions as in :mod:`fast3r_core.result`: points in world coordinates (OpenCV axes, world = camera of
view 0), pixels ``(u, v)`` = (column, row) in model pixels. numpy only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from fast3r_core.errors import InputError

__all__ = ["PointSet", "PointSource", "build_point_set"]

log = logging.getLogger(__name__)

PointSource = Literal["global", "local"]
"""Which pointmaps a point set comes from: the global head's or the local head's (aligned to world)."""


@dataclass(frozen=True, eq=False)
class PointSet:
    """A flat set of points ordered by confidence, highest first.

    Because the order is by decreasing confidence, "every point above a threshold" and "the top p %"
    are prefixes: ``points.prefix(points.count_above(t))``.

    Attributes
    ----------
    xyz : np.ndarray, (N, 3) float32
        Points in world coordinates (OpenCV axes, world = camera of view 0).
    rgb : np.ndarray, (N, 3) uint8
        Colour of each point (the pixel's colour in the model-resolution image).
    conf : np.ndarray, (N,) float32
        Confidence (> 1 for the model's outputs), sorted in decreasing order.
    view : np.ndarray, (N,) uint16
        Index of the view each point comes from.
    pixel : np.ndarray, (N, 2) int32
        ``(u, v)`` = (column, row) of the point in its view, in model pixels.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    conf: np.ndarray
    view: np.ndarray
    pixel: np.ndarray

    def __post_init__(self) -> None:
        n = self.conf.shape[0]
        expected = {
            "xyz": ((n, 3), np.float32),
            "rgb": ((n, 3), np.uint8),
            "conf": ((n,), np.float32),
            "view": ((n,), np.uint16),
            "pixel": ((n, 2), np.int32),
        }
        for name, (shape, dtype) in expected.items():
            a = getattr(self, name)
            if a.shape != shape or a.dtype != dtype:
                raise ValueError(
                    f"PointSet.{name} must be {shape} {np.dtype(dtype).name}, got {a.shape} {a.dtype}"
                )
            a.setflags(write=False)

    def __len__(self) -> int:
        return int(self.conf.shape[0])

    @cached_property
    def _neg_conf(self) -> np.ndarray:
        # searchsorted needs ascending values: -conf is ascending because conf is descending.
        neg = np.negative(self.conf)
        neg.setflags(write=False)
        return neg

    def count_above(self, threshold: float) -> int:
        """Number of points with confidence strictly greater than ``threshold`` (a prefix length)."""
        return int(np.searchsorted(self._neg_conf, -np.float32(threshold), side="left"))

    def count_top_percent(self, percent: float) -> int:
        """Number of points in the top ``percent`` % (0..100) by confidence, rounded to the nearest."""
        if not 0.0 <= percent <= 100.0:
            raise InputError(f"top percent must be within 0..100, got {percent}")
        return round(len(self) * percent / 100.0)

    def threshold_for_count(self, n: int) -> float:
        """Confidence of the ``n``-th point (1-based): keeping ``conf >= value`` keeps about ``n`` points.

        Used to show the absolute threshold that corresponds to a "top p %" choice. Returns +inf for
        ``n <= 0`` and the lowest confidence for ``n >= len``.
        """
        if n <= 0 or len(self) == 0:
            return float("inf")
        return float(self.conf[min(n, len(self)) - 1])

    def prefix(self, n: int) -> PointSet:
        """The ``n`` most confident points (views into this set, no copy)."""
        n = max(0, min(int(n), len(self)))
        if n == len(self):
            return self
        return PointSet(self.xyz[:n], self.rgb[:n], self.conf[:n], self.view[:n], self.pixel[:n])

    def take(self, mask_or_index: np.ndarray) -> PointSet:
        """The points selected by a boolean mask (N,) or an increasing index array (copies)."""
        m = mask_or_index
        return PointSet(self.xyz[m], self.rgb[m], self.conf[m], self.view[m], self.pixel[m])


_CHUNK = 1 << 20  # elements per step of the chunked loops below (bounded temporaries)


def build_point_set(
    pts: Sequence[np.ndarray],
    conf: Sequence[np.ndarray],
    colors: Sequence[np.ndarray],
    keep: Sequence[np.ndarray] | None = None,
) -> PointSet:
    """Flatten per-view pointmaps into one :class:`PointSet` sorted by decreasing confidence.

    Points with a non-finite coordinate or a NaN confidence are left out, and so are the pixels that
    ``keep`` masks out (one (H_v, W_v) bool array per view, True = keep: the user's masks, the sky; see
    :attr:`fast3r_core.result.Reconstruction.keep_masks`). Ties keep the view order, then row-major
    pixel order (a stable sort), so the result is deterministic.

    Memory: besides the result (29 bytes a point) the peak holds the sort order (8 bytes a point) and
    one concatenated input field at a time (at most 12 bytes a point); every other temporary is
    made in chunks (bench/outputs.py).
    """
    shapes = [c.shape for c in conf]
    sizes = np.array([h * w for h, w in shapes], dtype=np.int64)
    widths = np.array([w for _, w in shapes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    ends = offsets + sizes

    conf_all = np.concatenate([c.reshape(-1) for c in conf])
    # +inf confidence (exp overflow in half precision) is a very confident point: keep it, first.
    finite = np.concatenate(
        [
            ~np.isnan(c.reshape(-1)) & np.isfinite(p.reshape(-1, 3)).all(axis=1)
            for p, c in zip(pts, conf, strict=True)
        ]
    )
    if keep is not None:  # masked pixels leave like non-finite ones: one code path, no copy of the maps
        finite &= np.concatenate([np.asarray(m, dtype=bool).reshape(-1) for m in keep])
    if finite.all():
        del finite
        order = _descending_order(conf_all)
    else:
        kept = np.flatnonzero(finite)
        del finite
        log.debug("leaving out %d non-finite or masked points", conf_all.size - kept.size)
        order = kept[_descending_order(conf_all[kept])]
        del kept
    conf_out = conf_all[order]
    del conf_all

    n = order.size
    view = np.empty(n, dtype=np.uint16)
    pixel = np.empty((n, 2), dtype=np.int32)
    for s in range(0, n, _CHUNK):
        o = order[s : s + _CHUNK]
        v = np.searchsorted(ends, o, side="right")
        row, col = np.divmod(o - offsets[v], widths[v])
        view[s : s + _CHUNK] = v
        pixel[s : s + _CHUNK, 0] = col
        pixel[s : s + _CHUNK, 1] = row
    xyz_all = np.concatenate([p.reshape(-1, 3) for p in pts])
    xyz = _gather_rows(xyz_all, order)
    del xyz_all
    rgb_all = np.concatenate([c.reshape(-1, 3) for c in colors])
    rgb = _gather_rows(rgb_all, order)
    del rgb_all, order
    return PointSet(xyz=xyz, rgb=rgb, conf=conf_out, view=view, pixel=pixel)


def _descending_order(values: np.ndarray) -> np.ndarray:
    """Indices that sort float32 ``values`` (no NaN) in decreasing order, ties in increasing index.

    Same result as ``np.argsort(-values, kind="stable")``, about 1.5x faster for millions of values:
    the float bits are mapped to unsigned integers with the same order, packed with the index into
    unique uint64 keys, and sorted with numpy's (SIMD) unstable sort. The keys are built in chunks
    and become the returned int64 indices in place (8 bytes a value in all).
    """
    n = values.size
    if n >= 2**32:
        return np.argsort(-values, kind="stable")
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    keys = np.empty(n, dtype=np.uint64)
    for s in range(0, n, _CHUNK):
        b = bits[s : s + _CHUNK]
        # IEEE-754 order as unsigned: flip every bit of negatives, only the sign bit of the others.
        ascending = np.where(b >> 31 == 1, ~b, b | np.uint32(0x80000000))
        k = keys[s : s + _CHUNK]
        k[:] = ~ascending
        k <<= np.uint64(32)
        k |= np.arange(s, s + b.size, dtype=np.uint64)
    keys.sort()
    keys &= np.uint64(0xFFFFFFFF)
    return keys.view(np.int64)


def _gather_rows(a: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``a[index]`` for a C-contiguous (N, C) array, gathering whole rows as opaque items (faster)."""
    a = np.ascontiguousarray(a)
    row = np.dtype((np.void, a.dtype.itemsize * a.shape[1]))
    return a.view(row).reshape(-1)[index].view(a.dtype).reshape(-1, a.shape[1])
