"""The photo of the highlighted view, beside the viewport, with its camera and confidence figures."""

from __future__ import annotations

import logging
import os

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QImageReader, QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.state import ViewerState
from app.widgets.confidence_panel import format_confidence
from app.widgets.views_dock import rgb_to_qimage

__all__ = ["ImagePreview"]

log = logging.getLogger(__name__)

_MAX_SIDE = 1600  # decode big photos at a bounded size


class ImagePreview(QWidget):
    """Shows the original photo of ``state.highlighted_view`` (the model-resolution colours when the
    photo cannot be read), scaled to the widget with its aspect ratio, and a caption."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.image_label = QLabel("Click a camera or a view to see its photo")
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setMinimumSize(160, 120)
        # Ignored: the scaled pixmap must not make the label (and the dock) grow
        self.image_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image_label.setWordWrap(True)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.image_label, 1)
        lay.addWidget(self.caption)
        self._pixmap: QPixmap | None = None
        self.view = -1
        state.highlight_changed.connect(self.show_view)
        state.reconstruction_changed.connect(lambda: self.show_view(-1))

    def show_view(self, view: int) -> None:
        """Show the photo of ``view`` (-1 clears)."""
        rec = self.state.reconstruction
        self.view = view
        if rec is None or view < 0 or view >= rec.n_views:
            self._pixmap = None
            self.image_label.setPixmap(QPixmap())
            self.image_label.setText("Click a camera or a view to see its photo")
            self.caption.setText("")
            return
        path = rec.image_paths[view]
        img = self._read(path)
        source = "photo"
        if img is None:
            img = rgb_to_qimage(np.asarray(rec.colors[view]))
            source = "model input (the photo was not found)"
        self._pixmap = QPixmap.fromImage(img)
        self._rescale()
        stats = rec.per_view_stats(self.state.source)[view]
        k = rec.intrinsics_original[view]
        w, h = (int(x) for x in rec.original_sizes[view])
        pose = "ok" if stats.pose_ok else '<span style="color:#e05050">failed</span>'
        self.caption.setText(
            f"<b>View {view}</b>: {os.path.basename(path)}<br>"
            f"{w} x {h} px, focal {k[0, 0]:.0f} px; {source}<br>"
            f"confidence mean {format_confidence(stats.mean_conf)}, max {format_confidence(stats.max_conf)}; "
            f"pose {pose}"
        )

    @staticmethod
    def _read(path: str) -> QImage | None:
        if not os.path.isfile(path):
            return None
        reader = QImageReader(path)
        reader.setAutoTransform(True)  # EXIF orientation, as the model saw it
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > _MAX_SIDE:
            reader.setScaledSize(size.scaled(_MAX_SIDE, _MAX_SIDE, Qt.AspectRatioMode.KeepAspectRatio))
        img = reader.read()
        if img.isNull():
            log.info("cannot read %s for the preview: %s", path, reader.errorString())
            return None
        return img

    def _rescale(self) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            return
        self.image_label.setPixmap(
            self._pixmap.scaled(
                self.image_label.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()
