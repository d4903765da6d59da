"""The user's edits as every exporter applies them: :func:`apply_edits`, the one path out of the model world.

A :class:`~fast3r_core.result.Reconstruction` keeps the model's output untouched and its
:class:`~fast3r_core.edits.Edits` beside it. Every exporter (PLY, GLB, COLMAP, Nerfstudio, cameras.json)
writes the **edited world** ``x_edited = s * R @ (x_model - origin)``: points through
:func:`fast3r_core.edits.edit_points` (similarity, crop box, deleted selections, with the points' pixel
ids), cameras through :func:`fast3r_core.edits.apply_to_cameras` (rigid poses; intrinsics unchanged, so
every reprojection is unchanged). The viewer calls the same two functions, so a distance measured in the
app is the same distance in every file.

Axes of the edited world: OpenCV's (y down) while the edits do not rotate the world (the model's frame,
view 0's camera, possibly scaled and moved); Z up once they do (levelling is the only rotation the
tools make). :func:`gltf_rotation` turns either into glTF's Y up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fast3r_core.edits import Edits, apply_to_cameras, apply_to_points, edit_points, point_ids
from fast3r_core.geometry import OPENCV_TO_OPENGL, se3_inverse

if TYPE_CHECKING:
    from fast3r_core.point_set import PointSet
    from fast3r_core.result import Reconstruction

__all__ = [
    "MODEL_WORLD",
    "EditedScene",
    "apply_edits",
    "edits_summary_json",
    "gltf_rotation",
    "world_convention",
]

log = logging.getLogger(__name__)

_IDENTITY = np.eye(3)

MODEL_WORLD = "world = camera of view 0, OpenCV axes (x right, y down, z forward)"
"""The frame of an export without edits, in words."""

_Z_UP_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Z-up world -> glTF (Y up): ``(x, y, z) -> (x, z, -y)``, the inverse of what Blender's glTF importer
does, so a levelled scene opens in Blender with the coordinates of the PLY."""


@dataclass(frozen=True)
class EditedScene:
    """A reconstruction's cameras (and optionally points) in the edited world.

    Attributes
    ----------
    edits : Edits
        The edits applied (``rec.edits``).
    cam_to_world : np.ndarray, (V, 4, 4) float64
        Every view's camera-to-world pose in the edited world, OpenCV camera axes (rigid).
    points : PointSet or None
        The given points in the edited world (float32), without those the crop box and the
        selections leave out, still in decreasing confidence order; None when no points were given.
    """

    edits: Edits
    cam_to_world: np.ndarray
    points: PointSet | None = None

    @property
    def world_to_cam(self) -> np.ndarray:
        """(V, 4, 4) float64 world-to-camera poses in the edited world (inverses of ``cam_to_world``)."""
        return se3_inverse(self.cam_to_world)

    @property
    def scale(self) -> float:
        """Edited-world units per model-world unit (``edits.scale``): model lengths times this."""
        return float(self.edits.scale)


def apply_edits(rec: Reconstruction, points: PointSet | None = None) -> EditedScene:
    """``rec.edits`` applied to its cameras and to ``points``: the one way exporters apply edits.

    Parameters
    ----------
    rec : Reconstruction
        Gives the edits, the model-world poses and the views' pixel sizes (for the point ids).
    points : PointSet or None
        Model-world points of ``rec`` (any subset, confidence-ordered), e.g. from
        :meth:`Reconstruction.select`.

    Returns
    -------
    EditedScene
        ``points`` is ``points`` itself (no copy) when the edits neither move nor filter points.
    """
    e = rec.edits
    cams = apply_to_cameras(e, rec.cam_to_world)
    if points is None or not (e.has_transform or e.filters_points):
        return EditedScene(e, cams, points)
    from fast3r_core.point_set import PointSet

    shapes = [rec.view_shape(v) for v in range(rec.n_views)]
    ids = point_ids(points.view, points.pixel, shapes) if e.selections else np.zeros(len(points), np.int64)
    xyz, keep = edit_points(e, points.xyz, ids)
    xyz = np.ascontiguousarray(xyz, dtype=np.float32)
    if keep.all():
        edited = PointSet(xyz, points.rgb, points.conf, points.view, points.pixel)
    else:
        edited = PointSet(xyz, points.rgb[keep], points.conf[keep], points.view[keep], points.pixel[keep])
        log.debug("edits: %d of %d points kept", len(edited), len(points))
    return EditedScene(e, cams, edited)


def _is_rotated(e: Edits) -> bool:
    return not np.array_equal(np.asarray(e.rotation, dtype=np.float64), _IDENTITY)


def gltf_rotation(e: Edits) -> np.ndarray:
    """(3, 3) rotation from the edited world to glTF axes (+Y up, +Z toward the viewer).

    Unrotated edits keep OpenCV axes (y down): ``(x, -y, -z)``, a half turn about x. Rotated (levelled,
    Z up) edits: ``(x, z, -y)``. Neither mirrors.
    """
    return _Z_UP_TO_GLTF.copy() if _is_rotated(e) else OPENCV_TO_OPENGL[:3, :3].copy()


def world_convention(e: Edits) -> str:
    """The world frame of an export, in words: for the conventions written into the files."""
    if not (e.has_transform or e.metres_per_unit is not None):
        return MODEL_WORLD
    axes = "Z up (levelled)" if _is_rotated(e) else "OpenCV axes (x right, y down, z forward)"
    unit = "arbitrary units" if e.metres_per_unit is None else f"1 unit = {e.metres_per_unit:.9g} m"
    return (
        "world = the user's edited world x = s * R @ (x_model - origin) of the model's world (camera "
        f"of view 0), {axes}, {unit}"
    )


def edits_summary_json(e: Edits) -> dict[str, Any]:
    """What an export records of the edits: the similarity, the units and the measurements.

    ``similarity`` (4x4) maps the model's world to the file's (edited) world; measurement end points
    ``a``, ``b`` are in the edited world, ``distance`` in edited-world units, ``distance_m`` in
    metres (None while no scale is known).
    """
    measurements = []
    for m in e.measurements:
        ends = apply_to_points(e, np.array([m.a, m.b], dtype=np.float64))
        d = m.distance(e)
        measurements.append(
            {
                "name": m.name,
                "a": ends[0].tolist(),
                "b": ends[1].tolist(),
                "distance": d,
                "distance_m": None if e.metres_per_unit is None else d * e.metres_per_unit,
            }
        )
    return {
        "similarity": e.similarity_matrix().tolist(),
        "z_up": _is_rotated(e),
        "metres_per_unit": e.metres_per_unit,
        "measurements": measurements,
    }
