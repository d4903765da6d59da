"""The crop and selection tools: their actions (Tools menu, shortcuts), the current selection, and the
edits they push on the undo stack.

:class:`CropSelectTools` sits between the viewer (which draws the crop gizmo, the lasso and the highlighted
points, and reports outlines and dragged boxes: :class:`app.viewer.protocol.Viewer`) and the
:class:`~app.edits_session.EditsSession` (every change is one ``push`` with a text such as
"Delete 1,234 points", so Ctrl+Z undoes it). Selections are point ids of every shown point at full
density (:mod:`app.selection`), not only the level-of-detail subset drawn.

Shortcuts: Crop Box B, Crop Box Numeric Shift+B, Lasso Shift+L and Rectangle Shift+R (L and R are
Local Pointmaps and Reset Camera), Delete Selected Del, Keep Selected Ctrl+Shift+K, Invert Selection
Ctrl+I,
Clear Selection Esc (disabled during a run, when Esc cancels it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QWidget

from app import plural
from app.edits_session import EditsSession
from app.menus import make_action
from app.selection import Candidates, select_in_polygon, selectable_points
from app.state import ViewerState
from app.widgets.crop_dialog import CropDialog
from fast3r_core.edits import (
    CropBox,
    Edits,
    delete_points,
    invert_selection,
    keep_only,
    set_crop,
)

if TYPE_CHECKING:  # app.viewer imports VisPy
    from app.viewer.protocol import Viewer

__all__ = ["CropSelectTools", "initial_crop_bounds"]

log = logging.getLogger(__name__)

#: A new crop box encloses the shown points with this margin (fraction of their extent per axis).
CROP_MARGIN = 0.02


def initial_crop_bounds(candidates: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """Edited-world (lo, hi), (3,) each, of a new crop box: the shown points' bounds plus a margin."""
    if len(candidates.xyz) == 0:
        return -np.ones(3), np.ones(3)
    lo = candidates.xyz.min(axis=0).astype(np.float64)
    hi = candidates.xyz.max(axis=0).astype(np.float64)
    pad = np.maximum((hi - lo) * CROP_MARGIN, 1e-6 * max(1.0, float(np.abs(hi - lo).max())))
    return lo - pad, hi + pad


def _aabb(box: CropBox) -> tuple[np.ndarray, np.ndarray]:
    """Edited-world bounds of a (possibly rotated) box."""
    R = np.abs(np.asarray(box.rotation, np.float64))
    ext = R @ np.asarray(box.half_extents, np.float64)
    c = np.asarray(box.center, np.float64)
    return c - ext, c + ext


