"""Plain data the edit tools and the viewer exchange: a picked point and what to draw over the scene.

No Qt, no VisPy: the window's tools (:mod:`app.edit_tools`), the real viewer and the tests' stand-in
viewer all use these. Coordinates are in the **edited world** (:mod:`fast3r_core.edits`:
``x_edited = scale * R @ (x_model - origin)``, Z up after levelling), the frame the viewer shows.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EditOverlay", "OverlaySegment", "PickedPoint"]

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class PickedPoint:
    """A point of the cloud chosen with the mouse.

    Attributes
    ----------
    index : int
        Index into the confidence-ordered point set of the shown source (``rec.points(source)``).
    point_id : int
        Its stable id (:func:`fast3r_core.edits.point_ids`: ``offset(view) + row * width + column``).
    view : int
        The view it comes from.
    xyz : (float, float, float)
        Edited-world position (float64, exact: computed from the model-world point, not from the GPU).
    screen : (float, float)
        Where it is on the canvas (logical pixels, y down) when it was picked.
    """

    index: int
    point_id: int
    view: int
    xyz: Vec3
    screen: tuple[float, float]


@dataclass(frozen=True)
class OverlaySegment:
    """A line between two edited-world points with a text label at its middle ("" for none)."""

    a: Vec3
    b: Vec3
    label: str = ""


@dataclass(frozen=True)
class EditOverlay:
    """Everything the edit tools draw over the scene (replaced as a whole by ``Viewer.set_overlay``).

    Attributes
    ----------
    segments : tuple of OverlaySegment
        The measurements (lines with their lengths).
    markers : tuple of (float, float, float)
        Points picked so far by the active tool (e.g. the first end of a measurement, floor points).
    """

    segments: tuple[OverlaySegment, ...] = ()
    markers: tuple[Vec3, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.segments and not self.markers
