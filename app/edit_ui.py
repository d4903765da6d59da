"""The window's edit seam: Edit and Tools menus, undo/redo, the history and measurements docks.

A mixin of :class:`app.main_window.MainWindow` (like :mod:`app.menus`): it builds the actions of the
edit tools (:class:`~app.edit_tools.EditTools`) on the window's :class:`~app.edits_session.EditsSession`,
the Edit History dock (a ``QUndoView`` of the session's stack) and the Measurements dock, and shows the
length unit on the status bar once a scale is known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import QDockWidget, QMenu, QUndoView

from app.edit_tools import EditTools
from app.menus import fill_menu
from app.widgets.elided_label import ElidedLabel
from app.widgets.measurements_dock import MeasurementsPanel
from app.widgets.scale_dialog import ScaleDialog, ScaleRequest
from app.window_base import WindowParts
from fast3r_core.edits import Edits
from fast3r_core.errors import EditsError

if TYPE_CHECKING:
    from app.edits_session import EditsSession

__all__ = ["WindowEdits", "units_text"]


def units_text(edits: Edits) -> str:
    """The status bar's unit note: "Units: m" once a scale is known, else "Units: arbitrary"."""
    if edits.metres_per_unit is None:
        return "Units: arbitrary (no scale set)"
    return f"Units: {edits.display_unit}"


