"""Confidence filter: a slider with two modes, a histogram with a draggable threshold line, a count.

Modes: keep the top p % of the points by confidence, or keep the points above an absolute threshold.
In threshold mode the slider moves on the histogram's logarithmic scale (``log10(conf - 1)``), so the
line and the handle move together and equal handle steps change the kept share smoothly; a label beside
the slider shows the confidence. Both are prefixes of the confidence-ordered points
(:class:`fast3r_core.point_set.PointSet`), so moving the slider never recomputes anything: the viewer
shows ``points[:n]``.

The slider, the line and :class:`~app.state.ViewerState` stay in sync both ways. Widgets are updated
from the state with their signals blocked, and the state ignores values it already has, so nothing
loops. Writes to the state are throttled (about 30 per second) while dragging.
"""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget
from superqt import QLabeledDoubleSlider
from superqt.sliders._labeled import EdgeLabelMode
from superqt.utils import qthrottled, signals_blocked

from app.state import ViewerState
from app.theme import plot_colors

__all__ = ["ConfidencePanel", "format_confidence"]


def _u(conf: np.ndarray | float) -> np.ndarray | float:
    """Histogram x coordinate of a confidence: ``log10(conf - 1)``.

    The model's confidence is ``1 + exp(x)``, so this is its log-confidence ``x`` (in decades): the
    histogram stays readable whether the confidences are 1.0003 (an under-trained model) or 80.
    """
    return np.log10(np.maximum(np.asarray(conf, dtype=np.float64) - 1.0, 1e-12))


def _conf_label(v: float) -> str:
    """``1 + v`` with enough decimals to tell it from 1: 1.001, 1.05, 1.5, 2, 11, 101."""
    if v >= 1.0:
        return f"{1.0 + v:.4g}"
    decimals = int(np.ceil(-np.log10(v) - 1e-9))
    if not np.isclose(v * 10**decimals, round(v * 10**decimals)):
        decimals += 1
    return f"{1.0 + v:.{decimals}f}"


