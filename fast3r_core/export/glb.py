"""GLB (binary glTF 2.0) export: the coloured point cloud plus the cameras as line-drawn frusta.

Axis convention of the file: glTF is "+Y up, +Z toward the viewer" (right-handed). Our world is the
camera of view 0 in OpenCV axes (x right, y down, z forward), so every position is written as
``(x, -y, -z)``: a 180° rotation about x (no mirroring). In the file, view 0's camera then sits at the
origin looking down -Z with +Y up, like a glTF camera, and the scene opens upright in Blender or a
web viewer.

Geometry (as trimesh writes it): a mesh "points" with one primitive of mode 0 (POINTS) carrying
POSITION and COLOR_0, and one mesh per view "camera_<v>" with a primitive of mode 1 (LINES) and a
per-view colour: 4 edges from the camera centre to the far-plane corners, the 4 far-plane edges, and a
small triangle on the far plane's top edge that shows which way is up in the image.
"""

from __future__ import annotations

import colorsys
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fast3r_core.errors import ExportError, InputError
from fast3r_core.export._atomic import atomic_write
from fast3r_core.export.ply import select_points
from fast3r_core.geometry import OPENCV_TO_OPENGL, frustum_segments

if TYPE_CHECKING:
    from fast3r_core.result import PointSource, Reconstruction

__all__ = ["export_glb"]

log = logging.getLogger(__name__)

_WORLD_TO_GLTF = OPENCV_TO_OPENGL[:3, :3]
"""Rotation applied to world points (OpenCV axes) to write them in glTF axes (+Y up, -Z forward):
the y/z flip of :data:`~fast3r_core.geometry.OPENCV_TO_OPENGL`, here a 180° turn of the world about x."""


def _view_palette(n: int) -> np.ndarray:
    """(n, 3) uint8 well-separated colours (golden-ratio hue steps), one per view.

    Colour, not geometry, so it lives here rather than in :mod:`fast3r_core.geometry`.
    """
    hues = (np.arange(n) * 0.618033988749895) % 1.0
    return np.array(
        [[round(255 * c) for c in colorsys.hsv_to_rgb(h, 0.75, 0.95)] for h in hues], dtype=np.uint8
    ).reshape(n, 3)


def _default_frustum_depth(rec: Reconstruction) -> float:
    """A frustum depth that reads well: 15 % of the median depth of the scene in the cameras.

    Uses every 8th pixel of the global pointmaps, seen from their own cameras (OpenCV z = depth).
    """
    w2c = rec.world_to_cam
    depths = []
    for v in range(rec.n_views):
        p = rec.pts3d[v][::8, ::8].reshape(-1, 3).astype(np.float64)
        z = p @ w2c[v, 2, :3] + w2c[v, 2, 3]
        z = z[np.isfinite(z) & (z > 0)]
        if z.size:
            depths.append(float(np.median(z)))
    return 0.15 * float(np.median(depths)) if depths else 0.1


def export_glb(
    rec: Reconstruction,
    path: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
    views: Iterable[int] | np.ndarray | None = None,
    source: PointSource = "global",
    voxel_size: float | None = None,
    cameras: bool = True,
    frustum_scale: float | None = None,
) -> int:
    """Export the point cloud (and the cameras) to a GLB file, in glTF axes (see the module docstring).

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    path : path-like
        Destination ``.glb`` file; written atomically.
    threshold, top_percent, views, source, voxel_size
        Point selection, as in :func:`~fast3r_core.export.ply.select_points`.
    cameras : bool
        Draw the cameras of the selected views as frusta (views whose pose estimation failed are
        left out).
    frustum_scale : float or None
        Depth of the frusta in world units; default 15 % of the scene's median depth.

    Returns
    -------
    int
        Number of points written.

    Raises
    ------
    ExportError
        The destination cannot be written, or nothing at all is left to write.
    """
    import trimesh  # imported here: trimesh is slow to import and only this exporter needs it
    from trimesh.path.entities import Line

    points = select_points(
        rec, threshold=threshold, top_percent=top_percent, views=views, source=source, voxel_size=voxel_size
    )
    if frustum_scale is not None and not frustum_scale > 0:
        raise InputError(f"frustum scale must be positive, got {frustum_scale}")

    scene = trimesh.Scene()
    scene.metadata["fast3r"] = {
        "convention": "glTF axes: (x, -y, -z) of the OpenCV world (camera of view 0)",
        "model_name": rec.model_name,
    }
    if len(points):
        xyz = points.xyz @ _WORLD_TO_GLTF.T.astype(np.float32)
        scene.add_geometry(trimesh.PointCloud(xyz, colors=points.rgb), geom_name="points")

    if cameras:
        depth = frustum_scale if frustum_scale is not None else _default_frustum_depth(rec)
        lut = rec.view_mask(views)
        palette = _view_palette(rec.n_views)
        for v in range(rec.n_views):
            if (lut is not None and not lut[v]) or not rec.pose_ok[v]:
                continue
            seg = frustum_segments(
                rec.cam_to_world[v],
                rec.intrinsics_original[v],
                int(rec.original_sizes[v, 0]),
                int(rec.original_sizes[v, 1]),
                depth,
            )
            verts = seg.reshape(-1, 3) @ _WORLD_TO_GLTF.T
            entities = [Line([2 * i, 2 * i + 1]) for i in range(len(seg))]
            colors = np.tile(np.append(palette[v], 255).astype(np.uint8), (len(seg), 1))
            scene.add_geometry(
                trimesh.path.Path3D(entities=entities, vertices=verts, colors=colors),
                geom_name=f"camera_{v:03d}",
            )

    if not scene.geometry:
        raise ExportError(f"Nothing to write to {str(path)!r}: no point passes the filter and no camera")
    data = trimesh.exchange.gltf.export_glb(scene)
    with atomic_write(Path(path), "wb") as f:
        f.write(data)
    log.info("wrote %d points and %d cameras to %s", len(points), len(scene.geometry) - 1, path)
    return len(points)
