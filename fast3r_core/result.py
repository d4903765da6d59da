"""The result of a run: :class:`Reconstruction`, its confidence-ordered point sets, and the project file.

Conventions (they hold for every array here unless a name says otherwise):

* Camera axes are OpenCV's: x right, y down, z forward.
* "World" is the common frame of the global pointmaps, which is the camera frame of view 0.
* Poses are camera-to-world (``cam_to_world``): ``X_world = R @ X_cam + t``.
* "Model pixels" index the image the network saw (resized, then centre-cropped): column ``u``, row ``v``,
  with the centre of the top-left pixel at (0, 0). "Original pixels" index the user's photo the same
  way. A model pixel maps to the original photo as ``x_orig = (u + left + 0.5) / sx - 0.5`` with
  ``sx = resized_w / original_w`` (and likewise for rows with ``top`` and ``sy``).

This module imports numpy, the standard library and the numpy-only :mod:`fast3r_core.geometry`, so a
project file opens without torch.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import json
import logging
import os
import struct
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeGuard

import numpy as np

from fast3r_core.atomic import atomic_path
from fast3r_core.errors import InputError, ProjectFileError
from fast3r_core.geometry import model_pixels_to_original, se3_inverse

__all__ = [
    "LOW_POSE_INLIER_SHARE",
    "PROJECT_FORMAT",
    "PROJECT_FORMAT_VERSION",
    "PROJECT_SUFFIX",
    "PointSet",
    "PointSource",
    "Reconstruction",
    "RunRecord",
    "ViewStats",
    "describe_chunking",
    "load_project",
    "project_size",
    "save_project",
]

log = logging.getLogger(__name__)

PROJECT_FORMAT = "fast3r-project"
"""Value of the "format" field of a project's meta.json."""
PROJECT_FORMAT_VERSION = 1
"""Major version of the project format written by this code; a file with a larger one is refused."""
PROJECT_SUFFIX = ".f3r"

PointSource = Literal["global", "local"]
"""Which pointmaps a point set comes from: the global head's or the local head's (aligned to world)."""

_POINT_SOURCES: tuple[str, ...] = ("global", "local")


def describe_chunking(n_passes: int, largest_pass: int, n_anchors: int) -> str:
    """One line for the status bar / ``fast3r info``: ``"4 passes of up to 16 views (4 shared anchors)"``.

    Lives with the run records it describes (:meth:`Reconstruction.chunking_summary`); the chunk
    planner uses it too, so that a plan and the result made from it are described in the same words.
    """
    anchors = f"{n_anchors} shared anchor{'s' if n_anchors != 1 else ''}"
    return f"{n_passes} pass{'es' if n_passes != 1 else ''} of up to {largest_pass} views ({anchors})"


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------------------------------
# Point sets
# --------------------------------------------------------------------------------------------------


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
        return _readonly(np.negative(self.conf))

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


