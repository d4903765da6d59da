"""Lasso and rectangle selection in the viewport: the outline the user draws, in screen space.

:class:`LassoStroke` collects the mouse positions of one drag (canvas logical pixels, y down) and
gives the polygon; :class:`LassoOverlay` draws it as a line over everything, directly in canvas
coordinates (a child of the canvas's scene, so it does not move with the 3-D camera). Which points
the polygon takes is computed at full density by :mod:`app.selection` with the core's
:func:`fast3r_core.edits.lasso_select` / :func:`~fast3r_core.edits.rect_select`.
"""

from __future__ import annotations

import numpy as np
from vispy import scene
from vispy.visuals.transforms import ChainTransform

__all__ = [
    "MIN_STEP",
    "OUTLINE_COLOR",
    "SELECTION_COLOR",
    "SELECTION_TINT",
    "LassoOverlay",
    "LassoStroke",
    "canvas_matrix",
]

MIN_STEP = 2.0
"""A lasso vertex is added when the mouse moved at least this far (logical pixels) from the last one."""
SELECTION_COLOR = (1.0, 0.25, 0.85)
"""Colour the selected points are tinted towards (magenta: rare in photographs)."""
SELECTION_TINT = 0.6
"""How far the selected points' colours move towards :data:`SELECTION_COLOR` (0..1)."""
OUTLINE_COLOR = (1.0, 1.0, 1.0, 1.0)


def canvas_matrix(transform: ChainTransform) -> np.ndarray:
    """The (4, 4) matrix (column vectors) of a VisPy transform chain that is linear in homogeneous
    coordinates (ST, matrix and perspective transforms): ``[x*w, y*w, z*w, w] = M @ [X, Y, Z, 1]``.

    VisPy maps row vectors, so mapping the four homogeneous unit vectors gives the rows of ``M.T``.
    One 4x4 product then projects millions of points without VisPy's per-transform copies.
    """
    rows = np.asarray(transform.map(np.eye(4)), dtype=np.float64)
    return rows.T.copy()


class LassoStroke:
    """The outline of one lasso or rectangle drag.

    Parameters
    ----------
    start : (x, y)
        Press position, canvas logical pixels.
    rectangle : bool
        A rectangle from the press to the current position instead of a free-hand lasso.
    """

    def __init__(self, start: tuple[float, float] | np.ndarray, *, rectangle: bool = False) -> None:
        self.rectangle = rectangle
        self._points: list[tuple[float, float]] = [(float(start[0]), float(start[1]))]
        self._last = self._points[0]

    def add(self, pos: tuple[float, float] | np.ndarray) -> None:
        """Extend the outline to ``pos`` (lasso: a new vertex if far enough; rectangle: the corner)."""
        p = (float(pos[0]), float(pos[1]))
        if self.rectangle:
            self._last = p
            return
        last = self._points[-1]
        if np.hypot(p[0] - last[0], p[1] - last[1]) >= MIN_STEP:
            self._points.append(p)
        self._last = p

    def polygon(self) -> np.ndarray:
        """(M, 2) float64 vertices (the last joins the first); a rectangle gives its 4 corners."""
        if self.rectangle:
            (x0, y0), (x1, y1) = self._points[0], self._last
            return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        pts = list(self._points)
        if pts[-1] != self._last:
            pts.append(self._last)
        return np.array(pts, dtype=np.float64)


class LassoOverlay:
    """The outline being drawn, over the 3-D view, in canvas logical pixels.

    Parameters
    ----------
    canvas : vispy.scene.SceneCanvas
    """

    def __init__(self, canvas: scene.SceneCanvas) -> None:
        self._line = scene.visuals.Line(
            pos=np.zeros((2, 2), np.float32), color=OUTLINE_COLOR, width=2, parent=canvas.scene
        )
        self._line.set_gl_state("translucent", depth_test=False)
        self._line.order = 1000
        self._line.visible = False

    @property
    def visible(self) -> bool:
        return bool(self._line.visible)

    def show(self, polygon: np.ndarray | None) -> None:
        """Draw the closed outline of ``polygon`` ((M, 2) canvas px); None hides it."""
        if polygon is None or len(polygon) < 2:
            self._line.visible = False
            return
        closed = np.vstack([polygon, polygon[:1]]).astype(np.float32)
        self._line.set_data(pos=closed)
        self._line.visible = True