def _ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks between confidences ``lo`` and ``hi``: round values of ``conf - 1`` below 2 (1.001, 1.01,
    1.5), round confidences above (2, 5, 10, 50), placed at their ``log10(conf - 1)``."""
    a, b = max(lo - 1.0, 1e-12), max(hi - 1.0, 1e-12)
    small = [m * 10.0**e for e in range(-12, 0) for m in (1, 2, 5)]  # conf - 1 < 1
    large = [c - 1.0 for c in (m * 10.0**e for e in range(0, 7) for m in (1, 2, 5)) if c >= 2]
    inside = [v for v in small + large if a <= v <= b]
    if len(inside) < 2:
        inside = list(np.geomspace(a, b, 3))
    # keep ticks at least a quarter of the axis apart (on its log scale), so that labels such as
    # "1.0005" and "1.001" never run into each other; prefer round 1 x 10^k values
    span = max(float(np.log10(b) - np.log10(a)), 1e-9)
    gap = span / 4.2
    ones = [v for v in inside if np.isclose(v / 10.0 ** np.floor(np.log10(v) + 1e-9), 1.0)]
    order = ones + [v for v in inside if v not in ones]
    kept: list[float] = []
    for v in order:
        if all(abs(np.log10(v) - np.log10(k)) >= gap for k in kept):
            kept.append(v)
    return [(float(np.log10(v)), _conf_label(v)) for v in sorted(kept)]


def format_confidence(c: float) -> str:
    """A confidence for tables: 4 decimals near 1, else 2."""
    return f"{c:.4f}" if c < 1.1 else f"{c:.2f}"


log = logging.getLogger(__name__)

_BINS = 80
_MODES = (("top_percent", "Keep top %"), ("threshold", "Above threshold"))


class ConfidencePanel(QWidget):
    """Slider + histogram + count of the confidence filter of a :class:`ViewerState`."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.mode_combo = QComboBox()
        for key, text in _MODES:
            self.mode_combo.addItem(text, key)
        self.mode_combo.setToolTip("Keep the most confident p % of the points, or those above a confidence")
        self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Confidence filter ([ and ] step it)")
        self.value_label = QLabel("")  # the confidence at the handle (threshold mode)
        self.value_label.setMinimumWidth(64)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(110)
        self.plot.setMaximumHeight(170)
        self.plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "confidence")
        self.plot.getAxis("left").setStyle(showValues=False)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setLogMode(x=False, y=False)
        self._all_curve = pg.PlotDataItem(stepMode="center", fillLevel=0)
        self._kept_curve = pg.PlotDataItem(stepMode="center", fillLevel=0)
        self.plot.addItem(self._all_curve)
        self.plot.addItem(self._kept_curve)
        self.line = pg.InfiniteLine(angle=90, movable=True)
        self.line.setToolTip("Drag to set the confidence threshold")
        self.plot.addItem(self.line)
        self.count_label = QLabel("No points")
        self.count_label.setWordWrap(True)  # a narrow dock wraps it instead of cutting the panel
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        top.addWidget(QLabel("Filter"))
        top.addWidget(self.mode_combo, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)
        lay.addLayout(row)
        lay.addWidget(self.plot)
        lay.addWidget(self.count_label)

        self._edges = np.zeros(0)
        self._counts = np.zeros(0)
        self._lo, self._hi = 1.0, 2.0
        self._write_throttled = qthrottled(self._write_state, timeout=33, leading=True, parent=self)
        self.mode_combo.currentIndexChanged.connect(self._mode_chosen)
        self.slider.valueChanged.connect(self._slider_moved)
        self.line.sigPositionChanged.connect(self._line_moved)
        self.line.sigPositionChangeFinished.connect(self._line_released)
        state.reconstruction_changed.connect(self._rebuild)
        state.selection_changed.connect(self.sync_from_state)
        self.apply_theme()
        self._rebuild()

    # -- appearance -----------------------------------------------------------------------------------
    def apply_theme(self) -> None:
        c = plot_colors()
        self.plot.setBackground(c["background"])
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).setPen(c["foreground"])
            self.plot.getAxis(axis).setTextPen(c["foreground"])
        self._all_curve.setPen(pg.mkPen(c["bars"], width=1))
        self._all_curve.setBrush(pg.mkBrush(pg.mkColor(c["bars"]).darker(180)))
        self._kept_curve.setPen(pg.mkPen(c["kept"], width=1))
        self._kept_curve.setBrush(pg.mkBrush(c["kept"]))
        self.line.setPen(pg.mkPen(c["line"], width=2))
        self.line.setHoverPen(pg.mkPen(c["line"], width=4))

    # -- derived values -------------------------------------------------------------------------------
    def _conf(self) -> np.ndarray:
        ps = self.state.point_set()
        return np.zeros(0, dtype=np.float32) if ps is None else ps.conf

    def _mode(self) -> str:
        return str(self.state.conf_mode)

    def threshold_shown(self) -> float:
        """Confidence at the line: the threshold, or the confidence of the last kept point (top %)."""
        ps = self.state.point_set()
        if ps is None or len(ps) == 0:
            return 1.0
        if self._mode() == "threshold":
            return float(self.state.threshold)
        t = ps.threshold_for_count(self.state.prefix_count())
        return float(ps.conf[0]) if not np.isfinite(t) else t

    # -- rebuild on a new reconstruction ------------------------------------------------------------
    def _rebuild(self) -> None:
        conf = self._conf()
        enabled = conf.size > 0
        for w in (self.slider, self.plot, self.mode_combo):
            w.setEnabled(enabled)
        self.line.setVisible(enabled)
        if not enabled:
            self._edges = np.zeros(0)
            self._counts = np.zeros(0)
            self._all_curve.setData([], [])
            self._kept_curve.setData([], [])
            self.sync_from_state()
            return
        finite = conf[np.isfinite(conf)]
        lo = float(finite[-1]) if finite.size else 1.0
        hi = float(np.quantile(finite, 0.995)) if finite.size else 2.0
        if hi <= lo:
            hi = lo + 1.0
        # log-scale confidence axis: the distribution has a long tail of very confident points
        ulo, uhi = _u(lo), _u(hi)
        counts, edges = np.histogram(np.clip(_u(finite), ulo, uhi), bins=_BINS, range=(ulo, uhi))
        self._edges, self._counts = edges, counts.astype(np.float64)
        self._all_curve.setData(edges, self._counts)
        self.plot.setXRange(ulo, uhi, padding=0.02)
        self.plot.getAxis("bottom").setTicks([_ticks(lo, hi)])
        self.plot.setYRange(0, max(1.0, float(self._counts.max())) * 1.05, padding=0)
        self._lo, self._hi = lo, float(finite[0]) if finite.size else hi
        with signals_blocked(self.line):  # clamping the line must not write a value into the state
            self.line.setBounds((_u(lo), _u(self._hi)))
        self.sync_from_state()

    def _configure_slider(self) -> None:
        top = self._mode() == "top_percent"
        self.value_label.setVisible(not top)
        self.slider.setEdgeLabelMode(EdgeLabelMode.LabelIsValue if top else EdgeLabelMode.NoLabel)
        if top:
            self.slider.setDecimals(1)
            self.slider.setRange(0.0, 100.0)
            self.slider.setSingleStep(0.5)
        else:  # the histogram's axis: u = log10(conf - 1), from just below the lowest point to the top
            ulo, uhi = float(_u(self._lo)), float(_u(self._hi))
            span = max(uhi - ulo, 1e-3)
            self.slider.setDecimals(4)
            self.slider.setRange(ulo - span / 1000, uhi)
            self.slider.setSingleStep(span / 200)

    def slider_value(self) -> float:
        """The filter value at the slider: a percentage, or a confidence in threshold mode."""
        v = float(self.slider.value())
        return v if self._mode() == "top_percent" else 1.0 + 10.0**v

    def set_slider_value(self, value: float) -> None:
        """Move the slider to a percentage, or to a confidence in threshold mode (emits its signals)."""
        self.slider.setValue(float(value) if self._mode() == "top_percent" else float(_u(value)))

    def _show_value(self, t: float) -> None:
        self.value_label.setText(f"> {format_confidence(t)}" if self._mode() == "threshold" else "")

    # -- state -> widgets -----------------------------------------------------------------------------
    def sync_from_state(self) -> None:
        """Show the state's filter in the combo, the slider, the line and the count (no signals)."""
        mode = self._mode()
        with signals_blocked(self.mode_combo):
            self.mode_combo.setCurrentIndex(0 if mode == "top_percent" else 1)
        t = self.threshold_shown()
        with signals_blocked(self.slider):
            self._configure_slider()
            value = float(self.state.top_percent if mode == "top_percent" else self.state.threshold)
            self.slider.setValue(value if mode == "top_percent" else float(_u(value)))
        self._show_value(t)
        with signals_blocked(self.line):
            self.line.setValue(_u(t))
        self._update_kept(t)
        self._update_count()

    def _update_kept(self, t: float) -> None:
        if self._edges.size == 0:
            return
        u = _u(t)
        kept = np.where(self._edges[1:] > u, self._counts, 0.0)
        # the bin holding t is partly kept
        i = int(np.searchsorted(self._edges, u)) - 1
        if 0 <= i < kept.size:
            width = self._edges[i + 1] - self._edges[i]
            kept[i] = self._counts[i] * max(0.0, (self._edges[i + 1] - u) / width)
        self._kept_curve.setData(self._edges, kept)

    def _update_count(self) -> None:
        ps = self.state.point_set()
        if ps is None:
            self.count_label.setText("No points")
            return
        shown = self.state.shown_count()
        total = len(ps)
        pct = 100.0 * shown / total if total else 0.0
        self.count_label.setText(f"{shown:,} of {total:,} points shown ({pct:.1f} %)")

    # -- widgets -> state -----------------------------------------------------------------------------
    def _mode_chosen(self, index: int) -> None:
        mode = str(self.mode_combo.itemData(index))
        ps = self.state.point_set()
        if ps is not None and len(ps):
            # keep the same points when switching: convert the current filter to the other mode
            n = self.state.prefix_count()
            if mode == "threshold":
                t = ps.threshold_for_count(n)
                value = (
                    float(np.nextafter(np.float32(t), np.float32(-np.inf))) if np.isfinite(t) else self._hi
                )
                self.state.threshold = value
            else:
                self.state.top_percent = round(100.0 * n / len(ps), 1)
        self.state.conf_mode = mode
        self.sync_from_state()

    def _slider_moved(self, value: float) -> None:
        mode = self._mode()
        self._write_throttled(mode, float(value) if mode == "top_percent" else 1.0 + 10.0 ** float(value))
        # immediate feedback on the line and the kept bars, without waiting for the throttled write
        ps = self.state.point_set()
        if ps is None:
            return
        if mode == "threshold":
            t = 1.0 + 10.0 ** float(value)
        else:
            t = ps.threshold_for_count(ps.count_top_percent(float(np.clip(value, 0, 100))))
            t = float(ps.conf[0]) if not np.isfinite(t) else t
        self._show_value(t)
        with signals_blocked(self.line):
            self.line.setValue(_u(t))
        self._update_kept(t)

    def line_confidence(self) -> float:
        """The confidence at the histogram's line."""
        return 1.0 + float(10.0 ** float(self.line.value()))

    def set_line_confidence(self, t: float) -> None:
        """Move the line to confidence ``t`` as a drag would (emits its signals)."""
        self.line.setValue(_u(t))

    def _line_moved(self) -> None:
        t = self.line_confidence()
        ps = self.state.point_set()
        if ps is None or len(ps) == 0:
            return
        if self._mode() == "threshold":
            value = t
        else:
            value = round(100.0 * ps.count_above(t) / len(ps), 1)
        with signals_blocked(self.slider):
            self.slider.setValue(value if self._mode() == "top_percent" else float(self.line.value()))
        self._show_value(t)
        self._update_kept(t)
        self._write_throttled(self._mode(), float(value))

    def _line_released(self) -> None:
        self._write_throttled.flush()

    def _write_state(self, key: str, value: float) -> None:
        if key == "top_percent":
            self.state.top_percent = float(np.clip(value, 0.0, 100.0))
        else:
            self.state.threshold = value
        self._update_count()

    def flush(self) -> None:
        """Apply a pending throttled write now (tests, before an export)."""
        self._write_throttled.flush()

    # -- keyboard steps -------------------------------------------------------------------------------
    def step(self, direction: int) -> None:
        """Move the slider one page (5 % or 1/20 of the range) up (+1) or down (-1)."""
        lo, hi = self.slider.minimum(), self.slider.maximum()
        page = 5.0 if self._mode() == "top_percent" else (hi - lo) / 20
        self.slider.setValue(float(np.clip(self.slider.value() + direction * page, lo, hi)))
        self.flush()
