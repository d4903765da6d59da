"""PLY point-cloud export (MeshLab, CloudCompare, Blender, Open3D, Gaussian-splatting initialisers).

Coordinates are those of the edited world (:mod:`fast3r_core.export.edited`): the reconstruction's
world (camera of view 0, OpenCV axes: x right, y down, z forward) with the user's edits applied (scaled,
moved, levelled to Z up, cropped). A header comment says which.

Vertex properties: ``float x, y, z``; ``uchar red, green, blue``; ``float confidence`` and ``float
quality`` (the same value; MeshLab shows a "quality" property as a scalar field). Binary files are
little-endian; every vertex is 23 bytes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fast3r_core.atomic import atomic_write
from fast3r_core.export.edited import world_convention
from fast3r_core.export.selection import (
    ExportReport,
    PointSelection,
    require_points,
    select_points,
    voxel_downsample,
)

if TYPE_CHECKING:
    from fast3r_core.point_set import PointSet
    from fast3r_core.result import Reconstruction

# select_points and voxel_downsample live in export.selection; still importable from here
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
_COMMENT_PREFIX = "comment Fast3R Studio point cloud: "  # how `fast3r export` recognises its own files


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


def write_ply(
    points: PointSet, path: str | os.PathLike[str], *, ascii: bool = False, world: str | None = None
) -> int:
    """Write a point set to a PLY file, atomically.

    Parameters
    ----------
    points : PointSet
        Points in world coordinates (OpenCV axes), with colours and confidences.
    path : path-like
        Destination file (parent folders are created).
    ascii : bool
        Write the text variant instead of binary little-endian (about 3x bigger, much slower).
    world : str or None
        The points' frame in words, for the header comment
        (:func:`~fast3r_core.export.edited.world_convention`); None: the model's world.

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
    comment = _CONVENTION_COMMENT if world is None else _COMMENT_PREFIX + " ".join(world.split()) + "\n"
    header = (f"ply\nformat {fmt} 1.0\n{comment}element vertex {n}\n{_HEADER_PROPERTIES}end_header\n").encode(
        "ascii", errors="replace"
    )
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
    selection: PointSelection | None = None,
    *,
    ascii: bool = False,
) -> ExportReport:
    """Export the reconstruction's points to a PLY file.

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    path : path-like
        Destination ``.ply`` file; written atomically (parent folders are created).
    selection : PointSelection or None
        Which points (None: every global point).
    ascii : bool
        Text PLY instead of binary little-endian.

    Returns
    -------
    ExportReport
        ``n_points``: points written (after the confidence, view and mask filters, the edits and the
        voxels), in the edited world.

    Raises
    ------
    EmptyExportError
        No point is selected (nothing is written).
    ExportError
        The destination cannot be written (see :func:`write_ply`).
    """
    points = select_points(rec, selection)
    require_points(points, selection, path, rec.edits)
    n = write_ply(points, Path(path), ascii=ascii, world=world_convention(rec.edits))
    return ExportReport("ply", Path(path), files=(Path(path),), n_points=n)
