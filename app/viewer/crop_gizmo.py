"""The crop box in the viewport: a wireframe with a draggable handle at the centre of each face.

The box is a :class:`fast3r_core.edits.CropBox` in the **edited world**; the visuals are drawn in
their parent node's coordinates through a 4x4 matrix given with the box (identity when the node is
in the edited world). Dragging a handle moves that
face along its normal (the opposite face stays put): the new face position is the point of the face's
axis nearest to the mouse ray, so the face follows the cursor exactly under perspective.

The geometry (:func:`face_handles`, :func:`box_edges`, :func:`screen_ray`, :func:`drag_face`) is pure
numpy; :class:`CropGizmo` holds the VisPy visuals.
"""

from __future__ import annotations

import numpy as np
from vispy import scene

from fast3r_core.edits import CropBox

from .picking import pick_nearest

__all__ = [
    "FACE_NAMES",
    "HANDLE_RADIUS",
    "CropGizmo",
    "box_edges",
    "drag_face",
    "face_handles",
    "face_offset",
    "pick_handle",
    "screen_ray",
]

#: Faces in handle order: face ``k`` is on axis ``k // 2``, at the minimum side for even ``k``.
FACE_NAMES = ("-x", "+x", "-y", "+y", "-z", "+z")
HANDLE_RADIUS = 14.0
"""Largest distance in logical pixels between a press and a face handle that grabs it."""
MIN_HALF_FRACTION = 1e-3
"""A drag never makes a half-extent smaller than this fraction of the box's largest one."""

_AXIS_COLORS = np.array(
    [[0.95, 0.33, 0.30, 1.0], [0.40, 0.85, 0.35, 1.0], [0.35, 0.60, 1.0, 1.0]], dtype=np.float32
)
_EDGE_COLOR = (1.0, 0.80, 0.20, 1.0)
_ACTIVE_COLOR = np.array([1.0, 1.0, 1.0, 1.0], dtype=np.float32)


def _arrays(box: CropBox) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.asarray(box.center, np.float64),
        np.asarray(box.rotation, np.float64),
        np.asarray(box.half_extents, np.float64),
    )


def face_handles(box: CropBox) -> tuple[np.ndarray, np.ndarray]:
    """Face centres and outward unit normals, (6, 3) float64 each, edited world, :data:`FACE_NAMES` order."""
    c, R, h = _arrays(box)
    centres = np.empty((6, 3))
    normals = np.empty((6, 3))
    for k in range(6):
        axis, sign = k // 2, (1.0 if k % 2 else -1.0)
        normals[k] = sign * R[:, axis]
        centres[k] = c + h[axis] * normals[k]
    return centres, normals


def box_edges(box: CropBox) -> np.ndarray:
    """(24, 3) float64: the 12 edges as pairs of end points (edited world), for ``connect="segments"``."""
    c, R, h = _arrays(box)
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    corners = c + (signs * h) @ R.T
    pairs = [(i, j) for i in range(8) for j in range(i + 1, 8) if np.abs(signs[i] - signs[j]).sum() == 2]
    return corners[np.array(pairs).reshape(-1)]


