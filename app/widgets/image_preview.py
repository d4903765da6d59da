"""The photo of the highlighted view, beside the viewport, with its camera and confidence figures.

"Show mask" tints the pixels the view's mask leaves out (``Reconstruction.keep_masks``, False = left
out) over the photo; it is disabled, and shown unchecked, for a view without a mask (the user's choice
comes back for the next view that has one).
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PySide6.QtCore import QRectF, QSignalBlocker, Qt
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPixmap, QResizeEvent
from PySide6.QtWidgets import QCheckBox, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.state import ViewerState
from app.widgets.confidence_panel import format_confidence
from app.widgets.views_dock import confidence_text, intrinsics_text, masked_share, rgb_to_qimage, view_mask

__all__ = ["MASK_TINT", "ImagePreview", "mask_overlay"]

log = logging.getLogger(__name__)

_MAX_SIDE = 1600  # decode big photos at a bounded size
#: Colour (and opacity) drawn over the pixels a mask leaves out.
MASK_TINT = QColor(150, 10, 50, 170)


def mask_overlay(keep: np.ndarray, tint: QColor = MASK_TINT) -> QImage:
    """An RGBA image of a keep-mask: ``tint`` where ``keep`` is False, transparent where it is True.

    Parameters
    ----------
    keep : ndarray, (H, W) bool
        True = the pixel is kept (``Reconstruction.keep_masks[v]``, model pixels).
    tint : QColor
        Colour and alpha of the left-out pixels.

    Returns
    -------
    QImage, W x H, Format_RGBA8888 (its own copy).
    """
    k = np.asarray(keep, dtype=bool)
    h, w = k.shape
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    rgba[~k] = (tint.red(), tint.green(), tint.blue(), tint.alpha())
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def _pose_caption(ok: bool, reliable: bool, share: float) -> str:
    """The caption's pose part (rich text): what the Views list's Pose column says, in words, in red
    when the pose failed or is unreliable (the list and the banner flag the same views)."""
    red = '<span style="color:#e05050">{}</span>'
    if not ok:
        return red.format("failed")
    fit = f"{100 * share:.0f} % of its points fit" if np.isfinite(share) else ""
    if not reliable:
        return red.format(f"unreliable ({fit})" if fit else "unreliable")
    return f"ok ({fit})" if fit else "ok"


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
        self.mask_check = QCheckBox("Show mask")
        self.mask_check.setEnabled(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.image_label, 1)
        lay.addWidget(self.mask_check)
        lay.addWidget(self.caption)
        self._pixmap: QPixmap | None = None
        self._image: QImage | None = None  # the view's picture, without the mask
        self._mask_rect = QRectF()  # where the model input lies in it (the mask's pixels)
        self.view = -1
        self._want_mask = False  # the user's "Show mask" choice, kept across views without a mask
        self.mask_check.toggled.connect(self._mask_toggled)
        state.highlight_changed.connect(self.show_view)
        state.reconstruction_changed.connect(lambda: self.show_view(-1))

    def show_view(self, view: int) -> None:
        """Show the photo of ``view`` (-1 clears)."""
        rec = self.state.reconstruction
        self.view = view
        if rec is None or view < 0 or view >= rec.n_views:
            self._pixmap = None
            self._image = None
            self.image_label.setPixmap(QPixmap())
            self.image_label.setText("Click a camera or a view to see its photo")
            self.caption.setText("")
            self._sync_mask_check(None)
            return
        path = rec.image_paths[view]
        img = self._read(path)
        source = "photo"
        if img is None:
            img = rgb_to_qimage(np.asarray(rec.colors[view]))
            source = "model input (the photo was not found)"
            self._mask_rect = QRectF(0, 0, img.width(), img.height())
        else:
            # the model input is the crop box of the resized photo: scale it to this (maybe smaller) image
            left, top, right, bottom = (float(x) for x in rec.crop_boxes[view])
            rw, rh = (float(x) for x in rec.resized_sizes[view])
            fx, fy = img.width() / rw, img.height() / rh
            self._mask_rect = QRectF(left * fx, top * fy, (right - left) * fx, (bottom - top) * fy)
        self._image = img
        keep = view_mask(rec, view)
        self._sync_mask_check(keep)
        self._compose()
        stats = rec.per_view_stats(self.state.source)[view]
        k = rec.intrinsics_original[view]
        w, h = (int(x) for x in rec.original_sizes[view])
        pose = _pose_caption(stats.pose_ok, stats.pose_reliable, stats.pose_inlier_share)
        known = intrinsics_text(bool(rec.intrinsics_known[view]))[0]
        share = masked_share(keep)
        mask = f"; mask leaves out {100 * share:.0f} %" if share is not None else ""
        # a failed pose may leave the focal unknown (NaN)
        focal = f"{k[0, 0]:.0f} px" if np.isfinite(k[0, 0]) else "\u2013 (unknown)"
        conf = (
            f"confidence mean {format_confidence(stats.mean_conf)}, max {format_confidence(stats.max_conf)}"
            if np.isfinite(stats.mean_conf)
            else f"confidence {confidence_text(stats.mean_conf)[0]} (no points: all masked out)"
        )
        self.caption.setText(
            f"<b>View {view}</b>: {os.path.basename(path)}<br>"
            f"{w} x {h} px, focal {focal} ({known}); {source}<br>"
            f"{conf}; "
            f"pose {pose}{mask}"
        )

    def _mask_toggled(self, on: bool) -> None:
        if self.mask_check.isEnabled():  # the user's click, not the unchecking of a maskless view
            self._want_mask = on
        self._compose()

    def _sync_mask_check(self, keep: np.ndarray | None) -> None:
        """Enable "Show mask" for a view with a mask, checked as the user last chose; a view without
        one shows it disabled and unchecked (a checked box would claim a mask is drawn)."""
        self.mask_check.setEnabled(keep is not None)
        checked = keep is not None and self._want_mask
        if self.mask_check.isChecked() != checked:
            with QSignalBlocker(self.mask_check):  # show_view composes the picture itself
                self.mask_check.setChecked(checked)
        self.mask_check.setToolTip(
            "Tint the pixels the view's mask leaves out (the photo's edges outside the model's crop "
            "were not seen at all)"
            if keep is not None
            else "This view has no mask (Model > Run Options > Masks)"
        )

    def _keep_mask(self) -> np.ndarray | None:
        rec = self.state.reconstruction
        return None if rec is None else view_mask(rec, self.view)

    def shown_image(self) -> QImage | None:
        """The picture as shown, before it is scaled to the widget: the photo, with the mask's
        left-out pixels tinted when "Show mask" is on (None when no view is shown)."""
        if self._image is None:
            return None
        keep = self._keep_mask()
        if keep is None or not self.mask_check.isChecked():
            return self._image
        out = self._image.convertToFormat(QImage.Format.Format_ARGB32)
        painter = QPainter(out)
        # nearest neighbour: a mask pixel stays a sharp block, as the model saw it
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(self._mask_rect, mask_overlay(keep))
        painter.end()
        return out

    def _compose(self) -> None:
        img = self.shown_image()
        self._pixmap = QPixmap.fromImage(img) if img is not None else None
        self._rescale()

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
