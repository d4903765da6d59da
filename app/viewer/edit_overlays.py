"""What the edit tools draw over the scene: measurement lines with their lengths, picked markers.

The visuals are children of the viewer's edited-world node (:attr:`SceneViewer.edited_scene`), so
their coordinates are edited-world ones (:mod:`app.edit_types`) and they follow the display. They are
drawn after everything else and without the depth test: a measurement stays visible through the points.
"""

from __future__ import annotations

import numpy as np
from vispy import scene

from app.edit_types import EditOverlay

__all__ = ["EditOverlays"]

LINE_COLOR = (1.0, 0.84, 0.2, 1.0)
MARKER_COLOR = (1.0, 0.35, 0.25, 1.0)
TEXT_COLOR = (1.0, 1.0, 1.0, 1.0)


class EditOverlays:
    """Lines, end-point markers and labels of an :class:`~app.edit_types.EditOverlay`.

    Parameters
    ----------
    parent : vispy.scene.Node
        The edited-world node.
    """

    LINE_WIDTH = 2.5
    MARKER_SIZE = 9.0
    FONT_SIZE = 9

    def __init__(self, parent: scene.Node) -> None:
        self.lines = scene.visuals.Line(
            parent=parent, connect="segments", method="gl", width=self.LINE_WIDTH, antialias=False
        )
        self.markers = scene.visuals.Markers(parent=parent)
        self.labels = scene.visuals.Text(
            parent=parent, color=TEXT_COLOR, font_size=self.FONT_SIZE, anchor_x="left", anchor_y="bottom"
        )
        for node in (self.lines, self.markers, self.labels):
            node.set_gl_state("translucent", depth_test=False)
            node.order = 10
            node.visible = False
        self.overlay = EditOverlay()

    def set_overlay(self, overlay: EditOverlay) -> None:
        """Show ``overlay`` (edited-world coordinates) instead of the previous one."""
        self.overlay = overlay
        segs = overlay.segments
        if segs:
            pos = np.array([[s.a, s.b] for s in segs], np.float32).reshape(-1, 3)
            self.lines.set_data(pos=pos, color=LINE_COLOR)
            mids = (pos[0::2] + pos[1::2]) / 2.0
            texts = [s.label for s in segs]
            self.labels.text = texts
            self.labels.pos = mids
        self.lines.visible = bool(segs)
        self.labels.visible = bool(segs) and any(s.label for s in segs)
        ends = [p for s in segs for p in (s.a, s.b)] + list(overlay.markers)
        if ends:
            pts = np.asarray(ends, np.float32).reshape(-1, 3)
            face = np.tile(np.asarray(LINE_COLOR, np.float32), (len(pts), 1))
            face[2 * len(segs) :] = MARKER_COLOR
            self.markers.set_data(pts, face_color=face, edge_color=(0, 0, 0, 1), size=self.MARKER_SIZE)
        self.markers.visible = bool(ends)

    def set_line_scale(self, scale: float) -> None:
        """Multiply line widths and text sizes (offscreen renders larger than the screen)."""
        self.lines.set_data(width=self.LINE_WIDTH * scale)
        self.labels.font_size = self.FONT_SIZE * scale
