"""The main window: menus, docks, status bar, drag-and-drop, settings, recent files.

Viewport in the centre (a :class:`app.viewer.SceneViewer`, or the drop hint while there is nothing to
show), the list of views on the left, display and confidence controls and the photo of the clicked view
on the right, the playback bar and the progress panel under the viewport. The window talks to the
worker only through the :class:`~app.controller.Controller`; widgets write into the
:class:`~app.state.ViewerState`, which the viewer listens to.

``interactive=False`` (tests, ``--screenshot``) never opens a blocking dialog: questions take their
default answer and errors are shown in non-modal dialogs.
"""

from __future__ import annotations

import html
import logging
import os
import platform
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEventLoop, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QImage,
    QKeySequence,
    QPainter,
    QPixmap,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QScrollArea,
    QStackedWidget,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from app import APP_NAME, plural
from app.controller import Controller, MemoryCheck, RunState, first_sample
from app.settings import Settings
from app.state import SAVED_DISPLAY_OPTIONS, ViewerState
from app.theme import THEMES, apply_theme
from app.widgets import (
    Banner,
    ConfidencePanel,
    DemoNote,
    DisplayPanel,
    DropHint,
    ImagePreview,
    ModelManagerDialog,
    PlaybackBar,
    ProgressPanel,
    RenderDialog,
    RunOptionsDialog,
    ViewsPanel,
    ask_license,
)
from app.widgets.display_panel import COLOR_MODE_LABELS
from app.widgets.model_manager import DEVICES
from app.widgets.views_dock import count_unreliable_poses
from app.worker import ErrorInfo, RunResult
from fast3r_core import LOW_POSE_INLIER_SHARE, PROJECT_SUFFIX, Reconstruction
from fast3r_core.atomic import atomic_path
from fast3r_core.export import FORMATS

if TYPE_CHECKING:  # app.viewer imports VisPy: loaded only when the real viewer is made
    from app.viewer.protocol import Viewer, ViewerFactory

__all__ = [
    "EXPORT_ACTIONS",
    "EXPORT_SHORTCUTS",
    "STATE_OPTIONS",
    "MainWindow",
    "classify_drop",
    "export_actions_spec",
]

log = logging.getLogger(__name__)

#: ViewerState values saved in the settings between sessions.
STATE_OPTIONS = SAVED_DISPLAY_OPTIONS

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


def classify_drop(paths: Sequence[str]) -> str:
    """What a list of dropped local paths is: "project", "inputs" or "" (nothing usable)."""
    from fast3r_core import is_image_file, is_video

    if not paths:
        return ""
    if any(p.lower().endswith(PROJECT_SUFFIX) for p in paths):
        return "project"
    if any(os.path.isdir(p) or is_image_file(p) or is_video(p) for p in paths):
        return "inputs"
    return ""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


