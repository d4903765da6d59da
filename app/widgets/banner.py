"""A dismissible message strip above the viewport (skipped files, failed poses, memory warnings)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

__all__ = ["Banner"]

_STYLES = {
    "info": "background: #2f5f8f; color: white;",
    "warning": "background: #8a6d1f; color: white;",
    "error": "background: #8f2f2f; color: white;",
}


class Banner(QFrame):
    """One line of text (with a tooltip for the long version) and a close button; hidden when empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("x")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.clear)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "info", details: str = "") -> None:
        self.level = level
        self.label.setText(text)
        self.setToolTip(details or text)
        self.setStyleSheet(f"Banner {{ {_STYLES.get(level, _STYLES['info'])} }} QLabel {{ color: white; }}")
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self) -> None:
        self.label.setText("")
        self.level = ""
        self.hide()
