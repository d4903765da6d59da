"""Options of a viewport render: a PNG screenshot at a chosen size, or a turntable / playback animation."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

__all__ = ["PRESETS", "RenderDialog", "RenderOptions"]

PRESETS = (
    ("Viewport size", None),
    ("1280 x 720", (1280, 720)),
    ("1920 x 1080", (1920, 1080)),
    ("2560 x 1440", (2560, 1440)),
    ("3840 x 2160", (3840, 2160)),
    ("1080 x 1080", (1080, 1080)),
)


class RenderOptions:
    """What the user chose: ``path``, ``size`` (w, h), ``frames`` and ``fps`` (animations)."""

    def __init__(self, path: str, size: tuple[int, int], frames: int, fps: float) -> None:
        self.path, self.size, self.frames, self.fps = path, size, frames, fps


class RenderDialog(QDialog):
    """Ask for a destination and a size (and frames/fps for "turntable", fps for "playback").

    Parameters
    ----------
    kind : "screenshot" | "turntable" | "playback"
    viewport_size : (w, h) of the viewport, the default size
    folder : start folder of the file chooser
    """

    def __init__(
        self,
        kind: str,
        viewport_size: tuple[int, int],
        folder: str,
        parent: QWidget | None = None,
        *,
        fps: float = 20.0,
    ) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setWindowTitle(
            {"screenshot": "Screenshot", "turntable": "Render turntable", "playback": "Render playback"}[kind]
        )
        self._viewport = viewport_size
        default = {"screenshot": "screenshot.png", "turntable": "turntable.gif", "playback": "playback.gif"}[
            kind
        ]
        self.path_edit = QLineEdit(str(Path(folder) / default))
        # wide enough for a full path; when longer, its end (the file name) stays in sight
        self.path_edit.setMinimumWidth(max(420, self.path_edit.fontMetrics().horizontalAdvance("x" * 60)))
        self.path_edit.setCursorPosition(len(self.path_edit.text()))
        self.path_edit.setToolTip(self.path_edit.text())
        self.path_edit.textChanged.connect(self.path_edit.setToolTip)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.preset_combo = QComboBox()
        for text, size in PRESETS:
            self.preset_combo.addItem(text, size)
        self.width_spin = QSpinBox()
        self.height_spin = QSpinBox()
        for s in (self.width_spin, self.height_spin):
            s.setRange(16, 8192)
            s.setSuffix(" px")
        self.width_spin.setValue(viewport_size[0])
        self.height_spin.setValue(viewport_size[1])
        self.preset_combo.currentIndexChanged.connect(self._preset)
        self.frames_spin = QSpinBox()
        self.frames_spin.setRange(2, 3600)
        self.frames_spin.setValue(60)
        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(0.2, 60.0)
        self.fps_spin.setValue(fps)
        form = QFormLayout(self)
        form.addRow("File", row)
        form.addRow("Size", self.preset_combo)
        form.addRow("Width", self.width_spin)
        form.addRow("Height", self.height_spin)
        if kind == "turntable":
            form.addRow("Frames", self.frames_spin)
        if kind != "screenshot":
            form.addRow("Frames per second", self.fps_spin)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _preset(self, index: int) -> None:
        size = self.preset_combo.itemData(index) or self._viewport
        self.width_spin.setValue(int(size[0]))
        self.height_spin.setValue(int(size[1]))

    def _browse(self) -> None:
        filt = "PNG image (*.png)" if self.kind == "screenshot" else "Animated GIF (*.gif);;MP4 video (*.mp4)"
        path, _ = QFileDialog.getSaveFileName(self, self.windowTitle(), self.path_edit.text(), filt)
        if path:
            self.path_edit.setText(path)

    def options(self) -> RenderOptions:
        path = self.path_edit.text().strip()
        suffixes = (".png",) if self.kind == "screenshot" else (".gif", ".mp4")
        if not path.lower().endswith(suffixes):
            path += suffixes[0]
        return RenderOptions(
            path,
            (self.width_spin.value(), self.height_spin.value()),
            self.frames_spin.value(),
            self.fps_spin.value(),
        )
