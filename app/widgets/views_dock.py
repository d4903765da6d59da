"""The list of views: thumbnail, file name, mean confidence, pose status, visibility checkbox.

Low-confidence views (their maximum confidence below the state's ``view_conf_threshold``) are flagged;
the Pose column shows the share of the view's points that fit its pose, flagged when it is too low to
trust or the pose estimation failed; the Intr. column says whether the view's intrinsics were known
(a file or EXIF) or estimated, and its tooltip how much of the view its mask leaves out (the column is
hidden when no view has known intrinsics or a mask: it would only take room from the names). Clicking
a row highlights the view (its frustum and points in the viewport) and asks to fly the camera to it;
the checkbox shows or hides the view. Two checkboxes above the list show or hide the high- and
low-confidence classes.

Several views can be selected (Ctrl/Shift+click): "Re-run Without These" (the context menu, or the
button under the list) asks to reconstruct the same inputs again without their photos.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from app.state import ViewerState
from app.widgets.confidence_panel import format_confidence

__all__ = [
    "ViewsPanel",
    "confidence_text",
    "count_unreliable_poses",
    "intrinsics_text",
    "masked_share",
    "pose_text",
    "rgb_to_qimage",
    "view_mask",
]

THUMB = 56
_LOW = QColor("#e0a030")
_FAIL = QColor("#e05050")


def pose_text(ok: bool, share: float) -> tuple[str, str]:
    """Pose column text and tooltip of a view: the share of its points that fit its pose, flagged when
    it is below :data:`~fast3r_core.result.LOW_POSE_INLIER_SHARE` ("12 % !") or failed."""
    from fast3r_core import LOW_POSE_INLIER_SHARE

    low = f"{LOW_POSE_INLIER_SHARE:.0%}"
    if not ok:
        return "failed", "The pose estimation (PnP) failed for this view: its camera is a guess"
    if not np.isfinite(share):
        return "ok", "The pose estimation succeeded (this project does not record how well it fits)"
    pct = f"{100 * share:.0f} %"
    if share < LOW_POSE_INLIER_SHARE:
        return (
            f"{pct} !",
            f"Unreliable pose: only {pct} of the view's confident points fit it (below {low}); "
            "its camera may be wrong",
        )
    return pct, f"{pct} of the view's confident points fit its pose"


def confidence_text(mean_conf: float) -> tuple[str, str]:
    """Conf. column text and tooltip of a view: its mean confidence, or an en dash with the reason
    when it has none (NaN: every pixel of the view is masked out, so no point is left to average).
    The tooltip is empty for a number (the list says whether the view is of low confidence)."""
    if not np.isfinite(mean_conf):
        return "\u2013", "No confidence: the view has no points (its mask leaves out every pixel)"
    return format_confidence(mean_conf), ""


def intrinsics_text(known: bool) -> tuple[str, str]:
    """How a view's intrinsics were had ("known" or "estimated") and a tooltip that says what it means."""
    if known:
        return "known", "Known intrinsics: from the intrinsics file or the photo's EXIF"
    return "estimated", "Estimated intrinsics: the focal length was estimated from the reconstruction"


def view_mask(rec: Any, view: int) -> np.ndarray | None:
    """The keep-mask of a view of a Reconstruction ((H, W) bool, True = keep), or None when it has none
    or its mask keeps every pixel (a photo without a mask file in a masked run)."""
    masks = rec.keep_masks
    if masks is None or not 0 <= view < len(masks) or bool(masks[view].all()):
        return None
    return np.asarray(masks[view])


def masked_share(keep: np.ndarray | None) -> float | None:
    """Share of a view's pixels its mask leaves out (``keep`` (H, W) bool, True = keep); None: no mask."""
    if keep is None or keep.size == 0:
        return None
    return 1.0 - float(np.count_nonzero(keep)) / keep.size


def count_unreliable_poses(rec: Any) -> int:
    """Views of a Reconstruction whose pose failed or fits too few of their points."""
    from fast3r_core import LOW_POSE_INLIER_SHARE

    return int(np.count_nonzero(~rec.pose_ok | (rec.pose_inlier_share < LOW_POSE_INLIER_SHARE)))


_FRAME_NAME = re.compile(r"^frame_(\d+)\.jpg$")


