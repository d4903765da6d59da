"""A user's edits of a reconstruction: scale, level, origin, crop, deleted points, measurements.

Non-destructive: the model's output is never changed; exporters and the viewer apply an :class:`Edits`
on the way out, with :func:`apply_to_points` and :func:`keep_mask` (both in :func:`edit_points`) and
:func:`apply_to_cameras`, so that a distance measured in the app is the same in every exported file and
camera poses stay consistent with the points (reprojections are unchanged).

Frames and conventions:

* **model world**: the frame of a :class:`~fast3r_core.result.Reconstruction` (OpenCV axes: x right,
  y down, z forward; world = camera of view 0; arbitrary scale). Camera poses are cam-to-world.
* **edited world**: ``x_edited = scale * rotation @ (x_model - origin)`` (:meth:`Edits.similarity_matrix`).
  After :func:`level_auto` or :func:`level_from_points` its +Z is up (CloudCompare, Blender, COLMAP
  georegistration); a GLB exporter converts to glTF's Y up as usual.
* Operations take the points a user picks or types in the edited world as it is before the operation
  (what the viewer shows), and whole reconstruction arrays (cam_to_world, xyz, conf) in the model world.
  Scaling and rotations are about the edited origin.
* Lengths: edited-world units; ``Edits.metres_per_unit`` says how long one is once a scale is known
  (1.0 after :func:`scale_from_distance` / :func:`scale_from_cameras`, which take metres).
* Deleted / kept points are sets of :func:`point_ids` (pixel ids, the same for the global and local
  point sets).

Every operation returns a new frozen :class:`Edits` (an undo stack keeps the old ones); errors are
:class:`~fast3r_core.errors.EditsError`.
"""

from __future__ import annotations

from ._apply import (
    apply_inverse_to_points,
    apply_to_cameras,
    apply_to_points,
    edit_points,
    keep_mask,
    point_ids,
)
from ._json import edits_from_json, edits_to_json
from ._level import UpEstimate, cameras_mean_up, estimate_up, rotation_to_z
from ._model import (
    EDITS_VERSION,
    UNITS,
    CropBox,
    Edits,
    Measurement,
    Selection,
    from_metres,
    to_metres,
)
from ._ops import (
    add_measurement,
    cameras_up,
    clear,
    compose_similarity,
    crop_box,
    delete_points,
    describe,
    format_length,
    keep_only,
    level_auto,
    level_from_points,
    remove_measurement,
    rotate,
    scale_by,
    scale_from_cameras,
    scale_from_distance,
    set_crop,
    set_display_unit,
    set_origin,
    translate,
    unique_measurement_name,
    with_appended_points,
)
from ._select import invert_selection, lasso_select, rect_select

__all__ = [
    "EDITS_VERSION",
    "UNITS",
    "CropBox",
    "Edits",
    "Measurement",
    "Selection",
    "UpEstimate",
    "add_measurement",
    "apply_inverse_to_points",
    "apply_to_cameras",
    "apply_to_points",
    "cameras_mean_up",
    "cameras_up",
    "clear",
    "compose_similarity",
    "crop_box",
    "delete_points",
    "describe",
    "edit_points",
    "edits_from_json",
    "edits_to_json",
    "estimate_up",
    "format_length",
    "from_metres",
    "invert_selection",
    "keep_mask",
    "keep_only",
    "lasso_select",
    "level_auto",
    "level_from_points",
    "point_ids",
    "rect_select",
    "remove_measurement",
    "rotate",
    "rotation_to_z",
    "scale_by",
    "scale_from_cameras",
    "scale_from_distance",
    "set_crop",
    "set_display_unit",
    "set_origin",
    "to_metres",
    "translate",
    "unique_measurement_name",
    "with_appended_points",
]
