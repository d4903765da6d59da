"""Display controls: point source, colour mode, point size, background, cameras, axes, sky mask.

Every control writes one :class:`~app.state.ViewerState` value and is re-synced from the state with its
signals blocked (the View menu writes the same values).
"""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QPushButton,
    QWidget,
)
from superqt import QLabeledDoubleSlider
from superqt.utils import signals_blocked

from app.state import ViewerState

__all__ = ["COLOR_MODE_LABELS", "SOURCE_LABELS", "DisplayPanel"]

COLOR_MODE_LABELS = {"rgb": "RGB", "confidence": "Confidence", "view": "View"}
SOURCE_LABELS = {"global": "Global point cloud", "local": "Local pointmaps (aligned)"}


class DisplayPanel(QWidget):
    """A form of display options bound to a :class:`ViewerState`."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.source_combo = QComboBox()
        for key, text in SOURCE_LABELS.items():
            self.source_combo.addItem(text, key)
        self.source_combo.setToolTip(
            "Global: the global head's points in the frame of view 0. Local: each view's own pointmap, "
            "aligned to the global one with its estimated pose"
        )
        self.color_combo = QComboBox()
        for combo in (self.source_combo, self.color_combo):  # narrow docks: the window fits 1024 px
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        for key, text in COLOR_MODE_LABELS.items():
            self.color_combo.addItem(text, key)
        self.size_slider = QLabeledDoubleSlider()
        self.size_slider.setOrientation(self.size_slider.orientation().Horizontal)
        self.size_slider.setRange(0.5, 12.0)
        self.size_slider.setDecimals(1)
        self.size_slider.setSingleStep(0.5)
        self.background_button = QPushButton()
        self.background_button.setToolTip("Background colour of the viewport")
        self.cameras_check = QCheckBox("Show cameras")
        self.axes_check = QCheckBox("Show axes")
        self.sky_check = QCheckBox("Mask sky / background")
        self.sky_check.setToolTip(
            "Hide bright, smooth, blue or grey regions that touch the top of each photo "
            "(also left out of the exports)"
        )
        # the source names are long: in a narrow dock the combo goes under its label rather than
        # showing "Global point cl"
        self.source_combo.setMinimumContentsLength(len(SOURCE_LABELS["global"]))
        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Points", self.source_combo)
        form.addRow("Colour", self.color_combo)
        form.addRow("Point size", self.size_slider)
        form.addRow("Background", self.background_button)
        form.addRow(self.cameras_check)
        form.addRow(self.axes_check)
        form.addRow(self.sky_check)

        self.source_combo.currentIndexChanged.connect(
            lambda i: state.update(source=str(self.source_combo.itemData(i)))
        )
        self.color_combo.currentIndexChanged.connect(
            lambda i: state.update(color_mode=str(self.color_combo.itemData(i)))
        )
        self.size_slider.valueChanged.connect(lambda v: state.update(point_size=float(v)))
        self.background_button.clicked.connect(self.choose_background)
        self.cameras_check.toggled.connect(lambda on: state.update(show_cameras=bool(on)))
        self.axes_check.toggled.connect(lambda on: state.update(show_axes=bool(on)))
        self.sky_check.toggled.connect(lambda on: state.update(mask_sky=bool(on)))
        state.style_changed.connect(self.sync_from_state)
        state.selection_changed.connect(self.sync_from_state)
        self.sync_from_state()

    def sync_from_state(self) -> None:
        st = self.state
        widgets = (
            self.source_combo,
            self.color_combo,
            self.size_slider,
            self.cameras_check,
            self.axes_check,
            self.sky_check,
        )
        for w in widgets:
            w.blockSignals(True)
        try:
            self.source_combo.setCurrentIndex(list(SOURCE_LABELS).index(st.source))
            self.color_combo.setCurrentIndex(list(COLOR_MODE_LABELS).index(st.color_mode))
            self.size_slider.setValue(float(st.point_size))
            self.cameras_check.setChecked(bool(st.show_cameras))
            self.axes_check.setChecked(bool(st.show_axes))
            self.sky_check.setChecked(bool(st.mask_sky))
        finally:
            for w in widgets:
                w.blockSignals(False)
        color = QColor(str(st.background))
        with signals_blocked(self.background_button):
            self.background_button.setText(color.name())
            text = "#000000" if color.lightness() > 128 else "#ffffff"
            self.background_button.setStyleSheet(f"background-color: {color.name()}; color: {text};")

    def choose_background(self) -> None:
        color = QColorDialog.getColor(QColor(str(self.state.background)), self, "Background colour")
        if color.isValid():
            self.state.background = color.name()
