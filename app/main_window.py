"""The main window's layout: viewport, docks, status bar, settings, and the state shown in them.

Viewport in the centre (a :class:`app.viewer.SceneViewer`, or the drop hint while there is nothing to
show), the list of views on the left, display and confidence controls and the photo of the clicked view
on the right, the playback bar and the progress panel under the viewport. The window talks to the
worker only through the :class:`~app.controller.Controller`; widgets write into the
:class:`~app.state.ViewerState`, which the viewer listens to.

``interactive=False`` (tests, ``--screenshot``) never opens a blocking dialog: questions take their
default answer and errors are shown in non-modal dialogs.

The window's other seams live beside it, as mixins of :class:`MainWindow`: actions, menus and shortcuts
in :mod:`app.menus`, opening / saving / exporting / rendering / drops in :mod:`app.file_flows`, and the
dialogs it opens in :mod:`app.window_dialogs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QGroupBox,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from app import APP_NAME, plural
from app.controller import Controller, RunState, first_sample
from app.crop_select import CropSelectTools
from app.edit_ui import WindowEdits
from app.edits_session import EditsSession
from app.file_flows import FileFlows
from app.menus import WindowMenus
from app.settings import Settings
from app.state import SAVED_DISPLAY_OPTIONS, ViewerState
from app.theme import apply_theme
from app.widgets import (
    Banner,
    ConfidencePanel,
    DemoNote,
    DisplayPanel,
    DropHint,
    ImagePreview,
    PlaybackBar,
    ProgressPanel,
    ViewsPanel,
)
from app.widgets.elided_label import ElidedLabel
from app.widgets.views_dock import count_unreliable_poses
from app.window_dialogs import WindowDialogs
from app.worker import ErrorInfo, RunResult
from fast3r_core import LOW_POSE_INLIER_SHARE, Reconstruction
from fast3r_core.edits import Edits, with_appended_points

if TYPE_CHECKING:  # app.viewer imports VisPy: loaded only when the real viewer is made
    from app.viewer.protocol import Viewer, ViewerFactory
    from fast3r_core import RunReport

__all__ = ["STATE_OPTIONS", "MainWindow"]

log = logging.getLogger(__name__)

#: ViewerState values saved in the settings between sessions.
STATE_OPTIONS = SAVED_DISPLAY_OPTIONS


#: Size of the first window (no saved geometry) on a large screen.
FIRST_WINDOW_SIZE = QSize(1440, 900)


def first_window_size(available: QSize) -> QSize:
    """The first window's size: :data:`FIRST_WINDOW_SIZE`, or 90 % of a smaller screen's free area
    (``available``: the screen without its panels), so that the whole window is on the screen."""
    return QSize(
        min(FIRST_WINDOW_SIZE.width(), int(available.width() * 0.9)),
        min(FIRST_WINDOW_SIZE.height(), int(available.height() * 0.9)),
    )


class MainWindow(WindowMenus, WindowEdits, FileFlows, WindowDialogs, QMainWindow):
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

    #: How long the controller's one-line messages stay on the status bar (ms).
    message_timeout_ms = 8000

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
        self._after_save: Callable[[], bool] | None = None
        self._saving: tuple[int, Edits] | None = None
        # "[*]": Qt shows a "*" there while the edits are unsaved (setWindowModified)
        self.setWindowTitle(f"{APP_NAME}[*]")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self._load_state_options()

        # -- centre: banner, drop hint / viewport, playback, progress --------------------------------
        if viewer_factory is None:
            from app.viewer import SceneViewer

            viewer_factory = SceneViewer
        self.adding_on = None
        self._fit_pending = False  # a new result waits for the centre's layout to be framed
        self.edits_session = EditsSession(self)  # the user's edits of the shown result, with undo
        self.edits_session.changed.connect(self.state.set_edits)  # counts leave out what they drop
        self.viewer: Viewer = viewer_factory(self.state, self)
        # crop box, lasso / rectangle selection, delete / keep / invert (Tools menu)
        self.crop_select = CropSelectTools(
            self.state, self.edits_session, self.viewer, self, busy=lambda: self.controller.busy
        )
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
        # eliding labels: in a small window they end in "…" rather than widen it or be cut mid-letter
        # (their tooltips hold the whole text)
        self.model_label = ElidedLabel("")
        self.scene_label = ElidedLabel("")
        self.timing_label = ElidedLabel("")
        for w in (self.scene_label, self.timing_label, self.model_label):
            w.setMinimumWidth(40)
            self.statusBar().addPermanentWidget(w)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_edit_ui()
        self._connect()
        self._restore_window()
        self._update_empty()
        self._update_status()
        self._update_actions()
        self._update_edit_actions()

    # ------------------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        c = self.controller
        c.state_changed.connect(self._on_run_state)
        c.progress.connect(self.progress_panel.update_progress)
        c.result_ready.connect(self._on_result)
        c.run_finished.connect(self._on_run_finished)
        c.project_loaded.connect(lambda _path: self.show_result_banner(self.state.reconstruction))
        c.failed.connect(self.show_error)
        c.failed.connect(self._on_task_failed)
        c.project_saved.connect(self._on_project_saved)
        self.edits_session.undo_stack.cleanChanged.connect(self._on_clean_changed)
        c.message.connect(lambda text: self.statusBar().showMessage(text, self.message_timeout_ms))
        self.statusBar().messageChanged.connect(self._keep_cancelling_message)
        self.statusBar().messageChanged.connect(self._fit_status_labels)
        c.model_changed.connect(self._update_status)
        c.model_changed.connect(self._sync_menus)
        self.progress_panel.cancel_requested.connect(c.cancel)
        self.viewer.view_clicked.connect(self._view_clicked)
        self.views_panel.view_activated.connect(self._view_activated)
        self.views_panel.rerun_without_requested.connect(self.rerun_without)
        hint, note = self.drop_hint, self.demo_note  # the empty window's and the demo note's links
        for signal, slot in (
            (hint.open_folder, self.open_folder_dialog),
            (hint.open_images, self.open_images_dialog),
            (hint.open_video, self.open_video_dialog),
            (hint.open_project, self.open_project_dialog),
            (hint.open_sample, self.open_sample),
            (note.open_models, self.open_model_manager),
            (note.open_folder, self.open_folder_dialog),
            (note.open_video, self.open_video_dialog),
        ):
            signal.connect(slot)
        c.model_changed.connect(self._update_empty)
        self.state.style_changed.connect(self._sync_menus)
        self.state.selection_changed.connect(self._sync_menus)
        self._status_throttled = qthrottled(self._update_status, timeout=100, leading=True, parent=self)
        self.state.selection_changed.connect(self._status_throttled)
        self.controller.tasks.busy_changed.connect(lambda _: self._update_actions())
        # saves and exports write the user's current edits (the core applies them on the way out)
        self.controller.edits_source = lambda: self.edits_session.edits
        self.state.reconstruction_changed.connect(self._update_edit_actions)
        c.state_changed.connect(lambda _: self.crop_select.update_actions())  # Esc: cancel or clear
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
            self.resize(first_window_size(self.screen().availableGeometry().size()))
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        self.resizeDocks([self.views_dock], [self.VIEWS_WIDTH], Qt.Orientation.Horizontal)
        self.resizeDocks([self.controls_dock], [340], Qt.Orientation.Horizontal)
        self._compact = False
        self._views_extra = 0  # the Views dock's extra columns' width it was last fitted to
        self._fit_docks()

    #: Below this window size the docks take less room: the Image dock becomes a tab beside Controls
    #: and the side docks narrow, so that the viewport keeps about half of a 1024 x 640 window.
    COMPACT_SIZE = QSize(1280, 800)

    #: Width of the Views dock in a large window (names of about 16 characters beside the thumbnails).
    VIEWS_WIDTH = 300

    def _compact_side(self) -> int:
        """Width of the side docks in the compact layout."""
        return max(250, min(300, self.width() // 4))

    def fit_views_dock(self, *, enlarged: bool = False) -> None:
        """Widen the Views dock by the room its extra columns take (Intr.: known intrinsics or masks),
        so that the names keep theirs; at most a third of the window, never narrower than it is."""
        dock = self.views_dock
        if dock.isFloating() or dock.isHidden():
            return
        extra = self.views_panel.extra_width()
        grown, self._views_extra = max(0, extra - self._views_extra), extra
        if not grown and not enlarged:
            return  # nothing new to make room for: the dock stays as the user left it (no relayout)
        base = self._compact_side() + 10 if self._compact else self.VIEWS_WIDTH
        # the user's own width, plus the columns that just appeared; at least the usual width plus them
        want = min(max(base + extra, dock.width() + grown), self.width() // 3)
        if dock.width() < want:
            # after the pending layout: a request made inside it is overridden by the layout
            QTimer.singleShot(0, lambda: self.resizeDocks([dock], [want], Qt.Orientation.Horizontal))

    def _fit_docks(self) -> None:
        """Switch to the compact dock layout when the window becomes small (once per crossing, so that
        a user's own arrangement is not fought on every resize)."""
        compact = self.width() < self.COMPACT_SIZE.width() or self.height() < self.COMPACT_SIZE.height()
        if compact == self._compact:
            return
        self._compact = compact
        if not compact:
            self.fit_views_dock(enlarged=True)  # back to a large window: the names get their room again
            return
        same_area = self.dockWidgetArea(self.preview_dock) == self.dockWidgetArea(self.controls_dock)
        if (
            same_area
            and not self.preview_dock.isFloating()
            and self.preview_dock not in self.tabifiedDockWidgets(self.controls_dock)
        ):
            self.tabifyDockWidget(self.controls_dock, self.preview_dock)
            self.controls_dock.raise_()
        side = self._compact_side()
        # after the resize has been laid out: a request made inside it is overridden by the layout
        QTimer.singleShot(
            0,
            lambda: self.resizeDocks(
                [self.views_dock, self.controls_dock], [side + 10, side - 6], Qt.Orientation.Horizontal
            ),
        )

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if hasattr(self, "_compact"):
            self._fit_docks()
            self._fit_status_labels()

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
            self._fit_status_labels()
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
        self._fit_status_labels()  # their new texts' share of the room a message leaves

    def _on_run_state(self, value: str) -> None:
        st = RunState(value)
        running = st in (RunState.LOADING, RunState.RUNNING, RunState.CANCELLING)
        shown = not self.progress_panel.isHidden()
        self.drop_hint.set_running(running, len(self.controller.running_inputs), st == RunState.CANCELLING)
        if st == RunState.CANCELLING:
            self.progress_panel.set_cancelling()
            self.statusBar().showMessage("Cancelling...")  # until the run's answer replaces it
        elif running and (not shown or self.progress_panel.cancelling):
            self.progress_panel.set_running(True, "Loading the model..." if st == RunState.LOADING else "")
            self.progress_panel.setVisible(True)
        elif not running and shown:
            self.progress_panel.set_running(False)
            self.progress_panel.setVisible(False)
        if st == RunState.CANCELLED:
            self._restore_result_banner()
        self._update_actions()
        self._update_status()

    def _on_clean_changed(self, clean: bool) -> None:
        """The title's "*": the shown result's edits are unsaved (a method: no call after deletion)."""
        self.setWindowModified(not clean)

    def _keep_cancelling_message(self, text: str) -> None:
        """While a cancel is under way the status bar says so: another message (an export finished,
        a project saved) may show for its while, and "Cancelling..." comes back when it expires."""
        if not text and self.controller.cancelling:
            self.statusBar().showMessage("Cancelling...")

    #: Share of the status bar a temporary message (a tool's prompt, a measured distance) may take from
    #: the permanent labels (which elide to make room; their tooltips hold the whole text).
    MESSAGE_SHARE = 0.6

    def _fit_status_labels(self, text: str | None = None) -> None:
        """Make room for the status bar's temporary message: while one shows, the permanent labels
        (units, scene, timing, model) are capped so that together they leave the message its width (up
        to :attr:`MESSAGE_SHARE` of the bar) and elide; without a message they take their room back.

        QStatusBar draws the message only in the room the permanent widgets leave, so without this a
        prompt such as "Measure: click the first point" is cut to a few letters in a 1400 px window.
        """
        bar = self.statusBar()
        if text is None:
            text = bar.currentMessage()
        labels = [self.units_label, self.scene_label, self.timing_label, self.model_label]
        if not text:
            for w in labels:
                w.setMaximumWidth(16777215)  # QWIDGETSIZE_MAX
            return
        need = bar.fontMetrics().horizontalAdvance(text) + 24  # the message's margins
        room = bar.width() - min(need, int(bar.width() * self.MESSAGE_SHARE))
        shown = [w for w in labels if not w.isHidden()]
        hints = [max(1, w.sizeHint().width()) for w in shown]
        spacing = 6 * (len(shown) + 1)  # the layout's gaps and the size grip's edge
        scale = min(1.0, max(0.0, room - spacing) / max(1, sum(hints)))
        for w, hint in zip(shown, hints, strict=True):
            w.setMaximumWidth(max(w.minimumWidth(), int(hint * scale)))

    def _on_result(self, rec: Reconstruction) -> None:
        self._apply_centre_layout_once()
        # per-reconstruction default of the view confidence classes: a view is "low" when its highest
        # log-confidence log(conf - 1) is more than log(4) below the median view's
        max_conf = np.array([float(c.max()) for c in rec.conf])
        finite = max_conf[np.isfinite(max_conf) & (max_conf > 1.0)]
        if finite.size:
            threshold = 1.0 + (float(np.median(finite)) - 1.0) / 4.0
            self.state.view_conf_threshold = float(f"{threshold:.6g}")
        self.edit_tools.set_mode("")
        edits, adding_on, self.adding_on = rec.edits, self.adding_on, None
        unsaved = False
        if (
            adding_on is not None
            and rec.runs[-1].kind == "add"
            and adding_on[0] == self.edits_session.generation
        ):
            # the result of Add Images on the result still shown: keep the edits made while it ran
            edits = with_appended_points(self.edits_session.edits, adding_on[1], rec.n_pixels)
            unsaved = self.edits_session.unsaved  # carried over, still not saved anywhere
        self.edits_session.reset(edits, unsaved=unsaved)  # a fresh undo history
        self.setWindowModified(unsaved)
        self.fit_views_dock()
        self._update_empty()
        self._update_actions()
        self._update_status()
        title = Path(rec.image_paths[0]).parent.name if rec.image_paths else ""
        c = self.controller
        if c.project_path is not None:
            title = c.project_path.name
        elif c.last_result is not None and c.last_result.reconstruction is rec and len(c.inputs) == 1:
            title = Path(c.inputs[0]).name  # the folder or the video, never the frames' cache folder
        self.setWindowTitle(f"{title} - {APP_NAME}[*]" if title else f"{APP_NAME}[*]")
        self._fit_pending = True  # framed for the viewport's final size, once the centre is laid out

    def _apply_centre_layout_once(self) -> None:
        """Lay out the centre once, after the event being handled: a result shows the playback bar, hides
        the progress panel and may show a banner; each of those, laid out at once, resizes the OpenGL
        viewport, which redraws the whole cloud there and then (50-80 ms each on a software renderer)."""
        lay = self.centralWidget().layout()
        if not lay.isEnabled():  # already held for a result a moment ago
            return
        lay.setEnabled(False)
        # when no run_finished follows (an opened project); the context: never after the window is gone
        QTimer.singleShot(0, self, self._release_centre_layout)

    def _release_centre_layout(self) -> None:
        """Lay the centre out (if :meth:`_apply_centre_layout_once` held it) and frame a new result."""
        lay = self.centralWidget().layout()
        if not lay.isEnabled():
            lay.setEnabled(True)
            lay.activate()
        if self._fit_pending:
            self._fit_pending = False
            self.viewer.fit_to_scene()

    def _on_run_finished(self, res: RunResult) -> None:
        self.show_result_banner(res.reconstruction, res.report)
        self._release_centre_layout()  # the banner was the last change of the hand-over

    def show_result_banner(self, rec: Reconstruction | None, rep: RunReport | None = None) -> None:
        """The warnings banner of the shown result: the files its run skipped (``rep``: when it is
        this session's run) and the views whose pose failed or is unreliable (from ``rec`` itself, so
        that an opened project, or a result kept after a cancelled run, shows them too). An error
        banner stays; no warning clears the banner."""
        lines = []
        details = []
        if rep is not None and rep.skipped:
            names = ", ".join(f"{p.path.name} ({p.reason})" for p in rep.skipped[:4])
            more = f" and {len(rep.skipped) - 4} more" if len(rep.skipped) > 4 else ""
            lines.append(f"{len(rep.skipped)} file(s) skipped: {names}{more}.")
            details += [f"{p.path}: {p.reason}" for p in rep.skipped]
        if rec is not None:
            failed = np.flatnonzero(~np.asarray(rec.pose_ok, bool)).tolist()
            if failed:
                views = ", ".join(str(v) for v in failed[:10]) + (" ..." if len(failed) > 10 else "")
                lines.append(f"The pose estimation failed for view(s) {views}: their cameras are unreliable.")
            weak = [
                v
                for v in np.flatnonzero(rec.pose_inlier_share < LOW_POSE_INLIER_SHARE).tolist()
                if v not in failed
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

    def _restore_result_banner(self) -> None:
        """After a cancelled run (whose start cleared the banner): the shown result's warnings again."""
        c = self.controller
        rec = self.state.reconstruction
        last = c.last_result
        self.show_result_banner(rec, last.report if last is not None and last.reconstruction is rec else None)

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
    # closing
    # ------------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask about unsaved edits; save the settings; cancel a run and stop the worker thread before
        the window goes.

        "Save" keeps the window open until the project is written, then closes it (not when the save
        fails); "Cancel" keeps it open.
        """
        if self.edits_session.unsaved and self.state.reconstruction is not None:
            answer = self.ask_unsaved_edits("Closing the window")
            log.info("closing with unsaved edits: %s", answer)
            if answer != "discard":
                if answer == "save" and self.save_project():
                    self._after_save = self.close  # clean by then: no second question
                event.ignore()
                return
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
