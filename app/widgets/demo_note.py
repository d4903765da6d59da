"""The first-launch note about the bundled demo model, above the viewport.

A first-time user sees the demo model's reconstruction of a synthetic sample. This strip says what that
model is for and what it is not for, how to get the published model (download size and licence, read
from the model registry), and offers the next steps as buttons: the Model Manager, Open Folder and Open
Video. It shows while the demo model is chosen or its result is on screen, until it is dismissed (for
the session).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

__all__ = ["DemoNote", "demo_note_text"]

_STYLE = "DemoNote { background: #24466b; } QLabel { color: white; }"


def demo_note_text() -> str:
    """The note's rich text (the published model's size and licence come from the registry)."""
    from fast3r_core import MODELS

    pub = next((m for m in MODELS.values() if not m.synthetic_only), None)
    if pub is not None:
        size = f"{pub.approx_size_bytes / 1e9:.1f} GB" if pub.approx_size_bytes else "a large"
        get = (
            f"For your own photos, download the published model <b>{html.escape(pub.name)}</b> "
            f"({size} download, {html.escape(pub.license_name)}: you accept it before the download) "
            "in the <b>Model Manager</b>, then open a folder of photos or a video."
        )
    else:
        get = "For your own photos, choose a real model in the Model Manager."
    return (
        "<b>You are using the bundled demo model.</b> It is a small model trained by this project on "
        "synthetic scenes like the sample, so that the app works out of the box: use it to try the "
        "viewer, the confidence filter and the exports. It is not made for real photos. " + get
    )


class DemoNote(QFrame):
    """The strip with the demo model's note and three buttons.

    Signals
    -------
    open_models(), open_folder(), open_video()
    """

    open_models = Signal()
    open_folder = Signal()
    open_video = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DemoNote")
        self.dismissed = False
        self.label = QLabel(demo_note_text())
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        self.models_button = QPushButton("Model Manager...")
        self.folder_button = QPushButton("Open Folder...")
        self.video_button = QPushButton("Open Video...")
        self.models_button.clicked.connect(self.open_models)
        self.folder_button.clicked.connect(self.open_folder)
        self.video_button.clicked.connect(self.open_video)
        self.close_button = QToolButton()
        self.close_button.setText("x")
        self.close_button.setToolTip("Hide this note for this session")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.dismiss)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.models_button, self.folder_button, self.video_button):
            b.setAutoDefault(False)
            buttons.addWidget(b)
        buttons.addStretch(1)
        text = QVBoxLayout()
        text.setContentsMargins(0, 0, 0, 0)
        text.addWidget(self.label)
        text.addLayout(buttons)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 4, 6)
        lay.addLayout(text, 1)
        lay.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.setStyleSheet(_STYLE)
        self.hide()

    def update_for(self, demo_in_use: bool) -> None:
        """Show the note while the demo model is in use, unless it was dismissed."""
        self.setVisible(demo_in_use and not self.dismissed)

    def dismiss(self) -> None:
        self.dismissed = True
        self.hide()