def _build_point_set(
    pts: Sequence[np.ndarray], conf: Sequence[np.ndarray], colors: Sequence[np.ndarray]
) -> PointSet:
    """Flatten per-view pointmaps into one :class:`PointSet` sorted by decreasing confidence.

    Points with a non-finite coordinate or a NaN confidence are left out. Ties keep the view order,
    then row-major pixel order (a stable sort), so the result is deterministic.

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
    if finite.all():
        del finite
        order = _descending_order(conf_all)
    else:
        keep = np.flatnonzero(finite)
        del finite
        log.debug("leaving out %d non-finite points", conf_all.size - keep.size)
        order = keep[_descending_order(conf_all[keep])]
        del keep
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


@dataclass(frozen=True)
class ViewStats:
    """Confidence statistics of one view (over its whole pointmap).

    Attributes
    ----------
    view : int
        View index.
    n_points : int
        Pixels in the view's pointmap (H * W at model resolution).
    n_above : int
        Pixels with confidence > the threshold given to :meth:`Reconstruction.per_view_stats`
        (``n_points`` when no threshold was given).
    mean_conf, median_conf, max_conf : float
        Statistics of the view's confidence map.
    pose_ok : bool
        Whether the pose estimation (PnP) succeeded for this view.
    pose_inlier_share : float
        Share of the view's confident points that fit its pose (NaN: not recorded, or failed).
    """

    view: int
    n_points: int
    n_above: int
    mean_conf: float
    median_conf: float
    max_conf: float
    pose_ok: bool
    pose_inlier_share: float = float("nan")

    @property
    def pose_reliable(self) -> bool:
        """The pose succeeded and fits at least :data:`LOW_POSE_INLIER_SHARE` of the points (or the
        share was not recorded)."""
        return self.pose_ok and not self.pose_inlier_share < LOW_POSE_INLIER_SHARE


@dataclass(frozen=True)
class RunRecord:
    """Which views one run made and how (one entry of :attr:`Reconstruction.runs`; JSON in a project).

    Attributes
    ----------
    views : list of int
        Indices of the views this run made.
    kind : str
        "reconstruct" (the first run) or "add" (views added to an existing result).
    model : str
        Name of the model of the run ("" when not recorded).
    architecture : str
        The model's depths and widths (``fast3r info``; "" when not recorded).
    passes : int
        Forward passes of the run (1: one pass).
    views_per_pass : list of int
        Views of each pass, anchors included ([] when not recorded).
    max_views_per_pass : int or None
        The largest pass allowed by the plan (None when not recorded).
    anchors : list of int
        Views shared by every pass (and, for an added run, the existing views it was aligned to).
    automatic : bool or None
        The passes were planned from the free memory (None when not recorded).
    budget_bytes, estimate_bytes : int or None
        Memory budget of the plan and the one-pass estimate (None when not recorded).
    alignment : list of dict
        Per pass: the similarity's scale, rotation angle, inliers and rmse, or ``{"reference": true}``.
    options : dict or None
        Run options (``ReconstructOptions.to_json``) of an added run (None: the result's options).
    timings : dict of str to float, or None
        Seconds per stage of this run (None: the result's timings, for the first run).
    extra : dict
        Keys this version does not know (written by a newer one), kept so that a save writes them back.
    """

    views: list[int]
    kind: str = "reconstruct"
    model: str = ""
    architecture: str = ""
    passes: int = 1
    views_per_pass: list[int] = field(default_factory=list)
    max_views_per_pass: int | None = None
    anchors: list[int] = field(default_factory=list)
    automatic: bool | None = None
    budget_bytes: int | None = None
    estimate_bytes: int | None = None
    alignment: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] | None = None
    timings: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """A record from its JSON object (any version: missing keys take their defaults, unknown keys
        go to :attr:`extra`). Raises ValueError when a known key has the wrong type."""
        known = {f.name for f in fields(cls)} - {"extra"}
        d = dict(data)
        views = d.get("views")
        if not isinstance(views, list) or not all(_is_int(v) for v in views):
            raise ValueError("a run's 'views' must be a list of view indices")

        def ints(key: str) -> list[int]:
            value = d.get(key, [])
            if not isinstance(value, list) or not all(_is_int(v) for v in value):
                raise ValueError(f"a run's {key!r} must be a list of integers")
            return [int(v) for v in value]

        def opt_int(key: str) -> int | None:
            value = d.get(key)
            if value is not None and not _is_int(value):
                raise ValueError(f"a run's {key!r} must be an integer")
            return None if value is None else int(value)

        def opt_dict(key: str) -> dict[str, Any] | None:
            value = d.get(key)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"a run's {key!r} must be an object")
            return None if value is None else dict(value)

        alignment = d.get("alignment", [])
        if not isinstance(alignment, list) or not all(isinstance(a, dict) for a in alignment):
            raise ValueError("a run's 'alignment' must be a list of objects")
        automatic = d.get("automatic")
        timings = opt_dict("timings")
        return cls(
            views=[int(v) for v in views],
            kind=str(d.get("kind") or "reconstruct"),
            model=str(d.get("model") or ""),
            architecture=str(d.get("architecture") or ""),
            passes=opt_int("passes") or 1,
            views_per_pass=ints("views_per_pass"),
            max_views_per_pass=opt_int("max_views_per_pass"),
            anchors=ints("anchors"),
            automatic=None if automatic is None else bool(automatic),
            budget_bytes=opt_int("budget_bytes"),
            estimate_bytes=opt_int("estimate_bytes"),
            alignment=[dict(a) for a in alignment],
            options=opt_dict("options"),
            timings=None if timings is None else {str(k): float(v) for k, v in timings.items()},
            extra={k: v for k, v in d.items() if k not in known},
        )

    def to_json(self, *, complete: bool = False) -> dict[str, Any]:
        """The JSON object of the record.

        By default (the project file) "views" and the other keys whose value differs from the
        default: a missing key reads back as its default, here and in the versions before RunRecord.
        ``complete``: every key (for ``--json`` output, whose readers expect a fixed set of keys).
        """
        out: dict[str, Any] = {"views": list(self.views)}
        for f in fields(self):
            if f.name in ("views", "extra"):
                continue
            value = getattr(self, f.name)
            default = f.default_factory() if callable(f.default_factory) else f.default
            if complete or value != default:
                out[f.name] = copy.deepcopy(value)  # a JSON tree of its own, not shared with the record
        return {**self.extra, **out}


# --------------------------------------------------------------------------------------------------
# Reconstruction
# --------------------------------------------------------------------------------------------------

#: A pose that fits fewer than this share of a view's confident points is kept but unreliable.
LOW_POSE_INLIER_SHARE = 0.25

_PER_VIEW_FIELDS: tuple[tuple[str, Any, int], ...] = (
    # name, dtype, number of trailing channels (0 = none)
    ("pts3d", np.float32, 3),
    ("conf", np.float32, 0),
    ("pts3d_local", np.float32, 3),
    ("conf_local", np.float32, 0),
    ("colors", np.uint8, 3),
)

_STACKED_FIELDS: tuple[tuple[str, Any, tuple[int, ...]], ...] = (
    ("cam_to_world", np.float64, (4, 4)),
    ("intrinsics", np.float64, (3, 3)),
    ("intrinsics_original", np.float64, (3, 3)),
    ("original_sizes", np.int64, (2,)),
    ("resized_sizes", np.int64, (2,)),
    ("crop_boxes", np.int64, (4,)),
    ("pose_ok", np.bool_, ()),
)


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """Everything one run produced, as read-only numpy arrays on the CPU (no tensors).

    Views may have different sizes (portrait and landscape photos mixed), so per-view maps are tuples
    with one array per view. The arrays given to the constructor are taken over, not copied, when they
    already have the right dtype, and are made read-only.

    Attributes
    ----------
    pts3d : tuple of np.ndarray, each (H_v, W_v, 3) float32
        Global pointmaps: for each model pixel, its 3-D point in world coordinates (OpenCV axes,
        world = camera of view 0).
    conf : tuple of np.ndarray, each (H_v, W_v) float32
        Confidence of the global pointmaps (> 1).
    pts3d_local : tuple of np.ndarray, each (H_v, W_v, 3) float32
        Local pointmaps (the local head's, in each view's camera frame) transformed into world
        coordinates with the view's pose.
    conf_local : tuple of np.ndarray, each (H_v, W_v) float32
        Confidence of the local pointmaps.
    colors : tuple of np.ndarray, each (H_v, W_v, 3) uint8
        RGB of each model pixel (the resized, cropped input image).
    cam_to_world : np.ndarray, (V, 4, 4) float64
        Camera-to-world poses, OpenCV camera axes.
    intrinsics : np.ndarray, (V, 3, 3) float64
        Pinhole intrinsics in model pixels (pixel centres at integer coordinates).
    intrinsics_original : np.ndarray, (V, 3, 3) float64
        The same camera in pixels of the original photo (resize and crop undone), same pixel convention.
    original_sizes : np.ndarray, (V, 2) int64
        (width, height) of each original photo, after EXIF orientation.
    resized_sizes : np.ndarray, (V, 2) int64
        (width, height) of each photo after the resize and before the crop.
    crop_boxes : np.ndarray, (V, 4) int64
        (left, top, right, bottom) of the crop, in resized-image pixels; ``right - left == W_v`` and
        ``bottom - top == H_v``.
    image_paths : tuple of str
        Source image of each view, in input order.
    model_name : str
        Name of the model that produced this result.
    options : dict
        JSON-able run options (size, seed, image_ids, device, dtype, ...). Use lists, not tuples, so
        that a project file gives back an equal dict.
    timings : dict of str to float
        Seconds spent per stage.
    pose_ok : np.ndarray, (V,) bool
        Whether the pose estimation (PnP) succeeded for each view; when not, the pose is a fallback.
        Defaults to all True.
    runs : tuple of RunRecord
        Which views came from which run, and how (passes, anchors, alignment; see :class:`RunRecord`).
        JSON objects (a project file's) are accepted and converted. Defaults to one run holding every
        view (what a project file from before runs were recorded gives back). See :attr:`view_runs`.
    format_version : int
        Project-format version this object was read from (or will be written as).
    pose_inlier_share : np.ndarray, (V,) float32
        Share of each view's confident points within the reprojection tolerance of its pose, in [0, 1];
        NaN where unknown (a failed pose, a project written before it was recorded). Below
        :data:`LOW_POSE_INLIER_SHARE` the pose is unreliable. Defaults to all NaN.
    """

    pts3d: tuple[np.ndarray, ...]
    conf: tuple[np.ndarray, ...]
    pts3d_local: tuple[np.ndarray, ...]
    conf_local: tuple[np.ndarray, ...]
    colors: tuple[np.ndarray, ...]
    cam_to_world: np.ndarray
    intrinsics: np.ndarray
    intrinsics_original: np.ndarray
    original_sizes: np.ndarray
    resized_sizes: np.ndarray
    crop_boxes: np.ndarray
    image_paths: tuple[str, ...]
    model_name: str
    options: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # None (the default) is replaced in __post_init__, so every reader gets an array; a dataclass field
    # cannot be typed "optional in __init__, always set afterwards", hence the ignore.
    pose_ok: np.ndarray = None  # type: ignore[assignment]
    runs: tuple[RunRecord, ...] = ()
    format_version: int = PROJECT_FORMAT_VERSION
    pose_inlier_share: np.ndarray = None  # type: ignore[assignment]  # as pose_ok: never None once built

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the fields once, here
        n_views = _n_views(self.pts3d)
        if n_views == 0:
            raise ValueError("a Reconstruction needs at least one view")

        shapes: list[tuple[int, int]] = []
        for name, dtype, channels in _PER_VIEW_FIELDS:
            arrays = _as_view_tuple(name, getattr(self, name), n_views)
            checked = []
            for v, a in enumerate(arrays):
                if name == "colors" and a.dtype != np.uint8:
                    raise ValueError(f"colors[{v}] must be uint8, got {a.dtype}")
                if name != "colors" and not np.issubdtype(a.dtype, np.floating):
                    raise ValueError(f"{name}[{v}] must be floating point, got {a.dtype}")
                a = np.ascontiguousarray(a, dtype=dtype)
                want_ndim = 3 if channels else 2
                if a.ndim != want_ndim or (channels and a.shape[2] != channels):
                    trail = f"{channels}" if channels else ""
                    raise ValueError(
                        f"{name}[{v}] must have shape (H, W{', ' + trail if trail else ''}), got {a.shape}"
                    )
                if name == "pts3d":
                    shapes.append((a.shape[0], a.shape[1]))
                elif a.shape[:2] != shapes[v]:
                    raise ValueError(f"{name}[{v}] has shape {a.shape}, but pts3d[{v}] is {shapes[v] + (3,)}")
                checked.append(_readonly(a))
            set_(self, name, tuple(checked))

        if self.pose_ok is None:
            set_(self, "pose_ok", np.ones(n_views, dtype=bool))
        for name, dtype, trailing in _STACKED_FIELDS:
            value = getattr(self, name)
            a = np.asarray(value)
            if name == "pose_ok" and a.dtype != np.bool_:
                raise ValueError(f"pose_ok must be bool, got {a.dtype}")
            a = np.ascontiguousarray(a, dtype=dtype)
            if a.shape != (n_views, *trailing):
                raise ValueError(f"{name} must have shape {(n_views, *trailing)}, got {a.shape}")
            set_(self, name, _readonly(a))

        share = self.pose_inlier_share
        share = np.full(n_views, np.nan, np.float32) if share is None else np.asarray(share, np.float32)
        if share.shape != (n_views,):
            raise ValueError(f"pose_inlier_share must have shape {(n_views,)}, got {share.shape}")
        set_(self, "pose_inlier_share", _readonly(np.ascontiguousarray(share)))

        widths = self.crop_boxes[:, 2] - self.crop_boxes[:, 0]
        heights = self.crop_boxes[:, 3] - self.crop_boxes[:, 1]
        for v, (h, w) in enumerate(shapes):
            if (widths[v], heights[v]) != (w, h):
                raise ValueError(
                    f"crop_boxes[{v}] = {self.crop_boxes[v].tolist()} is {widths[v]}x{heights[v]}, "
                    f"but the pointmap of view {v} is {w}x{h} (W x H)"
                )
        if (self.original_sizes <= 0).any() or (self.resized_sizes <= 0).any():
            raise ValueError("original_sizes and resized_sizes must be positive")

        paths = tuple(os.fspath(p) for p in self.image_paths)
        if len(paths) != n_views:
            raise ValueError(f"image_paths must have {n_views} entries, got {len(paths)}")
        set_(self, "image_paths", paths)
        set_(self, "model_name", str(self.model_name))
        set_(self, "options", dict(self.options))
        set_(self, "timings", {str(k): float(v) for k, v in self.timings.items()})

        runs = tuple(r if isinstance(r, RunRecord) else RunRecord.from_json(r) for r in self.runs) or (
            RunRecord(views=list(range(n_views))),
        )
        for i, run in enumerate(runs):
            if not all(0 <= x < n_views for x in run.views):
                raise ValueError(f"runs[{i}].views must be view indices < {n_views}")
        set_(self, "runs", runs)
        set_(self, "format_version", int(self.format_version))

    # -- shape helpers ---------------------------------------------------------------------------

    @property
    def n_views(self) -> int:
        """Number of views V."""
        return len(self.pts3d)

    def view_shape(self, v: int) -> tuple[int, int]:
        """(H, W) of view ``v`` at model resolution."""
        h, w = self.pts3d[v].shape[:2]
        return int(h), int(w)

    @property
    def view_runs(self) -> np.ndarray:
        """(V,) int32: index into :attr:`runs` of the run that made each view (a later run wins)."""
        out = np.zeros(self.n_views, dtype=np.int32)
        for i, run in enumerate(self.runs):
            out[np.asarray(run.views, dtype=np.int64)] = i
        return out

    def chunking_summary(self) -> str:
        """One line on how the result was made when it was not one plain pass, else "".

        E.g. ``"made in 4 passes of up to 16 views (4 shared anchors)"`` or
        ``"+5 views added later"`` (the details of each run: :attr:`runs`).
        """
        first = self.runs[0]
        parts = []
        if first.passes > 1:
            sizes = first.views_per_pass or [0]
            parts.append("made in " + describe_chunking(first.passes, max(sizes), len(first.anchors)))
        added = sum(len(r.views) for r in self.runs[1:])
        if added:
            parts.append(f"+{added} view{'s' if added != 1 else ''} added later")
        return "; ".join(parts)

    @property
    def n_pixels(self) -> int:
        """Total number of model pixels over all views (before dropping non-finite points)."""
        return int(sum(c.size for c in self.conf))

    @property
    def world_to_cam(self) -> np.ndarray:
        """(V, 4, 4) float64 world-to-camera matrices (inverses of ``cam_to_world``), OpenCV axes."""
        return se3_inverse(self.cam_to_world)

    # -- confidence-ordered points -------------------------------------------------------------------

    @cached_property
    def global_points(self) -> PointSet:
        """All global-head points, ordered by decreasing confidence (computed once)."""
        return _build_point_set(self.pts3d, self.conf, self.colors)

    @cached_property
    def local_points(self) -> PointSet:
        """All local-head points (aligned to world), ordered by decreasing local confidence."""
        return _build_point_set(self.pts3d_local, self.conf_local, self.colors)

    def points(self, source: PointSource = "global") -> PointSet:
        """The confidence-ordered :class:`PointSet` of ``source`` ("global" or "local")."""
        if source == "global":
            return self.global_points
        if source == "local":
            return self.local_points
        raise InputError(f"point source must be one of {_POINT_SOURCES}, got {source!r}")

    def select(
        self,
        source: PointSource = "global",
        *,
        threshold: float | None = None,
        top_percent: float | None = None,
        views: Iterable[int] | np.ndarray | None = None,
    ) -> PointSet:
        """Points kept by a confidence filter and a view subset.

        Parameters
        ----------
        source : {"global", "local"}
            Which pointmaps.
        threshold : float or None
            Keep points with confidence strictly above it.
        top_percent : float or None
            Keep the top ``top_percent`` % (0..100) of all the source's points by confidence. With
            ``threshold`` too, the smaller of the two prefixes is kept.
        views : iterable of int, (V,) bool array, or None
            Keep only these views (applied after the confidence prefix, so "top 10 %" means 10 % of
            all points, not of these views').

        Returns
        -------
        PointSet
            Still ordered by decreasing confidence. A prefix (no copy) when ``views`` is None or all.
        """
        ps = self.points(source)
        n = len(ps)
        if threshold is not None:
            n = min(n, ps.count_above(threshold))
        if top_percent is not None:
            n = min(n, ps.count_top_percent(top_percent))
        lut = self.view_mask(views)
        if lut is None or lut.all():
            return ps.prefix(n)
        return ps.prefix(n).take(lut[ps.view[:n]])

    def view_mask(self, views: Iterable[int] | np.ndarray | None) -> np.ndarray | None:
        """(V,) bool mask of the views in ``views`` (indices or a (V,) bool mask); None stays None (all)."""
        if views is None:
            return None
        arr = np.asarray(views if isinstance(views, np.ndarray) else list(views))
        if arr.dtype == np.bool_:
            if arr.shape != (self.n_views,):
                raise InputError(f"a view mask must have shape ({self.n_views},), got {arr.shape}")
            return arr
        idx = arr.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_views):
            raise InputError(f"view indices must be within 0..{self.n_views - 1}, got {idx.tolist()}")
        lut = np.zeros(self.n_views, dtype=bool)
        lut[idx] = True
        return lut

    def per_view_stats(
        self, source: PointSource = "global", threshold: float | None = None
    ) -> list[ViewStats]:
        """Confidence statistics of every view, in view order (see :class:`ViewStats`)."""
        if source not in _POINT_SOURCES:
            raise InputError(f"point source must be one of {_POINT_SOURCES}, got {source!r}")
        confs = self.conf if source == "global" else self.conf_local
        stats = []
        for v, c in enumerate(confs):
            flat = c.reshape(-1)
            n_above = flat.size if threshold is None else int(np.count_nonzero(flat > threshold))
            stats.append(
                ViewStats(
                    view=v,
                    n_points=int(flat.size),
                    n_above=n_above,
                    mean_conf=float(flat.mean(dtype=np.float64)),
                    median_conf=float(np.median(flat)),
                    max_conf=float(flat.max()),
                    pose_ok=bool(self.pose_ok[v]),
                    pose_inlier_share=float(self.pose_inlier_share[v]),
                )
            )
        return stats

    def model_to_original_pixels(self, view: np.ndarray, pixel: np.ndarray) -> np.ndarray:
        """Map model pixels to pixels of the original photos.

        Parameters
        ----------
        view : np.ndarray, (N,) int
            View index of each pixel.
        pixel : np.ndarray, (N, 2)
            ``(u, v)`` = (column, row) in model pixels of that view.

        Returns
        -------
        np.ndarray, (N, 2) float64
            ``(x, y)`` in original pixels, pixel centres at integer coordinates:
            ``x = (u + left + 0.5) / sx - 0.5`` with ``sx = resized_w / original_w``
            (:func:`fast3r_core.geometry.model_pixels_to_original` with each pixel's view's crop).
        """
        view = np.asarray(view, dtype=np.int64)
        return model_pixels_to_original(
            pixel, self.crop_boxes[view], self.resized_sizes[view], self.original_sizes[view]
        )


def project_size(rec: Reconstruction) -> int:
    """The model input size (512 or 224) ``rec`` was made at: its options, else its view shapes.

    Photos added to a result must be prepared at this size (see ``fast3r_core.pipeline.add_views``).
    """
    size = rec.options.get("size")
    if size in (224, 512):
        return int(size)
    return 224 if max(max(rec.view_shape(v)) for v in range(rec.n_views)) <= 224 else 512


def _n_views(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return int(value.shape[0]) if value.ndim >= 1 else 0
    return len(value)


def _as_view_tuple(name: str, value: Any, n_views: int) -> tuple[np.ndarray, ...]:
    """Accept a sequence of per-view arrays or one stacked (V, H, W, ...) array."""
    if isinstance(value, np.ndarray):
        arrays = tuple(value[v] for v in range(value.shape[0])) if value.ndim >= 1 else ()
    else:
        arrays = tuple(np.asarray(a) for a in value)
    if len(arrays) != n_views:
        raise ValueError(f"{name} must have one array per view ({n_views}), got {len(arrays)}")
    return arrays


# --------------------------------------------------------------------------------------------------
# Project file
# --------------------------------------------------------------------------------------------------

_META = "meta.json"
_ARRAYS = "arrays.npz"


def _app_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("fast3r-studio")
    except (ImportError, PackageNotFoundError):
        return "unknown"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _image_entry(image_path: str, project_dir: str) -> dict[str, str | None]:
    absolute = os.path.abspath(image_path)
    try:
        relative: str | None = Path(os.path.relpath(absolute, project_dir)).as_posix()
    except ValueError:  # another drive on Windows
        relative = None
    return {"relative": relative, "absolute": absolute}


def _resolve_image(entry: Mapping[str, Any], project_dir: str) -> str:
    """Prefer the path relative to the project (the folder may have moved), else the absolute one."""
    relative, absolute = entry.get("relative"), entry.get("absolute")
    candidate = os.path.normpath(os.path.join(project_dir, relative)) if relative else None
    if candidate is not None and os.path.exists(candidate):
        return candidate
    if absolute:
        return str(absolute)
    if candidate is not None:
        return candidate
    raise ProjectFileError("an image entry in meta.json has neither a relative nor an absolute path")


def save_project(rec: Reconstruction, path: str | os.PathLike[str], *, compress: bool = False) -> Path:
    """Write ``rec`` to a project file (``.f3r``), atomically.

    The file is a zip (stored, not deflated) holding ``meta.json`` (format name and version, model
    name, options, timings, image paths relative to the project file and absolute, runs, creation time,
    app version) and ``arrays.npz`` (every array of ``rec``; per-view maps as ``<field>_<view:04d>``).

    Parameters
    ----------
    rec : Reconstruction
        What to save.
    path : path-like
        Destination; ".f3r" is the usual suffix (not enforced).
    compress : bool
        Deflate the arrays. Pointmaps are float32 noise to a compressor: it saves little space and
        costs much time, so the default is off (see bench/exports.py for numbers).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ProjectFileError
        The destination cannot be written, or ``rec.options`` is not JSON-able.
    """
    dest = Path(path)
    project_dir = os.path.dirname(os.path.abspath(dest))
    meta = {
        "format": PROJECT_FORMAT,
        "version": PROJECT_FORMAT_VERSION,
        "app_version": _app_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model_name": rec.model_name,
        "n_views": rec.n_views,
        "view_shapes": [list(rec.view_shape(v)) for v in range(rec.n_views)],
        "images": [_image_entry(p, project_dir) for p in rec.image_paths],
        "options": rec.options,
        "timings": rec.timings,
        "runs": [r.to_json() for r in rec.runs],
    }
    try:
        meta_bytes = json.dumps(meta, indent=1, default=_json_default, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProjectFileError(f"Cannot save the project: the run options are not JSON-able ({exc})") from exc

    arrays: dict[str, np.ndarray] = {}
    for name, _, _ in _PER_VIEW_FIELDS:
        for v, a in enumerate(getattr(rec, name)):
            arrays[f"{name}_{v:04d}"] = a
    for name, _, _ in _STACKED_FIELDS:
        arrays[name] = getattr(rec, name)
    arrays["pose_inlier_share"] = rec.pose_inlier_share

    savez = np.savez_compressed if compress else np.savez
    with (
        atomic_path(dest, error=ProjectFileError, fsync=True) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf,
    ):
        zf.writestr(_META, meta_bytes)
        # Stream the npz into the (stored) zip member: no second copy of the arrays in memory.
        with zf.open(_ARRAYS, "w", force_zip64=True) as member:
            # numpy's stubs let **kwds also fill the allow_pickle: bool keyword; these keys are array names
            savez(member, **arrays)  # type: ignore[arg-type]
    log.info("saved project %s (%d views)", dest, rec.n_views)
    return dest


class _FileWindow(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes of ``f`` starting at ``start``.

    Lets np.load read the stored arrays.npz member in place, without copying it into memory first.
    """

    def __init__(self, f: io.BufferedReader, start: int, length: int) -> None:
        super().__init__()
        self._f, self._start, self._length, self._pos = f, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._length - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(view[:n])
        self._pos += got or 0
        return got or 0


def _stored_member_offset(f: io.BufferedReader, info: zipfile.ZipInfo) -> int:
    """Byte offset of a member's data: after its local header (whose extra field may differ)."""
    f.seek(info.header_offset)
    header = f.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ProjectFileError("the project file is corrupt (bad zip member header)")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


# -- reading an untrusted project -------------------------------------------------------------------
# A project file is something people download and share: every size is checked before anything is
# read or allocated, and only the members this format uses are opened.

_MAX_META_BYTES = 64 * 1024**2
"""Largest meta.json accepted (about 300 bytes a view: a million views fit)."""
_MAX_VIEWS = 1_000_000
_MAX_SIDE = 8192
"""Largest height or width of a view at model resolution (the model uses 224 or 512)."""
_MAX_TEXT = 65536
"""Longest string accepted in meta.json (paths, names)."""
_NPY_HEADER_MAX = 65536 + 16
"""Largest .npy header (format 2.0/3.0 allow up to 4 GiB; numpy writes < 200 bytes)."""


def _meta_error(src: Path, field_name: str, problem: str) -> ProjectFileError:
    return ProjectFileError(
        f"{str(src)!r}: the project is inconsistent or corrupt (meta.json: {field_name} {problem})"
    )


def _is_int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_text(src: Path, name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise _meta_error(src, name, f"must be a string, got {type(value).__name__}")
    if len(value) > _MAX_TEXT:
        raise _meta_error(src, name, f"is too long ({len(value)} characters)")


def _check_index_list(src: Path, name: str, value: Any, n_views: int) -> None:
    if not isinstance(value, list) or not all(_is_int(x) and 0 <= x < n_views for x in value):
        raise _meta_error(src, name, f"must be a list of view indices below {n_views}")


def _validate_meta(meta: Any, src: Path) -> tuple[int, list[tuple[int, int]] | None]:
    """Check every field of a parsed meta.json (types, ranges, lengths); return (n_views, view shapes).

    Raises
    ------
    ProjectFileError
        Naming the first field that is wrong.
    """
    if not isinstance(meta, dict) or meta.get("format") != PROJECT_FORMAT:
        raise ProjectFileError(f"{str(src)!r} is not a Fast3R Studio project (unknown format)")
    version = meta.get("version")
    if not _is_int(version) or version < 1:
        raise ProjectFileError(f"{str(src)!r}: invalid project format version {version!r}")
    if version > PROJECT_FORMAT_VERSION:
        raise ProjectFileError(
            f"{str(src)!r} was saved by a newer Fast3R Studio (project format {version}, "
            f"app {str(meta.get('app_version', '?'))[:40]}); this app reads format {PROJECT_FORMAT_VERSION}. "
            "Update the app to open it."
        )
    n_views = meta.get("n_views")
    if not _is_int(n_views) or not 1 <= n_views <= _MAX_VIEWS:
        raise _meta_error(src, "n_views", f"must be an integer in 1..{_MAX_VIEWS}, got {str(n_views)[:40]}")
    _check_text(src, "model_name", meta.get("model_name"))
    for key in ("app_version", "created"):
        if key in meta:
            _check_text(src, key, meta[key], optional=True)

    shapes: list[tuple[int, int]] | None = None
    if "view_shapes" in meta:
        raw = meta["view_shapes"]
        if not isinstance(raw, list) or len(raw) != n_views:
            raise _meta_error(src, "view_shapes", f"must be a list of {n_views} [height, width] pairs")
        shapes = []
        for i, hw in enumerate(raw):
            if not (
                isinstance(hw, list) and len(hw) == 2 and all(_is_int(x) and 1 <= x <= _MAX_SIDE for x in hw)
            ):
                raise _meta_error(src, f"view_shapes[{i}]", f"must be [height, width] within 1..{_MAX_SIDE}")
            shapes.append((hw[0], hw[1]))

    images = meta.get("images")
    if not isinstance(images, list) or len(images) != n_views:
        got = f"{len(images)} entries" if isinstance(images, list) else type(images).__name__
        raise _meta_error(src, "images", f"must be a list of {n_views} entries (one per view), got {got}")
    for i, entry in enumerate(images):
        if not isinstance(entry, dict):
            raise _meta_error(src, f"images[{i}]", "must be an object with 'relative' and 'absolute' paths")
        for key in ("relative", "absolute"):
            _check_text(src, f"images[{i}].{key}", entry.get(key), optional=True)
        if not entry.get("relative") and not entry.get("absolute"):
            raise _meta_error(src, f"images[{i}]", "has neither a relative nor an absolute path")

    if not isinstance(meta.get("options", {}), dict):
        raise _meta_error(src, "options", "must be an object")
    timings = meta.get("timings", {})
    if not isinstance(timings, dict) or not all(_is_number(v) for v in timings.values()):
        raise _meta_error(src, "timings", "must be an object of numbers (seconds per stage)")
    runs = meta.get("runs", [])
    if not isinstance(runs, list) or len(runs) > n_views + 1:
        raise _meta_error(src, "runs", "must be a list of at most one run per view")
    for i, run in enumerate(runs):
        name = f"runs[{i}]"
        if not isinstance(run, dict):
            raise _meta_error(src, name, "must be an object")
        _check_index_list(src, f"{name}.views", run.get("views"), n_views)
        if "anchors" in run:
            _check_index_list(src, f"{name}.anchors", run["anchors"], n_views)
        for key in ("passes", "max_views_per_pass"):
            if key in run and not (_is_int(run[key]) and 0 <= run[key] <= _MAX_VIEWS):
                raise _meta_error(src, f"{name}.{key}", "must be a non-negative integer")
        if "views_per_pass" in run and not (
            isinstance(run["views_per_pass"], list)
            and all(_is_int(x) and 0 <= x <= _MAX_VIEWS for x in run["views_per_pass"])
        ):
            raise _meta_error(src, f"{name}.views_per_pass", "must be a list of non-negative integers")
        for key in ("kind", "model"):
            if key in run:
                _check_text(src, f"{name}.{key}", run[key], optional=True)
        for key in ("options", "timings"):
            if key in run and not isinstance(run[key], dict):
                raise _meta_error(src, f"{name}.{key}", "must be an object")
        if "alignment" in run and not isinstance(run["alignment"], list):
            raise _meta_error(src, f"{name}.alignment", "must be a list")
    return n_views, shapes


def _read_meta(src: Path, zf: zipfile.ZipFile) -> Any:
    """meta.json, parsed, after checking its declared size (a zip bomb is refused unread)."""
    info = zf.getinfo(_META)
    if info.file_size > _MAX_META_BYTES:
        raise ProjectFileError(
            f"{str(src)!r}: meta.json declares {info.file_size} bytes, more than a project needs "
            f"({_MAX_META_BYTES}); refused"
        )
    try:
        with zf.open(info) as f:
            raw = f.read(_MAX_META_BYTES + 1)
        # ValueError: bad JSON, or an integer of thousands of digits; RecursionError: deep nesting
        return json.loads(raw.decode("utf-8"))
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, RecursionError, OSError) as exc:
        raise ProjectFileError(f"{str(src)!r}: meta.json is corrupt ({str(exc)[:200]})") from exc


def _expected_arrays(
    n_views: int, shapes: Sequence[tuple[int, int]]
) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Member name -> (shape, dtype) of every array a project of these views holds."""
    out: dict[str, tuple[tuple[int, ...], Any]] = {}
    for name, dtype, channels in _PER_VIEW_FIELDS:
        for v, (h, w) in enumerate(shapes):
            out[f"{name}_{v:04d}"] = ((h, w, channels) if channels else (h, w), dtype)
    for name, dtype, trailing in _STACKED_FIELDS:
        out[name] = ((n_views, *trailing), dtype)
    return out


def _npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the start of a .npy stream, reading at most its header."""
    fmt = np.lib.format
    major, _minor = fmt.read_magic(f)
    if major == 1:
        return fmt.read_array_header_1_0(f, max_header_size=_NPY_HEADER_MAX)
    if major in (2, 3):
        return fmt.read_array_header_2_0(f, max_header_size=_NPY_HEADER_MAX)
    raise ValueError(f"unsupported .npy version {major}")


def _read_member_array(npz: zipfile.ZipFile, key: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """One array of the inner npz, after checking its declared sizes, shape and dtype."""
    want = np.dtype(dtype)
    try:
        info = npz.getinfo(f"{key}.npy")
    except KeyError:
        raise ValueError(f"array {key} is missing") from None
    limit = int(np.prod(shape, dtype=np.int64)) * 8 + _NPY_HEADER_MAX  # 8: the widest dtype accepted
    if info.file_size > limit:
        raise ValueError(f"array {key} declares {info.file_size} bytes, expected at most {limit}")
    with npz.open(info) as f:
        got_shape, fortran, got_dtype = _npy_header(f)
        if tuple(got_shape) != tuple(shape):
            raise ValueError(f"array {key} has shape {tuple(got_shape)}, expected {tuple(shape)}")
        if got_dtype.kind != want.kind or got_dtype.itemsize > 8 or got_dtype.hasobject:
            raise ValueError(f"array {key} has dtype {got_dtype}, expected {want}")
        count = int(np.prod(shape, dtype=np.int64))
        data = f.read(count * got_dtype.itemsize)
        if len(data) != count * got_dtype.itemsize:
            raise ValueError(f"array {key} is truncated")
        if f.read(1):
            raise ValueError(f"array {key} holds more data than its shape")
    a = np.frombuffer(data, dtype=got_dtype)
    a = a.reshape(shape[::-1]).transpose() if fortran else a.reshape(shape)
    return np.array(a, dtype=want)  # writable, native byte order, the format's dtype


def _read_arrays(
    path: Path, zf: zipfile.ZipFile, n_views: int, shapes: Sequence[tuple[int, int]] | None
) -> dict[str, np.ndarray]:
    """The arrays of a project: only the members the format uses, each checked before it is read.

    ``shapes`` (from meta.json) give every member's exact shape; without them (very old files)
    they are taken from the (bounded) pts3d headers.
    """
    info = zf.getinfo(_ARRAYS)
    with contextlib.ExitStack() as stack:
        if info.compress_type == zipfile.ZIP_STORED:
            f = stack.enter_context(open(path, "rb"))
            start = _stored_member_offset(f, info)
            outer: Any = _FileWindow(f, start, info.file_size)
        else:
            outer = stack.enter_context(zf.open(info))  # seekable; decompressed as it is read
        npz = stack.enter_context(zipfile.ZipFile(outer))
        if shapes is None:
            shapes = []
            for v in range(n_views):
                with npz.open(f"pts3d_{v:04d}.npy") as fv:
                    shp = tuple(_npy_header(fv)[0])
                if len(shp) != 3 or shp[2] != 3 or not all(1 <= x <= _MAX_SIDE for x in shp[:2]):
                    raise ValueError(f"array pts3d_{v:04d} has shape {shp}")
                shapes.append((int(shp[0]), int(shp[1])))
        expected = _expected_arrays(n_views, shapes)
        members = set(npz.namelist())
        for name, dtype, trailing in _OPTIONAL_STACKED_FIELDS:  # absent in files of older versions
            if f"{name}.npy" in members:
                expected[name] = ((n_views, *trailing), dtype)
        total = sum(int(np.prod(s, dtype=np.int64)) * 8 + _NPY_HEADER_MAX for s, _ in expected.values())
        if info.file_size > total + 64 * 1024 * (len(expected) + 1):
            raise ValueError(f"arrays.npz declares {info.file_size} bytes, more than its arrays need")
        # the inner zip checks each array's CRC-32 as it is read, so corruption is still detected
        return {key: _read_member_array(npz, key, shape, dtype) for key, (shape, dtype) in expected.items()}


# stacked (V, ...) arrays added after format 1.0: read when present, validated like the others
_OPTIONAL_STACKED_FIELDS: tuple[tuple[str, Any, tuple[int, ...]], ...] = (
    ("pose_inlier_share", np.float32, ()),
)

_CAMERA_FIELDS = ("cam_to_world", "intrinsics", "intrinsics_original")


def _check_cameras_finite(src: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse NaN/inf cameras: no export could write them (JSON has no NaN, COLMAP needs a pose)."""
    for name in _CAMERA_FIELDS:
        a = arrays[name]
        bad = np.flatnonzero(~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1))
        if bad.size:
            views = ", ".join(str(int(v)) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
            raise ProjectFileError(
                f"{str(src)!r}: the project is inconsistent or corrupt ({name} of view(s) {views} "
                "is not finite)"
            )


def load_project(path: str | os.PathLike[str]) -> Reconstruction:
    """Read a project file written by :func:`save_project` (no model or torch needed).

    Image paths come back absolute: the path relative to the project file when that file exists
    (the project and its photos moved together), else the absolute path stored at save time.

    Raises
    ------
    ProjectFileError
        The file is missing, is not a zip or not a Fast3R project, misses a member, is corrupt, or was
        written by a newer version of the app (major format version above ours).
    """
    src = Path(path)
    if not src.is_file():
        raise ProjectFileError(f"The project file {str(src)!r} does not exist")
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ProjectFileError(f"{str(src)!r} is not a Fast3R Studio project (not a zip file)") from exc
    with zf:
        names = set(zf.namelist())
        missing = [m for m in (_META, _ARRAYS) if m not in names]
        if missing:
            raise ProjectFileError(
                f"{str(src)!r} is not a complete Fast3R Studio project (missing {', '.join(missing)})"
            )
        meta = _read_meta(src, zf)
        n_views, shapes = _validate_meta(meta, src)
        version = meta["version"]
        try:
            arrays = _read_arrays(src, zf, n_views, shapes)
        except ProjectFileError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
            raise ProjectFileError(f"{str(src)!r}: the arrays are corrupt ({exc})") from exc
    _check_cameras_finite(src, arrays)

    try:
        project_dir = os.path.dirname(os.path.abspath(src))
        kwargs: dict[str, Any] = {
            name: tuple(arrays[f"{name}_{v:04d}"] for v in range(n_views)) for name, _, _ in _PER_VIEW_FIELDS
        }
        kwargs.update({name: arrays[name] for name, _, _ in _STACKED_FIELDS})
        if "pose_inlier_share" in arrays:  # absent before it was recorded: the default (all NaN)
            kwargs["pose_inlier_share"] = arrays["pose_inlier_share"]
        rec = Reconstruction(
            **kwargs,
            image_paths=tuple(_resolve_image(e, project_dir) for e in meta["images"]),
            model_name=meta["model_name"],
            options=meta.get("options", {}),
            timings=meta.get("timings", {}),
            runs=tuple(RunRecord.from_json(r) for r in meta.get("runs", ())),  # validated above
            format_version=version,
        )
    except ProjectFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectFileError(f"{str(src)!r}: the project is inconsistent or corrupt ({exc})") from exc
    log.info("loaded project %s (%d views)", src, rec.n_views)
    return rec
