"""Run options: how many images, the compute precision, and how a large set is split into passes.

"Automatic" lets the core plan the passes from the memory estimate and the free memory (one pass when
everything fits); "One pass" never splits (the run may then not fit); "Fixed" sets the largest pass.
Anchors are the views shared by every pass of a split run (0 = automatic).

Inputs (issue 19): the intrinsics (EXIF when every photo of a camera has it, the model's estimate, or a
file: JSON or a COLMAP model), the masks (a ``masks/`` folder beside the photos when there is one, none,
or a chosen folder) and how frames are taken from a video (the sharpest of each time span, or evenly
spaced). A chosen file or folder is checked when OK is pressed; the run reports any other problem.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from app.run_inputs import (
    FRAME_CHOICES,
    INTRINSICS_CHOICES,
    MASKS_CHOICES,
    MASKS_FOLDER_NAME,
    auto_masks_folder,
)
from app.settings import Settings

__all__ = ["CHUNKING_MODES", "PRECISIONS", "RunOptionsDialog"]

#: Settings value -> label of the "Views per pass" choice.
CHUNKING_MODES: dict[str, str] = {
    "auto": "Automatic (from the free memory)",
    "single": "Always one pass",
    "fixed": "Fixed number of views",
}

#: Settings value -> label of the "Precision" choice (``ReconstructOptions.precision``).
PRECISIONS: dict[str, str] = {
    "auto": "Automatic (fp32 on the CPU, bf16/fp16 on a GPU)",
    "fp32": "fp32 (exact, slowest)",
    "bf16": "bf16",
    "fp16": "fp16 (GPU)",
    "int8": "Fast CPU mode (int8, about 2x faster)",
}


def _combo(choices: dict[str, str], current: str) -> QComboBox:
    """A combo box of ``choices`` (settings value -> label) showing ``current`` (else the first)."""
    box = QComboBox()
    for key, label in choices.items():
        box.addItem(label, key)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


class _PathRow(QWidget):
    """A path (editable) and a "Browse..." button, in one row."""

    def __init__(self, text: str, tip: str) -> None:
        super().__init__()
        self.edit = QLineEdit(text)
        self.edit.setToolTip(tip)
        self.edit.setClearButtonEnabled(True)
        self.browse = QToolButton()
        self.browse.setText("Browse...")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.browse)

    def path(self) -> str:
        return self.edit.text().strip()


class _PathChoice(QObject):
    """Ties a choice (combo box) to its path row: the entry ``key`` ("From file..." / "From
    folder...") needs a path, asked with ``ask`` when it is chosen without one ("Browse..." asks too);
    cancelling the chooser goes back to the previous choice."""

    def __init__(self, combo: QComboBox, row: _PathRow, key: str, ask: Callable[[], str]) -> None:
        super().__init__(combo)  # lives as long as the combo box
        self.combo, self.row, self.key, self.ask = combo, row, key, ask
        self.previous = str(combo.currentData())
        combo.activated.connect(self._activated)
        row.browse.clicked.connect(self.browse)

    def browse(self) -> bool:
        """Ask for a path; True (and the combo on ``key``) when one was chosen."""
        path = self.ask()
        if path:
            self.row.edit.setText(path)
            self.combo.setCurrentIndex(self.combo.findData(self.key))
            self.previous = self.key
        return bool(path)

    def _activated(self, _index: int) -> None:
        if self.combo.currentData() == self.key and not self.row.path() and not self.browse():
            self.combo.setCurrentIndex(self.combo.findData(self.previous))
        self.previous = str(self.combo.currentData())


class RunOptionsDialog(QDialog):
    """Edit the run options stored in :class:`~app.settings.Settings`; OK writes them back.

    Parameters
    ----------
    settings : Settings
    parent : QWidget, optional
    inputs : sequence of str
        The inputs of the last run, if any: the dialog says whether a ``masks/`` folder lies beside them.
    """

    def __init__(self, settings: Settings, parent: QWidget | None = None, inputs: Sequence[str] = ()) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run options")
        self.settings = settings
        self.max_views = QSpinBox()
        self.max_views.setRange(0, 100_000)
        self.max_views.setSpecialValueText("All")
        self.max_views.setToolTip("Use at most this many images, evenly spaced (All: every image)")
        self.max_views.setValue(int(settings.get("max_views")))
        self.precision = QComboBox()
        for key, label in PRECISIONS.items():
            self.precision.addItem(label, key)
        self.precision.setCurrentIndex(max(0, self.precision.findData(str(settings.get("precision")))))
        self.precision.setToolTip(
            "Fast CPU mode quantises the transformer's linear layers to int8 (CPU only): about twice as "
            "fast, points within ~2-3 % of fp32. bf16 is fast on CPUs with AVX512-BF16/AMX and on GPUs."
        )
        self.mode = QComboBox()
        for key, label in CHUNKING_MODES.items():
            self.mode.addItem(label, key)
        index = self.mode.findData(str(settings.get("chunking")))
        self.mode.setCurrentIndex(max(0, index))
        self.mode.setToolTip(
            "Large image sets run in several forward passes that share anchor views when they do not "
            "fit in memory; the passes are aligned into one result"
        )
        self.per_pass = QSpinBox()
        self.per_pass.setRange(2, 1000)
        self.per_pass.setValue(max(2, int(settings.get("views_per_pass"))))
        self.per_pass.setToolTip("Largest forward pass, anchor views included")
        self.anchors = QSpinBox()
        self.anchors.setRange(0, 64)
        self.anchors.setSpecialValueText("Automatic")
        self.anchors.setValue(max(0, int(settings.get("anchors"))))
        self.anchors.setToolTip("Views shared by every pass (view 0 and views spread over the set)")
        note = QLabel("Anchors are used when a run is split into passes, and when adding images.")
        note.setWordWrap(True)

        # -- inputs ----------------------------------------------------------------------------------
        self.intrinsics = _combo(INTRINSICS_CHOICES, str(settings.get("intrinsics")))
        self.intrinsics.setToolTip(
            "Focal length and principal point of the cameras. Auto: from the photos' EXIF when every "
            "photo of a camera has it, else estimated from the reconstruction. From file: JSON "
            '{"fx", "fy", "cx", "cy"} in pixels of the photos (or a list per image name), or a COLMAP '
            "cameras.txt / cameras.bin (with images.txt / images.bin beside it)"
        )
        self.intrinsics_file = _PathRow(
            str(settings.get("intrinsics_file")), "The intrinsics file (JSON or COLMAP cameras.txt/.bin)"
        )
        self.masks = _combo(MASKS_CHOICES, str(settings.get("masks")))
        self.masks.setToolTip(
            "One mask per photo, NAME.png or STEM.png (black = leave out, anything else = keep): "
            "masked pixels are left out of the points, the poses and every export"
        )
        self.masks_folder = _PathRow(str(settings.get("masks_folder")), "The folder of masks")
        self.masks_note = QLabel(self._masks_note(inputs))
        self.masks_note.setWordWrap(True)
        self.frames = _combo(FRAME_CHOICES, str(settings.get("frames")))
        self.frames.setToolTip(
            "How frames are taken from a video: the sharpest frame of each time span (blurred and "
            "repeated frames left out), or evenly spaced frames"
        )
        self.error = QLabel("")  # a chosen file or folder that cannot be used
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e05050;")
        self.error.setVisible(False)

        form = QFormLayout(self)
        form.addRow("Images to use:", self.max_views)
        form.addRow("Precision:", self.precision)
        form.addRow("Views per pass:", self.mode)
        form.addRow("Largest pass:", self.per_pass)
        form.addRow("Anchor views:", self.anchors)
        form.addRow(note)
        inputs_title = QLabel("<b>Inputs</b>")
        form.addRow(inputs_title)
        form.addRow("Intrinsics:", self.intrinsics)
        form.addRow("", self.intrinsics_file)
        form.addRow("Masks:", self.masks)
        form.addRow("", self.masks_folder)
        form.addRow(self.masks_note)
        form.addRow("Video frames:", self.frames)
        form.addRow(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.mode.currentIndexChanged.connect(self._sync)
        # late-bound choosers: tests replace ask_* on the dialog
        _PathChoice(self.intrinsics, self.intrinsics_file, "file", lambda: self.ask_intrinsics_file())
        _PathChoice(self.masks, self.masks_folder, "folder", lambda: self.ask_masks_folder())
        self.intrinsics.currentIndexChanged.connect(self._sync)
        self.masks.currentIndexChanged.connect(self._sync)
        self._sync()

    @staticmethod
    def _masks_note(inputs: Sequence[str]) -> str:
        """What "Automatic" masks mean, and what it finds beside the last run's photos."""
        text = (
            f"Automatic: a {MASKS_FOLDER_NAME}/ folder beside the photos is used when it exists "
            "(NAME.png or STEM.png per photo)."
        )
        if inputs:
            found = auto_masks_folder(inputs)
            text += f" Found: {found}" if found is not None else " None beside the current photos."
        return text

    def _sync(self) -> None:
        self.per_pass.setEnabled(self.mode.currentData() == "fixed")
        self.intrinsics_file.setEnabled(self.intrinsics.currentData() == "file")
        self.masks_folder.setEnabled(self.masks.currentData() == "folder")

    # -- file and folder choosers (tests replace ask_*) ------------------------------------------------
    def ask_intrinsics_file(self) -> str:
        """Ask for an intrinsics file ("" when cancelled)."""
        start = self.intrinsics_file.path() or str(self.settings.last_dir("open"))
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose an intrinsics file",
            start,
            "Intrinsics (*.json cameras.txt cameras.bin);;All files (*)",
        )
        return path

    def ask_masks_folder(self) -> str:
        """Ask for a folder of masks ("" when cancelled)."""
        start = self.masks_folder.path() or str(self.settings.last_dir("open"))
        return QFileDialog.getExistingDirectory(self, "Choose the folder of masks", start)

    # -- result ---------------------------------------------------------------------------------------
    def values(self) -> dict[str, object]:
        """The chosen values, keyed like the settings."""
        return {
            "max_views": int(self.max_views.value()),
            "precision": str(self.precision.currentData()),
            "chunking": str(self.mode.currentData()),
            "views_per_pass": int(self.per_pass.value()),
            "anchors": int(self.anchors.value()),
            "intrinsics": str(self.intrinsics.currentData()),
            "intrinsics_file": self.intrinsics_file.path(),
            "masks": str(self.masks.currentData()),
            "masks_folder": self.masks_folder.path(),
            "frames": str(self.frames.currentData()),
        }

    def problem(self) -> str:
        """Why the chosen intrinsics file or masks folder cannot be used ("" when they can).

        The intrinsics file is read (JSON or COLMAP: a few lines per photo), so that a bad file is
        reported here rather than after the model has run.
        """
        values = self.values()
        if values["intrinsics"] == "file":
            path = str(values["intrinsics_file"])
            if not path:
                return "Choose the intrinsics file, or another intrinsics choice."
            from fast3r_core.errors import IntrinsicsError
            from fast3r_core.intrinsics import read_intrinsics_file

            try:
                read_intrinsics_file(Path(path).expanduser())
            except IntrinsicsError as exc:
                return f"Cannot use the intrinsics file: {exc}"
        if values["masks"] == "folder":
            folder = str(values["masks_folder"])
            if not folder:
                return "Choose the folder of masks, or another masks choice."
            if not os.path.isdir(Path(folder).expanduser()):
                return f"Cannot use the masks: {folder} is not a folder."
        return ""

    def accept(self) -> None:
        """Store the options, unless the intrinsics file or masks folder cannot be used (then say why
        in the dialog and keep it open)."""
        problem = self.problem()
        self.error.setText(problem)
        self.error.setVisible(bool(problem))
        if problem:
            return
        for key, value in self.values().items():
            self.settings.set(key, value)
        super().accept()
