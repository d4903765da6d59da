"""Nerfstudio dataset export: ``transforms.json`` + ``points.ply`` (+ ``images/``).

What is written (nerfstudio's "nerfstudio data" format, docs.nerf.studio "Data conventions"):

* ``camera_model``: "OPENCV" with zero distortion (k1 = k2 = p1 = p2 = 0) - a plain pinhole.
* one frame per view with a pose: ``file_path`` relative to the json, ``fl_x, fl_y, cx, cy`` in pixels
  of the original (upright) photo and its size ``w, h``. Nerfstudio, like COLMAP, puts the centre of
  the top-left pixel at (0.5, 0.5), so 0.5 is added to our cx, cy (centre at 0).
* ``transform_matrix``: camera-to-world with OpenGL/Blender camera axes (x right, y up, z backward),
  i.e. our OpenCV cam-to-world times diag(1, -1, -1, 1). The world frame is the edited world
  (:mod:`fast3r_core.export.edited`: the model's world, camera of view 0 in OpenCV axes, with the
  user's edits applied); nerfstudio re-orients and re-centres the poses itself. The edits (similarity,
  units, measurements) are recorded under ``fast3r.edits``.
* ``ply_file_path``: the selected points, written beside the json, in the same world frame as the
  poses.
* ``applied_transform``: the 3x4 identity. Nerfstudio maps the PLY's points into the poses' frame with
  this matrix (its COLMAP converter stores a permutation there); identity says both share our world.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fast3r_core.atomic import atomic_write, ensure_dir
from fast3r_core.errors import ExportError
from fast3r_core.export._images import place_images, plan_image_names
from fast3r_core.export._views import posed_views
from fast3r_core.export.edited import MODEL_WORLD, apply_edits, edits_summary_json, world_convention
from fast3r_core.export.ply import write_ply
from fast3r_core.export.selection import ExportReport, PointSelection, require_points, select_points
from fast3r_core.geometry import opencv_to_opengl_c2w

if TYPE_CHECKING:
    from fast3r_core.point_set import PointSet
    from fast3r_core.result import Reconstruction

__all__ = ["export_nerfstudio"]

log = logging.getLogger(__name__)

_PIXEL_OFFSET = 0.5  # our pixel centres are at integers, nerfstudio's at +0.5


def export_nerfstudio(
    rec: Reconstruction,
    folder_or_file: str | os.PathLike[str],
    selection: PointSelection | None = None,
    *,
    ply_file_path: str | None = "points.ply",
    copy_images: bool = True,
    link_images: bool = False,
) -> ExportReport:
    """Write a Nerfstudio dataset (see the module docstring for the conventions).

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    folder_or_file : path-like
        A folder (``transforms.json`` is written inside) or a path ending in ``.json``.
    selection : PointSelection or None
        Which points go into the PLY (None: every global point). Its views also select the frames;
        views whose pose estimation failed are left out.
    ply_file_path : str or None
        Name of the point cloud, relative to the json; None writes no PLY.
    copy_images : bool
        Put copies of the photos in ``images/`` beside the json (EXIF-rotated photos re-encoded
        upright; only files that open as images of the recorded size). When False, ``file_path``
        points to the photos where they are.
    link_images : bool
        Hard-link the photos instead of copying them (off by default: an edit of a linked image edits
        the user's original).

    Returns
    -------
    ExportReport
        ``path`` is the written ``transforms.json``; ``n_points`` the points of the PLY, ``n_cameras``
        the frames.

    Raises
    ------
    EmptyExportError
        A PLY is asked for but no point is selected (nothing is written).
    ExportError
        Nothing writable, or no selected view has a pose.
    """
    target = Path(folder_or_file)
    json_path = target if target.suffix.lower() == ".json" else target / "transforms.json"
    selection = selection or PointSelection()
    posed = posed_views(rec, selection.views)
    used_views = posed.views
    cam_to_world = apply_edits(rec).cam_to_world  # the edited world, as the points
    finite = (
        np.isfinite(cam_to_world[used_views]).all() and np.isfinite(rec.intrinsics_original[used_views]).all()
    )
    if not finite:  # checked before anything is written
        raise ExportError(f"Cannot write {str(json_path)!r}: a camera is not finite (NaN or infinity)")
    points: PointSet | None = None
    if ply_file_path is not None:  # selected and checked before anything is written
        points = select_points(rec, selection.with_views(posed.mask))
        require_points(points, selection, json_path.parent / ply_file_path, rec.edits)
    root = ensure_dir(json_path.parent)

    plan = plan_image_names(rec, used_views, copy_to=root / "images" if copy_images else None)
    frames: list[dict[str, Any]] = []
    for v in used_views:
        if copy_images:
            file_path = f"images/{plan.names[v]}"
        else:
            src = os.path.abspath(rec.image_paths[v])
            try:
                file_path = Path(os.path.relpath(src, root)).as_posix()
            except ValueError:  # another drive on Windows: nerfstudio accepts absolute paths too
                file_path = Path(src).as_posix()
        k = rec.intrinsics_original[v]
        c2w_gl = opencv_to_opengl_c2w(cam_to_world[v])
        frames.append(
            {
                "file_path": file_path,
                "transform_matrix": c2w_gl.tolist(),
                "fl_x": float(k[0, 0]),
                "fl_y": float(k[1, 1]),
                "cx": float(k[0, 2]) + _PIXEL_OFFSET,
                "cy": float(k[1, 2]) + _PIXEL_OFFSET,
                "w": int(rec.original_sizes[v, 0]),
                "h": int(rec.original_sizes[v, 1]),
                "k1": 0.0,
                "k2": 0.0,
                "p1": 0.0,
                "p2": 0.0,
            }
        )

    meta: dict[str, Any] = {
        "camera_model": "OPENCV",
        "frames": frames,
        "applied_transform": np.eye(4)[:3].tolist(),
    }
    files: list[Path] = []
    if ply_file_path is not None and points is not None:
        write_ply(points, root / ply_file_path, world=world_convention(rec.edits))
        files.append(root / ply_file_path)
        meta["ply_file_path"] = Path(ply_file_path).as_posix()
    world = world_convention(rec.edits)
    if world == MODEL_WORLD:  # the words of files written before edits existed
        world = "world = OpenCV camera frame of the first view"
    meta["fast3r"] = {
        "convention": (
            f"transform_matrix: camera-to-world, OpenGL camera axes (x right, y up, z back); {world}; "
            "intrinsics in original-image pixels, centre of the top-left pixel at (0.5, 0.5)"
        ),
        "model_name": rec.model_name,
        "views": used_views,
    }
    if not rec.edits.is_empty:
        meta["fast3r"]["edits"] = edits_summary_json(rec.edits)
    try:
        with atomic_write(json_path, "w") as f:
            json.dump(meta, f, indent=2, allow_nan=False)  # never NaN/Infinity: they are not JSON
    except ValueError as exc:
        raise ExportError(
            f"Cannot write {str(json_path)!r}: a camera is not finite (NaN or infinity)"
        ) from exc
    files.append(json_path)
    missing = place_images(rec, plan, link=link_images)
    if plan.copy:
        gone = set(missing)
        files += [plan.images_dir / n for v, n in plan.names.items() if str(rec.image_paths[v]) not in gone]
    log.info("wrote Nerfstudio dataset %s (%d frames)", json_path, len(frames))
    return ExportReport(
        "nerfstudio",
        json_path,
        files=tuple(files),
        n_points=len(points) if points is not None else 0,
        n_cameras=len(frames),
        n_images=len(frames),
        skipped_views=posed.skipped,
        missing_images=tuple(missing),
        images_dir=plan.images_dir,
    )
