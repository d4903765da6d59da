"""What the empty window shows: where to drop photos, and buttons to open them or a sample."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

__all__ = ["DropHint"]


class DropHint(QWidget):
    """A large hint with Open buttons. ``set_dragging(True)`` highlights it while files hover.

    Signals
    -------
    open_folder(), open_images(), open_video(), open_project(), open_sample()
    """

    open_folder = Signal()
    open_images = Signal()
    open_video = Signal()
    open_project = Signal()
    open_sample = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DropHint")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.title = QLabel("Drop photos here")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setBold(True)
        self.title.setFont(font)
        self.text = QLabel(
            "Drop a folder of photos, image files, a video or a .f3r project anywhere on this window.\n"
            "Fast3R reconstructs a point cloud and the camera poses in one pass, without any setup."
        )
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        self.folder_button = QPushButton("Open Folder...")
        self.images_button = QPushButton("Open Images...")
        self.video_button = QPushButton("Open Video...")
        self.project_button = QPushButton("Open Project...")
        self.sample_button = QPushButton("Open Sample")
        self.folder_button.clicked.connect(self.open_folder)
        self.images_button.clicked.connect(self.open_images)
        self.video_button.clicked.connect(self.open_video)
        self.project_button.clicked.connect(self.open_project)
        self.sample_button.clicked.connect(self.open_sample)
        self._title, self._text = self.title.text(), self.text.text()
        self._sample_available = True
        self.model_note = QLabel("")
        self.model_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.model_note.setWordWrap(True)
        # two rows: one row of five buttons would make the window wider than a 1024 px screen allows
        grid = QGridLayout()
        for i, b in enumerate((self.folder_button, self.images_button, self.video_button)):
            grid.addWidget(b, 0, i)
        grid.addWidget(self.project_button, 1, 0)
        grid.addWidget(self.sample_button, 1, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addLayout(grid)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addStretch(2)
        lay.addWidget(self.title)
        lay.addSpacing(12)
        lay.addWidget(self.text)
        lay.addSpacing(18)
        lay.addLayout(buttons)
        lay.addSpacing(12)
        lay.addWidget(self.model_note)
        lay.addStretch(3)
        self.set_dragging(False)

    def set_running(self, running: bool, n_inputs: int = 0, cancelling: bool = False) -> None:
        """While the first run works (or stops after a cancel), say so instead of asking for photos."""
        if running:
            what = f"{n_inputs} inputs" if n_inputs > 1 else "your photos"
            self.title.setText("Cancelling..." if cancelling else "Reconstructing...")
            self.text.setText(
                f"Fast3R is reconstructing {what}; the progress is shown below.\n"
                "You can drop other photos at any time: the current run is then cancelled."
            )
        else:
            self.title.setText(self._title)
            self.text.setText(self._text)
        for b in (self.folder_button, self.images_button, self.video_button, self.project_button):
            b.setVisible(not running)
        self.sample_button.setVisible(not running and self._sample_available)

    def set_sample_available(self, available: bool) -> None:
        """Whether a bundled sample exists (the Open Sample button shows only then, and not while a run
        works)."""
        self._sample_available = available
        self.sample_button.setVisible(available and self.folder_button.isVisibleTo(self))

    def set_dragging(self, on: bool) -> None:
        border = "#3d7bd9" if on else "#77777788"
        self.setStyleSheet(
            f"QWidget#DropHint {{ border: 3px dashed {border}; border-radius: 18px; margin: 24px; }}"
        )
