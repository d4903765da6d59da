"""A one-line label that ends in "…" when it is given less room than its text needs."""

from __future__ import annotations

from PySide6.QtCore import QSize
from superqt import QElidingLabel

__all__ = ["ElidedLabel"]


class ElidedLabel(QElidingLabel):
    """:class:`superqt.QElidingLabel` whose size hint is its whole text (superqt's is the elided text,
    so a label elided once in a small window would never ask for its room back).

    ``text()`` is the whole text (the window puts it in the tooltip too).
    """

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self.text()) + margins.left() + margins.right() + 2
        return QSize(width, hint.height())
