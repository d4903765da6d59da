"""The viewport as the main window sees it: the :class:`Viewer` protocol.

The main window (and through it the controller's exports and recordings) uses only these members of
its viewer. :class:`~app.viewer.SceneViewer` implements them with VisPy; the app tests' stand-in
(``tests/app/conftest.py``'s ``FakeViewer``) implements them without OpenGL, and a test checks that
the two keep the same members and signatures, so that a test cannot pass against a method the real
viewer lacks.

This module imports no VisPy itself (importing it through the package still does).
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    from PySide6.QtCore import SignalInstance
    from PySide6.QtWidgets import QWidget

    from app.edit_types import EditOverlay
    from app.state import ViewerState
    from fast3r_core.edits import CropBox, Edits

__all__ = ["FrameProgress", "Viewer", "ViewerFactory"]

#: ``progress(done, total)`` called after each rendered frame of a recording.
FrameProgress = Callable[[int, int], object]


class Viewer(Protocol):
    """What the main window needs of its 3-D viewport.

    Attributes
    ----------
    view_clicked : SignalInstance
        ``view_clicked(int view)``: the user clicked the frustum of a reconstruction camera.
    point_clicked : SignalInstance
        ``point_clicked(PickedPoint)``: in pick mode, a click hit a point of the cloud
        (:class:`app.edit_types.PickedPoint`, edited world; picked among every shown point).
    selection_drawn : SignalInstance
        ``selection_drawn(object polygon)``: with the lasso or rectangle tool, the user drew an outline:
        (M, 2) float64 canvas logical pixels, y down (a rectangle's 4 corners).
    crop_box_dragged : SignalInstance
        ``crop_box_dragged(object box)``: with the crop tool, the user dragged a face handle and let go:
        the new :class:`~fast3r_core.edits.CropBox` (edited world).
    """

    view_clicked: SignalInstance
    point_clicked: SignalInstance
    selection_drawn: SignalInstance
    crop_box_dragged: SignalInstance

    @property
    def native(self) -> QWidget:
        """The Qt widget to put in the window's layout."""
        ...

    @property
    def idle_budget(self) -> int:
        """Points drawn by a resting frame (0: every shown point; capped on software OpenGL)."""
        ...

    def reset_view(self) -> None:
        """Look at the whole scene from the default direction."""
        ...

    def fit_to_scene(self) -> None:
        """Keep the viewing direction; frame the shown points."""
        ...

    def set_camera_mode(self, mode: str) -> None:
        """Navigation: "turntable" or "arcball"."""
        ...

    def fly_to_view(self, view: int, duration_ms: int = 600) -> None:
        """Animate the camera to look through reconstruction camera ``view`` (0 ms: jump)."""
        ...

    def render_image(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """(H, W, 4) uint8 RGBA screenshot of the shown scene at ``width`` x ``height`` px."""
        ...

    def render_turntable(
        self,
        path: str | PathLike[str],
        *,
        frames: int = 60,
        fps: float = 20,
        size: tuple[int, int] = (1280, 720),
        progress: FrameProgress | None = None,
    ) -> None:
        """Write a 360° orbit around the shown points as a GIF/MP4."""
        ...

    def render_playback(
        self,
        path: str | PathLike[str],
        *,
        fps: float = 2,
        size: tuple[int, int] = (1280, 720),
        progress: FrameProgress | None = None,
    ) -> None:
        """Write one frame per view (frame t shows views 0..t) as a GIF/MP4."""
        ...

    def set_edits(self, edits: Edits) -> None:
        """Show the reconstruction as ``edits`` make it: points and cameras in the edited world,
        without the cropped and deleted points."""
        ...

    def set_pick_mode(self, on: bool) -> None:
        """While on, a click picks a point (``point_clicked``) instead of a camera frustum."""
        ...

    def set_overlay(self, overlay: EditOverlay) -> None:
        """Draw the edit tools' measurements and picked markers (edited-world coordinates)."""
        ...

    def set_edit_tool(self, tool: str) -> None:
        """What the left mouse button does: "navigate", "lasso", "rectangle" or "crop" (face handles)."""
        ...

    def set_crop_gizmo(self, box: CropBox | None) -> None:
        """Show the crop box (edited world) with its draggable face handles, or hide it (None)."""
        ...

    def show_selection(self, xyz: np.ndarray, rgb: np.ndarray | None = None) -> None:
        """Highlight the selected points: (K, 3) edited world (empty: none), with their (K, 3) uint8
        colours tinted (a flat highlight colour without them)."""
        ...

    def screen_matrix(self) -> np.ndarray:
        """(4, 4) float64 ``M``: ``[x*w, y*w, z*w, w] = M @ [X, Y, Z, 1]`` maps the edited world to
        canvas logical pixels (y down), for selecting points at full density."""
        ...

    def close(self) -> None:
        """Release the canvas and stop listening to the state."""
        ...


#: ``viewer_factory(state, parent)``: how the main window makes its viewer (tests pass a stand-in).
ViewerFactory = Callable[["ViewerState", "QWidget | None"], Viewer]
