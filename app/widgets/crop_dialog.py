"""The numeric crop box: minimum and maximum X, Y, Z in the edited world, in the current length unit.

Once a real scale is known (``Edits.metres_per_unit``) the values are shown and typed in the edits'
display unit (m, cm, mm, in, ft); before that in the model's arbitrary units. :meth:`CropDialog.bounds`
converts back to edited-world units, and :meth:`CropDialog.crop_box` gives the axis-aligned
:class:`~fast3r_core.edits.CropBox` (the same box as ``fast3r edit --crop-box``).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from fast3r_core.edits import UNITS, CropBox, Edits

__all__ = ["CropDialog", "unit_factor"]

#: Largest absolute value a field takes, in the shown unit.
FIELD_LIMIT = 1e9
DECIMALS = 6


def unit_factor(edits: Edits) -> tuple[float, str]:
    """(shown value per edited-world unit, unit name): ``(mpu / UNITS[unit], unit)`` once the scale is
    known, else ``(1.0, "units")``."""
    if edits.metres_per_unit is None:
        return 1.0, "units"
    return edits.metres_per_unit / UNITS[edits.display_unit], edits.display_unit


class CropDialog(QDialog):
    """Edit the crop box as numbers.

    Parameters
    ----------
    edits : Edits
        The current edits (for the unit).
    lo, hi : array_like, (3,)
        The values shown at first (edited world): the current crop's bounds, or the shown points'.
    """

    def __init__(self, edits: Edits, lo: np.ndarray, hi: np.ndarray, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Crop Box")
        self._factor, unit = unit_factor(edits)
        lay = QVBoxLayout(self)
        note = QLabel(
            "Keep the points inside this box (edited world"
            + (", Z up after levelling" if edits.has_transform else "")
            + f"; values in {unit})."
        )
        note.setWordWrap(True)
        lay.addWidget(note)
        grid = QGridLayout()
        lay.addLayout(grid)
        self.min_spins: list[QDoubleSpinBox] = []
        self.max_spins: list[QDoubleSpinBox] = []
        span = float(np.max(np.asarray(hi, float) - np.asarray(lo, float))) * self._factor
        step = 10.0 ** np.floor(np.log10(span / 20.0)) if span > 0 and np.isfinite(span) else 0.1
        for col, title in enumerate(("", "Minimum", "Maximum"), start=0):
            if title:
                grid.addWidget(QLabel(title), 0, col)
        for row, axis in enumerate("XYZ", start=1):
            grid.addWidget(QLabel(axis), row, 0)
            pairs = ((self.min_spins, lo[row - 1]), (self.max_spins, hi[row - 1]))
            for col, (spins, value) in enumerate(pairs, start=1):
                spin = QDoubleSpinBox()
                spin.setDecimals(DECIMALS)
                spin.setRange(-FIELD_LIMIT, FIELD_LIMIT)
                spin.setSingleStep(float(step))
                spin.setSuffix(f" {unit}")
                spin.setValue(float(value) * self._factor)
                spin.setAccessibleName(f"{axis} {'minimum' if col == 1 else 'maximum'}")
                spin.valueChanged.connect(self._validate)
                grid.addWidget(spin, row, col)
                spins.append(spin)
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #e06c60")
        lay.addWidget(self.error_label)
        ok_cancel = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        self.buttons = QDialogButtonBox(ok_cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self._validate()

    def set_values(self, lo: tuple[float, float, float], hi: tuple[float, float, float]) -> None:
        """Type values in the shown unit (tests, scripts)."""
        for spin, v in zip((*self.min_spins, *self.max_spins), (*lo, *hi), strict=True):
            spin.setValue(float(v))

    def shown_values(self) -> tuple[np.ndarray, np.ndarray]:
        """The typed (minimum, maximum), (3,) each, in the shown unit."""
        lo = np.array([s.value() for s in self.min_spins], dtype=np.float64)
        hi = np.array([s.value() for s in self.max_spins], dtype=np.float64)
        return lo, hi

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The typed (minimum, maximum) in edited-world units, (3,) float64 each."""
        lo, hi = self.shown_values()
        return lo / self._factor, hi / self._factor

    def crop_box(self) -> CropBox:
        """The axis-aligned box of the typed values (edited world)."""
        lo, hi = self.bounds()
        return CropBox.axis_aligned(lo, hi)

    def _validate(self) -> None:
        lo, hi = self.shown_values()
        bad = "".join(a for a, ok in zip("XYZ", hi > lo, strict=True) if not ok)
        self.error_label.setText(f"The maximum must exceed the minimum ({', '.join(bad)})." if bad else "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not bad)