class MainWindow(QMainWindow):
    """The Fast3R Studio window.

    Parameters
    ----------
    controller : Controller, optional
        Made with ``settings`` when not given.
    settings : Settings, optional
        Default: the user's settings file (``$FAST3R_CONFIG_DIR`` in tests).
    viewer_factory : callable, optional
        ``viewer_factory(state, parent)`` -> a :class:`app.viewer.protocol.Viewer`; default
        :class:`app.viewer.SceneViewer`.
    interactive : bool
        False: no blocking dialog (tests, ``--screenshot``).
    """

    def __init__(
        self,
        controller: Controller | None = None,
        settings: Settings | None = None,
        viewer_factory: ViewerFactory | None = None,
        *,
        interactive: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or (controller.settings if controller is not None else Settings())
        self.state = controller.state if controller is not None else ViewerState(self)
        self.controller = controller or Controller(self.state, self.settings, self)
        self.interactive = interactive
        self.error_dialog: QMessageBox | None = None
        self._last_error: ErrorInfo | None = None
        self._memory_checks = 0  # start_run calls so far: only the latest one's memory check starts a run
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self._load_state_options()

        # -- centre: banner, drop hint / viewport, playback, progress --------------------------------
        if viewer_factory is None:
            from app.viewer import SceneViewer

            viewer_factory = SceneViewer
        self.viewer: Viewer = viewer_factory(self.state, self)
        self.banner = Banner()
        self.demo_note = DemoNote()
        self.drop_hint = DropHint()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.drop_hint)
        self.stack.addWidget(self.viewer.native)
        self.playback = PlaybackBar(self.state)
        self.playback.fps_spin.setValue(float(self.settings.get("playback_fps")))
        self.progress_panel = ProgressPanel()
        self.progress_panel.setVisible(False)
        centre = QWidget()
        lay = QVBoxLayout(centre)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.demo_note)
        lay.addWidget(self.banner)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.playback)
        lay.addWidget(self.progress_panel)
        self.setCentralWidget(centre)

        # -- docks ------------------------------------------------------------------------------------
        self.views_panel = ViewsPanel(self.state)
        self.views_dock = self._dock("Views", self.views_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.confidence_panel = ConfidencePanel(self.state)
        self.display_panel = DisplayPanel(self.state)
        controls = QWidget()
        cl = QVBoxLayout(controls)
        cl.setContentsMargins(2, 2, 2, 2)
        conf_box = QGroupBox("Confidence")
        QVBoxLayout(conf_box).addWidget(self.confidence_panel)
        disp_box = QGroupBox("Display")
        QVBoxLayout(disp_box).addWidget(self.display_panel)
        cl.addWidget(conf_box)
        cl.addWidget(disp_box)
        cl.addStretch(1)
        # scrolls when the window is short, instead of squeezing the controls under the next dock
        self.controls_scroll = QScrollArea()
        self.controls_scroll.setWidgetResizable(True)
        self.controls_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.controls_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls_scroll.setWidget(controls)
        bar = self.controls_scroll.verticalScrollBar().sizeHint().width()
        self.controls_scroll.setMinimumWidth(controls.minimumSizeHint().width() + bar)
        self.controls_dock = self._dock(
            "Controls", self.controls_scroll, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.preview = ImagePreview(self.state)
        self.preview_dock = self._dock("Image", self.preview, Qt.DockWidgetArea.RightDockWidgetArea)

        # -- status bar -------------------------------------------------------------------------------
        self.model_label = QLabel("")
        self.scene_label = QLabel("")
        self.timing_label = QLabel("")
        for w in (self.scene_label, self.timing_label, self.model_label):
            w.setMinimumWidth(40)  # may be cut in a small window rather than widen it (tooltips: all)
            self.statusBar().addPermanentWidget(w)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._connect()
        self._restore_window()
        self._update_empty()
        self._update_status()
        self._update_actions()

    # ------------------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(
        self,
        text: str,
        slot: Callable[..., Any] | None = None,
        shortcut: str | QKeySequence.StandardKey | None = None,
        *,
        checkable: bool = False,
        tip: str = "",
    ) -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        if slot is not None:
            act.triggered.connect(slot)
        self.addAction(act)  # shortcuts work even when the menu bar is hidden
        return act

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
            "Run &Options...", self.open_run_options, tip="Images to use, views per pass, anchor views"
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
        for act in (self.act_open_folder, self.act_open_images, self.act_open_video, self.act_open_project):
            m.addAction(act)
        m.addAction(self.act_add_images)
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._fill_recent()
        m.addSeparator()
        m.addAction(self.act_save_project)
        m.addAction(self.act_save_project_as)
        m.addSeparator()
        for act in self.export_actions.values():
            m.addAction(act)
        m.addSeparator()
        m.addAction(self.act_screenshot)
        m.addAction(self.act_turntable)
        m.addAction(self.act_render_playback)
        m.addSeparator()
        m.addAction(self.act_rerun)
        m.addAction(self.act_cancel)
        m.addSeparator()
        m.addAction(self.act_quit)

        v = mb.addMenu("&View")
        v.addAction(self.act_reset)
        v.addAction(self.act_fit)
        cam = v.addMenu("Camera &Mode")
        cam.addAction(self.act_turntable_cam)
        cam.addAction(self.act_arcball_cam)
        v.addSeparator()
        v.addAction(self.act_show_cameras)
        v.addAction(self.act_show_axes)
        colours = v.addMenu("C&olour")
        for act in self.color_actions.values():
            colours.addAction(act)
        v.addAction(self.act_bigger)
        v.addAction(self.act_smaller)
        v.addAction(self.act_background)
        v.addSeparator()
        v.addAction(self.act_local)
        v.addAction(self.act_sky)
        v.addAction(self.act_conf_up)
        v.addAction(self.act_conf_down)
        v.addSeparator()
        v.addAction(self.act_play)
        v.addAction(self.act_next_view)
        v.addAction(self.act_prev_view)
        v.addSeparator()
        themes = v.addMenu("&Theme")
        for act in self.theme_actions.values():
            themes.addAction(act)
        docks = v.addMenu("&Panels")
        for dock in (self.views_dock, self.controls_dock, self.preview_dock):
            docks.addAction(dock.toggleViewAction())

        mm = mb.addMenu("&Model")
        mm.addAction(self.act_models)
        dev = mm.addMenu("&Device")
        for act in self.device_actions.values():
            dev.addAction(act)
        res = mm.addMenu("&Resolution")
        for act in self.size_actions.values():
            res.addAction(act)
        mm.addAction(self.act_run_options)

        h = mb.addMenu("&Help")
        h.addAction(self.act_shortcuts)
        h.addAction(self.act_log_folder)
        h.addSeparator()
        h.addAction(self.act_about)

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

    def _connect(self) -> None:
        c = self.controller
        c.state_changed.connect(self._on_run_state)
        c.progress.connect(self.progress_panel.update_progress)
        c.result_ready.connect(self._on_result)
        c.run_finished.connect(self._on_run_finished)
        c.failed.connect(self.show_error)
        c.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        c.model_changed.connect(self._update_status)
        c.model_changed.connect(self._sync_menus)
        self.progress_panel.cancel_requested.connect(c.cancel)
        self.viewer.view_clicked.connect(self._view_clicked)
        self.views_panel.view_activated.connect(self._view_activated)
        self.drop_hint.open_folder.connect(self.open_folder_dialog)
        self.drop_hint.open_images.connect(self.open_images_dialog)
        self.drop_hint.open_video.connect(self.open_video_dialog)
        self.drop_hint.open_project.connect(self.open_project_dialog)
        self.drop_hint.open_sample.connect(self.open_sample)
        self.demo_note.open_models.connect(self.open_model_manager)
        self.demo_note.open_folder.connect(self.open_folder_dialog)
        self.demo_note.open_video.connect(self.open_video_dialog)
        c.model_changed.connect(self._update_empty)
        self.state.style_changed.connect(self._sync_menus)
        self.state.selection_changed.connect(self._sync_menus)
        self._status_throttled = qthrottled(self._update_status, timeout=100, leading=True, parent=self)
        self.state.selection_changed.connect(self._status_throttled)
        self.controller.tasks.busy_changed.connect(lambda _: self._update_actions())
        self._sync_menus()

    # ------------------------------------------------------------------------------------------------
    # settings
    # ------------------------------------------------------------------------------------------------
    def _load_state_options(self) -> None:
        for key in STATE_OPTIONS:
            try:
                self.state.update(**{key: self.settings.get(key)})
            except (KeyError, ValueError):
                log.warning("ignoring the saved option %s=%r", key, self.settings.get(key))

    def _save_settings(self) -> None:
        for key in STATE_OPTIONS:
            self.settings.set(key, getattr(self.state.display, key))
        self.settings.set("playback_fps", float(self.playback.fps_spin.value()))
        self.settings.set_window(self.saveGeometry(), self.saveState())
        self.settings.sync()

    def _restore_window(self) -> None:
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1440, 900)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        self.resizeDocks([self.views_dock], [300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.controls_dock], [340], Qt.Orientation.Horizontal)
        self._compact = False
        self._fit_docks()

    #: Below this window size the docks take less room: the Image dock becomes a tab beside Controls
    #: and the side docks narrow, so that the viewport keeps about half of a 1024 x 640 window.
    COMPACT_SIZE = QSize(1280, 800)

    def _fit_docks(self) -> None:
        """Switch to the compact dock layout when the window becomes small (once per crossing, so that
        a user's own arrangement is not fought on every resize)."""
        compact = self.width() < self.COMPACT_SIZE.width() or self.height() < self.COMPACT_SIZE.height()
        if compact == self._compact:
            return
        self._compact = compact
        if not compact:
            return
        same_area = self.dockWidgetArea(self.preview_dock) == self.dockWidgetArea(self.controls_dock)
        if (
            same_area
            and not self.preview_dock.isFloating()
            and self.preview_dock not in self.tabifiedDockWidgets(self.controls_dock)
        ):
            self.tabifyDockWidget(self.controls_dock, self.preview_dock)
            self.controls_dock.raise_()
        side = max(250, min(300, self.width() // 4))
        # after the resize has been laid out: a request made inside it is overridden by the layout
        QTimer.singleShot(
            0,
            lambda: self.resizeDocks(
                [self.views_dock, self.controls_dock], [side, side + 15], Qt.Orientation.Horizontal
            ),
        )

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if hasattr(self, "_compact"):
            self._fit_docks()

    # ------------------------------------------------------------------------------------------------
    # state -> window
    # ------------------------------------------------------------------------------------------------
    def _update_empty(self) -> None:
        rec = self.state.reconstruction
        self.stack.setCurrentIndex(0 if rec is None else 1)
        self.playback.setVisible(rec is not None and rec.n_views > 1)
        self.drop_hint.set_sample_available(first_sample() is not None)
        model = self.controller.model
        note = ""
        if model == "demo":
            note = (
                "The bundled demo model reconstructs synthetic scenes only (try Open Sample); "
                "use Model > Model Manager for the published model and real photos."
            )
        self.drop_hint.model_note.setText(note)
        shown_demo = rec is not None and rec.model_name == "demo"
        self.demo_note.update_for(shown_demo or (rec is None and model == "demo"))

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
        self.act_rerun.setEnabled(bool(self.controller.inputs) and not busy)
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

    def _update_status(self) -> None:
        c = self.controller
        model = c.model
        path = Path(model).expanduser()
        if path.exists():  # a local checkpoint: its folder name (or the file's folder)
            model = path.name if path.is_dir() else f"{path.parent.name}/{path.name}"
        if len(model) > 40:
            model = "..." + model[-37:]
        device = c.loaded_device or c.device
        size = c.effective_size()
        note = " (the model's size)" if size != c.size else ""
        self.model_label.setText(f"Model: {model} | {device} | {size} px{note}")
        self.model_label.setToolTip(self.model_label.text())
        rec = self.state.reconstruction
        if rec is None:
            self.scene_label.setText("No reconstruction")
            self.timing_label.setText("")
            return
        shown_views = int(self.state.shown_views().sum())
        shown = self.state.shown_count()
        text = f"{shown_views}/{rec.n_views} views | {shown:,} points shown"
        cap = self.viewer.idle_budget
        if 0 < cap < shown:
            # software OpenGL: the resting frame is a subsample (exports and screenshots have all)
            text += f" ({cap:,} drawn: software OpenGL)"
        self.scene_label.setText(text)
        t = rec.timings
        parts = []
        last = c.last_result
        wait = c.last_wait if last is not None and last.reconstruction is rec else {}
        if "total" in t or wait:
            # the whole wait of this session's run (model load included), else the run's own time
            detail = [f"model load {wait['load']:.1f} s"] if wait.get("load", 0.0) >= 0.05 else []
            names = {"images": "images", "model": "inference", "poses": "poses"}
            detail += [f"{names[k]} {t[k]:.1f} s" for k in names if k in t]
            total = wait["wait"] if wait else t["total"]
            parts.append(f"last run {total:.1f} s" + (f" ({', '.join(detail)})" if detail else ""))
        failed = count_unreliable_poses(rec)
        if failed:
            parts.append(f"unreliable pose for {plural(failed, 'view')}")
        chunking = rec.chunking_summary()
        if chunking:
            parts.append(chunking)
        self.timing_label.setText(" | ".join(parts))
        self.timing_label.setToolTip(self.timing_label.text())

    def _on_run_state(self, value: str) -> None:
        st = RunState(value)
        running = st in (RunState.LOADING, RunState.RUNNING, RunState.CANCELLING)
        shown = not self.progress_panel.isHidden()
        self.drop_hint.set_running(running, len(self.controller.inputs))
        if st == RunState.CANCELLING:
            self.progress_panel.set_cancelling()
            self.statusBar().showMessage("Cancelling...")  # until the run's answer replaces it
        elif running and (not shown or self.progress_panel.cancelling):
            self.progress_panel.set_running(True, "Loading the model..." if st == RunState.LOADING else "")
            self.progress_panel.setVisible(True)
        elif not running and shown:
            self.progress_panel.set_running(False)
            self.progress_panel.setVisible(False)
        self._update_actions()
        self._update_status()

    def _on_result(self, rec: Reconstruction) -> None:
        # per-reconstruction default of the view confidence classes: a view is "low" when its highest
        # log-confidence log(conf - 1) is more than log(4) below the median view's
        max_conf = np.array([float(c.max()) for c in rec.conf])
        finite = max_conf[np.isfinite(max_conf) & (max_conf > 1.0)]
        if finite.size:
            threshold = 1.0 + (float(np.median(finite)) - 1.0) / 4.0
            self.state.view_conf_threshold = float(f"{threshold:.6g}")
        self._update_empty()
        self._update_actions()
        self._update_status()
        title = Path(rec.image_paths[0]).parent.name if rec.image_paths else ""
        c = self.controller
        if c.project_path is not None:
            title = c.project_path.name
        elif c.last_result is not None and c.last_result.reconstruction is rec and len(c.inputs) == 1:
            title = Path(c.inputs[0]).name  # the folder or the video, never the frames' cache folder
        self.setWindowTitle(f"{title} - {APP_NAME}" if title else APP_NAME)
        self.viewer.fit_to_scene()

    def _on_run_finished(self, res: RunResult) -> None:
        rep = res.report
        lines = []
        details = []
        if rep.skipped:
            names = ", ".join(f"{p.path.name} ({p.reason})" for p in rep.skipped[:4])
            more = f" and {len(rep.skipped) - 4} more" if len(rep.skipped) > 4 else ""
            lines.append(f"{len(rep.skipped)} file(s) skipped: {names}{more}.")
            details += [f"{p.path}: {p.reason}" for p in rep.skipped]
        if rep.failed_poses:
            views = ", ".join(str(v) for v in rep.failed_poses[:10])
            lines.append(f"The pose estimation failed for view(s) {views}: their cameras are unreliable.")
        rec = res.reconstruction
        weak = [
            v
            for v in np.flatnonzero(rec.pose_inlier_share < LOW_POSE_INLIER_SHARE).tolist()
            if v not in rep.failed_poses
        ]
        if weak:
            views = ", ".join(str(v) for v in weak[:10]) + (" ..." if len(weak) > 10 else "")
            lines.append(
                f"Unreliable pose for {plural(len(weak), 'view')} ({views}): few of their points fit "
                "the estimated camera (see the Pose column)."
            )
        if lines:
            self.banner.show_message(" ".join(lines), "warning", "\n".join(details))
        elif self.banner.level != "error":
            self.banner.clear()

    # ------------------------------------------------------------------------------------------------
    # opening
    # ------------------------------------------------------------------------------------------------
    def open_paths(self, paths: Sequence[str | os.PathLike[str]]) -> bool:
        """Open what the user chose or dropped (a project, or inputs to reconstruct). True if started."""
        items = [str(p) for p in paths]
        kind = classify_drop(items)
        if kind == "project":
            self.banner.clear()
            self.controller.open_paths(items)
            return True
        if kind != "inputs":
            self.show_error(
                ErrorInfo(
                    "input", "Nothing to open", "Drop a folder, image files, a video or a .f3r project."
                )
            )
            return False
        return self.start_run(items)

    def _license_ok(self) -> bool:
        """The chosen model's licence is accepted (asked now when needed); else an error is shown."""
        info = self.controller.license_needed()
        if info is None:
            return True
        if not self.interactive or not ask_license(self, info):
            self.show_error(
                ErrorInfo(
                    "license",
                    "Licence not accepted",
                    f"The model {info.name} is under the {info.license_name} ({info.license_url}). "
                    "Accept it in Model > Model Manager to download it, or choose another model.",
                )
            )
            return False
        self.settings.accept_license(info.name)
        self.settings.sync()
        return True

    def start_run(self, inputs: Sequence[str], size: int | None = None) -> bool:
        """Check the licence and the memory, then reconstruct ``inputs``.

        The memory estimate reads the image headers off the GUI thread when they were not read before;
        the run then starts when it answers. Returns False when the licence was refused (a run that
        the memory warning cancels later is not started either).
        """
        if not self._license_ok():
            return False
        items = list(inputs)
        self._memory_checks += 1
        token = self._memory_checks  # a newer start_run supersedes a check still reading headers
        self.controller.check_memory(
            items, size, lambda check: self._start_checked(token, items, size, check)
        )
        return True

    def _start_checked(
        self, token: int, inputs: list[str], size: int | None, check: MemoryCheck | None
    ) -> None:
        """The memory estimate of ``inputs`` is in: show it, warn when the run will not fit, start it."""
        if token != self._memory_checks:
            return
        if check is not None:
            per_pass = f" per pass ({check.passes} passes)" if check.passes > 1 else ""
            self.progress_panel.set_memory_text(
                f"memory: {check.need / 1024**3:.1f} GiB{per_pass}", warn=not check.fits
            )
            if not check.fits:
                size = self._ask_memory(check)
                if size == 0:
                    return
        self.banner.clear()
        for p in inputs:
            self.settings.set_last_dir("open", p)
        self.controller.start_run(inputs, size=size)

    def _ask_memory(self, check: MemoryCheck) -> int | None:
        """Ask what to do when a run will not fit: 224 (size), None (run anyway) or 0 (cancel)."""
        text = check.describe()
        log.warning("memory: %s", text)
        if not self.interactive:
            self.banner.show_message(f"Memory warning: {text}", "warning")
            return None
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Not enough memory")
        box.setText("This run will probably not fit in memory.")
        box.setInformativeText(text + "\n\nUse 224 px (faster, less detail), or fewer images.")
        use224 = box.addButton("Use 224 px", QMessageBox.ButtonRole.AcceptRole) if check.size != 224 else None
        anyway = box.addButton("Run anyway", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        if use224 is not None and clicked is use224:
            return 224
        if clicked is anyway:
            return None
        return 0

    def add_images_dialog(self) -> None:
        """Choose photos to add to the shown result."""
        from fast3r_core import image_extensions

        if self.state.reconstruction is None:
            return
        exts = " ".join(f"*{e}" for e in sorted(image_extensions()))
        files = self.ask_open_files("Add photos to the result", "open", f"Images ({exts});;All files (*)")
        if files:
            self.add_images(files)

    def add_images(self, paths: Sequence[str]) -> bool:
        """Reconstruct ``paths`` into the shown result (with anchor views of it). True if started."""
        c = self.controller
        if self.state.reconstruction is None:
            return False
        if not self._license_ok():
            return False
        self.banner.clear()
        for p in paths:
            self.settings.set_last_dir("open", p)
        return c.add_images(paths) > 0

    def open_run_options(self) -> RunOptionsDialog:
        """The run options (images to use, views per pass, anchors); OK stores them for the next runs."""
        dlg = RunOptionsDialog(self.settings, self)
        if self.interactive:
            dlg.exec()
        else:
            dlg.show()
        return dlg

    def rerun(self) -> None:
        if self.controller.inputs:
            self.start_run(self.controller.inputs)

    def open_sample(self) -> None:
        sample = first_sample()
        if sample is None:
            return
        from fast3r_core import is_cached

        if is_cached("demo") and self.controller.model != "demo":
            self.controller.set_model("demo")
        self.start_run([str(sample)])

    # file dialogs (tests replace these methods)
    def ask_folder(self, title: str, kind: str) -> str:
        return QFileDialog.getExistingDirectory(self, title, self.settings.last_dir(kind))

    def ask_open_files(self, title: str, kind: str, filt: str) -> list[str]:
        files, _ = QFileDialog.getOpenFileNames(self, title, self.settings.last_dir(kind), filt)
        return list(files)

    def ask_save_file(self, title: str, kind: str, name: str, filt: str) -> str:
        path, _ = QFileDialog.getSaveFileName(
            self, title, str(Path(self.settings.last_dir(kind)) / name), filt
        )
        return path

    def open_folder_dialog(self) -> None:
        folder = self.ask_folder("Open a folder of photos", "open")
        if folder:
            self.open_paths([folder])

    def open_images_dialog(self) -> None:
        from fast3r_core import image_extensions

        exts = " ".join(f"*{e}" for e in sorted(image_extensions()))
        files = self.ask_open_files("Open photos", "open", f"Images ({exts});;All files (*)")
        if files:
            self.open_paths(files)

    def open_video_dialog(self) -> None:
        from fast3r_core import VIDEO_EXTENSIONS

        exts = " ".join(f"*{e}" for e in sorted(VIDEO_EXTENSIONS))
        files = self.ask_open_files("Open a video", "open", f"Videos ({exts});;All files (*)")
        if files:
            self.open_paths(files[:1])

    def open_project_dialog(self) -> None:
        files = self.ask_open_files("Open a project", "project", f"Fast3R projects (*{PROJECT_SUFFIX})")
        if files:
            self.open_paths(files[:1])

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

    # ------------------------------------------------------------------------------------------------
    # saving and exporting
    # ------------------------------------------------------------------------------------------------
    def save_project(self) -> None:
        if self.controller.project_path is not None:
            self.controller.save_project(self.controller.project_path)
        else:
            self.save_project_as()

    def save_project_as(self) -> None:
        if self.state.reconstruction is None:
            return
        path = self.ask_save_file(
            "Save project", "project", f"scene{PROJECT_SUFFIX}", f"Fast3R project (*{PROJECT_SUFFIX})"
        )
        if path:
            if not path.lower().endswith(PROJECT_SUFFIX):
                path += PROJECT_SUFFIX
            self.settings.set_last_dir("project", path)
            self.controller.save_project(path)

    def export_dialog(self, fmt: str) -> None:
        """Ask for a destination and export what the viewport shows."""
        if self.state.reconstruction is None:
            return
        self.confidence_panel.flush()
        text, _, filt, name = EXPORT_ACTIONS[fmt]
        title = text.replace("&", "").rstrip(".")  # "Export PLY"
        if filt is None:
            parent = self.ask_folder(
                f"{title}: choose a folder (a '{name}' folder is created inside)", "export"
            )
            if not parent:
                return
            path = str(Path(parent) / name)
        else:
            path = self.ask_save_file(title, "export", name, filt)
            if not path:
                return
            suffix = Path(name).suffix  # "mycloud" -> "mycloud.ply": other tools go by the suffix
            if not path.lower().endswith(suffix):
                path += suffix
        self.controller.export(fmt, path)

    # ------------------------------------------------------------------------------------------------
    # renders
    # ------------------------------------------------------------------------------------------------
    def render_dialog(self, kind: str) -> None:
        if self.state.reconstruction is None:
            return
        native = self.viewer.native
        dlg = RenderDialog(
            kind,
            (max(16, native.width()), max(16, native.height())),
            self.settings.last_dir("render"),
            self,
            fps=20.0 if kind == "turntable" else float(self.playback.fps_spin.value()),
        )
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return
        opts = dlg.options()
        self.settings.set_last_dir("render", opts.path)
        self.render(kind, opts.path, opts.size, frames=opts.frames, fps=opts.fps)

    def render(
        self, kind: str, path: str, size: tuple[int, int], *, frames: int = 60, fps: float = 20.0
    ) -> bool:
        """Render a PNG of the viewport ("screenshot") or an animation ("turntable", "playback")."""
        from fast3r_core.errors import ExportError

        progress: QProgressDialog | None = None
        try:
            if kind == "screenshot":
                img = np.ascontiguousarray(self.viewer.render_image(size[0], size[1]))
                self._save_rgba(img, path)
            else:
                progress = QProgressDialog(f"Rendering {Path(path).name}...", "", 0, 100, self)
                progress.setCancelButton(None)
                progress.setWindowModality(Qt.WindowModality.WindowModal)
                progress.setMinimumDuration(300)

                def on_progress(done: int, total: int) -> None:
                    progress.setValue(round(100 * done / max(1, total)))
                    # repaint the dialog between frames (the window is blocked by it)
                    QApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)

                if kind == "turntable":
                    self.viewer.render_turntable(
                        path, frames=frames, fps=fps, size=size, progress=on_progress
                    )
                else:
                    self.viewer.render_playback(path, fps=fps, size=size, progress=on_progress)
        except (OSError, ExportError, ValueError, RuntimeError) as exc:
            log.warning("render to %s failed: %s", path, exc)
            self.show_error(ErrorInfo("export", "Cannot write the render", f"{path}: {exc}"))
            return False
        finally:
            if progress is not None:
                progress.close()
        self.statusBar().showMessage(f"Saved {path}", 8000)
        return True

    @staticmethod
    def _save_rgba(img: np.ndarray, path: str) -> None:
        """Write an (H, W, 4) uint8 RGBA image to a PNG, atomically (a temporary file, then a rename)."""
        dest = Path(path)
        if not dest.parent.is_dir():
            raise OSError(f"the folder {dest.parent} does not exist")
        h, w = img.shape[:2]
        qimg = QImage(img.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        # error=None: the render dialog reports the OSError itself
        with atomic_path(dest, error=None, make_parents=False) as tmp:
            if not qimg.save(str(tmp), "PNG"):
                raise OSError(f"cannot write {path}")

    def grab_window(self) -> QPixmap:
        """A picture of the whole window, with an open error dialog drawn over it."""
        pix = self.grab()
        dlg = self.error_dialog
        if dlg is not None and dlg.isVisible():
            top = dlg.grab()
            painter = QPainter(pix)
            x = (pix.width() - top.width()) // 2
            y = (pix.height() - top.height()) // 2
            painter.drawPixmap(max(0, x), max(0, y), top)
            painter.end()
        return pix

    def save_window_screenshot(self, path: str) -> bool:
        ok = bool(self.grab_window().save(path, "PNG"))
        log.info("window screenshot %s: %s", path, "saved" if ok else "FAILED")
        return ok

    # ------------------------------------------------------------------------------------------------
    # view
    # ------------------------------------------------------------------------------------------------
    def set_camera_mode(self, mode: str) -> None:
        self.viewer.set_camera_mode(mode)
        self.settings.set("camera_mode", mode)

    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, name)
        self.settings.set("theme", name)
        # a widget with a style sheet (e.g. the sliders' value labels) keeps the palette it was
        # polished with: set its sheet again so that it takes the new theme's colours
        for w in self.findChildren(QWidget):
            sheet = w.styleSheet()
            if sheet:
                w.setStyleSheet("")
                w.setStyleSheet(sheet)
        self.confidence_panel.apply_theme()
        self._sync_menus()

    def _scale_points(self, factor: float) -> None:
        size = float(np.clip(float(self.state.point_size) * factor, 0.5, 12.0))
        self.state.point_size = round(size, 1)

    def _step_view(self, step: int) -> None:
        rec = self.state.reconstruction
        if rec is None:
            return
        v = self.state.highlighted_view
        v = 0 if v < 0 else (v + step) % rec.n_views
        self._view_activated(v)

    def _view_clicked(self, view: int) -> None:
        """A frustum was clicked in the viewport: highlight it and show its photo."""
        self.state.set_highlighted_view(view)
        self.preview_dock.show()
        self.preview_dock.raise_()

    def _view_activated(self, view: int) -> None:
        """A view was chosen in the list: highlight, fly to it, show its photo."""
        self.state.set_highlighted_view(view)
        self.viewer.fly_to_view(view)
        self.preview_dock.show()
        self.preview_dock.raise_()

    # ------------------------------------------------------------------------------------------------
    # dialogs
    # ------------------------------------------------------------------------------------------------
    def show_error(self, info: ErrorInfo) -> None:
        """Show a failure in a non-blocking dialog with the log path; the previous result stays."""
        from app.logging_setup import current

        if info.kind == "cancelled":
            return
        self._last_error = info
        setup = current()
        if setup is not None:
            where = setup.where()
        else:
            from app.logging_setup import log_folder

            where = f"The log file is in {log_folder()}"
        box = self.error_dialog
        if box is None:
            box = QMessageBox(self)
            box.setIcon(QMessageBox.Icon.Critical)
            box.setStandardButtons(QMessageBox.StandardButton.Ok)
            box.setStyleSheet("QLabel#qt_msgbox_informativelabel { min-width: 460px; }")
            self.error_dialog = box
        box.setWindowTitle(info.title)
        box.setText(f"<b>{html.escape(info.title)}</b>")
        extra = ""
        if info.kind == "memory" and self.controller.size != 224:
            extra = "\n\nTip: Model > Resolution > 224 px needs much less memory."
        if info.kind in ("model", "license"):
            extra = "\n\nChoose or download a model in Model > Model Manager."
        box.setInformativeText(f"{info.message}{extra}\n\n{where}".strip())
        box.setDetailedText(info.details)
        self.banner.show_message(f"{info.title}: {info.message}", "error")
        box.open()

    def open_model_manager(self, **kwargs: Any) -> ModelManagerDialog:
        dlg = ModelManagerDialog(self.controller, self, **kwargs)
        if self.interactive:
            dlg.exec()
        else:
            dlg.show()
        self._update_empty()
        return dlg

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

    def about_text(self) -> str:
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        from fast3r_core import MODELS, __version__

        versions = [
            ("Fast3R Studio", __version__),
            ("Python", platform.python_version()),
            ("Qt / PySide6", f"{qVersion()} / {pyside_version}"),
            ("VisPy", _version("vispy")),
            ("pyqtgraph", _version("pyqtgraph")),
            ("NumPy", _version("numpy")),
            ("PyTorch", _version("torch")),
        ]
        rows = "".join(f"<tr><td>{k}</td><td>{html.escape(v)}</td></tr>" for k, v in versions)
        models = "".join(
            f'<li><b>{m.name}</b>: <a href="{m.license_url}">{m.license_name}</a>'
            f"{' (synthetic scenes only)' if m.synthetic_only else ''}</li>"
            for m in MODELS.values()
        )
        return (
            f"<h3>{APP_NAME}</h3><p>Unposed photos to a point cloud and camera poses with Fast3R "
            "(CVPR 2025), in one forward pass.</p>"
            f"<table>{rows}</table>"
            "<p><b>Licences</b><br>This program: Apache-2.0 (our own implementation from a written "
            "specification).<br>Model weights:</p>"
            f"<ul>{models}</ul>"
            "<p>Qt / PySide6: LGPLv3. VisPy: BSD. pyqtgraph: MIT. PyTorch: BSD. NumPy: BSD.</p>"
            f"<p>{html.escape(sys.platform)}</p>"
        )

    def show_about(self) -> QMessageBox:
        box = QMessageBox(self)
        box.setWindowTitle(f"About {APP_NAME}")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_text())
        box.open()
        return box

    def open_log_folder(self) -> bool:
        from app.logging_setup import log_folder

        folder = log_folder()
        folder.mkdir(parents=True, exist_ok=True)
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not ok:
            self.statusBar().showMessage(f"Logs are in {folder}", 15000)
        return bool(ok)

    # ------------------------------------------------------------------------------------------------
    # drag and drop
    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _dropped_paths(event: QDragEnterEvent | QDropEvent) -> list[str]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if classify_drop(self._dropped_paths(event)):
            event.acceptProposedAction()
            self.drop_hint.set_dragging(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.drop_hint.set_dragging(False)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self.drop_hint.set_dragging(False)
        paths = self._dropped_paths(event)
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        # open after the drop returns (the drag source waits for it)
        QTimer.singleShot(0, lambda: self.open_paths(paths))

    # ------------------------------------------------------------------------------------------------
    # closing
    # ------------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the settings; cancel a run and stop the worker thread before the window goes."""
        self.playback.set_playing(False)
        self._save_settings()
        self._memory_checks += 1  # a memory check still reading image headers must not start a run
        if self.controller.busy:
            log.info("closing during a run: cancelling it")
            self.hide()
        self.controller.shutdown()
        try:
            self.viewer.close()
        except Exception:  # the viewer may already be gone at shutdown
            log.debug("viewer close failed", exc_info=True)
        event.accept()

    def sizeHint(self) -> QSize:
        return QSize(1440, 900)
