"""Run options: how many images, the compute precision, and how a large set is split into passes.

"Automatic" lets the core plan the passes from the memory estimate and the free memory (one pass when
everything fits); "One pass" never splits (the run may then not fit); "Fixed" sets the largest pass.
Anchors are the views shared by every pass of a split run (0 = automatic).
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
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


class RunOptionsDialog(QDialog):
    """Edit the run options stored in :class:`~app.settings.Settings`; OK writes them back."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
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
        form = QFormLayout(self)
        form.addRow("Images to use:", self.max_views)
        form.addRow("Precision:", self.precision)
        form.addRow("Views per pass:", self.mode)
        form.addRow("Largest pass:", self.per_pass)
        form.addRow("Anchor views:", self.anchors)
        form.addRow(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.mode.currentIndexChanged.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        self.per_pass.setEnabled(self.mode.currentData() == "fixed")

    def values(self) -> dict[str, object]:
        """The chosen values, keyed like the settings."""
        return {
            "max_views": int(self.max_views.value()),
            "precision": str(self.precision.currentData()),
            "chunking": str(self.mode.currentData()),
            "views_per_pass": int(self.per_pass.value()),
            "anchors": int(self.anchors.value()),
        }

    def accept(self) -> None:
        for key, value in self.values().items():
            self.settings.set(key, value)
        super().accept()