class WindowEdits(WindowParts):
    """Mixin of :class:`app.main_window.MainWindow`: the edit tools' actions, menus and docks."""

    edits_session: EditsSession
    edit_tools: EditTools
    measurements_panel: MeasurementsPanel
    undo_view: QUndoView
    act_cancel: QAction  # made by app.menus.WindowMenus, like _action
    _action: Callable[..., QAction]
    units_label: ElidedLabel
    _fit_status_labels: Callable[..., None]  # app.main_window.MainWindow's
    scale_dialog: ScaleDialog | None

    def _build_edit_ui(self) -> None:
        """Make the tools, actions, Edit/Tools menus, docks and the unit label (after the menus)."""
        session = self.edits_session
        self.edit_tools = EditTools(session, self.state, self.viewer, self)
        self.scale_dialog = None
        stack: QUndoStack = session.undo_stack
        self.act_undo = stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcuts([QKeySequence("Ctrl+Z")])
        self.act_redo = stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for act in (self.act_undo, self.act_redo):
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(act)
        a = self._action
        tools = self.edit_tools
        self.act_measure = a(
            "&Measure",
            lambda: tools.toggle_mode("measure"),
            "M",
            checkable=True,
            tip="Click two points to measure the distance between them",
        )
        self.act_pick_floor = a(
            "Pick &Floor",
            lambda: tools.toggle_mode("floor"),
            checkable=True,
            tip="Click three points on the floor: the world is levelled so that they are horizontal",
        )
        self.act_set_origin = a(
            "Set &Origin Here",
            lambda: tools.toggle_mode("origin"),
            checkable=True,
            tip="Click a point: it becomes the origin of the world",
        )
        self.act_level = a(
            "&Level Automatically",
            tools.level_automatically,
            tip="Turn the world so that Z is up (the cameras' up, refined by the floor plane)",
        )
        self.act_set_scale = a(
            "Set &Scale...",
            lambda: self.open_scale_dialog(),
            "Ctrl+K",
            tip="Give the scene its real size from one known distance",
        )
        # One Esc for every tool (measure/level picks, crop box, lasso, a selection); Cancel Run has Esc
        # too, and Qt fires a shortcut only when exactly one enabled action holds it: never both enabled.
        self.act_stop_tool = a("Stop Tool", self.stop_tools, "Esc")
        self.act_stop_tool.setEnabled(False)
        self._tool_actions = {
            "measure": self.act_measure,
            "floor": self.act_pick_floor,
            "origin": self.act_set_origin,
        }

        self.undo_view = QUndoView(stack)
        self.undo_view.setEmptyLabel("<original>")
        self.measurements_panel = MeasurementsPanel(tools)
        # The two docks are made when first shown (a first measurement shows its dock): docks made in
        # the constructor would change the window's smallest size and the layout users saved.
        self.edit_docks: dict[str, QDockWidget] = {}
        self.act_show_measurements = a(
            "&Measurements", lambda on=True: self.show_edit_dock("measurements", on), checkable=True
        )
        self.act_show_history = a(
            "Edit &History", lambda on=True: self.show_edit_dock("history", on), checkable=True
        )
        self.measurements_panel.scale_requested.connect(lambda name: self.open_scale_dialog(name))

        mb = self.menuBar()
        view_menu = mb.actions()[1] if len(mb.actions()) > 1 else None
        edit = QMenu("&Edit", self)
        fill_menu(
            edit,
            [
                self.act_undo,
                self.act_redo,
                None,
                self.act_show_history,
                self.act_show_measurements,
            ],
        )
        tools_menu = QMenu("&Tools", self)
        fill_menu(
            tools_menu,
            [
                self.act_measure,
                self.act_set_scale,
                None,
                self.act_level,
                self.act_pick_floor,
                self.act_set_origin,
                None,
                *self.crop_select.menu_entries(),
            ],
        )
        if view_menu is not None:
            mb.insertMenu(view_menu, edit)
            mb.insertMenu(view_menu, tools_menu)
        else:
            mb.addMenu(edit)
            mb.addMenu(tools_menu)
        self.edit_menu, self.tools_menu = edit, tools_menu
        tb = getattr(self, "toolbar", None)
        if tb is not None:
            tb.addSeparator()
            tb.addAction(self.act_measure)

        self.units_label = ElidedLabel("")
        self.units_label.setMinimumWidth(70)
        self.statusBar().insertPermanentWidget(0, self.units_label)  # first: the others elide before it
        tools.mode_changed.connect(self._on_tool_mode)
        # the pick tools and the crop / selection tools take turns on the left mouse button
        crop = self.crop_select
        tools.mode_changed.connect(lambda mode: mode and crop.set_tool("navigate"))
        crop.tool_changed.connect(lambda tool: tool != "navigate" and tools.set_mode(""))
        crop.tool_changed.connect(lambda _tool: self._update_stop_tool())
        crop.selection_changed.connect(lambda *_: self._update_stop_tool())
        # a run starting enables Cancel Run, whose key is Esc too: leave the tool (its result goes anyway)
        self.controller.state_changed.connect(self._leave_tool_when_busy)
        tools.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        session.changed.connect(self._on_edits_changed)
        self._on_edits_changed(session.edits)

    def _leave_tool_when_busy(self, _state: str = "") -> None:
        if self.controller.busy and self.edit_tools.mode:
            self.edit_tools.set_mode("")
        self._update_stop_tool()

    def stop_tools(self) -> None:
        """Esc: drop the selection if there is one, else leave the active tool (edits made stay)."""
        if self.crop_select.selection_count:
            self.crop_select.clear_selection()
            return
        self.edit_tools.set_mode("")
        self.crop_select.set_tool("navigate")

    def _update_stop_tool(self) -> None:
        crop = self.crop_select
        active = bool(self.edit_tools.mode) or crop.tool != "navigate" or crop.selection_count > 0
        self.act_stop_tool.setEnabled(active and not self.controller.busy)

    # -- state -> actions -------------------------------------------------------------------------------
    def _on_tool_mode(self, mode: str) -> None:
        for key, act in self._tool_actions.items():
            if act.isChecked() != (key == mode):
                act.blockSignals(True)
                act.setChecked(key == mode)
                act.blockSignals(False)
        self._update_stop_tool()
        # Esc is also Cancel Run: only one of the two may be enabled, or neither would fire
        c = self.controller
        self.act_cancel.setEnabled(not mode and c.busy and not c.cancelling)

    def show_edit_dock(self, which: str, on: bool = True) -> QDockWidget:
        """Show (or hide) the "measurements" or "history" dock, making it the first time."""
        dock = self.edit_docks.get(which)
        act = self.act_show_measurements if which == "measurements" else self.act_show_history
        if dock is None:
            title, widget = {
                "measurements": ("Measurements", self.measurements_panel),
                "history": ("Edit History", self.undo_view),
            }[which]
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{title.lower()}")
            dock.setWidget(widget)
            # where the user last had it (saved window state), else in a tab beside the Image dock
            if not self.restoreDockWidget(dock):
                self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
                if not self.preview_dock.isFloating():
                    self.tabifyDockWidget(self.preview_dock, dock)
            dock.visibilityChanged.connect(lambda _=False, d=dock, x=act: self._sync_dock_action(d, x))
            self.edit_docks[which] = dock
        dock.setVisible(on)
        if on:
            dock.raise_()
        self._sync_dock_action(dock, act)  # visibilityChanged does not fire in a hidden window
        return dock

    @staticmethod
    def _sync_dock_action(dock: QDockWidget, act: QAction) -> None:
        if act.isChecked() != (not dock.isHidden()):
            act.blockSignals(True)
            act.setChecked(not dock.isHidden())
            act.blockSignals(False)

    def _on_edits_changed(self, edits: Edits) -> None:
        if edits.measurements and "measurements" not in self.edit_docks:
            self.show_edit_dock("measurements")
        self.units_label.setText(units_text(edits) if self.state.reconstruction is not None else "")
        self.units_label.setToolTip(self.units_label.text())
        self._fit_status_labels()

    def _update_edit_actions(self) -> None:
        has = self.state.reconstruction is not None
        for act in (*self._tool_actions.values(), self.act_level, self.act_set_scale):
            act.setEnabled(has)

    # -- scale ------------------------------------------------------------------------------------------
    def open_scale_dialog(self, measurement: str = "") -> ScaleDialog | None:
        """The Set Scale dialog (non-modal when not interactive; the window applies it on OK)."""
        rec = self.state.reconstruction
        if rec is None:
            return None
        dlg = ScaleDialog(self.edits_session.edits, list(rec.image_paths), self, measurement=measurement)
        dlg.accepted.connect(lambda: self.apply_scale(dlg.request()))
        self.scale_dialog = dlg
        if self.interactive:
            dlg.exec()
        else:
            dlg.show()
        return dlg

    def apply_scale(self, req: ScaleRequest) -> None:
        """Apply a :class:`ScaleRequest` as one undoable step (errors go to the status bar)."""
        try:
            if req.kind == "measurement":
                self.edit_tools.scale_from_measurement(req.measurement, req.distance, req.unit)
            else:
                self.edit_tools.scale_from_views(req.views[0], req.views[1], req.distance, req.unit)
        except EditsError as exc:
            self.statusBar().showMessage(f"Cannot set the scale: {exc}", 8000)
