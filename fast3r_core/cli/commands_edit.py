"""``fast3r edit``: give a project's reconstruction its real size, level it, move its origin, crop it.

The options compose in one fixed order, whatever their order on the command line
(:data:`EDIT_ORDER`): ``--clear``, ``--origin``, ``--scale-cameras``, ``--scale``, ``--level``,
``--crop-box``. Coordinates given to ``--origin`` are in the project's current (edited) world, before
this command's scaling and levelling, which then happen about the new origin; ``--crop-box`` is in the
world these leave (scaled, levelled: Z up). The edits are stored in the project (nothing of the model's
output changes) and every export applies them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from fast3r_core.errors import InputError

from .console import Console, Progress
from .exit_codes import EXIT_OK
from .file_destination import project_destination

if TYPE_CHECKING:
    from fast3r_core.edits import Edits
    from fast3r_core.result import Reconstruction

__all__ = ["EDIT_ORDER", "apply_edit_options", "cmd_edit"]

#: The order in which ``fast3r edit`` applies its options (the ``dest`` names of the parser).
EDIT_ORDER: tuple[str, ...] = ("clear", "origin", "scale_cameras", "scale", "level", "crop_box")


def _view_index(text: str, rec: Reconstruction) -> int:
    try:
        v = int(text)
    except ValueError:
        raise InputError(f"--scale-cameras: view index {text!r} is not an integer") from None
    if not 0 <= v < rec.n_views:
        raise InputError(
            f"--scale-cameras: view {v} does not exist (the project has views 0..{rec.n_views - 1})"
        )
    if not rec.pose_ok[v]:
        raise InputError(f"--scale-cameras: view {v} has no reliable pose (its pose estimation failed)")
    return v


def _scale_cameras(e: Edits, rec: Reconstruction, values: list[str]) -> Edits:
    from fast3r_core import edits as ed

    i, j = _view_index(values[0], rec), _view_index(values[1], rec)
    if i == j:
        raise InputError(f"--scale-cameras: give two different views (got {i} twice)")
    try:
        dist = float(values[2])
    except ValueError:
        raise InputError(f"--scale-cameras: distance {values[2]!r} is not a number (metres)") from None
    if not (dist > 0 and math.isfinite(dist)):
        raise InputError(
            f"--scale-cameras: the distance must be a positive number of metres, got {values[2]}"
        )
    return ed.scale_from_cameras(e, rec.cam_to_world, i, j, dist)


def _kept_points(e: Edits, rec: Reconstruction) -> tuple[np.ndarray, np.ndarray]:
    """Model-world points (N, 3) float32 and confidences (N,) of the global points ``e`` keeps."""
    from fast3r_core.edits import edit_points, point_ids

    pts = rec.global_points
    if not e.filters_points:
        return pts.xyz, pts.conf
    ids = point_ids(pts.view, pts.pixel, [rec.view_shape(v) for v in range(rec.n_views)])
    _, keep = edit_points(e, pts.xyz, ids)
    return pts.xyz[keep], pts.conf[keep]


def apply_edit_options(rec: Reconstruction, args: argparse.Namespace) -> Edits:
    """The project's edits followed by the command's options, in :data:`EDIT_ORDER`.

    Raises
    ------
    InputError
        A bad view index, a non-positive distance, coincident cameras, an empty crop box or one that
        keeps no point (:class:`~fast3r_core.errors.EditsError` is an InputError).
    """
    from fast3r_core import edits as ed

    e = ed.clear() if args.clear else rec.edits
    if args.origin is not None:
        e = ed.set_origin(e, args.origin)
    if args.scale_cameras is not None:
        e = _scale_cameras(e, rec, args.scale_cameras)
    if args.scale is not None:
        e = ed.scale_by(e, args.scale)
    if args.level is not None:  # "auto": the cameras' up, refined by a floor plane of the kept points
        posed = rec.cam_to_world[rec.pose_ok]
        if not len(posed):
            raise InputError("--level auto: no view has a reliable pose")
        xyz, conf = _kept_points(e, rec)
        e = ed.level_auto(e, posed, xyz, conf)
    if args.crop_box is not None:
        e = ed.crop_box(e, args.crop_box[:3], args.crop_box[3:])
        if not len(_kept_points(e, rec)[0]):
            lo, hi = (
                ", ".join(f"{x:g}" for x in args.crop_box[:3]),
                ", ".join(f"{x:g}" for x in args.crop_box[3:]),
            )
            raise InputError(
                f"--crop-box: no point lies in the box ({lo}) .. ({hi}); 'fast3r info' shows the edits, "
                "export a PLY to see the scene's coordinates"
            )
    return e


def cmd_edit(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    """``fast3r edit``: a project -> the same project with its edits changed (see the module docstring)."""
    from fast3r_core.edits import describe
    from fast3r_core.project_file import load_project, save_project

    if not (args.clear or any(getattr(args, k) is not None for k in EDIT_ORDER[1:])):
        raise InputError(
            "nothing to do: give --scale-cameras, --scale, --level, --origin, --crop-box or --clear "
            "('fast3r info' lists a project's edits)"
        )
    rec = load_project(args.project)
    dest = project_destination(args.project, args.out, args.overwrite)
    edits = apply_edit_options(rec, args)  # every check before anything is written
    save_project(dataclasses.replace(rec, edits=edits), dest)  # atomic: the old file stays until done
    progress.close()

    lines = describe(edits)
    if console.json_mode:
        summary: dict[str, Any] = {
            "command": "edit",
            "project": dest.resolve(),
            "edits": lines,
            "similarity": edits.similarity_matrix().tolist(),
            "metres_per_unit": edits.metres_per_unit,
        }
        console.json(summary)
        return EXIT_OK
    console.out(f"Wrote {dest.resolve()}")
    for line in lines or ["no edits"]:
        console.out(f"  {line}")
    return EXIT_OK
