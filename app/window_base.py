"""The base of the main window's mixins: the parts :class:`app.main_window.MainWindow` builds.

:mod:`app.menus`, :mod:`app.file_flows` and :mod:`app.window_dialogs` each hold one seam of the window
as a mixin of ``MainWindow``; they use the widgets and objects declared here, which ``MainWindow``
makes in its constructor. Type checkers see a ``QMainWindow``; at run time the base is a plain class,
so that ``MainWindow`` has one Qt base.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QScrollArea

    from app.controller import Controller
    from app.crop_select import CropSelectTools
    from app.edits_session import EditsSession
    from app.settings import Settings
    from app.state import ViewerState
    from app.viewer.protocol import Viewer
    from app.widgets import Banner, ConfidencePanel, DisplayPanel, DropHint, PlaybackBar, ProgressPanel
    from app.worker import ErrorInfo
    from fast3r_core.edits import Edits

    _Base = QMainWindow
else:
    _Base = object

__all__ = ["WindowParts"]


class WindowParts(_Base):
    """What the window's mixins may use (made by ``MainWindow.__init__``)."""

    controller: Controller
    settings: Settings
    state: ViewerState
    viewer: Viewer
    crop_select: CropSelectTools
    edits_session: EditsSession
    #: while Add Images runs: (edits-session generation, pixel count of the result added to), so the
    #: result keeps the edits made meanwhile (None otherwise)
    adding_on: tuple[int, int] | None
    #: False in tests and ``--screenshot``: no dialog blocks, questions take their default answer
    interactive: bool
    banner: Banner
    drop_hint: DropHint
    playback: PlaybackBar
    progress_panel: ProgressPanel
    confidence_panel: ConfidencePanel
    display_panel: DisplayPanel
    controls_scroll: QScrollArea
    views_dock: QDockWidget
    controls_dock: QDockWidget
    preview_dock: QDockWidget
    error_dialog: QMessageBox | None
    _last_error: ErrorInfo | None
    #: start_run calls so far: only the latest one's memory check starts a run
    _memory_checks: int
    #: what waits for the project being saved (an action the unsaved-edits question let go on)
    _after_save: Callable[[], bool] | None
    #: (edits-session generation, edits) the project being saved holds: clean once it is written
    _saving: tuple[int, Edits] | None
