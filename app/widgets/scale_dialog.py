"""The Set Scale dialog: a known distance between two measured points or two camera centres.

The user chooses a measurement (two picked points) or two views (their camera centres: a rig
baseline, a tape-measured walk), types the real distance and its unit; :meth:`ScaleDialog.request`
says what to do, and the window applies it through :class:`~app.edit_tools.EditTools` (one undoable
step). Units: :data:`fast3r_core.edits.UNITS` (m, cm, mm, in, ft); the edits store metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QWidget,
)

from fast3r_core.edits import UNITS, Edits

__all__ = ["ScaleDialog", "ScaleRequest"]


@dataclass(frozen=True)
class ScaleRequest:
    """What the dialog asks for.

    Attributes
    ----------
    kind : "measurement" or "views"
    measurement : str
        Its name (kind "measurement").
    views : (int, int)
        The two views (kind "views").
    distance : float
        The real distance, in ``unit``.
    unit : str
        A key of :data:`fast3r_core.edits.UNITS`.
    """

    kind: str
    distance: float
    unit: str
    measurement: str = ""
    views: tuple[int, int] = (0, 1)


class ScaleDialog(QDialog):
    """Choose the known distance and its real length."""

    def __init__(
        self,
        edits: Edits,
        view_names: list[str],
        parent: QWidget | None = None,
        *,
        measurement: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set Scale")
        self.by_measurement = QRadioButton("Between two measured points")
        self.by_views = QRadioButton("Between two camera centres")
        group = QButtonGroup(self)
        group.addButton(self.by_measurement)
        group.addButton(self.by_views)
        self.measurement = QComboBox()
        for m in edits.measurements:
            self.measurement.addItem(m.name)
        if measurement:
            self.measurement.setCurrentIndex(max(0, self.measurement.findText(measurement)))
        self.view_a = QComboBox()
        self.view_b = QComboBox()
        for i, name in enumerate(view_names):
            label = f"{i}: {Path(name).name}" if name else str(i)
            self.view_a.addItem(label, i)
            self.view_b.addItem(label, i)
        if len(view_names) > 1:
            self.view_b.setCurrentIndex(1)
        views = QHBoxLayout()
        views.addWidget(self.view_a)
        views.addWidget(QLabel("and"))
        views.addWidget(self.view_b)
        self.distance = QDoubleSpinBox()
        self.distance.setDecimals(4)
        self.distance.setRange(0.0001, 1e6)
        self.distance.setValue(1.0)
        self.unit = QComboBox()
        for unit in UNITS:
            self.unit.addItem(unit)
        self.unit.setCurrentText(edits.display_unit)
        length = QHBoxLayout()
        length.addWidget(self.distance, 1)
        length.addWidget(self.unit)
        has_meas = bool(edits.measurements)
        self.by_measurement.setEnabled(has_meas)
        if not has_meas:
            self.by_measurement.setToolTip("Measure two points first (Tools > Measure, M)")
        self.by_views.setEnabled(len(view_names) > 1)
        (self.by_measurement if has_meas else self.by_views).setChecked(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(self.by_measurement)
        form.addRow("Measurement", self.measurement)
        form.addRow(self.by_views)
        form.addRow("Views", views)
        form.addRow("Real distance", length)
        form.addRow(self.buttons)
        for w in (self.by_measurement, self.by_views):
            w.toggled.connect(self._sync)
        self.view_a.currentIndexChanged.connect(self._sync)
        self.view_b.currentIndexChanged.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        meas = self.by_measurement.isChecked()
        self.measurement.setEnabled(meas)
        self.view_a.setEnabled(not meas)
        self.view_b.setEnabled(not meas)
        ok = meas or (self.by_views.isChecked() and self.view_a.currentData() != self.view_b.currentData())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(ok))

    def request(self) -> ScaleRequest:
        """What the user asked for (read it after the dialog was accepted)."""
        distance, unit = float(self.distance.value()), self.unit.currentText()
        if self.by_measurement.isChecked():
            return ScaleRequest("measurement", distance, unit, measurement=self.measurement.currentText())
        a, b = int(self.view_a.currentData()), int(self.view_b.currentData())
        return ScaleRequest("views", distance, unit, views=(a, b))
