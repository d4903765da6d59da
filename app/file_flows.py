"""The window's file flows: open (dialogs, drops, recent files), add photos, save, export, render.

Which dropped paths are usable is decided by :func:`classify_drop`. The ``ask_*`` methods are the only
places that open a file chooser (tests replace them).

Whatever replaces the shown result (opening other inputs or a project, Run Again, Re-run Without
These, the sample) first asks about its unsaved edits (:meth:`FileFlows.leave_edits`): saved first,
discarded, or the action is cancelled and everything stays as it is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QProgressDialog

from app.controller import MemoryCheck, first_sample
from app.menus import EXPORT_ACTIONS
from app.widgets import (
    RenderDialog,
    ask_license,
)
from app.window_base import WindowParts
from app.worker import ErrorInfo
from fast3r_core import PROJECT_SUFFIX
from fast3r_core.atomic import atomic_path

__all__ = ["FileFlows", "classify_drop"]

log = logging.getLogger(__name__)


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


class FileFlows(WindowParts):
    """Mixin of :class:`app.main_window.MainWindow`: opening, saving, exporting, rendering, drops."""

    # ------------------------------------------------------------------------------------------------
    # opening
    # ------------------------------------------------------------------------------------------------
    def open_paths(self, paths: Sequence[str | os.PathLike[str]]) -> bool:
        """Open what the user chose or dropped (a project, or inputs to reconstruct). True if started
        (or to start once the unsaved edits are saved)."""
        items = [str(p) for p in paths]
        kind = classify_drop(items)
        if kind == "project":

            def open_project() -> bool:
                self.banner.clear()
                self.controller.open_paths(items)
                return True

            return self.leave_edits("Opening another project", open_project)
        if kind != "inputs":
            self.show_error(
                ErrorInfo(
                    "input", "Nothing to open", "Drop a folder, image files, a video or a .f3r project."
                )
            )
            return False
        return self.leave_edits("Opening other photos", lambda: self.start_run(items))

    def leave_edits(self, action: str, go: Callable[[], bool]) -> bool:
        """Do ``go`` (an action that replaces the shown result, named by ``action`` in the question)
        once the shown result's unsaved edits are dealt with: asked with :meth:`ask_unsaved_edits`.

        "save": the project is saved (Save As asks where) and ``go`` runs when the save is written
        (not when it fails); "discard": ``go`` runs now; "cancel": nothing happens. Returns ``go()``'s
        answer, True while it waits for the save, False when cancelled.
        """
        if not self.edits_session.unsaved or self.state.reconstruction is None:
            return go()
        answer = self.ask_unsaved_edits(action)
        log.info("%s with unsaved edits: %s", action.lower(), answer)
        if answer == "discard":
            return go()
        if answer == "save" and self.save_project():
            self._after_save = go
            return True
        return False

    def _on_project_saved(self, _path: str = "") -> None:
        """A project was written: the edits it holds are saved; run what waited for the save."""
        pending, self._saving = self._saving, None
        session = self.edits_session
        if pending is not None and pending == (session.generation, session.edits):
            session.undo_stack.setClean()
        go, self._after_save = self._after_save, None
        if go is not None:
            if session.unsaved:  # edited while it was written: ask again rather than lose them
                self.statusBar().showMessage("Edited while saving: not going on", 8000)
            else:
                go()

    def _on_task_failed(self, _info: object = None) -> None:
        """A save failed (or another task): what waited for the save does not happen."""
        self._after_save = None

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

    def start_run(
        self, inputs: Sequence[str], size: int | None = None, *, exclude: Sequence[str] = ()
    ) -> bool:
        """Check the licence and the memory, then reconstruct ``inputs`` (without the files named in
        ``exclude``).

        The memory estimate reads the image headers off the GUI thread when they were not read before;
        the run then starts when it answers. Returns False when the licence was refused (a run that
        the memory warning cancels later is not started either).
        """
        if not self._license_ok():
            return False
        items = list(inputs)
        left_out = tuple(exclude)
        self._memory_checks += 1
        token = self._memory_checks  # a newer start_run supersedes a check still reading headers
        self.controller.check_memory(
            items, size, lambda check: self._start_checked(token, items, size, check, left_out)
        )
        return True

    def _start_checked(
        self,
        token: int,
        inputs: list[str],
        size: int | None,
        check: MemoryCheck | None,
        exclude: tuple[str, ...] = (),
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
        self.controller.start_run(inputs, size=size, exclude=exclude)

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
        adding_on = (self.edits_session.generation, self.state.reconstruction.n_pixels)
        if c.add_images(paths) <= 0:
            return False
        self.adding_on = adding_on
        return True

    def rerun(self) -> bool:
        """Run the shown result's inputs again (the views its run left out stay out); an opened
        project's photos when it was not this session's run. True if the run was started."""
        from fast3r_core.errors import InputError

        try:
            inputs, exclude = self.controller.rerun_plan()
        except InputError as exc:
            self.show_error(ErrorInfo("input", "Cannot run again", str(exc)))
            return False
        return self.leave_edits("Running again", lambda: self.start_run(inputs, exclude=exclude))

    def rerun_without(self, views: Sequence[int]) -> bool:
        """Re-run the shown result's inputs without the photos of ``views`` ("Re-run Without These").

        Refused, with a dialog, when fewer than two views would remain. True if the run was started.
        """
        from fast3r_core.errors import InputError

        if not views:
            self.show_error(
                ErrorInfo("input", "Cannot leave out these views", "Select the views to leave out first.")
            )
            return False
        try:
            inputs, exclude = self.controller.rerun_plan(views)
        except InputError as exc:
            self.show_error(ErrorInfo("input", "Cannot leave out these views", str(exc)))
            return False
        log.info("re-running without %s", ", ".join(exclude))
        return self.leave_edits("Re-running", lambda: self.start_run(inputs, exclude=exclude))

    def open_sample(self) -> None:
        sample = first_sample()
        if sample is None:
            return
        from fast3r_core import is_cached

        def go() -> bool:
            if is_cached("demo") and self.controller.model != "demo":
                self.controller.set_model("demo")
            return self.start_run([str(sample)])

        self.leave_edits("Opening the sample", go)

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

    # ------------------------------------------------------------------------------------------------
    # saving and exporting
    # ------------------------------------------------------------------------------------------------
    def save_project(self) -> bool:
        """Save to the open project (Save As when there is none). True if a save was started."""
        if self.controller.project_path is not None:
            return self._save_to(str(self.controller.project_path))
        return self.save_project_as()

    def save_project_as(self) -> bool:
        """Ask where and save the project there. True if a save was started."""
        if self.state.reconstruction is None:
            return False
        path = self.ask_save_file(
            "Save project", "project", f"scene{PROJECT_SUFFIX}", f"Fast3R project (*{PROJECT_SUFFIX})"
        )
        if not path:
            return False
        if not path.lower().endswith(PROJECT_SUFFIX):
            path += PROJECT_SUFFIX
        self.settings.set_last_dir("project", path)
        return self._save_to(path)

    def _save_to(self, path: str) -> bool:
        if self.state.reconstruction is None:
            return False
        # the edits this save writes (taken now, as the controller does): clean once it is written
        self._saving = (self.edits_session.generation, self.edits_session.edits)
        self.controller.save_project(path)
        return True

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
