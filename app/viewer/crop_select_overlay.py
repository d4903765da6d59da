"""What the crop and selection tools add to the viewport: the crop gizmo, the lasso outline, the
highlighted selection, the points the edits remove, and the mouse handling of those tools.

One object, owned by :class:`~app.viewer.SceneViewer`, which forwards the viewer protocol's edit
members to it (``set_edits``, ``set_edit_tool``, ``set_crop_gizmo``, ``show_selection``,
``screen_matrix`` and the ``selection_drawn`` / ``crop_box_dragged`` signals). It decides nothing
about the edits: it reports polygons and dragged boxes, and :class:`app.crop_select.CropSelectTools` turns
them into :class:`~fast3r_core.edits.Edits` on the undo stack.

Mouse handling: the overlay's canvas handlers are connected after the viewer's and the scene's, and
VisPy calls the latest-connected first, so when a tool takes a press (a lasso / rectangle drag, or a
press on a crop handle) it blocks the event and the camera does not move. The mouse wheel always
zooms; with the crop tool a drag that does not start on a handle still rotates the camera.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import numpy as np
from PySide6.QtCore import QObject, Signal
from vispy import scene

from fast3r_core.edits import CropBox, Edits, apply_inverse_to_points

from .colors import pack_aux, pack_rgb
from .crop_gizmo import CropGizmo, drag_face, face_offset, pick_handle, screen_ray
from .lasso import SELECTION_COLOR, SELECTION_TINT, LassoOverlay, LassoStroke, canvas_matrix
from .point_cloud import PointCloud

__all__ = ["MAX_HIGHLIGHT", "TOOLS", "CropSelectOverlay"]

log = logging.getLogger(__name__)

#: The viewport's tools: navigate (camera only), lasso, rectangle, crop (the box's handles).
TOOLS = ("navigate", "lasso", "rectangle", "crop")
MAX_HIGHLIGHT = 1_000_000
"""At most this many selected points are drawn highlighted (a fixed random subset beyond it); the
selection itself is always exact."""


class CropSelectOverlay(QObject):
    """The edit tools' visuals and mouse handling in one viewport.

    Parameters
    ----------
    canvas : vispy.scene.SceneCanvas
    parent_node : vispy scene node
        Where the gizmo and the highlighted points go: the view's scene (model-world coordinates, as
        the points are uploaded), or a node whose children are in edited-world coordinates.
    parent : QObject, optional
    node_is_edited_world : bool
        Whether ``parent_node``'s coordinates are the edited world (no conversion) or the model world
        (edited-world positions are mapped back with the inverse of the edits' similarity).

    Signals
    -------
    selection_drawn(object)
        A lasso or rectangle was drawn: its (M, 2) float64 polygon in canvas logical pixels (y down;
        a rectangle's 4 corners).
    crop_box_dragged(object)
        A face handle was dragged and released: the new :class:`CropBox` (edited world).
    """

    selection_drawn = Signal(object)
    crop_box_dragged = Signal(object)

    def __init__(
        self,
        canvas: scene.SceneCanvas,
        parent_node: scene.Node,
        parent: QObject | None = None,
        *,
        node_is_edited_world: bool = False,
    ) -> None:
        super().__init__(parent)
        self._node_is_edited = node_is_edited_world
        self._canvas = canvas
        self._tool = "navigate"
        self._edits = Edits()
        self.gizmo = CropGizmo(parent_node)
        self._lasso = LassoOverlay(canvas)
        self._stroke: LassoStroke | None = None
        self._drag: tuple[int, CropBox, float] | None = None  # face, box at the press, grab offset
        self._selection = PointCloud(parent=parent_node)
        # drawn after the cloud at the same depths ("lequal"): the visible selected points are tinted,
        # those hidden behind others stay hidden (the cloud's depth test)
        self._selection.set_gl_state("opaque", depth_test=True, depth_func="lequal")
        self._selection.order = 5
        self._selection.set_point_size(2.5)
        self.selection_count = 0  # highlighted points drawn
        canvas.events.mouse_press.connect(self._on_press)
        canvas.events.mouse_move.connect(self._on_move)
        canvas.events.mouse_release.connect(self._on_release)

    @contextlib.contextmanager
    def hidden(self) -> Iterator[None]:
        """Hide the tools' drawings (box, handles, lasso, selection tint) inside the block: screenshots
        and renders show the scene, not the tools."""
        visuals = (self.gizmo._lines, self.gizmo._handles, self._lasso._line, self._selection)
        was = [v.visible for v in visuals]
        for v in visuals:
            v.visible = False
        try:
            yield
        finally:
            for v, on in zip(visuals, was, strict=True):
                v.visible = on

    # ------------------------------------------------------------------------------------ state
    def set_tool(self, tool: str) -> None:
        """Choose the tool the left mouse button drives (:data:`TOOLS`)."""
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")
        self._tool = tool
        self._stroke = None
        self._drag = None
        self._lasso.show(None)

    def set_edits(self, edits: Edits) -> None:
        """Follow the current edits (the gizmo is drawn in the edited world)."""
        self._edits = edits
        box = self.gizmo.box
        if box is not None:
            self.gizmo.set_box(box, self._node_from_edited())

    def set_crop_box(self, box: CropBox | None) -> None:
        """Show the crop gizmo at ``box`` (edited world), or hide it (None)."""
        self._drag = None
        self.gizmo.set_box(box, self._node_from_edited())
        self._canvas.update()

    def show_selection(self, xyz_edited: np.ndarray, rgb: np.ndarray | None = None) -> None:
        """Highlight these edited-world points ((K, 3); empty: none): their (K, 3) uint8 colours
        tinted towards :data:`~.lasso.SELECTION_COLOR`, or that colour alone without them."""
        pts = np.asarray(xyz_edited, dtype=np.float64).reshape(-1, 3)
        tint = np.array(SELECTION_COLOR) * 255.0
        colors = np.broadcast_to(tint, pts.shape) if rgb is None else np.asarray(rgb).reshape(-1, 3)
        if len(pts) > MAX_HIGHLIGHT:
            pick = np.sort(np.random.default_rng(0).choice(len(pts), MAX_HIGHLIGHT, replace=False))
            pts, colors = pts[pick], colors[pick]
        n = len(pts)
        mixed = np.round(colors * (1.0 - SELECTION_TINT) + tint * SELECTION_TINT).astype(np.uint8)
        if not self._node_is_edited:
            pts = np.asarray(apply_inverse_to_points(self._edits, pts))
        xyz = np.ascontiguousarray(pts, dtype=np.float32)
        self._selection.set_points(
            xyz, pack_rgb(mixed), pack_aux(np.zeros(n, np.int64), np.zeros(n, np.float32)), 1
        )
        self._selection.set_pixel_scale(self._canvas.pixel_scale)
        self._selection.set_draw(None, n)
        self.selection_count = n
        self._canvas.update()

    def screen_matrix(self) -> np.ndarray:
        """(4, 4) float64: edited world -> canvas logical pixels, homogeneous (column vectors)."""
        tr = self.gizmo.parent_nodes()[0].get_transform("visual", "canvas")
        return canvas_matrix(tr) @ self._node_from_edited()

    def _node_from_edited(self) -> np.ndarray:
        """(4, 4): edited world -> the parent node's coordinates (column vectors)."""
        if self._node_is_edited or not self._edits.has_transform:
            return np.eye(4)
        inv: np.ndarray = np.linalg.inv(self._edits.similarity_matrix())
        return inv

    def close(self) -> None:
        for emitter, slot in (
            (self._canvas.events.mouse_press, self._on_press),
            (self._canvas.events.mouse_move, self._on_move),
            (self._canvas.events.mouse_release, self._on_release),
        ):
            emitter.disconnect(slot)

    # ------------------------------------------------------------------------------------ mouse
    def _on_press(self, event: object) -> None:
        if getattr(event, "button", None) != 1:
            return
        pos = np.asarray(event.pos[:2], dtype=np.float64)  # type: ignore[attr-defined]
        if self._tool in ("lasso", "rectangle"):
            self._stroke = LassoStroke(pos, rectangle=self._tool == "rectangle")
            self._block(event)
        elif self._tool == "crop" and self.gizmo.box is not None:
            box = self.gizmo.box
            matrix = self.screen_matrix()
            face = pick_handle(box, matrix, pos)
            if face < 0:
                return  # not on a handle: the camera rotates
            origin, direction = screen_ray(matrix, pos, np.asarray(box.center))
            self._drag = (face, box, face_offset(box, face, origin, direction))
            self.gizmo.set_box(box, self._node_from_edited(), active=face)
            self._canvas.update()
            self._block(event)

    def _on_move(self, event: object) -> None:
        pos = np.asarray(event.pos[:2], dtype=np.float64)  # type: ignore[attr-defined]
        if self._stroke is not None:
            self._stroke.add(pos)
            self._lasso.show(self._stroke.polygon())
            self._canvas.update()
            self._block(event)
        elif self._drag is not None:
            box = self._dragged_box(pos)
            self.gizmo.set_box(box, self._node_from_edited(), active=self._drag[0])
            self._canvas.update()
            self._block(event)

    def _on_release(self, event: object) -> None:
        if getattr(event, "button", None) != 1:
            return  # another button let go during a drag: the drag goes on
        pos = np.asarray(event.pos[:2], dtype=np.float64)  # type: ignore[attr-defined]
        if self._stroke is not None:
            stroke, self._stroke = self._stroke, None
            stroke.add(pos)
            self._lasso.show(None)
            self._canvas.update()
            self._block(event)
            polygon = stroke.polygon()
            log.debug("%s drawn: %d vertices", self._tool, len(polygon))
            self.selection_drawn.emit(polygon)
        elif self._drag is not None:
            box = self._dragged_box(pos)
            self._drag = None
            self.gizmo.set_box(box, self._node_from_edited())
            self._canvas.update()
            self._block(event)
            self.crop_box_dragged.emit(box)

    def _dragged_box(self, pos: np.ndarray) -> CropBox:
        assert self._drag is not None
        face, start, grab = self._drag
        origin, direction = screen_ray(self.screen_matrix(), pos, np.asarray(start.center))
        return drag_face(start, face, origin, direction, grab)

    @staticmethod
    def _block(event: object) -> None:
        """Stop VisPy from passing the event on (to the camera and the frustum picking)."""
        event.blocked = True  # type: ignore[attr-defined]
