"""SceneViewer: the VisPy viewport of a reconstruction, driven by a :class:`~app.state.ViewerState`.

The viewer owns no data: it reads the state's Reconstruction and display values and updates VisPy
nodes when the state's signals fire (napari's habit: one adapter per data object). The canvas is
wrapped, not subclassed; put :attr:`SceneViewer.native` in a layout.

World frame: the reconstruction's, OpenCV axes (x right, y down, z forward of view 0's camera), so the
viewer's "up" is -y. Poses are cam-to-world.

Performance design (5 million points stay usable on software OpenGL):

* All points of a (reconstruction, source) are uploaded once, in confidence order. The confidence
  filter is a prefix, so moving the slider only changes the number of vertices drawn.
* A view/sky/playback mask is an index buffer of the surviving points (sorted, so a confidence prefix
  is again a prefix of it), uploaded when the mask changes.
* While the camera moves (or the selection changes, e.g. while the confidence slider is dragged), a
  fixed random subsample within the point budget is drawn (:mod:`.lod`); full density returns
  :attr:`SceneViewer.idle_ms` after the last change. (A full-density frame of 5 M points takes
  seconds on a software renderer, so only the last one is drawn at full density.)
* Colour mode, point size and highlighting are shader uniforms.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from os import PathLike

import numpy as np
from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QWidget
from vispy import gloo, scene
from vispy.scene.cameras import ArcballCamera, TurntableCamera
from vispy.util.quaternion import Quaternion
from vispy.visuals.transforms import MatrixTransform, STTransform

from app.edit_types import EditOverlay, PickedPoint
from app.edited_points import EditedPoints
from app.state import ViewerState
from fast3r_core.edits import CropBox, Edits, apply_to_points
from fast3r_core.point_set import PointSet
from fast3r_core.result import Reconstruction

from .camera_math import (
    arcball_quaternion,
    box_corners,
    camera_axes,
    default_view_direction,
    fit_distance,
    look_basis,
    pose_of_view,
    robust_bounds,
    slerp_rotation,
    smoothstep,
    turntable_angles,
)
from .colors import conf_norm_values, pack_aux, pack_rgb, parse_color, view_palette
from .crop_select_overlay import CropSelectOverlay
from .edit_overlays import EditOverlays
from .edited_world import (
    display_rotation,
    filter_key,
    model_to_display,
    similarity_change,
    transform_pose,
)
from .frusta import Frusta
from .lod import (
    DEFAULT_BUDGET,
    SOFTWARE_BUDGET,
    SOFTWARE_IDLE_BUDGET,
    LevelOfDetail,
    is_software_renderer,
    prefix_count,
)
from .picking import PICK_RADIUS, homogeneous_to_screen, is_click, pick_nearest
from .point_cloud import PointCloud
from .point_picking import Columns, as_columns, pick_point_index, transform_matrix
from .recording import FrameWriter

__all__ = ["CAMERA_MODES", "SceneViewer", "use_vispy_backend"]

log = logging.getLogger(__name__)

CAMERA_MODES = ("turntable", "arcball")

DEFAULT_FOV = 50.0
"""Vertical field of view (degrees) of the navigation camera after a reset."""
FRUSTUM_SCALE = 0.06
"""Far-plane distance of the frusta as a fraction of the scene's robust diagonal."""
FLY_DURATION_MS = 600
_DISPLAY_UP = np.array([0.0, -1.0, 0.0])  # the navigation's up in the display frame (.edited_world)

_backend_ready = False

ProgressCallback = Callable[[int, int], object]
"""``progress(done, total)`` called after each rendered frame."""


def use_vispy_backend() -> None:
    """Select VisPy's PySide6 backend (once) and keep VisPy's logger at WARNING."""
    global _backend_ready
    if _backend_ready:
        return
    import vispy

    vispy.use(app="pyside6")
    vispy.set_log_level("warning")
    logging.getLogger("vispy").setLevel(logging.WARNING)
    _backend_ready = True


class _Pose:
    """A navigation camera pose: look at ``center`` along ``forward`` from ``distance``, ``up`` on top."""

    __slots__ = ("center", "distance", "forward", "fov", "up")

    def __init__(
        self, center: np.ndarray, forward: np.ndarray, up: np.ndarray, distance: float, fov: float
    ) -> None:
        basis = look_basis(forward, up)
        self.center = np.asarray(center, np.float64)
        self.forward = basis[2]
        self.up = basis[1]
        self.distance = float(distance)
        self.fov = float(fov)

    @property
    def eye(self) -> np.ndarray:
        return self.center - self.forward * self.distance

    def rotation(self) -> np.ndarray:
        """Proper rotation with rows (right, up, -forward)."""
        r, u, f = look_basis(self.forward, self.up)
        return np.stack([r, u, -f])