def view_label(path: str) -> str:
    """The name a view is listed by: the file name, or ``frame 123`` for a frame sampled from a video
    (``frame_000123.jpg`` in the frame cache; the tooltip keeps the full path)."""
    name = os.path.basename(path)
    m = _FRAME_NAME.match(name)
    return f"frame {int(m.group(1))}" if m else name


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage (own copy) of an (H, W, 3) uint8 RGB array."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = a.shape[:2]
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ViewsPanel(QWidget):
    """Table of the views of the shown reconstruction.

    Signals
    -------
    view_activated(int) : a row was clicked (or Enter pressed): highlight and fly to that view.
    rerun_without_requested(list) : "Re-run Without These": the selected view indices, ascending.
    """

    view_activated = Signal(int)
    rerun_without_requested = Signal(list)

    COL_NAME, COL_CONF, COL_POSE, COL_INTR = 0, 1, 2, 3

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["View", "Conf.", "Pose", "Intr."])
        self.table.horizontalHeaderItem(self.COL_CONF).setToolTip("Mean confidence of the view's points")
        self.table.horizontalHeaderItem(self.COL_POSE).setToolTip(
            "Share of the view's confident points that fit its estimated pose (! = unreliable)"
        )
        self.table.horizontalHeaderItem(self.COL_INTR).setToolTip(
            "Intrinsics: known (an intrinsics file or EXIF) or estimated; the share of the view its "
            "mask leaves out"
        )
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # several rows: views to leave out of a re-run (a click still highlights one view)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB, THUMB))
        # a long name loses its middle, not its end (numbered photos differ at the end)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(self.COL_NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(self.COL_CONF, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(self.COL_POSE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(self.COL_INTR, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSortingEnabled(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.rerun_action = QAction("Re-run Without These", self)
        self.rerun_action.setToolTip(
            "Reconstruct the same inputs again without the selected views' photos "
            "(at least 2 views must remain)"
        )
        self.rerun_action.setEnabled(False)
        self.rerun_button = QToolButton()
        self.rerun_button.setDefaultAction(self.rerun_action)

        self.high_check = QCheckBox("High-confidence views")
        self.low_check = QCheckBox("Low-confidence views")
        self.high_check.setChecked(True)
        self.low_check.setChecked(True)
        self.class_spin = QDoubleSpinBox()
        self.class_spin.setDecimals(4)
        self.class_spin.setRange(1.0, 1e6)
        self.class_spin.setSingleStep(0.01)
        self.class_spin.setToolTip("A view is low-confidence when its highest confidence is below this value")
        # tool buttons: as wide as their text (push buttons are 80 px at least; the dock must stay narrow)
        self.all_button = QToolButton()
        self.none_button = QToolButton()
        self.invert_button = QToolButton()
        for b, text in ((self.all_button, "All"), (self.none_button, "None"), (self.invert_button, "Invert")):
            b.setText(text)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)  # a long summary wraps: the dock must not widen the window

        # rows that wrap rather than widen the dock: the window must fit 1024 px
        classes = QVBoxLayout()
        classes.setSpacing(2)
        classes.addWidget(self.high_check)
        classes.addWidget(self.low_check)
        classes2 = QHBoxLayout()
        low_label = QLabel("Low-confidence view: best point below")
        low_label.setWordWrap(True)
        low_label.setToolTip(
            "A view whose most confident point is below this confidence is a low-confidence view "
            "(orange in the list; hide them with the checkbox above). Confidence is 1 or more."
        )
        classes2.addWidget(low_label, 1)
        classes2.addWidget(self.class_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Show:"))
        buttons.addWidget(self.all_button)
        buttons.addWidget(self.none_button)
        buttons.addWidget(self.invert_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(classes)
        lay.addLayout(classes2)
        lay.addLayout(buttons)
        lay.addWidget(self.table, 1)
        rerun_row = QHBoxLayout()
        rerun_row.addWidget(self.rerun_button)
        rerun_row.addStretch(1)
        lay.addLayout(rerun_row)
        lay.addWidget(self.summary)

        self.table.itemChanged.connect(self._item_changed)
        self.table.cellClicked.connect(self._clicked)
        self.table.cellActivated.connect(self._clicked)
        self.high_check.toggled.connect(lambda on: self.state.update(show_high_conf_views=on))
        self.low_check.toggled.connect(lambda on: self.state.update(show_low_conf_views=on))
        self.class_spin.valueChanged.connect(lambda v: self.state.update(view_conf_threshold=float(v)))
        self.all_button.clicked.connect(lambda: self._set_all("all"))
        self.none_button.clicked.connect(lambda: self._set_all("none"))
        self.invert_button.clicked.connect(lambda: self._set_all("invert"))
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.customContextMenuRequested.connect(self._show_context_menu)
        self.rerun_action.triggered.connect(self._rerun_without)
        state.reconstruction_changed.connect(self._rebuild)
        state.selection_changed.connect(self.sync_from_state)
        state.highlight_changed.connect(self._highlight)
        self._rebuild()

    def extra_width(self) -> int:
        """Width in px of the columns shown only for some results (Intr.): the dock must grow by it, or
        the names lose it (0 when they are hidden)."""
        if self.table.isColumnHidden(self.COL_INTR):
            return 0
        header = self.table.horizontalHeader()
        return max(self.table.sizeHintForColumn(self.COL_INTR), header.sectionSizeHint(self.COL_INTR))

    # -- build ----------------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        rec = self.state.reconstruction
        self._input_parts: list[str] = []
        with signals_blocked(self.table):
            self.table.setRowCount(0)
            if rec is None:
                self.summary.setText("No views")
                self.summary.setToolTip("")
                return
            stats = rec.per_view_stats(self.state.source)
            self.table.setRowCount(rec.n_views)
            for v in range(rec.n_views):
                name = view_label(rec.image_paths[v]) or f"view {v}"
                item = QTableWidgetItem(f"{v}  {name}")
                item.setToolTip(rec.image_paths[v])
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable
                )
                item.setCheckState(Qt.CheckState.Checked)
                item.setIcon(QIcon(QPixmap.fromImage(self._thumbnail(rec.colors[v]))))
                self.table.setItem(v, self.COL_NAME, item)
                conf_text, conf_tip = confidence_text(stats[v].mean_conf)
                conf_item = QTableWidgetItem(conf_text)
                conf_item.setToolTip(conf_tip)
                conf_item.setData(Qt.ItemDataRole.UserRole, conf_tip)  # the why of a dash, kept
                conf_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                conf_item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(v, self.COL_CONF, conf_item)
                text, tip = pose_text(stats[v].pose_ok, stats[v].pose_inlier_share)
                pose_item = QTableWidgetItem(text)
                pose_item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                pose_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                pose_item.setToolTip(tip)
                if not stats[v].pose_reliable:
                    pose_item.setForeground(QBrush(_FAIL))
                self.table.setItem(v, self.COL_POSE, pose_item)
                self.table.setItem(v, self.COL_INTR, self._input_item(rec, v))
            # default class threshold: the median of the views' max confidence, unless the user chose one
            self._max_conf = np.array([s.max_conf for s in stats])
            # the Intr. column takes room from the names: shown only when it tells something (a view
            # with known intrinsics or a mask); else every view is "estimated" (the image caption says so)
            n_known = int(np.count_nonzero(rec.intrinsics_known))
            n_masked = sum(view_mask(rec, v) is not None for v in range(rec.n_views))
            self.table.setColumnHidden(self.COL_INTR, not (n_known or n_masked))
            # the summary's input part, made once per result (sync_from_state runs at every change)
            self._input_parts = [f"{n_known} with known intrinsics"] if n_known else []
            if n_masked:
                self._input_parts.append(f"{n_masked} masked")
            excluded = [str(x) for x in rec.options.get("exclude") or []]
            if excluded:
                self._input_parts.append(f"{len(excluded)} left out of the run")
            self.summary.setToolTip(f"Left out of the run: {', '.join(excluded)}" if excluded else "")
        self._selection_changed()
        self.sync_from_state()

    @staticmethod
    def _input_item(rec: Any, v: int) -> QTableWidgetItem:
        """The Intr. cell of view ``v``: "known" / "est."; its tooltip also gives the share the view's
        mask leaves out (the dock must stay narrow: no column of its own)."""
        text, tip = intrinsics_text(bool(rec.intrinsics_known[v]))
        short = "known" if text == "known" else "est."
        share = masked_share(view_mask(rec, v))
        if share is not None:
            tip += f"\nMask: leaves out {100 * share:.0f} % of the view's pixels"
        cell = QTableWidgetItem(short)
        cell.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        cell.setToolTip(tip)
        return cell

    @staticmethod
    def _thumbnail(rgb: np.ndarray) -> QImage:
        img = rgb_to_qimage(rgb)
        return img.scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )

    # -- state -> widgets -----------------------------------------------------------------------------
    def sync_from_state(self) -> None:
        rec = self.state.reconstruction
        with (
            signals_blocked(self.high_check),
            signals_blocked(self.low_check),
            signals_blocked(self.class_spin),
        ):
            self.high_check.setChecked(bool(self.state.show_high_conf_views))
            self.low_check.setChecked(bool(self.state.show_low_conf_views))
            self.class_spin.setValue(float(self.state.view_conf_threshold))
        if rec is None or self.table.rowCount() != rec.n_views:
            return
        visible = self.state.visible_views
        shown = self.state.shown_views()
        thr = float(self.state.view_conf_threshold)
        confs = rec.conf if self.state.source == "global" else rec.conf_local
        low = np.array([float(c.max()) < thr for c in confs])
        with signals_blocked(self.table):
            for v in range(rec.n_views):
                item = self.table.item(v, self.COL_NAME)
                item.setCheckState(Qt.CheckState.Checked if visible[v] else Qt.CheckState.Unchecked)
                conf_item = self.table.item(v, self.COL_CONF)
                conf_item.setForeground(QBrush(_LOW) if low[v] else QBrush())
                why = conf_item.data(Qt.ItemDataRole.UserRole)
                conf_item.setToolTip(why or ("Low-confidence view" if low[v] else "High-confidence view"))
                # dim rows that are not shown (hidden, beyond the playback step, or a hidden class)
                color = self.palette().color(self.foregroundRole())
                if not shown[v]:
                    color = QColor(color)
                    color.setAlpha(110)
                item.setForeground(QBrush(color))
        n_low = int(low.sum())
        n_fail = count_unreliable_poses(rec)
        parts = [f"{int(shown.sum())} of {rec.n_views} views shown", f"{n_low} low-confidence"]
        if n_fail:
            parts.append(f"{n_fail} without a reliable pose")
        parts += self._input_parts
        self.summary.setText(", ".join(parts))

    def changeEvent(self, event: QEvent) -> None:
        """Recolour the rows when the theme (the palette) changes at runtime: their text colours are
        computed from the palette, not inherited."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.sync_from_state()

    def _highlight(self, view: int) -> None:
        with signals_blocked(self.table):
            if view < 0 or view >= self.table.rowCount():
                self.table.clearSelection()
            else:
                if view not in self.selected_views():  # a Ctrl+click keeps the other selected rows
                    self.table.selectRow(view)
                self.table.scrollToItem(self.table.item(view, self.COL_NAME))
        self._selection_changed()

    # -- selection and "Re-run Without These" ---------------------------------------------------------
    def selected_views(self) -> list[int]:
        """Indices of the selected rows (views), ascending."""
        return sorted({i.row() for i in self.table.selectionModel().selectedRows()})

    def _selection_changed(self) -> None:
        self.rerun_action.setEnabled(bool(self.selected_views()))

    def context_menu(self) -> QMenu:
        """The list's context menu (for the selected views)."""
        menu = QMenu(self)
        menu.addAction(self.rerun_action)
        return menu

    def _show_context_menu(self, pos: QPoint) -> None:
        row = self.table.rowAt(pos.y())
        if row >= 0 and row not in self.selected_views():  # right-click on another row: that row
            self.table.selectRow(row)
        self.context_menu().popup(self.table.viewport().mapToGlobal(pos))

    def _rerun_without(self) -> None:
        views = self.selected_views()
        if views:
            self.rerun_without_requested.emit(views)

    # -- widgets -> state -----------------------------------------------------------------------------
    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != self.COL_NAME:
            return
        # a click on the checkbox toggles it (here) and then reports a click on the cell: that click
        # must not fly the camera to the view. Forgotten once the click has come (or did not come).
        self._toggled_row = item.row()
        QTimer.singleShot(0, self._forget_toggle)
        self.state.set_view_visible(item.row(), item.checkState() == Qt.CheckState.Checked)

    def _forget_toggle(self) -> None:
        self._toggled_row = -1

    def _clicked(self, row: int, column: int) -> None:
        if row == getattr(self, "_toggled_row", -1):
            self._toggled_row = -1
            return  # the click only showed or hid the view
        multi = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        if QApplication.keyboardModifiers() & multi:
            return  # Ctrl/Shift+click selects views (to leave them out), it does not fly to one
        self.state.set_highlighted_view(row)
        self.view_activated.emit(row)

    def _set_all(self, how: str) -> None:
        rec = self.state.reconstruction
        if rec is None:
            return
        if how == "all":
            mask = np.ones(rec.n_views, dtype=bool)
        elif how == "none":
            mask = np.zeros(rec.n_views, dtype=bool)
        else:
            mask = ~self.state.visible_views
        self.state.set_visible_views(mask)
