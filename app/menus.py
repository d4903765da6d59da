"""The window's actions, menus, toolbar and keyboard shortcuts.

Every action is made here once and added to the window (so that its shortcut works with the menu bar
hidden); the Export entries come from the core's :data:`fast3r_core.export.FORMATS` table. The window's
state is mirrored into the checkable actions by :meth:`WindowMenus._sync_menus`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMenu,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.theme import THEMES
from app.widgets.display_panel import COLOR_MODE_LABELS
from app.widgets.model_manager import DEVICES
from app.window_base import WindowParts
from fast3r_core.export import FORMATS

__all__ = [
    "EXPORT_ACTIONS",
    "EXPORT_SHORTCUTS",
    "MenuEntry",
    "WindowMenus",
    "export_actions_spec",
    "fill_menu",
    "make_action",
]

log = logging.getLogger(__name__)

#: Keyboard shortcuts of the Export menu's entries (the entries come from fast3r_core.export.FORMATS).
EXPORT_SHORTCUTS: dict[str, str] = {"ply": "Ctrl+E", "glb": "Ctrl+Shift+E"}


def export_actions_spec() -> dict[str, tuple[str, str, str | None, str]]:
    """The Export menu, built from :data:`fast3r_core.export.FORMATS` in its order.

    Returns
    -------
    dict
        format key -> (menu text, shortcut or "", file filter or None for a folder, default name).
    """
    return {
        key: (f.menu_text, EXPORT_SHORTCUTS.get(key, ""), f.file_filter, f.default_name)
        for key, f in FORMATS.items()
    }


#: Export menu: format -> (menu text, shortcut, file filter or None for a folder, default name).
EXPORT_ACTIONS: dict[str, tuple[str, str, str | None, str]] = export_actions_spec()


#: A menu entry: an action, ``None`` for a separator, or a submenu (its title, its actions).
MenuEntry = QAction | None | tuple[str, Sequence[QAction]]


def fill_menu(menu: QMenu, entries: Sequence[MenuEntry]) -> None:
    """Add ``entries`` to ``menu`` in their order (a menu reads as the list that makes it)."""
    for entry in entries:
        if entry is None:
            menu.addSeparator()
        elif isinstance(entry, tuple):
            sub = menu.addMenu(entry[0])
            for act in entry[1]:
                sub.addAction(act)
        else:
            menu.addAction(entry)


def make_action(
    window: QWidget,
    text: str,
    slot: Callable[..., Any] | None = None,
    shortcut: str | QKeySequence.StandardKey | None = None,
    *,
    checkable: bool = False,
    tip: str = "",
) -> QAction:
    """An action of ``window`` with a window-wide shortcut (added to the window, so that the shortcut
    works even when the menu bar is hidden)."""
    act = QAction(text, window)
    if shortcut:
        act.setShortcut(QKeySequence(shortcut))
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    act.setCheckable(checkable)
    if tip:
        act.setStatusTip(tip)
        act.setToolTip(tip)
    if slot is not None:
        act.triggered.connect(slot)
    window.addAction(act)
    return act


class WindowMenus(WindowParts):
    """Mixin of :class:`app.main_window.MainWindow`: actions, menus, toolbar, shortcuts table."""

    _action = make_action  # self._action(text, slot, shortcut, ...): an action of the window

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        a = self._action
        self.act_open_folder = a(
            "Open &Folder...", self.open_folder_dialog, K.Open, tip="Reconstruct a folder"
        )
        self.act_open_images = a("Open &Images...", self.open_images_dialog, "Ctrl+Shift+O")
        self.act_open_video = a("Open &Video...", self.open_video_dialog, "Ctrl+Alt+O")
        self.act_open_project = a("Open &Project...", self.open_project_dialog, "Ctrl+Shift+P")
        self.act_add_images = a(
            "&Add Images...",
            self.add_images_dialog,
            "Ctrl+Shift+A",
            tip="Reconstruct more photos into the shown result (only the new views run)",
        )
        self.act_save_project = a("&Save Project", self.save_project, K.Save)
        self.act_save_project_as = a("Save Project &As...", self.save_project_as, K.SaveAs)
        self.export_actions: dict[str, QAction] = {}
        for fmt, (text, shortcut, _, _) in EXPORT_ACTIONS.items():
            self.export_actions[fmt] = a(text, lambda _=False, f=fmt: self.export_dialog(f), shortcut or None)
        self.act_screenshot = a("Screens&hot...", lambda: self.render_dialog("screenshot"), "Ctrl+Shift+S")
        # Ctrl+Shift+S is SaveAs on some platforms; keep F12 as the screenshot key
        self.act_screenshot.setShortcut(QKeySequence("F12"))
        self.act_turntable = a("Render &Turntable...", lambda: self.render_dialog("turntable"))
        self.act_render_playback = a("Render Play&back...", lambda: self.render_dialog("playback"))
        self.act_rerun = a("&Run Again", self.rerun, "F5", tip="Reconstruct the same inputs again")
        self.act_cancel = a("&Cancel Run", self.controller.cancel, "Esc")
        self.act_quit = a("&Quit", self.close, K.Quit)

        self.act_reset = a("&Reset Camera", self.viewer.reset_view, "R")
        self.act_fit = a("&Fit to Scene", self.viewer.fit_to_scene, "F")
        self.camera_group = QActionGroup(self)
        self.act_turntable_cam = a(
            "&Turntable Camera", lambda: self.set_camera_mode("turntable"), checkable=True
        )
        self.act_arcball_cam = a("&Arcball Camera", lambda: self.set_camera_mode("arcball"), checkable=True)
        for act in (self.act_turntable_cam, self.act_arcball_cam):
            self.camera_group.addAction(act)
        self.act_show_cameras = a("Show &Cameras", None, "C", checkable=True)
        self.act_show_cameras.toggled.connect(lambda on: self.state.update(show_cameras=on))
        self.act_show_axes = a("Show A&xes", None, "A", checkable=True)
        self.act_show_axes.toggled.connect(lambda on: self.state.update(show_axes=on))
        self.color_group = QActionGroup(self)
        self.color_actions: dict[str, QAction] = {}
        for i, (mode, label) in enumerate(COLOR_MODE_LABELS.items(), start=1):
            act = a(
                f"Colour: {label}",
                lambda _=False, m=mode: self.state.update(color_mode=m),
                str(i),
                checkable=True,
            )
            self.color_group.addAction(act)
            self.color_actions[mode] = act
        self.act_bigger = a("&Bigger Points", lambda: self._scale_points(1.25), "+")
        self.act_bigger.setShortcuts([QKeySequence("+"), QKeySequence("=")])
        self.act_smaller = a("&Smaller Points", lambda: self._scale_points(0.8), "-")
        self.act_background = a("Back&ground Colour...", self.display_panel.choose_background)
        self.act_local = a(
            "&Local Pointmaps",
            None,
            "L",
            checkable=True,
            tip="Show each view's local pointmap aligned to the global cloud",
        )
        self.act_local.toggled.connect(lambda on: self.state.update(source="local" if on else "global"))
        self.act_sky = a("Mask &Sky", None, "K", checkable=True, tip="Hide sky / background points")
        self.act_sky.toggled.connect(lambda on: self.state.update(mask_sky=on))
        self.act_play = a("&Play / Pause Views", self.playback.toggle, "Space")
        self.act_conf_up = a("Keep More Points", lambda: self.confidence_panel.step(+1), "]")
        self.act_conf_down = a("Keep Fewer Points", lambda: self.confidence_panel.step(-1), "[")
        self.act_next_view = a("Next View", lambda: self._step_view(+1), "N")
        self.act_prev_view = a("Previous View", lambda: self._step_view(-1), "P")
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in THEMES:
            act = a(f"{name.capitalize()} Theme", lambda _=False, t=name: self.set_theme(t), checkable=True)
            self.theme_group.addAction(act)
            self.theme_actions[name] = act

        self.act_models = a("&Model Manager...", self.open_model_manager, "Ctrl+M")
        self.act_run_options = a(
            "Run &Options...",
            self.open_run_options,
            tip="Images to use, passes, intrinsics, masks, video frames",
        )
        self.device_group = QActionGroup(self)
        self.device_actions: dict[str, QAction] = {}
        for key, label in DEVICES:
            act = a(label, lambda _=False, d=key: self.controller.set_device(d), checkable=True)
            self.device_group.addAction(act)
            self.device_actions[key] = act
        self.size_group = QActionGroup(self)
        self.size_actions: dict[int, QAction] = {}
        for size in (512, 224):
            act = a(f"{size} px", lambda _=False, s=size: self.controller.set_size(s), checkable=True)
            self.size_group.addAction(act)
            self.size_actions[size] = act

        self.act_shortcuts = a("&Keyboard Shortcuts", self.show_shortcuts, K.HelpContents)
        self.act_about = a("&About Fast3R Studio", self.show_about)
        self.act_log_folder = a("Open &Log Folder", self.open_log_folder)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        fill_menu(m, [self.act_open_folder, self.act_open_images, self.act_open_video, self.act_open_project])
        fill_menu(m, [self.act_add_images])
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._fill_recent()
        fill_menu(
            m,
            [
                None,
                self.act_save_project,
                self.act_save_project_as,
                None,
                *self.export_actions.values(),
                None,
                self.act_screenshot,
                self.act_turntable,
                self.act_render_playback,
                None,
                self.act_rerun,
                self.act_cancel,
                None,
                self.act_quit,
            ],
        )
        docks = [d.toggleViewAction() for d in (self.views_dock, self.controls_dock, self.preview_dock)]
        view_entries: list[MenuEntry] = [
            self.act_reset,
            self.act_fit,
            ("Camera &Mode", [self.act_turntable_cam, self.act_arcball_cam]),
            None,
            self.act_show_cameras,
            self.act_show_axes,
            ("C&olour", list(self.color_actions.values())),
            self.act_bigger,
            self.act_smaller,
            self.act_background,
            None,
            self.act_local,
            self.act_sky,
            self.act_conf_up,
            self.act_conf_down,
            None,
            self.act_play,
            self.act_next_view,
            self.act_prev_view,
            None,
            ("&Theme", list(self.theme_actions.values())),
            ("&Panels", docks),
        ]
        fill_menu(mb.addMenu("&View"), view_entries)
        model_entries: list[MenuEntry] = [
            self.act_models,
            ("&Device", list(self.device_actions.values())),
            ("&Resolution", list(self.size_actions.values())),
            self.act_run_options,
        ]
        fill_menu(mb.addMenu("&Model"), model_entries)
        fill_menu(mb.addMenu("&Help"), [self.act_shortcuts, self.act_log_folder, None, self.act_about])

    def _build_toolbar(self) -> None:
        """The always-visible way in: open photos or a video, export, cancel, the model manager."""
        style = self.style()
        sp = QStyle.StandardPixmap
        tb = QToolBar("Main toolbar", self)
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setIconSize(QSize(18, 18))
        icons = {
            self.act_open_folder: sp.SP_DirOpenIcon,
            self.act_open_images: sp.SP_FileIcon,
            self.act_open_video: sp.SP_MediaPlay,
            self.act_cancel: sp.SP_BrowserStop,
            self.act_models: sp.SP_DriveNetIcon,
        }
        for act, icon in icons.items():
            act.setIcon(style.standardIcon(icon))
        self.act_open_folder.setIconText("Open Folder")
        self.act_open_images.setIconText("Open Images")
        self.act_open_video.setIconText("Open Video")
        self.act_cancel.setIconText("Cancel")
        self.act_models.setIconText("Models")
        tb.addAction(self.act_open_folder)
        tb.addAction(self.act_open_images)
        tb.addAction(self.act_open_video)
        tb.addSeparator()
        self.export_menu = QMenu("Export", self)
        for act in self.export_actions.values():
            self.export_menu.addAction(act)
        self.export_menu.addSeparator()
        self.export_menu.addAction(self.act_screenshot)
        self.export_button = QToolButton(self)
        self.export_button.setText("Export")
        self.export_button.setIcon(style.standardIcon(sp.SP_DialogSaveButton))
        self.export_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setMenu(self.export_menu)
        self.export_button.setToolTip("Export what the viewport shows (PLY, GLB, COLMAP, Nerfstudio...)")
        tb.addWidget(self.export_button)
        tb.addSeparator()
        tb.addAction(self.act_cancel)
        tb.addSeparator()
        tb.addAction(self.act_models)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

    def _update_actions(self) -> None:
        has = self.state.reconstruction is not None
        busy = self.controller.busy
        self.export_button.setEnabled(has)
        for act in (
            *self.export_actions.values(),
            self.act_save_project,
            self.act_save_project_as,
            self.act_screenshot,
            self.act_turntable,
            self.act_render_playback,
        ):
            act.setEnabled(has)
        self.act_render_playback.setEnabled(has and self.state.reconstruction.n_views > 1 if has else False)
        self.act_cancel.setEnabled(busy and not self.controller.cancelling)
        self.act_rerun.setEnabled(self.controller.can_run_again and not busy)
        self.act_add_images.setEnabled(has and not busy)

    def _sync_menus(self) -> None:
        st = self.state
        pairs = (
            (self.act_show_cameras, bool(st.show_cameras)),
            (self.act_show_axes, bool(st.show_axes)),
            (self.act_local, st.source == "local"),
            (self.act_sky, bool(st.mask_sky)),
            (self.color_actions[str(st.color_mode)], True),
            (self.device_actions.get(self.controller.device, self.device_actions["auto"]), True),
            (self.size_actions.get(self.controller.size, self.size_actions[512]), True),
            (self.theme_actions.get(self.settings.get("theme"), self.theme_actions["dark"]), True),
            (
                self.act_arcball_cam
                if self.settings.get("camera_mode") == "arcball"
                else self.act_turntable_cam,
                True,
            ),
        )
        for act, value in pairs:
            if act.isChecked() != value:
                act.blockSignals(True)
                act.setChecked(value)
                act.blockSignals(False)

    def _fill_recent(self) -> None:
        menu: QMenu = self.recent_menu
        menu.clear()
        recent = self.settings.recent_files()
        for i, path in enumerate(recent):
            label = f"&{i + 1} {path}" if i < 9 else path
            act = menu.addAction(label)
            act.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        if not recent:
            menu.addAction("No recent files").setEnabled(False)
        menu.addSeparator()
        clear = menu.addAction("Clear Recent")
        clear.triggered.connect(self.settings.clear_recent)
        clear.setEnabled(bool(recent))

    def show_shortcuts(self) -> QDialog:
        """A table of every action with a shortcut."""
        dlg = QDialog(self)
        dlg.setWindowTitle("Keyboard shortcuts")
        rows = []
        for act in self.actions():
            seq = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts())
            if seq:
                rows.append((act.text().replace("&", "").rstrip("."), seq))
        rows.sort(key=lambda r: r[0].lower())
        rows += [
            ("Rotate / pan / zoom", "Left drag / Shift or middle drag / wheel"),
            ("Pick a camera", "Click a frustum"),
            ("Open", "Drop files on the window"),
        ]
        table = QTableWidget(len(rows), 2, dlg)
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for i, (name, seq) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(name))
            table.setItem(i, 1, QTableWidgetItem(seq))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dlg.reject)
        lay = QVBoxLayout(dlg)
        lay.addWidget(table)
        lay.addWidget(buttons)
        dlg.resize(520, 640)
        self.shortcuts_table = table
        dlg.show() if not self.interactive else dlg.exec()
        return dlg
