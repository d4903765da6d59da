"""The result of a run: :class:`Reconstruction` (with its per-view statistics and run records).

Its confidence-ordered point sets are :mod:`fast3r_core.point_set`; its file, the project, is
:mod:`fast3r_core.project_file`.

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

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, TypeGuard, get_args

import numpy as np

from fast3r_core.edits import Edits
from fast3r_core.errors import InputError
from fast3r_core.geometry import model_pixels_to_original, se3_inverse
from fast3r_core.point_set import PointSet, PointSource, build_point_set

__all__ = [
    "LOW_POSE_INLIER_SHARE",
    "PROJECT_FORMAT_VERSION",
    "Reconstruction",
    "RunRecord",
    "ViewStats",
    "describe_chunking",
]

# The version lives with the fields it describes (the default of Reconstruction.format_version);
# fast3r_core.project_file, which writes and checks it, re-exports it with the other PROJECT_* names.
PROJECT_FORMAT_VERSION = 2
"""Major version of the project format written by this code; a file with a larger one is refused."""

_POINT_SOURCES: tuple[str, ...] = get_args(PointSource)


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


def _is_int(x: Any) -> TypeGuard[int]:
    """A JSON integer (bool is an int to Python, not to JSON)."""
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class ViewStats:
    """Confidence statistics of one view (over the pixels of its pointmap that its mask keeps).

    Attributes
    ----------
    view : int
        View index.
    n_points : int
        Pixels in the view's pointmap (H * W at model resolution) that its keep mask keeps.
    n_above : int
        Pixels with confidence > the threshold given to :meth:`Reconstruction.per_view_stats`
        (``n_points`` when no threshold was given).
    mean_conf, median_conf, max_conf : float
        Statistics of the view's confidence map over the kept pixels (NaN when every pixel is masked).
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
    edits : Edits
        The user's edits (similarity transform, crop, deleted selections, measurements), applied on the
        way out by every exporter and the viewer; the arrays above stay the model's output. Defaults
        to ``Edits()`` (none). Project format 2.
    intrinsics_known : np.ndarray, (V,) bool
        True where the view's intrinsics came from the user (file or EXIF) rather than the estimate.
        Defaults to all False. Project format 2.
    keep_masks : tuple of np.ndarray, each (H_v, W_v) bool, or None
        Per-view pixel masks in model pixels (True = keep) from the user's masks and/or the sky mask;
        masked pixels are in no point set, statistic or export. None (the default) keeps every pixel.
        Project format 2.
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
    edits: Edits = field(default_factory=Edits)
    intrinsics_known: np.ndarray = None  # type: ignore[assignment]  # as pose_ok: never None once built
    keep_masks: tuple[np.ndarray, ...] | None = None

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

        if not isinstance(self.edits, Edits):
            raise ValueError(f"edits must be an Edits, got {type(self.edits).__name__}")
        known = (
            np.zeros(n_views, bool) if self.intrinsics_known is None else np.asarray(self.intrinsics_known)
        )
        if known.dtype != np.bool_ or known.shape != (n_views,):
            raise ValueError(
                f"intrinsics_known must be bool of shape {(n_views,)}, got {known.dtype} {known.shape}"
            )
        set_(self, "intrinsics_known", _readonly(np.ascontiguousarray(known)))
        if self.keep_masks is not None:
            masks = _as_view_tuple("keep_masks", self.keep_masks, n_views)
            for v, m in enumerate(masks):
                if m.dtype != np.bool_ or m.shape != shapes[v]:
                    raise ValueError(
                        f"keep_masks[{v}] must be bool of shape {shapes[v]}, got {m.dtype} {m.shape}"
                    )
            set_(self, "keep_masks", tuple(_readonly(np.ascontiguousarray(m)) for m in masks))

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
        return build_point_set(self.pts3d, self.conf, self.colors, self.keep_masks)

    @cached_property
    def local_points(self) -> PointSet:
        """All local-head points (aligned to world), ordered by decreasing local confidence."""
        return build_point_set(self.pts3d_local, self.conf_local, self.colors, self.keep_masks)

    def n_masked(self, v: int) -> int:
        """Pixels of view ``v`` that :attr:`keep_masks` leaves out (0 without masks)."""
        if self.keep_masks is None:
            return 0
        m = self.keep_masks[v]
        return int(m.size - np.count_nonzero(m))

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
            flat = c.reshape(-1) if self.keep_masks is None else c[self.keep_masks[v]]
            n_above = flat.size if threshold is None else int(np.count_nonzero(flat > threshold))
            empty = flat.size == 0  # every pixel masked
            stats.append(
                ViewStats(
                    view=v,
                    n_points=int(flat.size),
                    n_above=n_above,
                    mean_conf=float("nan") if empty else float(flat.mean(dtype=np.float64)),
                    median_conf=float("nan") if empty else float(np.median(flat)),
                    max_conf=float("nan") if empty else float(flat.max()),
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
