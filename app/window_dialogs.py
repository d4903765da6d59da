"""The window's dialogs: errors, the memory warning, the model manager, run options, about, logs.

``interactive=False`` (tests, ``--screenshot``): no dialog blocks; questions take their default answer.
"""

from __future__ import annotations

import html
import logging
import platform
import sys
from importlib import metadata
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPainter, QPixmap
from PySide6.QtWidgets import QMessageBox

from app import APP_NAME
from app.controller import MemoryCheck
from app.widgets import ModelManagerDialog, RunOptionsDialog
from app.window_base import WindowParts
from app.worker import OPTION_ERROR_TITLES, ErrorInfo

__all__ = ["WindowDialogs"]

log = logging.getLogger(__name__)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


class WindowDialogs(WindowParts):
    """Mixin of :class:`app.main_window.MainWindow`: the dialogs it opens and the window's picture."""

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
        if info.title in OPTION_ERROR_TITLES:
            extra = "\n\nFix the file, or change the choice in Model > Run Options."
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

    def open_run_options(self) -> RunOptionsDialog:
        """The run options (images to use, precision, passes, inputs); OK stores them for the next runs."""
        c = self.controller
        # the masks note is about the photos of the run under way, else of the shown result's run
        dlg = RunOptionsDialog(self.settings, self, inputs=c.running_inputs or c.inputs)
        dlg.accepted.connect(self._say_run_options_saved)
        if self.interactive:
            dlg.exec()
        else:
            dlg.show()
        return dlg

    def _say_run_options_saved(self) -> None:
        """OK in the run options changes nothing shown: say when the options take effect."""
        c = self.controller
        when = "the run under way keeps its own" if c.busy else ""
        if not when and c.reconstruction is not None:
            when = "Run Again (F5) uses them on the shown result's inputs"
        text = "Run options saved: they apply to the next run" + (f"; {when}" if when else "")
        self.statusBar().showMessage(text, self.message_timeout_ms)

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

    def ask_unsaved_edits(self, action: str) -> str:
        """Ask what to do with unsaved edits before ``action`` ("Closing the window", ...) loses them:
        "save", "discard" or "cancel".

        Not interactive: "discard" (no dialog blocks; the action goes on as it did before the question).
        Tests replace this method to give another answer.
        """
        if not self.interactive:
            return "discard"
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Unsaved edits")
        box.setText("The edits of this result are not saved.")
        box.setInformativeText(
            f"{action} discards them and their undo history. Save them in a project first?"
        )
        box.setStandardButtons(
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        answer = box.standardButton(box.clickedButton())
        if answer == QMessageBox.StandardButton.Save:
            return "save"
        if answer == QMessageBox.StandardButton.Discard:
            return "discard"
        return "cancel"

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