class SceneViewer(QObject):
    """The 3-D viewport: point cloud, camera frusta with images, axes; navigation, picking, recording.

    Implements :class:`app.viewer.protocol.Viewer` (what the main window uses), and more for the
    OpenGL tests (picking, poses, level of detail).

    Parameters
    ----------
    state : ViewerState
        What to show; the viewer listens to its signals and writes only the highlighted view (when a
        frustum is clicked).
    parent : QWidget, optional
        Parent of the canvas widget (and of this object).

    Attributes
    ----------
    idle_ms : int
        Milliseconds without a camera or selection change after which full density returns.
    renderer : str
        ``GL_RENDERER`` of the canvas's context (known after the first frame).
    """

    view_clicked = Signal(int)
    #: ``point_clicked(PickedPoint)``: in pick mode (:meth:`set_pick_mode`), a click hit a point
    point_clicked = Signal(object)
    selection_drawn = Signal(object)
    crop_box_dragged = Signal(object)

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        use_vispy_backend()
        self._state = state
        self._point_budget = DEFAULT_BUDGET
        self._idle_budget = 0  # points of a resting frame; 0 = every shown point (set on software GL)
        self._budget_is_default = True
        self.renderer = ""
        self._renderer_checked = False
        self.idle_ms = 200

        self._canvas = scene.SceneCanvas(
            keys=None, show=False, size=(800, 600), bgcolor=state.background, parent=parent
        )
        self._canvas.native.setMinimumSize(160, 120)
        self._view = scene.widgets.ViewBox(parent=self._canvas.scene, border_width=0)
        self._view.size = self._canvas.size

        # display <- edited world (rotation D) <- model world (the edits' similarity M): see
        # .edited_world. The points and frusta are uploaded once in the model world.
        self._edited_node = scene.Node(parent=self._view.scene)
        self._edited_node.transform = MatrixTransform()
        self._world_node = scene.Node(parent=self._edited_node)
        self._world_node.transform = MatrixTransform()
        self._edits = Edits()
        self._display_T = np.eye(4)  # model -> display, column form
        self._pick_mode = False
        self._scene_diag = 1.0
        self._edited = EditedPoints()  # ids and kept mask of the uploaded points under the edits
        self._pick_cache: tuple[tuple[str | None, int], Columns] | None = None  # shown points, columns
        self._points = PointCloud(parent=self._world_node)
        self._points.order = 0
        self._frusta = Frusta(self._world_node)
        self._overlays = EditOverlays(self._edited_node)
        self._axes = scene.visuals.XYZAxis(parent=self._edited_node, width=2)
        self._axes.transform = STTransform(scale=(1.0, 1.0, 1.0))
        self._axes.visible = False
        self._axes.order = 4

        # selection / level-of-detail state
        self._source: str | None = None
        self._conf_norm = "global"
        self._lod = LevelOfDetail(0)
        self._base: np.ndarray | None = None
        self._mask_key: tuple | None = None
        self._mask_id = 0
        self._n_prefix = 0
        self._index_cache: dict[int, tuple[np.ndarray, gloo.IndexBuffer]] = {}
        self._lod_level = 0
        self._moving = False
        self._offscreen = False
        self._timestep_override: int | None = None
        self._scene_center = np.zeros(3)
        self._press_pos: np.ndarray | None = None

        self._idle_timer = QTimer(self)
        self._idle_timer.setSingleShot(True)
        self._idle_timer.timeout.connect(self._on_idle)
        self._anim_timer = QTimer(self)
        self._anim_timer.setInterval(16)
        self._anim_timer.timeout.connect(self._on_anim_step)
        self._anim_clock = QElapsedTimer()
        self._anim: tuple[_Pose, _Pose, int] | None = None

        self._camera: TurntableCamera | ArcballCamera = self._new_camera("turntable")
        self._attach_camera(self._camera)
        self._canvas.events.resize.connect(self._on_resize)
        self._canvas.events.mouse_press.connect(self._on_mouse_press)
        self._canvas.events.mouse_release.connect(self._on_mouse_release)
        self._canvas.events.draw.connect(self._on_first_draw)
        # crop gizmo, lasso, selection highlight, points removed by the edits (issue 18)
        self._crop_select = CropSelectOverlay(
            self._canvas, self._edited_node, self, node_is_edited_world=True
        )
        self._crop_select.selection_drawn.connect(self.selection_drawn)
        self._crop_select.crop_box_dragged.connect(self.crop_box_dragged)

        state.reconstruction_changed.connect(self._on_reconstruction)
        state.selection_changed.connect(self._on_selection)
        state.style_changed.connect(self._on_style)
        state.highlight_changed.connect(self._on_highlight)
        self._on_reconstruction()

    # ------------------------------------------------------------------------------------ widget
    @property
    def native(self) -> QWidget:
        """The canvas widget to put in a layout."""
        return self._canvas.native

    @property
    def canvas(self) -> scene.SceneCanvas:
        return self._canvas

    @property
    def camera(self) -> TurntableCamera | ArcballCamera:
        """The current VisPy camera (replaced by :meth:`set_camera_mode`)."""
        return self._camera

    @property
    def camera_mode(self) -> str:
        return "arcball" if isinstance(self._camera, ArcballCamera) else "turntable"

    @property
    def point_budget(self) -> int:
        """Points drawn while the camera moves (0 turns the level of detail off).

        Defaults to :data:`.lod.DEFAULT_BUDGET`, or :data:`.lod.SOFTWARE_BUDGET` when the first frame
        finds a software OpenGL renderer (unless set explicitly).
        """
        return self._point_budget

    @point_budget.setter
    def point_budget(self, value: int) -> None:
        self._point_budget = max(0, int(value))
        self._budget_is_default = False
        if self._moving:
            self._apply_draw()

    def _on_first_draw(self, event: object = None) -> None:
        if self._renderer_checked:
            return
        self._renderer_checked = True
        try:
            from vispy.gloo import gl

            self.renderer = str(gl.glGetParameter(gl.GL_RENDERER))
        except Exception:  # no way to ask: keep the GPU default
            log.debug("cannot query GL_RENDERER", exc_info=True)
            return
        log.info("OpenGL renderer: %s", self.renderer)
        if self._budget_is_default and is_software_renderer(self.renderer):
            self._point_budget = SOFTWARE_BUDGET
            self._idle_budget = SOFTWARE_IDLE_BUDGET
            if self.shown_count > self._idle_budget:
                self._apply_draw()

    @property
    def idle_budget(self) -> int:
        """Points drawn by a resting frame (0: every shown point, the default on a GPU).

        On a software renderer it becomes :data:`.lod.SOFTWARE_IDLE_BUDGET`, so that no frame blocks
        input for much more than 150 ms; screenshots and renders always draw every point.
        """
        return self._idle_budget

    @idle_budget.setter
    def idle_budget(self, value: int) -> None:
        self._idle_budget = max(0, int(value))
        self._apply_draw()

    @property
    def drawn_count(self) -> int:
        """Points drawn by the next frame (the budget while moving, every shown point when idle)."""
        return self._points.count

    @property
    def shown_count(self) -> int:
        """Points that pass the confidence filter and the view/sky/playback masks (full density)."""
        return prefix_count(self._base, self._n_prefix)

    @property
    def lod_active(self) -> bool:
        """Whether the moving subsample is drawn now (the camera moved less than ``idle_ms`` ago)."""
        return self._moving and self._lod_level > 0

    @property
    def idle_capped(self) -> bool:
        """Whether the resting frame draws fewer points than are shown (:attr:`idle_budget`)."""
        return not self._moving and self._lod_level > 0

    def close(self) -> None:
        """Stop timers, stop listening to the state, close the canvas."""
        self._idle_timer.stop()
        self._anim_timer.stop()
        for sig, slot in (
            (self._state.reconstruction_changed, self._on_reconstruction),
            (self._state.selection_changed, self._on_selection),
            (self._state.style_changed, self._on_style),
            (self._state.highlight_changed, self._on_highlight),
        ):
            with contextlib.suppress(RuntimeError, TypeError):
                sig.disconnect(slot)
        self._index_cache.clear()
        self._crop_select.close()
        with contextlib.suppress(RuntimeError):  # the widget may be gone with its window
            self._canvas.close()

    # ------------------------------------------------------------------------------------ state
    def _on_reconstruction(self) -> None:
        rec = self._state.reconstruction
        self._stop_animation()
        self._source = None
        self._mask_key = None
        self._index_cache.clear()
        self._base = None
        self._pick_cache = None
        self._edited = EditedPoints()
        if rec is None:
            self._points.set_points(np.zeros((0, 3), np.float32), np.zeros(0, np.float32), np.zeros(0), 1)
            self._frusta.clear()
            self._lod = LevelOfDetail(0)
            self._n_prefix = 0
            self._canvas.update()
            return
        self._edits = rec.edits
        self._set_display_transform()
        self._upload_points()
        ps = rec.points(self._source or "global")
        center, size = robust_bounds(ps.xyz) if len(ps) else robust_bounds(rec.cam_to_world[:, :3, 3])
        diag = float(np.linalg.norm(size))
        if not diag > 0:
            diag = 1.0
        self._scene_diag = diag
        self._scene_center = self._to_display(center[None])[0]
        sizes = [(rec.view_shape(v)[1], rec.view_shape(v)[0]) for v in range(rec.n_views)]
        self._frusta.set_cameras(
            rec.cam_to_world,
            rec.intrinsics,
            sizes,
            rec.colors,
            view_palette(rec.n_views),
            FRUSTUM_SCALE * diag,
        )
        self._scale_axes()
        self._apply_style()
        self._update_selection()
        self._on_highlight(self._state.highlighted_view)
        self.reset_view()

    def _on_selection(self) -> None:
        self._update_selection()

    def _on_style(self) -> None:
        self._apply_style()

    def _on_highlight(self, view: int) -> None:
        self._points.set_highlight(view)
        self._frusta.set_highlight(view)
        self._canvas.update()

    def _apply_style(self) -> None:
        st = self._state
        self._points.set_color_mode(st.color_mode)
        self._points.set_point_size(float(st.point_size))
        self._points.set_pixel_scale(self._canvas.pixel_scale)
        bg = st.background
        self._canvas.bgcolor = bg
        rgb = parse_color(bg)
        self._points.set_background(rgb)
        self._frusta.set_background(rgb)
        self._axes.visible = bool(st.show_axes)
        self._frusta.set_visible(bool(st.show_cameras))
        norm = self._conf_norm_setting()
        rec = st.reconstruction
        if norm != self._conf_norm and rec is not None and self._source is not None:
            ps = rec.points(self._source)
            self._points.set_aux(pack_aux(ps.view, conf_norm_values(ps, rec.n_views, norm)))
        self._conf_norm = norm
        self._canvas.update()

    def _conf_norm_setting(self) -> str:
        try:
            return str(self._state.conf_norm)
        except KeyError:  # an older ViewerState without the key
            return "global"

    def _upload_points(self) -> None:
        """Upload every point of the current source, in confidence order, and reset the masks."""
        rec = self._state.reconstruction
        assert rec is not None
        source = self._state.source
        ps = rec.points(source)
        self._conf_norm = self._conf_norm_setting()
        aux = pack_aux(ps.view, conf_norm_values(ps, rec.n_views, self._conf_norm))
        self._points.set_points(ps.xyz, pack_rgb(ps.rgb), aux, rec.n_views)
        self._lod = LevelOfDetail(len(ps))
        self._source = source
        self._mask_key = None
        self._index_cache.clear()
        log.debug("uploaded %d %s points", len(ps), source)

    def _shown_views(self) -> np.ndarray:
        shown = self._state.shown_views()
        if self._timestep_override is not None:
            shown[self._timestep_override + 1 :] = False
        return shown

    def _update_selection(self) -> None:
        """Recompute what is drawn from the state (a count change unless a mask changed)."""
        rec = self._state.reconstruction
        if rec is None:
            return
        if self._state.source != self._source:
            self._upload_points()
        assert self._source is not None
        ps = rec.points(self._source)
        shown = self._shown_views()
        sky = bool(self._state.mask_sky)
        key = (self._source, shown.tobytes(), sky, filter_key(self._edits))
        if key != self._mask_key:
            self._mask_key = key
            self._mask_id += 1
            self._base = self._mask_index(rec, ps, shown, sky)
            self._lod.clear()
            self._index_cache.clear()
            self._frusta.set_shown(shown)
        self._n_prefix = self._state.prefix_count()
        if not self._offscreen and 0 < self.point_budget < self.shown_count:
            # Dragging the confidence slider redraws at every step: draw the budget meanwhile too.
            self._moving = True
            self._idle_timer.start(self.idle_ms)
        self._apply_draw()

    def _mask_index(
        self, rec: Reconstruction, ps: PointSet, shown: np.ndarray, sky: bool
    ) -> np.ndarray | None:
        """Sorted indices of the points of shown views (not sky, kept by the edits), or None for all."""
        edited = self._edited.keep(rec, self._source or "global", self._edits)
        if shown.all() and not sky and edited is None:
            return None
        keep = shown[ps.view]
        if edited is not None:
            keep &= edited
        if sky:
            try:
                from fast3r_core.sky import sky_point_mask

                keep &= ~sky_point_mask(rec, self._source)
            except Exception:  # the sky heuristic must never break the viewport
                log.exception("sky masking failed; showing sky points")
        return np.flatnonzero(keep).astype(np.uint32)

    def _apply_draw(self) -> None:
        n, base = self._n_prefix, self._base
        if self._moving and self.point_budget > 0 and not self._offscreen:
            k, idx, count = self._lod.choose(n, self.point_budget, base, self._mask_id)
        elif self._idle_budget > 0 and not self._offscreen:
            k, idx, count = self._lod.choose(n, self._idle_budget, base, self._mask_id)
        else:
            k, idx, count = 0, base, prefix_count(base, n)
        ibuf = None if idx is None or count == 0 else self._gpu_index(k, idx)
        self._points.set_draw(ibuf, count)
        self._lod_level = k
        self._canvas.update()

    def _gpu_index(self, key: int, idx: np.ndarray) -> gloo.IndexBuffer:
        hit = self._index_cache.get(key)
        if hit is not None and hit[0] is idx:
            return hit[1]
        ibuf = gloo.IndexBuffer(np.ascontiguousarray(idx, dtype=np.uint32))
        # Queue the upload on the canvas now (not at the next draw), so it is flushed with the rest.
        self._canvas.context.glir.associate(ibuf.glir)
        self._index_cache[key] = (idx, ibuf)
        return ibuf

    # ------------------------------------------------------------------------- level of detail
    def _on_camera_changed(self, event: object = None) -> None:
        eye = camera_axes(self._camera.transform.matrix)[0]
        self._frusta.set_eye(self._from_display(eye[None])[0])  # the frusta are in the model world
        if self._offscreen:
            return
        if not self._moving:
            self._moving = True
            if self.point_budget > 0 and self.shown_count > self.point_budget:
                self._apply_draw()
        self._idle_timer.start(self.idle_ms)

    def _on_idle(self) -> None:
        self._moving = False
        if self._lod_level or self._idle_budget:
            self._apply_draw()

    def _on_resize(self, event: object = None) -> None:
        if not self._offscreen:
            self._view.size = self._canvas.size
            self._points.set_pixel_scale(self._canvas.pixel_scale)

    # ---------------------------------------------------------------------------------- edits
    def set_edit_tool(self, tool: str) -> None:
        """What the left mouse button does: "navigate", "lasso", "rectangle" or "crop"."""
        self._crop_select.set_tool(tool)

    def set_crop_gizmo(self, box: CropBox | None) -> None:
        """Show the crop box with its face handles (edited world), or hide it (None)."""
        self._crop_select.set_crop_box(box)

    def show_selection(self, xyz: np.ndarray, rgb: np.ndarray | None = None) -> None:
        """Highlight the selected points ((K, 3) edited world; empty: none), their colours tinted."""
        self._crop_select.show_selection(xyz, rgb)

    def screen_matrix(self) -> np.ndarray:
        """(4, 4) float64: edited world -> canvas logical pixels (y down), homogeneous column vectors."""
        return self._crop_select.screen_matrix()

    # -------------------------------------------------------------------------------- picking
    def _on_mouse_press(self, event: object) -> None:
        if getattr(event, "button", None) == 1:
            self._press_pos = np.asarray(event.pos[:2], dtype=np.float64)  # type: ignore[attr-defined]

    def _on_mouse_release(self, event: object) -> None:
        press, self._press_pos = self._press_pos, None
        if press is None or getattr(event, "button", None) != 1:
            return
        pos = np.asarray(event.pos[:2], dtype=np.float64)  # type: ignore[attr-defined]
        if not is_click(press, pos):
            return
        if self._pick_mode:
            picked = self.pick_point(pos)
            if picked is not None:
                self.point_clicked.emit(picked)
            return
        view = self.pick(pos)
        if view >= 0:
            self._state.set_highlighted_view(view)
            self.view_clicked.emit(view)

    def view_screen_positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the shown frusta are on screen (canvas logical pixels, y down).

        Returns
        -------
        xy : np.ndarray, (2 S, 2)
            Projected far-plane centres then camera centres of the S shown views.
        owners : np.ndarray, (2 S,) int
            View index of each.
        in_front : np.ndarray, (2 S,) bool
            Whether each is in front of the eye.
        """
        pts, owners = self._frusta.anchors()
        if len(pts) == 0:
            return np.zeros((0, 2)), owners, np.zeros(0, bool)
        tr = self._points.get_transform("visual", "canvas")
        xy, front = homogeneous_to_screen(np.asarray(tr.map(pts)))
        return xy, owners, front

    def pick(self, pos: tuple[float, float] | np.ndarray, radius: float = PICK_RADIUS) -> int:
        """The view whose frustum is nearest to canvas position ``pos`` within ``radius`` pixels, or -1."""
        xy, owners, front = self.view_screen_positions()
        if len(xy) == 0:
            return -1
        return pick_nearest(xy, owners, pos, valid=front, radius=radius)

    # ---------------------------------------------------------------------------------- edits
    # The hooks of the edit tools (app.edit_tools; the crop box and lasso build on them too).
    @property
    def edits(self) -> Edits:
        """The edits shown (set by :meth:`set_edits`, or the reconstruction's own when it is shown)."""
        return self._edits

    @property
    def edited_scene(self) -> scene.Node:
        """The VisPy node whose children are drawn in edited-world coordinates (overlays, gizmos)."""
        return self._edited_node

    def set_edits(self, edits: Edits) -> None:
        """Show the reconstruction as ``edits`` make it (transform, crop, deleted points).

        A change of the transform alone only changes two node matrices (nothing is uploaded) and
        carries the navigation camera along, so that the picture stays put; a new rotation (levelling)
        also turns the camera's up to the levelled world's. A change of the crop or the selections
        recomputes the index of the shown points (the confidence filter stays a prefix of it).
        """
        old_T, old_levelled = self._display_T.copy(), self._levelled
        self._edits = edits
        self._crop_select.set_edits(edits)  # the crop gizmo and selection follow the edited world
        if self._state.reconstruction is None:
            return
        self._stop_animation()
        pose = self.current_pose()
        self._set_display_transform()
        self._scale_axes()
        if not np.allclose(old_T, self._display_T, rtol=0, atol=0):
            k, Q, t = similarity_change(old_T, self._display_T)
            center, fwd, up = transform_pose(k, Q, t, pose.center, pose.forward, pose.up)
            if self._levelled and not old_levelled and np.linalg.norm(np.cross(fwd, _DISPLAY_UP)) > 1e-6:
                up = _DISPLAY_UP.copy()
            self._scene_center = k * Q @ self._scene_center + t
            self._set_pose(_Pose(center, fwd, up, pose.distance * k, pose.fov))
            self._on_camera_changed()
        self._update_selection()

    def set_pick_mode(self, on: bool) -> None:
        """While on, a click picks a point (:attr:`point_clicked`) instead of a camera frustum."""
        self._pick_mode = bool(on)
        self._canvas.native.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    def set_navigation_enabled(self, on: bool) -> None:
        """Let mouse drags move the camera (True) or leave them to a tool, e.g. a lasso (False)."""
        self._camera.interactive = bool(on)

    def set_overlay(self, overlay: EditOverlay) -> None:
        """Draw the edit tools' lines, labels and markers (edited-world coordinates)."""
        self._overlays.set_overlay(overlay)
        self._canvas.update()

    @property
    def overlay(self) -> EditOverlay:
        """The overlay drawn now."""
        return self._overlays.overlay

    def shown_indices(self) -> np.ndarray:
        """(K,) int64 indices into ``rec.points(source)`` of every shown point, full density.

        Shown: kept by the edits (crop, selections), of a shown view (and not sky when masked), within
        the confidence filter; in confidence order. The level of detail is not applied.
        """
        if self._state.reconstruction is None or self._source is None:
            return np.zeros(0, np.int64)
        n = self._n_prefix
        if self._base is None:
            return np.arange(n, dtype=np.int64)
        return self._base[: prefix_count(self._base, n)].astype(np.int64)

    def shown_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The shown points in the edited world: ``(xyz (K, 3) float64, ids (K,) int64)``.

        ``ids`` are :func:`fast3r_core.edits.point_ids` (what a selection stores).
        """
        rec = self._state.reconstruction
        if rec is None or self._source is None:
            return np.zeros((0, 3)), np.zeros(0, np.int64)
        ps = rec.points(self._source)
        idx = self.shown_indices()
        xyz = apply_to_points(self._edits, ps.xyz[idx].astype(np.float64))
        return np.asarray(xyz, np.float64), self._point_ids(ps)[idx]

    def project_edited(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Edited-world points (M, 3) to the canvas: ``(xy (M, 2) logical px, y down; in_front (M,))``."""
        tr = self._overlays.lines.get_transform("visual", "canvas")
        return homogeneous_to_screen(np.asarray(tr.map(np.atleast_2d(np.asarray(xyz, np.float64)))))

    def pick_point(self, pos: tuple[float, float] | np.ndarray) -> PickedPoint | None:
        """The shown point under canvas position ``pos`` among *every* shown point (not the drawn
        subsample), by :func:`.point_picking.pick_point_index`; None when none is near."""
        rec = self._state.reconstruction
        if rec is None or self._source is None:
            return None
        ps = rec.points(self._source)
        base = self._base
        count = prefix_count(base, self._n_prefix)
        key = (self._source, self._mask_id)
        if self._pick_cache is None or self._pick_cache[0] != key:
            # the points of the mask (or all), as columns: a confidence prefix of them is a slice
            self._pick_cache = (key, as_columns(ps.xyz if base is None else ps.xyz[base]))
        cols = tuple(c[:count] for c in self._pick_cache[1])
        matrix = transform_matrix(self._points.get_transform("visual", "canvas"))
        i, _ = pick_point_index((cols[0], cols[1], cols[2]), matrix, pos)
        if i < 0:
            return None
        k = i if base is None else int(base[i])
        model = ps.xyz[k].astype(np.float64)
        xy, _ = homogeneous_to_screen(np.asarray([[*model.tolist(), 1.0]]) @ matrix)
        edited = np.asarray(apply_to_points(self._edits, model[None]), np.float64)[0]
        return PickedPoint(
            index=k,
            point_id=int(self._point_ids(ps)[k]),
            view=int(ps.view[k]),
            xyz=(float(edited[0]), float(edited[1]), float(edited[2])),
            screen=(float(xy[0, 0]), float(xy[0, 1])),
        )

    @property
    def _levelled(self) -> bool:
        """Whether the display turns the model's orientation (a rotation edit, e.g. levelling)."""
        return not np.allclose(self._display_T[:3, :3] / self._edits.scale, np.eye(3), atol=1e-12)

    def _point_ids(self, ps: PointSet) -> np.ndarray:
        rec = self._state.reconstruction
        assert rec is not None
        return self._edited.ids(rec, self._source or "global")

    def _set_display_transform(self) -> None:
        rec = self._state.reconstruction
        D = display_rotation(self._edits, None if rec is None else rec.cam_to_world)
        Dm = np.eye(4)
        Dm[:3, :3] = D
        self._edited_node.transform.matrix = Dm.T  # VisPy: row vectors
        self._world_node.transform.matrix = self._edits.similarity_matrix().T
        self._display_T = model_to_display(self._edits, D)

    def _scale_axes(self) -> None:
        s = 0.12 * self._scene_diag * self._edits.scale
        self._axes.transform = STTransform(scale=(s, s, s))

    def _to_display(self, pts: np.ndarray) -> np.ndarray:
        """Model-world points (M, 3) to the display frame (float64)."""
        T = self._display_T
        out: np.ndarray = np.asarray(pts, np.float64) @ T[:3, :3].T + T[:3, 3]
        return out

    def _from_display(self, pts: np.ndarray) -> np.ndarray:
        """Display points (M, 3) back to the model world."""
        T = np.linalg.inv(self._display_T)
        out: np.ndarray = np.asarray(pts, np.float64) @ T[:3, :3].T + T[:3, 3]
        return out

    def _display_poses(self, cam_to_world: np.ndarray) -> np.ndarray:
        """Model-world cam-to-world poses (V, 4, 4) as rigid display-frame poses (the eye's view)."""
        T = self._display_T
        s = self._edits.scale
        out = np.array(cam_to_world, dtype=np.float64, copy=True)
        out[:, :3, :3] = np.einsum("ij,vjk->vik", T[:3, :3] / s, out[:, :3, :3])
        out[:, :3, 3] = self._to_display(np.asarray(cam_to_world, np.float64)[:, :3, 3])
        return out

    # --------------------------------------------------------------------------------- camera
    def _new_camera(self, mode: str) -> TurntableCamera | ArcballCamera:
        cam: TurntableCamera | ArcballCamera
        if mode == "turntable":
            cam = TurntableCamera(up="-y", fov=DEFAULT_FOV, azimuth=90.0, elevation=0.0, distance=5.0)
        elif mode == "arcball":
            cam = ArcballCamera(fov=DEFAULT_FOV, distance=5.0)
        else:
            raise ValueError(f"camera mode must be one of {CAMERA_MODES}, got {mode!r}")
        # VisPy's Backspace "reset" restores a state without the distance; the window's View menu
        # has Reset camera (reset_view) instead. Set before attaching: the key handler is bound then.
        cam.viewbox_key_event = lambda event: None
        return cam

    def set_camera_mode(self, mode: str) -> None:
        """Switch between "turntable" (orbit about the world up, -y) and "arcball" (free rotation)."""
        if mode not in CAMERA_MODES:
            raise ValueError(f"camera mode must be one of {CAMERA_MODES}, got {mode!r}")
        if mode == self.camera_mode:
            return
        self._stop_animation()
        pose = self.current_pose()
        self._camera.transform.changed.disconnect(self._on_camera_changed)
        self._camera = self._new_camera(mode)
        self._attach_camera(self._camera)
        self._set_pose(pose)

    def _attach_camera(self, cam: TurntableCamera | ArcballCamera) -> None:
        self._view.camera = cam
        # Fired on every change of the camera's pose (VisPy updates its node matrix in place, so the
        # node's transform_change event does not fire).
        cam.transform.changed.connect(self._on_camera_changed)

    def current_pose(self) -> _Pose:
        """The navigation camera's pose (centre, forward, up, distance, fov) in world coordinates."""
        cam = self._camera
        eye, fwd, up = camera_axes(cam.transform.matrix)
        center = np.asarray(cam.center, np.float64)
        distance = float(np.linalg.norm(center - eye)) or float(cam.distance or 1.0)
        return _Pose(center, fwd, up, distance, float(cam.fov))

    def _set_pose(self, pose: _Pose) -> None:
        cam = self._camera
        cam.fov = pose.fov
        cam.center = tuple(float(x) for x in pose.center)
        cam.distance = pose.distance
        cam.scale_factor = 2.0 * pose.distance * math.tan(math.radians(pose.fov) / 2.0)
        if isinstance(cam, TurntableCamera):
            az, el, roll = turntable_angles(pose.forward, pose.up)
            cam.azimuth, cam.elevation, cam.roll = az, el, roll
        else:
            cam._quaternion = Quaternion(*arcball_quaternion(pose.forward, pose.up))
            cam.view_changed()
        self._canvas.update()

    def _aspect(self) -> float:
        w, h = self._view.size
        return float(w) / float(h) if h else 1.0

    def _shown_extent(self) -> tuple[np.ndarray, np.ndarray]:
        """What to frame: the centre of the shown points' robust box and points that must be visible.

        The box spans the 2nd..98th percentile per axis of the shown points; the points to keep in
        view are a subsample of the shown points inside that box plus the shown cameras' centres
        (when cameras are shown). World coordinates.

        Returns
        -------
        center : np.ndarray, (3,)
        points : np.ndarray, (M, 3)
        """
        rec = self._state.reconstruction
        if rec is None:
            return np.zeros(3), box_corners(np.zeros(3), np.ones(3))
        parts = []
        center = None
        if self._source is not None and self.shown_count > 0:
            xyz = rec.points(self._source).xyz
            count = self.shown_count
            idx = np.arange(self._n_prefix) if self._base is None else self._base[:count]
            if len(idx) > 4000:
                idx = idx[np.random.default_rng(0).integers(0, len(idx), 4000)]
            sample = self._to_display(xyz[idx].astype(np.float64))
            c, size = robust_bounds(sample)
            inside = np.all(np.abs(sample - c) <= size / 2 + 1e-9, axis=1)
            parts.append(sample[inside] if inside.any() else sample)
            center = c
        shown = self._shown_views()
        if (self._state.show_cameras and shown.any()) or not parts:
            parts.append(self._to_display(rec.cam_to_world[shown if shown.any() else slice(None), :3, 3]))
        pts = np.concatenate(parts)
        if center is None:
            center = (pts.min(axis=0) + pts.max(axis=0)) / 2
        return center, pts

    def _fit_pose(
        self, forward: np.ndarray, up: np.ndarray, fov: float, aspect: float | None = None
    ) -> _Pose:
        """Look along ``forward`` at the shown scene from the distance that frames it."""
        center, pts = self._shown_extent()
        aspect = self._aspect() if aspect is None else aspect
        return _Pose(center, forward, up, fit_distance(center, pts, forward, up, fov, aspect), fov)

    def reset_view(self) -> None:
        """Frame the scene in a three-quarter view from view 0's side and slightly above
        (:func:`~app.viewer.camera_math.default_view_direction`), so that view 0's frustum does not
        hide the cloud."""
        self._stop_animation()
        rec = self._state.reconstruction
        fwd, up = np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])
        if rec is not None:
            fwd, up = default_view_direction(self._display_poses(rec.cam_to_world[:1])[0])
            if self._levelled and np.linalg.norm(np.cross(fwd, _DISPLAY_UP)) > 1e-6:
                up = _DISPLAY_UP.copy()  # a levelled world: the display's up keeps the horizon level
        self._set_pose(self._fit_pose(fwd, up, DEFAULT_FOV))

    def fit_to_scene(self) -> None:
        """Keep the viewing direction; centre on and frame the shown points (robust extent)."""
        self._stop_animation()
        pose = self.current_pose()
        self._set_pose(self._fit_pose(pose.forward, pose.up, pose.fov))

    def view_pose(self, view: int) -> _Pose:
        """The navigation pose that looks through reconstruction camera ``view`` (eye at its centre)."""
        rec = self._state.reconstruction
        if rec is None:
            raise ValueError("no reconstruction")
        if not 0 <= view < rec.n_views:
            raise IndexError(f"view {view} out of range 0..{rec.n_views - 1}")
        eye, fwd, up = pose_of_view(self._display_poses(rec.cam_to_world[view : view + 1])[0])
        pts = self._to_display(rec.pts3d[view][::4, ::4].reshape(-1, 3).astype(np.float64))
        depth = (pts - eye) @ fwd
        depth = depth[np.isfinite(depth) & (depth > 0)]
        d = float(np.median(depth)) if len(depth) else float(np.linalg.norm(self._scene_center - eye))
        d = d if d > 0 else 1.0
        h = rec.view_shape(view)[0]
        fy = float(rec.intrinsics[view][1, 1])
        fov = math.degrees(2.0 * math.atan(h / 2.0 / fy)) if fy > 0 else DEFAULT_FOV
        return _Pose(eye + fwd * d, fwd, up, d, float(np.clip(fov, 15.0, 100.0)))

    def fly_to_view(self, view: int, duration_ms: int = FLY_DURATION_MS) -> None:
        """Animate the camera to look from reconstruction camera ``view`` (its pose and field of view).

        ``duration_ms`` 0 jumps there at once.
        """
        target = self.view_pose(view)
        self._stop_animation()
        if duration_ms <= 0:
            self._set_pose(target)
            return
        self._anim = (self.current_pose(), target, int(duration_ms))
        self._anim_clock.start()
        self._anim_timer.start()

    @property
    def animating(self) -> bool:
        return self._anim is not None

    def _stop_animation(self) -> None:
        self._anim_timer.stop()
        self._anim = None

    def _on_anim_step(self) -> None:
        if self._anim is None:
            self._anim_timer.stop()
            return
        start, end, duration = self._anim
        t = min(1.0, self._anim_clock.elapsed() / duration)
        if t >= 1.0:
            self._stop_animation()
            self._set_pose(end)
            return
        s = smoothstep(t)
        rot = slerp_rotation(start.rotation(), end.rotation(), s)
        fwd, up = -rot[2], rot[1]
        eye = start.eye + s * (end.eye - start.eye)
        dist = start.distance * (end.distance / start.distance) ** s
        fov = start.fov + s * (end.fov - start.fov)
        self._set_pose(_Pose(eye + fwd * dist, fwd, up, dist, fov))

    # ------------------------------------------------------------------------------- rendering
    @contextlib.contextmanager
    def _offscreen_render(self) -> Iterator[None]:
        """Full density, no level-of-detail switching and no tool drawings inside the block (re-entrant)."""
        if self._offscreen:
            yield
            return
        was_moving = self._moving
        self._offscreen = True
        self._idle_timer.stop()
        self._moving = False
        if self._lod_level:
            self._apply_draw()
        try:
            with self._crop_select.hidden():  # the crop box, lasso and selection tint are not scene
                yield
        finally:
            self._offscreen = False
            if was_moving:
                self._on_camera_changed()
            elif self._idle_budget:
                self._apply_draw()  # back to the capped resting frame (software renderer)

    def render_image(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """Render the current view offscreen at ``width x height`` pixels (default: the canvas's).

        With one of the two given, the other follows the canvas's aspect ratio. Point sizes and line
        widths scale with the height so the picture looks like the screen. Always at full density.
        Needs the canvas's OpenGL context: the widget must have been shown once.

        Returns
        -------
        np.ndarray, (H, W, 4) uint8
            RGBA, row 0 at the top.
        """
        cw, ch = (max(1, round(x)) for x in self._canvas.size)
        ps = float(self._canvas.pixel_scale)
        if width is None and height is None:
            width, height = round(cw * ps), round(ch * ps)
        elif height is None:
            height = max(1, round(int(width) * ch / cw))  # type: ignore[arg-type]
        elif width is None:
            width = max(1, round(int(height) * cw / ch))
        w, h = int(width), int(height)  # type: ignore[arg-type]
        if w <= 0 or h <= 0:
            raise ValueError(f"render size must be positive, got {w}x{h}")
        # A canvas region of the output's aspect ratio and the canvas's height, scaled to w x h.
        lh = ch
        lw = max(1, round(w * lh / h))
        scale = h / lh
        with self._offscreen_render():
            try:
                self._view.size = (lw, lh)
                self._points.set_pixel_scale(scale)
                self._frusta.set_line_scale(scale)
                self._overlays.set_line_scale(scale)
                img = self._render_fbo(w, h, lw, lh)
            finally:
                self._view.size = self._canvas.size
                self._points.set_pixel_scale(ps)
                self._frusta.set_line_scale(1.0)
                self._overlays.set_line_scale(1.0)
        return np.ascontiguousarray(img)

    def _render_fbo(self, w: int, h: int, lw: int, lh: int) -> np.ndarray:
        """Draw the scene's ``(0, 0, lw, lh)`` canvas region into a ``w x h`` framebuffer and read it.

        Like ``SceneCanvas.render(region, size)``, whose transforms VisPy 0.17 configures with the
        region's size instead of the framebuffer's (the picture comes out unscaled in a corner).
        """
        c = self._canvas
        c.set_current()
        ps = float(c.pixel_scale)
        fbo = gloo.FrameBuffer(color=gloo.RenderBuffer((h, w)), depth=gloo.RenderBuffer((h, w)))
        c.push_fbo(fbo, (0, 0), (lw, lh))
        try:
            # The canvas region, in the canvas framebuffer's pixels, maps onto the whole FBO.
            c.transforms.configure(viewport=(0, 0, w, h), fbo_size=(w, h), fbo_rect=(0, 0, lw * ps, lh * ps))
            c.context.clear(color=c.bgcolor, depth=True)
            c.draw_visual(c.scene)
            return fbo.read()
        finally:
            c.pop_fbo()

    def render_turntable(
        self,
        path: str | PathLike[str],
        *,
        frames: int = 60,
        fps: float = 20,
        size: tuple[int, int] = (1280, 720),
        progress: ProgressCallback | None = None,
    ) -> None:
        """Orbit 360° about the world up axis (-y) around the centre of the shown points; write a GIF/MP4.

        The orbit keeps the current elevation and roll, and frames the shown points (robust extent).
        The camera is restored afterwards. ``progress(done, total)`` is called after each frame.
        """
        if self._state.reconstruction is None:
            raise ValueError("nothing to render: no reconstruction")
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        saved = self.current_pose()
        self._stop_animation()
        center, pts = self._shown_extent()
        axis = np.array([0.0, -1.0, 0.0])
        # One distance for the whole orbit: the box still fits when seen from its widest side.
        turns = [_axis_rotation(axis, 2.0 * math.pi * k / 16) for k in range(16)]
        dist = max(
            fit_distance(center, pts, r @ saved.forward, r @ saved.up, saved.fov, size[0] / size[1])
            for r in turns
        )
        try:
            with self._offscreen_render(), FrameWriter(path, fps) as writer:
                for i in range(frames):
                    rot = _axis_rotation(axis, 2.0 * math.pi * i / frames)
                    self._set_pose(_Pose(center, rot @ saved.forward, rot @ saved.up, dist, saved.fov))
                    writer.add(self.render_image(*size))
                    if progress is not None:
                        progress(i + 1, frames)
        finally:
            self._set_pose(saved)

    def render_playback(
        self,
        path: str | PathLike[str],
        *,
        fps: float = 2,
        size: tuple[int, int] = (1280, 720),
        progress: ProgressCallback | None = None,
    ) -> None:
        """One frame per view: frame t shows views 0..t (and their frusta) from the current camera."""
        rec = self._state.reconstruction
        if rec is None:
            raise ValueError("nothing to render: no reconstruction")
        try:
            with self._offscreen_render(), FrameWriter(path, fps) as writer:
                for t in range(rec.n_views):
                    self._timestep_override = t
                    self._update_selection()
                    writer.add(self.render_image(*size))
                    if progress is not None:
                        progress(t + 1, rec.n_views)
        finally:
            self._timestep_override = None
            self._update_selection()


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about the unit ``axis`` (Rodrigues)."""
    a = axis / np.linalg.norm(axis)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)