class CropSelectTools(QObject):
    """The viewport's crop and selection tools.

    Parameters
    ----------
    state : ViewerState
        What is shown (for the full-density candidates of a selection).
    session : EditsSession
        Where the edits go.
    viewer : Viewer
        Draws the tools and reports outlines / dragged boxes.
    window : QWidget
        Gets the actions (so that their shortcuts work) and parents the dialog.
    busy : callable
        Whether a run is going on (Esc then cancels it instead of clearing the selection).

    Signals
    -------
    selection_changed(int)
        The number of selected points.
    tool_changed(str)
        The active tool ("navigate", "lasso", "rectangle" or "crop"), e.g. to stop another tool.
    """

    selection_changed = Signal(int)
    tool_changed = Signal(str)

    def __init__(
        self,
        state: ViewerState,
        session: EditsSession,
        viewer: Viewer,
        window: QWidget,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(window)
        self._state = state
        self._session = session
        self._viewer = viewer
        self._window = window
        self._busy = busy
        self._selected = np.zeros(0, np.int64)
        self._proposed: CropBox | None = None  # the gizmo's box before the first drag makes it a crop
        self.crop_dialog: CropDialog | None = None
        self._build_actions()
        viewer.selection_drawn.connect(self._on_outline)
        viewer.crop_box_dragged.connect(self._on_box_dragged)
        session.changed.connect(self._on_edits)
        state.reconstruction_changed.connect(self._on_reconstruction)
        viewer.set_edits(session.edits)
        self.update_actions()

    # ------------------------------------------------------------------------------------ actions
    def _build_actions(self) -> None:
        w = self._window
        self.act_crop = make_action(
            w, "&Crop Box", self._apply_tool, "B", checkable=True, tip="Drag the box's face handles to crop"
        )
        self.act_crop_numeric = make_action(w, "Crop Box &Numeric...", self.open_crop_dialog, "Shift+B")
        self.act_remove_crop = make_action(w, "&Remove Crop", self.remove_crop)
        # L and R are Local Pointmaps and Reset Camera
        tools = {
            "lasso": ("&Lasso Select", "Shift+L", "Draw around points to select them"),
            "rectangle": ("R&ectangle Select", "Shift+R", "Drag a rectangle to select points"),
        }
        self.act_lasso, self.act_rect = (
            make_action(w, text, self._apply_tool, key, checkable=True, tip=tip)
            for text, key, tip in tools.values()
        )
        self.act_delete = make_action(w, "&Delete Selected", self.delete_selected, "Del")
        self.act_keep = make_action(
            w, "&Keep Selected", self.keep_selected, "Ctrl+Shift+K", tip="Delete every other point"
        )
        self.act_invert = make_action(w, "&Invert Selection", self.invert, "Ctrl+I")
        # no key of its own: Esc (the window's Stop Tool) clears a selection first, then leaves the tool
        self.act_clear = make_action(w, "Clear Selection", self.clear_selection)
        self.tool_group = QActionGroup(self)
        self.tool_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        for act in (self.act_crop, self.act_lasso, self.act_rect):
            self.tool_group.addAction(act)

    def menu_entries(self) -> list[QAction | None]:
        """The Tools menu's entries (None: a separator)."""
        return [
            self.act_crop,
            self.act_crop_numeric,
            self.act_remove_crop,
            None,
            self.act_lasso,
            self.act_rect,
            None,
            self.act_delete,
            self.act_keep,
            self.act_invert,
            self.act_clear,
        ]

    def update_actions(self) -> None:
        """Enable what makes sense now (a reconstruction, a selection, a crop; Esc free of a run)."""
        has = self._state.reconstruction is not None
        sel = self._selected.size > 0
        for act in (self.act_crop, self.act_crop_numeric, self.act_lasso, self.act_rect):
            act.setEnabled(has)
        self.act_remove_crop.setEnabled(has and self._session.edits.crop is not None)
        for act in (self.act_delete, self.act_keep):
            act.setEnabled(has and sel)
        self.act_invert.setEnabled(has)
        self.act_clear.setEnabled(has and (sel or self.tool != "navigate") and not self._busy())

    @property
    def selection_count(self) -> int:
        """Points selected now (full density)."""
        return int(self._selected.size)

    # ------------------------------------------------------------------------------------ tools
    @property
    def tool(self) -> str:
        """The active tool: "navigate", "lasso", "rectangle" or "crop"."""
        if self.act_crop.isChecked():
            return "crop"
        if self.act_lasso.isChecked():
            return "lasso"
        if self.act_rect.isChecked():
            return "rectangle"
        return "navigate"

    def set_tool(self, tool: str) -> None:
        """Switch tool ("navigate" turns them all off)."""
        acts = {"crop": self.act_crop, "lasso": self.act_lasso, "rectangle": self.act_rect}
        if tool != "navigate" and tool not in acts:
            raise ValueError(f"unknown tool {tool!r}")
        for name, act in acts.items():
            act.setChecked(name == tool)
        self._apply_tool()

    def _apply_tool(self) -> None:
        tool = self.tool
        self._viewer.set_edit_tool(tool)
        self._show_gizmo()
        self.update_actions()
        self.tool_changed.emit(tool)

    def _show_gizmo(self) -> None:
        box: CropBox | None = None
        if self.tool == "crop" and self._state.reconstruction is not None:
            box = self._session.edits.crop
            if box is None:
                if self._proposed is None:
                    lo, hi = initial_crop_bounds(self._candidates())
                    self._proposed = CropBox.axis_aligned(lo, hi)
                box = self._proposed
        self._viewer.set_crop_gizmo(box)

    # ------------------------------------------------------------------------------------ crop
    def _on_box_dragged(self, box: object) -> None:
        if not isinstance(box, CropBox):
            return
        self._push(set_crop(self._session.edits, box), "Crop")

    def open_crop_dialog(self) -> CropDialog | None:
        """The numeric crop box (non-blocking; OK pushes the crop)."""
        if self._state.reconstruction is None:
            return None
        box = self._session.edits.crop or self._proposed
        lo, hi = _aabb(box) if box is not None else initial_crop_bounds(self._candidates())
        dlg = CropDialog(self._session.edits, lo, hi, self._window)
        dlg.accepted.connect(lambda: self.apply_crop_dialog(dlg))
        self.crop_dialog = dlg
        dlg.open()
        return dlg

    def apply_crop_dialog(self, dlg: CropDialog) -> None:
        """Crop to the dialog's box (one undoable step)."""
        self._push(set_crop(self._session.edits, dlg.crop_box()), "Crop")

    def remove_crop(self) -> None:
        self._proposed = None
        self._push(set_crop(self._session.edits, None), "Remove crop")

    # ------------------------------------------------------------------------------------ selection
    @property
    def selected_ids(self) -> np.ndarray:
        """(K,) int64, sorted unique point ids of the selection (a read-only view)."""
        view = self._selected.view()
        view.setflags(write=False)
        return view

    def _candidates(self) -> Candidates:
        return selectable_points(self._state, self._session.edits)

    def _on_outline(self, polygon: object) -> None:
        self.select_polygon(np.asarray(polygon, dtype=np.float64), rectangle=self.tool == "rectangle")

    def select_polygon(self, polygon: np.ndarray, *, rectangle: bool = False) -> np.ndarray:
        """Select the shown points inside a canvas polygon ((M, 2) logical px); returns their ids."""
        cand = self._candidates()
        inside = select_in_polygon(cand, self._viewer.screen_matrix(), polygon, rectangle=rectangle)
        ids = np.sort(cand.ids[inside])
        self._set_selection(ids, cand, inside)
        return ids

    def invert(self) -> None:
        """Select the shown points that are not selected, and unselect the others."""
        cand = self._candidates()
        ids = invert_selection(self._selected, cand.ids)
        self._set_selection(ids, cand, np.isin(cand.ids, ids, assume_unique=True))

    def clear_selection(self) -> None:
        """Unselect everything; with nothing selected, leave the active tool."""
        if self._selected.size == 0 and self.tool != "navigate":
            self.set_tool("navigate")
            return
        self._set_selection(np.zeros(0, np.int64))

    def _set_selection(
        self, ids: np.ndarray, cand: Candidates | None = None, at: np.ndarray | None = None
    ) -> None:
        """Select ``ids`` (sorted unique) and highlight ``cand``'s points ``at`` (a mask or indices)."""
        self._selected = np.asarray(ids, dtype=np.int64)
        if cand is None or at is None or self._selected.size == 0:
            self._viewer.show_selection(np.zeros((0, 3), np.float32))
        else:
            rec = self._state.reconstruction
            rgb = None if rec is None else rec.points(self._state.source).rgb[cand.index[at]]
            self._viewer.show_selection(cand.xyz[at], rgb)
        self.update_actions()
        self.selection_changed.emit(int(self._selected.size))
        log.debug("%d points selected", self._selected.size)

    def delete_selected(self) -> None:
        """Delete the selected points (one undoable step)."""
        n = int(self._selected.size)
        if n:
            self._push(delete_points(self._session.edits, self._selected), f"Delete {plural(n, 'point')}")

    def keep_selected(self) -> None:
        """Delete every point but the selected ones (one undoable step)."""
        n = int(self._selected.size)
        if n:
            self._push(keep_only(self._session.edits, self._selected), f"Keep {plural(n, 'point')}")

    # ------------------------------------------------------------------------------------ sync
    def _push(self, new: Edits, text: str) -> None:
        self._session.push(new, text)

    def _on_edits(self, edits: Edits) -> None:
        self._viewer.set_edits(edits)
        if self._selected.size:
            self._set_selection(np.zeros(0, np.int64))
        if edits.crop is not None:
            self._proposed = None
        self._show_gizmo()
        self.update_actions()

    def _on_reconstruction(self) -> None:
        self._proposed = None
        self._set_selection(np.zeros(0, np.int64))
        if self._state.reconstruction is None:
            self.set_tool("navigate")
        else:
            self._show_gizmo()
