"""A plain JSON file of the cameras, for scripts: intrinsics and cam-to-world poses per view.

Format::

    {
      "convention": "...",            # the sentence below, so the file documents itself
      "model_name": "...",
      "views": [                      # input order, every view
        {"index": 0, "image": "IMG_1.jpg", "path": "/abs/IMG_1.jpg",
         "width": 4032, "height": 3024,                # original (upright) photo
         "intrinsics_source": "known",                 # "known" (a file or EXIF) or "estimated"
         "fx": ..., "fy": ..., "cx": ..., "cy": ...,    # original pixels, top-left pixel centre (0, 0)
         "cam_to_world": [[...4...], x4],               # OpenCV camera axes
         "pose_ok": true},
        ...
      ],
      "edits": {...}                  # only when the project has edits: see below
    }

Poses (and the world in the convention) are in the edited world (:mod:`fast3r_core.export.edited`):
the model's world with the user's edits applied. When there are edits, ``"edits"`` holds their
``similarity`` (4x4, model world -> this file's world), ``z_up``, ``metres_per_unit`` (null while no
scale is known) and the ``measurements`` (name, end points ``a``, ``b`` in this file's world,
``distance`` in its units, ``distance_m``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fast3r_core.atomic import atomic_write
from fast3r_core.errors import ExportError
from fast3r_core.export.edited import MODEL_WORLD, apply_edits, edits_summary_json, world_convention
from fast3r_core.export.selection import ExportReport

if TYPE_CHECKING:
    from fast3r_core.result import Reconstruction

__all__ = ["CAMERAS_JSON_CONVENTION", "export_cameras_json"]

log = logging.getLogger(__name__)

CAMERAS_JSON_CONVENTION = (
    "cam_to_world maps camera coordinates to world coordinates (X_world = R @ X_cam + t); OpenCV camera "
    "axes (x right, y down, z forward); world = camera frame of view 0; fx, fy, cx, cy in pixels of the "
    "original upright image with the centre of the top-left pixel at (0, 0); width, height = original "
    "image size"
)


def export_cameras_json(rec: Reconstruction, path: str | os.PathLike[str]) -> ExportReport:
    """Write every view's camera to a JSON file (format in the module docstring), atomically.

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    path : path-like
        Destination ``.json`` file.

    Returns
    -------
    ExportReport
        ``n_cameras``: number of views written (every view; ``pose_ok`` tells the failed ones).

    Raises
    ------
    ExportError
        The destination cannot be written.
    """
    cam_to_world = apply_edits(rec).cam_to_world  # the edited world, as the other exports
    views: list[dict[str, Any]] = []
    for v in range(rec.n_views):
        k = rec.intrinsics_original[v]
        views.append(
            {
                "index": v,
                "image": os.path.basename(rec.image_paths[v]),
                "path": os.path.abspath(rec.image_paths[v]),
                "width": int(rec.original_sizes[v, 0]),
                "height": int(rec.original_sizes[v, 1]),
                "intrinsics_source": "known" if rec.intrinsics_known[v] else "estimated",
                "fx": float(k[0, 0]),
                "fy": float(k[1, 1]),
                "cx": float(k[0, 2]),
                "cy": float(k[1, 2]),
                "cam_to_world": cam_to_world[v].tolist(),
                "pose_ok": bool(rec.pose_ok[v]),
            }
        )
    world = world_convention(rec.edits)
    convention = CAMERAS_JSON_CONVENTION
    if world != MODEL_WORLD:  # the words stay those of files written before edits existed
        convention = convention.replace("world = camera frame of view 0", world)
    doc: dict[str, Any] = {"convention": convention, "model_name": rec.model_name, "views": views}
    if not rec.edits.is_empty:
        doc["edits"] = edits_summary_json(rec.edits)
    try:
        with atomic_write(Path(path), "w") as f:
            json.dump(doc, f, indent=2, allow_nan=False)  # never NaN/Infinity: they are not JSON
    except ValueError as exc:
        raise ExportError(f"Cannot write {str(path)!r}: a camera is not finite (NaN or infinity)") from exc
    log.info("wrote %d cameras to %s", len(views), path)
    return ExportReport("cameras", Path(path), files=(Path(path),), n_cameras=len(views))
