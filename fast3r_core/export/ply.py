"""PLY point-cloud export (MeshLab, CloudCompare, Blender, Open3D, Gaussian-splatting initialisers).

Coordinates are written as they are in the :class:`~fast3r_core.result.Reconstruction`: world frame =
camera of view 0, OpenCV axes (x right, y down, z forward). A header comment says so.

Vertex properties: ``float x, y, z``; ``uchar red, green, blue``; ``float confidence`` and ``float
quality`` (the same value; MeshLab shows a "quality" property as a scalar field). Binary files are
little-endian; every vertex is 23 bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fast3r_core.errors import InputError
from fast3r_core.export._atomic import atomic_write

if TYPE_CHECKING:
    from fast3r_core.result import PointSet, PointSource, Reconstruction

__all__ = ["CHUNK_POINTS", "PLY_VERTEX_DTYPE", "export_ply", "select_points", "voxel_downsample", "write_ply"]

log = logging.getLogger(__name__)

PLY_VERTEX_DTYPE = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("red", "u1"),
        ("green", "u1"),
        ("blue", "u1"),
        ("confidence", "<f4"),
        ("quality", "<f4"),
    ]
)
"""Packed (unaligned) record of one vertex, in the order of the header's properties."""

_HEADER_PROPERTIES = (
    "property float x\n"
    "property float y\n"
    "property float z\n"
    "property uchar red\n"
    "property uchar green\n"
    "property uchar blue\n"
    "property float confidence\n"
    "property float quality\n"
)

_CONVENTION_COMMENT = (
    "comment Fast3R Studio point cloud: world = camera of view 0, OpenCV axes (x right, y down, z forward)\n"
)


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


def select_points(
    rec: Reconstruction,
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
    views: Iterable[int] | np.ndarray | None = None,
    source: PointSource = "global",
    voxel_size: float | None = None,
) -> PointSet:
    """The points an exporter writes: :meth:`Reconstruction.select`, then optional voxel downsampling.

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    threshold, top_percent, views, source
        Point selection, as in :meth:`Reconstruction.select` (confidence strictly above
        ``threshold``; top ``top_percent`` % of all points; a subset of views; "global" or "local"
        pointmaps).
    voxel_size : float or None
        When given, keep only the most confident point of each cubic voxel of this size (world
        units), see :func:`voxel_downsample`.

    Returns
    -------
    PointSet
        World coordinates (OpenCV axes), ordered by decreasing confidence.
    """
    points = rec.select(source, threshold=threshold, top_percent=top_percent, views=views)
    if voxel_size is not None:
        points = voxel_downsample(points, voxel_size)
    return points


#: Points converted and written at a time: the exporters' working memory stays ~25 MB whatever the
#: size of the cloud (bench/outputs.py).
CHUNK_POINTS = 1 << 20


def _vertex_records(points: PointSet, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Packed PLY records of ``points[start:stop]`` (all by default)."""
    stop = len(points) if stop is None else stop
    rec = np.empty(stop - start, dtype=PLY_VERTEX_DTYPE)
    xyz = points.xyz[start:stop]
    rgb = points.rgb[start:stop]
    rec["x"] = xyz[:, 0]
    rec["y"] = xyz[:, 1]
    rec["z"] = xyz[:, 2]
    rec["red"] = rgb[:, 0]
    rec["green"] = rgb[:, 1]
    rec["blue"] = rgb[:, 2]
    rec["confidence"] = points.conf[start:stop]
    rec["quality"] = points.conf[start:stop]
    return rec


def write_ply(points: PointSet, path: str | os.PathLike[str], *, ascii: bool = False) -> int:
    """Write a point set to a PLY file, atomically.

    Parameters
    ----------
    points : PointSet
        Points in world coordinates (OpenCV axes), with colours and confidences.
    path : path-like
        Destination file (parent folders are created).
    ascii : bool
        Write the text variant instead of binary little-endian (about 3x bigger, much slower).

    Returns
    -------
    int
        Number of points written.

    Raises
    ------
    ExportError
        The destination cannot be written.
    """
    n = len(points)
    fmt = "ascii" if ascii else "binary_little_endian"
    header = (
        f"ply\nformat {fmt} 1.0\n{_CONVENTION_COMMENT}element vertex {n}\n{_HEADER_PROPERTIES}end_header\n"
    ).encode("ascii")
    with atomic_write(path, "wb") as f:
        f.write(header)
        # in chunks: the working copy stays small however many points there are
        for start in range(0, n, CHUNK_POINTS):
            stop = min(n, start + CHUNK_POINTS)
            if ascii:
                # float32 needs 9 significant digits to read back exactly.
                cols = [points.xyz[start:stop], points.rgb[start:stop], points.conf[start:stop, None]]
                np.savetxt(
                    f,
                    np.column_stack([*cols, cols[-1]]).astype(np.float64),
                    fmt=["%.9g"] * 3 + ["%d"] * 3 + ["%.9g"] * 2,
                )
            else:
                f.write(_vertex_records(points, start, stop).data.cast("B"))
    log.info("wrote %d points to %s", n, path)
    return n


def export_ply(
    rec: Reconstruction,
    path: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
    views: Iterable[int] | np.ndarray | None = None,
    source: PointSource = "global",
    voxel_size: float | None = None,
    ascii: bool = False,
) -> int:
    """Export the reconstruction's points to a PLY file.

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    path : path-like
        Destination ``.ply`` file; written atomically (parent folders are created).
    threshold, top_percent, views, source, voxel_size
        Point selection, as in :func:`select_points`.
    ascii : bool
        Text PLY instead of binary little-endian.

    Returns
    -------
    int
        Number of points written (after the confidence, view and voxel filters).

    Raises
    ------
    ExportError
        The destination cannot be written (see :func:`write_ply`).
    InputError
        An invalid option (unknown source, percent outside 0..100, non-positive voxel size).
    """
    points = select_points(
        rec, threshold=threshold, top_percent=top_percent, views=views, source=source, voxel_size=voxel_size
    )
    return write_ply(points, Path(path), ascii=ascii)