def screen_ray(matrix: np.ndarray, xy: np.ndarray, through: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The line of points that project to canvas position ``xy``.

    Parameters
    ----------
    matrix : np.ndarray, (4, 4)
        World -> canvas homogeneous (column vectors), invertible (a perspective or orthographic
        projection with depth).
    xy : (2,)
        Canvas logical pixels.
    through : (3,)
        A world point whose depth is used for the first point of the line (the line does not depend
        on it; it keeps the numbers well scaled).

    Returns
    -------
    origin, direction : np.ndarray, (3,) each
        A point of the line and a unit direction (away from the eye).
    """
    M = np.asarray(matrix, np.float64)
    Minv = np.linalg.inv(M)
    h = M @ np.append(np.asarray(through, np.float64), 1.0)
    z = h[2] / h[3]
    pts = []
    for depth in (z, z + 0.05 * (abs(z) + 1.0)):
        p = Minv @ np.array([xy[0], xy[1], depth, 1.0])
        pts.append(p[:3] / p[3])
    d = pts[1] - pts[0]
    n = float(np.linalg.norm(d))
    return pts[0], d / n if n > 0 else d


def _axis_param(
    point: np.ndarray, axis: np.ndarray, origin: np.ndarray, direction: np.ndarray
) -> float | None:
    """Parameter ``t`` of the point of ``point + t * axis`` (unit axis) nearest to the ray, or None when
    the ray is (nearly) parallel to the axis."""
    b = float(axis @ direction)
    c = float(direction @ direction)
    w0 = point - origin
    denom = c - b * b  # |axis| = 1
    if denom < 1e-9 * c:
        return None
    return (b * float(direction @ w0) - c * float(axis @ w0)) / denom


def drag_face(
    box: CropBox, face: int, origin: np.ndarray, direction: np.ndarray, grab: float = 0.0
) -> CropBox:
    """The box with face ``face`` moved to where the mouse ray ``(origin, direction)`` points.

    Parameters
    ----------
    box : CropBox
        The box when the drag began (edited world).
    face : int
        0..5 (:data:`FACE_NAMES`).
    origin, direction : np.ndarray, (3,)
        The mouse ray now (:func:`screen_ray`), edited world.
    grab : float
        :func:`face_offset` of the press (so that the face does not jump to the cursor at the start).

    Returns
    -------
    CropBox
        The opposite face stays where it was; the half-extent is at least :data:`MIN_HALF_FRACTION` of
        the box's largest. The same box when the ray is parallel to the face's normal.
    """
    centres, normals = face_handles(box)
    t = _axis_param(centres[face], normals[face], np.asarray(origin, float), np.asarray(direction, float))
    if t is None:
        return box
    t -= grab
    c, _, h = _arrays(box)
    axis = face // 2
    min_half = MIN_HALF_FRACTION * float(h.max())
    t = max(t, 2.0 * (min_half - h[axis]))  # the face may not pass the opposite one
    half = h.copy()
    half[axis] += t / 2.0
    center = c + normals[face] * (t / 2.0)
    return CropBox(center=tuple(center), rotation=box.rotation, half_extents=tuple(half))


def face_offset(box: CropBox, face: int, origin: np.ndarray, direction: np.ndarray) -> float:
    """How far along its normal the mouse ray's nearest point is from face ``face`` (0 when parallel)."""
    centres, normals = face_handles(box)
    t = _axis_param(centres[face], normals[face], np.asarray(origin, float), np.asarray(direction, float))
    return 0.0 if t is None else t


def pick_handle(
    box: CropBox, matrix: np.ndarray, pos: tuple[float, float] | np.ndarray, radius: float = HANDLE_RADIUS
) -> int:
    """The face whose handle is nearest to canvas position ``pos`` within ``radius`` px, or -1.

    ``matrix`` maps the edited world to the canvas (homogeneous, column vectors).
    """
    centres, _ = face_handles(box)
    h = np.c_[centres, np.ones(6)] @ np.asarray(matrix, np.float64).T
    front = h[:, 3] > 1e-12
    xy = h[:, :2] / np.where(front, h[:, 3], 1.0)[:, None]
    return pick_nearest(xy, np.arange(6), pos, valid=front, radius=radius)


class CropGizmo:
    """The crop box's wireframe and its six face handles, drawn over the points (no depth test).

    Parameters
    ----------
    parent : vispy scene node
        Where the visuals go (see :meth:`set_box` for its coordinates).
    """

    def __init__(self, parent: scene.Node) -> None:
        self._lines = scene.visuals.Line(
            pos=np.zeros((2, 3), np.float32), color=_EDGE_COLOR, width=2, connect="segments", parent=parent
        )
        self._handles = scene.visuals.Markers(parent=parent)
        self._handles.set_data(np.zeros((1, 3), np.float32), size=1)
        for node in (self._lines, self._handles):
            node.set_gl_state("translucent", depth_test=False)
            node.order = 10
        self._handles.order = 11
        self._box: CropBox | None = None
        self._active = -1
        self.set_box(None, np.eye(4))

    @property
    def box(self) -> CropBox | None:
        """The box shown (edited world), or None when hidden."""
        return self._box

    @property
    def visible(self) -> bool:
        return self._box is not None

    def set_box(self, box: CropBox | None, node_from_edited: np.ndarray, active: int = -1) -> None:
        """Show ``box`` (edited world; None hides the gizmo); ``active`` is a face being dragged."""
        self._box = box
        self._active = active
        on = box is not None
        self._lines.visible = on
        self._handles.visible = on
        if box is None:
            return
        S = np.asarray(node_from_edited, np.float64)
        to_node = lambda p: (np.c_[p, np.ones(len(p))] @ S.T)[:, :3].astype(np.float32)  # noqa: E731
        self._lines.set_data(pos=to_node(box_edges(box)))
        centres, _ = face_handles(box)
        colors = _AXIS_COLORS[np.arange(6) // 2].copy()
        sizes = np.full(6, 13.0, np.float32)
        if 0 <= active < 6:
            colors[active] = _ACTIVE_COLOR
            sizes[active] = 17.0
        self._handles.set_data(
            to_node(centres),
            face_color=colors,
            edge_color=(0.05, 0.05, 0.05, 1.0),
            edge_width=1.5,
            size=sizes,
        )

    def parent_nodes(self) -> tuple[scene.Node, ...]:
        """The VisPy nodes (for tests and for removing them)."""
        return (self._lines, self._handles)
