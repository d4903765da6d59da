"""Which points an export writes (:class:`PointSelection`) and what an export wrote (:class:`ExportReport`).

Every exporter that writes points takes one :class:`PointSelection` and turns it into a
confidence-ordered :class:`~fast3r_core.point_set.PointSet` with :func:`select_points`; every exporter
returns one :class:`ExportReport`. An exporter asked to write zero points raises
:class:`~fast3r_core.errors.EmptyExportError` (:func:`require_points`) rather than write an empty file.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fast3r_core.errors import EmptyExportError, InputError

if TYPE_CHECKING:
    from fast3r_core.edits import Edits
    from fast3r_core.point_set import PointSet, PointSource
    from fast3r_core.result import Reconstruction

__all__ = [
    "ExportReport",
    "PointSelection",
    "drop_masked",
    "require_points",
    "select_points",
    "voxel_downsample",
]

log = logging.getLogger(__name__)

_SOURCES = ("global", "local")


@dataclass(frozen=True)
class PointSelection:
    """The points an export writes: a confidence filter, a view subset, a pointmap, voxels, masks.

    Filters apply in this order: the confidence prefix (``threshold`` and/or ``top_percent``, of *all*
    the source's points), then ``views`` and ``masks``, then the reconstruction's edits (their
    similarity, crop box and deleted points: :func:`~fast3r_core.export.edited.apply_edits`), then voxel
    downsampling. The default selects every (finite) global point.

    Attributes
    ----------
    threshold : float or None
        Keep points with confidence strictly above it.
    top_percent : float or None
        Keep the top ``top_percent`` % (0..100) of all the source's points by confidence; with
        ``threshold`` too, the smaller of the two prefixes.
    views : tuple of int or None
        Keep only these views (None: every view). A (V,) bool mask or any iterable of indices is
        accepted and stored as increasing indices.
    source : {"global", "local"}
        Which pointmaps: the global head's or the local head's (aligned to world).
    voxel_size : float or None
        Keep only the most confident point of each cubic voxel of this size (edited-world units: metres
        once the edits set a scale).
    masks : tuple of np.ndarray or None
        Per view, an (H_v, W_v) bool array in model pixels: True = leave the pixel's point out (sky,
        a user's mask). Compared by identity (arrays have no single truth value).
    """

    threshold: float | None = None
    top_percent: float | None = None
    views: tuple[int, ...] | None = None
    source: PointSource = "global"
    voxel_size: float | None = None
    masks: tuple[np.ndarray, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise InputError(f"point source must be one of {_SOURCES}, got {self.source!r}")
        if self.top_percent is not None and not 0.0 <= self.top_percent <= 100.0:
            raise InputError(f"top percent must be within 0..100, got {self.top_percent}")
        if self.threshold is not None and math.isnan(self.threshold):
            raise InputError("the confidence threshold must be a number, got NaN")
        if self.voxel_size is not None and not self.voxel_size > 0:
            raise InputError(f"voxel size must be positive, got {self.voxel_size}")
        if self.views is not None:
            object.__setattr__(self, "views", _view_indices(self.views))
        if self.masks is not None:
            object.__setattr__(self, "masks", tuple(np.asarray(m, dtype=bool) for m in self.masks))

    def with_views(self, views: Iterable[int] | np.ndarray | None) -> PointSelection:
        """The same selection restricted to ``views`` (indices or a (V,) bool mask)."""
        return dataclasses.replace(self, views=views)  # type: ignore[arg-type]  # normalised in __post_init__

    def describe(self) -> str:
        """Words for messages: ``"top 10 % by confidence, views 0, 2, local points"``."""
        parts = []
        if self.threshold is not None:
            parts.append(f"confidence above {self.threshold:g}")
        if self.top_percent is not None:
            parts.append(f"top {self.top_percent:g} % by confidence")
        if self.views is not None:
            shown = ", ".join(str(v) for v in self.views[:8]) + (", ..." if len(self.views) > 8 else "")
            parts.append(f"views {shown}" if self.views else "no view")
        if self.masks is not None:
            parts.append("masked pixels left out")
        if self.source != "global":
            parts.append(f"{self.source} points")
        return ", ".join(parts) or "every point"


def _view_indices(views: Iterable[int] | np.ndarray) -> tuple[int, ...]:
    arr = np.asarray(views if isinstance(views, np.ndarray) else list(views))
    if arr.dtype == np.bool_:
        return tuple(int(v) for v in np.flatnonzero(arr))
    return tuple(sorted({int(v) for v in arr.reshape(-1)}))


@dataclass(frozen=True)
class ExportReport:
    """What an exporter wrote. Every exporter returns one.

    Attributes
    ----------
    format : str
        Key of the format in :data:`fast3r_core.export.FORMATS`.
    path : Path
        The main output: the file (PLY, GLB, cameras.json, Nerfstudio's transforms.json) or the
        folder (COLMAP).
    files : tuple of Path
        Every file written (copied images included).
    n_points : int
        3-D points written (0 for formats without points).
    n_cameras : int
        Cameras written (GLB frusta, COLMAP cameras, Nerfstudio frames, cameras.json views).
    n_images : int
        Images the export refers to (COLMAP, Nerfstudio), copied or in place.
    dropped : int
        Selected points left out by the format (COLMAP: farther than the reprojection limit from
        their pixel, or behind their camera).
    mean_reproj_px : float
        COLMAP: mean reprojection error of the written points in original pixels (NaN otherwise or
        when none).
    skipped_views : tuple of int
        Selected views left out because their pose estimation failed.
    missing_images : tuple of str
        Source photos not written: not found, not an image, or not the recorded size.
    warnings : tuple of str
        Anything else the user should know (also logged).
    sparse_dir, images_dir : Path or None
        COLMAP: the folder holding cameras/images/points3D, and the folder image names are relative to.
    """

    format: str
    path: Path
    files: tuple[Path, ...] = ()
    n_points: int = 0
    n_cameras: int = 0
    n_images: int = 0
    dropped: int = 0
    mean_reproj_px: float = math.nan
    skipped_views: tuple[int, ...] = ()
    missing_images: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    sparse_dir: Path | None = None
    images_dir: Path | None = None


def voxel_downsample(points: PointSet, voxel_size: float) -> PointSet:
    """Keep one point per occupied voxel: the most confident one.

    Keeping a measured point (rather than the voxel's mean) keeps real positions and real colours and
    never invents a point between two surfaces. Because ``points`` is ordered by decreasing
    confidence, the first point of each voxel is its most confident one.

    Parameters
    ----------
    points : PointSet
        Confidence-ordered points (world frame).
    voxel_size : float
        Edge length of the cubic voxels, in world units; the grid is aligned to the world origin.

    Returns
    -------
    PointSet
        The kept points, still in decreasing confidence order.
    """
    if not voxel_size > 0:
        raise InputError(f"voxel size must be positive, got {voxel_size}")
    n = len(points)
    if n == 0:
        return points
    cells = np.floor(points.xyz.astype(np.float64) / voxel_size).astype(np.int64)
    cells -= cells.min(axis=0)
    extent = cells.max(axis=0) + 1
    if float(extent[0]) * float(extent[1]) * float(extent[2]) < 2.0**62:
        # One int64 key per voxel: fast 1-D unique.
        keys = (cells[:, 2] * extent[1] + cells[:, 1]) * extent[0] + cells[:, 0]
        _, first = np.unique(keys, return_index=True)
    else:  # enormous grid (tiny voxels, far outliers): unique over rows
        _, first = np.unique(cells, axis=0, return_index=True)
    # np.unique returns the first occurrence per key = most confident; restore confidence order.
    first.sort()
    log.debug("voxel downsampling %.4g: %d -> %d points", voxel_size, n, first.size)
    return points.take(first)


def drop_masked(rec: Reconstruction, points: PointSet, masks: tuple[np.ndarray, ...]) -> PointSet:
    """``points`` without those whose pixel is True in its view's mask.

    Parameters
    ----------
    rec : Reconstruction
        Gives the model-pixel size of every view.
    points : PointSet
        Points of ``rec`` (any subset, any order).
    masks : tuple of np.ndarray
        One (H_v, W_v) bool array per view, in model pixels.

    Returns
    -------
    PointSet
        The unmasked points, in the same order (``points`` itself when nothing is masked).
    """
    if len(masks) != rec.n_views:
        raise InputError(f"one mask per view is needed ({rec.n_views}), got {len(masks)}")
    for v, m in enumerate(masks):
        if m.shape != rec.view_shape(v):
            raise InputError(f"the mask of view {v} is {m.shape}, its pointmap {rec.view_shape(v)}")
    sizes = np.array([m.size for m in masks], dtype=np.int64)
    widths = np.array([m.shape[1] for m in masks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    flat = np.concatenate([m.reshape(-1) for m in masks])
    view = points.view.astype(np.int64)
    masked = flat[offsets[view] + points.pixel[:, 1].astype(np.int64) * widths[view] + points.pixel[:, 0]]
    return points.take(~masked) if masked.any() else points


def select_points(rec: Reconstruction, selection: PointSelection | None = None) -> PointSet:
    """The points an exporter writes (see :class:`PointSelection` for the order of the filters).

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    selection : PointSelection or None
        None selects every point of the global pointmaps.

    Returns
    -------
    PointSet
        Edited-world coordinates (``rec.edits`` applied; the model's world, OpenCV axes, when there are
        no edits), ordered by decreasing confidence.
    """
    from fast3r_core.export.edited import apply_edits

    sel = selection or PointSelection()
    points = rec.select(sel.source, threshold=sel.threshold, top_percent=sel.top_percent, views=sel.views)
    if sel.masks is not None:
        points = drop_masked(rec, points, sel.masks)
    # the user's edits before the voxels: a voxel size is in the edited world's units (metres once scaled)
    edited = apply_edits(rec, points).points
    points = points if edited is None else edited  # never None: points were given
    if sel.voxel_size is not None:
        points = voxel_downsample(points, sel.voxel_size)
    return points


def require_points(
    points: PointSet,
    selection: PointSelection | None,
    path: str | os.PathLike[str],
    edits: Edits | None = None,
) -> None:
    """Refuse to write an empty point file (``edits``: the reconstruction's, to say when they are why).

    Raises
    ------
    EmptyExportError
        ``points`` is empty; the message names the destination and the selection.
    """
    if len(points):
        return
    what = (selection or PointSelection()).describe()
    if edits is not None and edits.filters_points:
        hint = (
            "The crop box and the deleted points leave none of them: undo a deletion, remove the crop, "
            "lower the confidence filter or show more views."
        )
    else:
        hint = "Lower the confidence filter or show more views."
    raise EmptyExportError(f"Nothing to export to {str(path)!r}: no point is selected ({what}). {hint}")
