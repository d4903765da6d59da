"""Model manager: the registered models (size, licence, cached or not), download with progress, cancel
and resume after the licence is accepted, a local checkpoint, the device and the resolution."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.tasks import TaskRunner

__all__ = ["DEVICES", "ModelManagerDialog", "ask_license", "format_bytes"]

log = logging.getLogger(__name__)

DEVICES = (
    ("auto", "Auto (CUDA, then MPS, then CPU)"),
    ("cuda", "CUDA GPU"),
    ("mps", "Apple MPS"),
    ("cpu", "CPU"),
)
SIZES = ((512, "512 px (best)"), (224, "224 px (faster, less memory)"))


def format_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def ask_license(parent: QWidget | None, info: Any) -> bool:
    """Show a model's licence and ask the user to accept it; True when accepted."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(f"Licence of {info.name}")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(
        f"<p>The weights of <b>{info.name}</b> are published under the <b>{info.license_name}</b>.</p>"
        f"<p>{info.license_summary}</p>"
        f'<p>Read it: <a href="{info.license_url}">{info.license_url}</a></p>'
        f"<p>Download size: {format_bytes(info.approx_size_bytes)}. Do you accept the licence?</p>"
    )
    accept = box.addButton("Accept and download", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is accept


class _Relay(QObject):
    progress = Signal(str, int, int, str)


class ModelManagerDialog(QDialog):
    """Choose and download models.

    Parameters
    ----------
    controller : app.controller.Controller
        Receives the chosen model, device and size.
    download_fn : callable, optional
        ``download_fn(name, accept_license=..., progress=..., cancel=...) -> Path``; default
        :func:`fast3r_core.weights.download_model` (tests pass a fake).
    license_prompt : callable, optional
        ``license_prompt(parent, info) -> bool``; default :func:`ask_license` (tests pass a fake).
    """

    download_finished = Signal(str, bool)  # model name, success

    def __init__(
        self,
        controller: Any,
        parent: QWidget | None = None,
        *,
        download_fn: Callable[..., Path] | None = None,
        license_prompt: Callable[[QWidget | None, Any], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setMinimumWidth(820)
        self.controller = controller
        self.settings = controller.settings
        self._download_fn = download_fn
        self._license_prompt = license_prompt or ask_license
        self._tasks = TaskRunner(self, max_threads=1)
        self._cancel: threading.Event | None = None
        self._downloading = ""
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)

        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Model", "Description", "Size", "Licence", "Status"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col in (0, 2, 3, 4):
            h.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.cellDoubleClicked.connect(lambda *_: self.use_selected())

        self.use_button = QPushButton("Use this model")
        self.download_button = QPushButton("Download...")
        self.cancel_download_button = QPushButton("Cancel download")
        self.folder_button = QPushButton("Local checkpoint folder...")
        self.file_button = QPushButton("Local weights file...")
        for b in (
            self.use_button,
            self.download_button,
            self.cancel_download_button,
            self.folder_button,
            self.file_button,
        ):
            b.setAutoDefault(False)
        self.use_button.clicked.connect(self.use_selected)
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_download_button.clicked.connect(self.cancel_download)
        self.folder_button.clicked.connect(self.choose_folder)
        self.file_button.clicked.connect(self.choose_file)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)

        self.current_label = QLabel("")
        self.current_label.setWordWrap(True)
        self.device_combo = QComboBox()
        for key, text in DEVICES:
            self.device_combo.addItem(text, key)
        self.size_combo = QComboBox()
        for key, text in SIZES:
            self.size_combo.addItem(text, key)
        self.device_combo.currentIndexChanged.connect(
            lambda i: controller.set_device(str(self.device_combo.itemData(i)))
        )
        self.size_combo.currentIndexChanged.connect(
            lambda i: controller.set_size(int(self.size_combo.itemData(i)))
        )

        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_download_button)
        buttons.addStretch(1)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.file_button)
        options = QGroupBox("Run options")
        form = QFormLayout(options)
        form.addRow("Model", self.current_label)
        form.addRow("Device", self.device_combo)
        form.addRow("Resolution", self.size_combo)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.progress_label)
        lay.addWidget(options)
        lay.addWidget(close)
        controller.model_changed.connect(self._sync_choice)
        self.refresh()
        self._sync_choice()

    # -- table ----------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the registry and the cache state."""
        from fast3r_core import list_models

        self._statuses = list_models()
        self.table.setRowCount(len(self._statuses))
        for row, st in enumerate(self._statuses):
            info = st.info
            desc = info.description
            label = f"{info.name}\n(synthetic scenes only)" if info.synthetic_only else info.name
            if st.available:
                status = "bundled" if st.bundled else f"downloaded ({format_bytes(st.size_on_disk)})"
            elif st.partial_bytes:
                status = f"partly downloaded ({format_bytes(st.partial_bytes)}): resume"
            elif info.repo_id is None:
                status = "not installed"
            else:
                status = "not downloaded"
            if info.requires_license_acceptance and self.settings.license_accepted(info.name):
                lic = f"{info.license_name} (accepted)"
            else:
                lic = info.license_name
            size = format_bytes(st.size_on_disk if st.available else info.approx_size_bytes)
            cells = [label, desc, size, lic, status]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{text}\n{info.license_url}" if col == 3 else text)
                self.table.setItem(row, col, item)
            self.table.item(row, 0).setData(Qt.ItemDataRole.UserRole, info.name)
        self.table.resizeRowsToContents()
        self._fit_rows()
        self._select(self.controller.model)
        self.table.scrollToTop()
        self._update_buttons()

    def _fit_rows(self) -> None:
        """Make the table tall enough to show every row (there are only a few): nothing scrolled away."""
        t = self.table
        rows = sum(t.rowHeight(r) for r in range(t.rowCount()))
        frame = 2 * t.frameWidth()
        scroll = t.horizontalScrollBar().sizeHint().height()
        t.setMinimumHeight(t.horizontalHeader().height() + rows + frame + scroll)

    def _select(self, name: str) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.table.selectRow(row)
                return

    def selected(self) -> Any | None:
        rows = self.table.selectionModel().selectedRows()
        return self._statuses[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        st = self.selected()
        busy = bool(self._downloading)
        usable = st is not None and (st.available or st.info.repo_id is not None)
        self.use_button.setEnabled(usable and not busy)
        can_download = st is not None and not st.available and st.info.repo_id is not None
        self.download_button.setEnabled(can_download and not busy)
        self.download_button.setText(
            "Resume download" if st is not None and st.partial_bytes else "Download..."
        )
        self.cancel_download_button.setEnabled(busy)

    def _sync_choice(self) -> None:
        c = self.controller
        if c.loaded_source and c.loaded_device and c.loaded_source == c.model:
            state = f" (loaded on {c.loaded_device})"
        else:
            state = " (loads with the next run)"
        self.current_label.setText(f"{c.model}{state}")
        for combo, value in ((self.device_combo, c.device), (self.size_combo, c.size)):
            combo.blockSignals(True)
            idx = combo.findData(value)
            combo.setCurrentIndex(max(0, idx))
            combo.blockSignals(False)

    # -- choices --------------------------------------------------------------------------------------
    def use_selected(self) -> None:
        """Use the selected model. One that is not downloaded yet is downloaded first, and chosen only
        when its download succeeds (a failed or cancelled download leaves the current model)."""
        st = self.selected()
        if st is None:
            return
        if not st.available:
            if st.info.repo_id is not None and self.download_selected():
                self.progress_label.setText(
                    f"Downloading {st.info.name}; it is used once the download has finished."
                )
            return
        self.controller.set_model(st.info.name)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder with config.json + model.safetensors", self.settings.last_dir("model")
        )
        if folder:
            self.use_local(folder)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Weights file (config.json beside it)",
            self.settings.last_dir("model"),
            "Weights (*.safetensors *.pth *.pt *.bin)",
        )
        if path:
            self.use_local(path)

    def use_local(self, path: str) -> bool:
        """Use a local checkpoint folder or weights file (checked for a config.json first)."""
        from fast3r_core import CONFIG_NAME, resolve_model_dir
        from fast3r_core.errors import Fast3RError

        try:
            folder = resolve_model_dir(path)
            if not (folder / CONFIG_NAME).is_file():
                raise FileNotFoundError(f"No {CONFIG_NAME} in {folder}")
        except (Fast3RError, OSError) as exc:
            QMessageBox.warning(self, "Not a model checkpoint", str(exc))
            return False
        self.settings.set_last_dir("model", path)
        self.controller.set_model(str(Path(path).resolve()))
        return True

    # -- download -------------------------------------------------------------------------------------
    def download_selected(self) -> bool:
        """Start the download of the selected model (after the licence); True when it started."""
        st = self.selected()
        if st is None or st.available or self._downloading:
            return False
        info = st.info
        if info.requires_license_acceptance and not self.settings.license_accepted(info.name):
            if not self._license_prompt(self, info):
                self.progress_label.setText("The licence was not accepted: nothing was downloaded.")
                return False
            self.settings.accept_license(info.name)
            self.settings.sync()
        return self.start_download(info.name)

    def start_download(self, name: str) -> bool:
        fn = self._download_fn
        if fn is None:
            from fast3r_core import download_model as fn
        cancel = threading.Event()
        self._cancel = cancel
        self._downloading = name
        relay = self._relay

        def progress(ev: Any) -> None:
            relay.progress.emit(ev.stage, int(ev.done), int(ev.total), ev.message)

        def job() -> Path:
            return fn(name, accept_license=True, progress=progress, cancel=cancel)

        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.progress_label.setText(f"Downloading {name}...")
        self._update_buttons()
        self._tasks.submit(job, self._download_done, self._download_failed)
        return True

    def cancel_download(self) -> None:
        """Stop the download; what was downloaded is kept and the next download resumes it."""
        if self._cancel is not None:
            self._cancel.set()

    @Slot(str, int, int, str)
    def _on_progress(self, stage: str, done: int, total: int, message: str) -> None:
        frac = done / total if total > 0 else 0.0
        self.progress.setValue(round(1000 * min(1.0, frac)))
        what = "Verifying" if stage == "verify" else "Downloading"
        self.progress_label.setText(f"{what} {message}: {format_bytes(done)} of {format_bytes(total)}")

    def _download_done(self, folder: Path) -> None:
        name = self._downloading
        self._downloading = ""
        self._cancel = None
        self.progress.setVisible(False)
        self.progress_label.setText(f"{name} is ready in {folder}")
        log.info("downloaded %s into %s", name, folder)
        self.refresh()
        self.controller.set_model(name)
        self.download_finished.emit(name, True)

    def _download_failed(self, exc: BaseException) -> None:
        from fast3r_core.errors import Cancelled, Fast3RError

        name = self._downloading
        self._downloading = ""
        self._cancel = None
        self.progress.setVisible(False)
        if isinstance(exc, Cancelled):
            self.progress_label.setText("Download cancelled; it resumes where it stopped next time.")
        elif isinstance(exc, Fast3RError):
            self.progress_label.setText(f"Download failed: {exc}")
        else:
            log.error("download of %s failed", name, exc_info=(type(exc), exc, exc.__traceback__))
            self.progress_label.setText(f"Download failed: {type(exc).__name__}: {exc}")
        self.refresh()
        self.download_finished.emit(name, False)

    def reject(self) -> None:
        if self._downloading:
            self.cancel_download()
            self._tasks.wait(10_000)
        super().reject()
