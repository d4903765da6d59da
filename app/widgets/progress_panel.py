"""Progress of a run: stage, bar, elapsed time, ETA, Cancel; and the memory estimate before it."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QSizePolicy, QWidget
from superqt import QElidingLabel

from fast3r_core.progress import ProgressEvent

__all__ = ["RUN_STAGES", "STAGE_LABELS", "ProgressPanel", "format_seconds"]

#: Stages of a reconstruction with their share of the run's time (for the overall bar and the ETA).
RUN_STAGES: dict[str, float] = {
    "video": 0.05,
    "images": 0.10,
    "encode": 0.30,
    "fuse": 0.20,
    "heads": 0.25,
    "poses": 0.10,
    "points": 0.05,  # the confidence-ordered point sets (the app's, after the core's run)
}
#: Progress stages of the core -> what the panel says (others: the stage name, capitalized).
STAGE_LABELS: dict[str, str] = {
    "download": "Downloading the model",
    "verify": "Verifying the download",
    "load": "Loading the model",
    "video": "Extracting video frames",
    "images": "Loading images",
    "encode": "Encoding",
    "fuse": "Fusing",
    "heads": "Heads",
    "poses": "Cameras",
    "points": "Sorting points",
    "export": "Exporting",
}
_BYTES = frozenset({"download", "verify"})
#: Stages repeated by every pass of a chunked run (their events carry pass_index / pass_count).
_PASS_STAGES = ("encode", "fuse", "heads")
#: Shortest time between two redraws of the panel for progress events (ms). Every repaint of a widget
#: flushes the whole window, which holds the OpenGL viewport: on a software renderer that cost 6-10 ms
#: of CPU each, and the 19 events of the bundled sample made its run 0.25 s (50 %) longer.
REDRAW_INTERVAL_MS = 250


def format_seconds(s: float) -> str:
    """``42 s``, ``3:05``, ``1:02:03``."""
    s = max(0, round(s))
    if s < 60:
        return f"{s} s"
    m, sec = divmod(s, 60)
    if m < 60:
        return f"{m}:{sec:02d}"
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}"


class ProgressPanel(QWidget):
    """A one-line panel: ``Encoding 3/8  [=====   ]  0:12 elapsed, about 0:20 left  [Cancel]``.

    The bar shows the whole run (stages weighted by :data:`RUN_STAGES`); model download and loading
    show their own bar. The ETA extrapolates the overall fraction done. Progress events update
    :attr:`fraction`, :attr:`stage` and :attr:`stage_text` at once, and the widgets at most every
    :data:`REDRAW_INTERVAL_MS` (the last event of a run is drawn, unless the run is cancelled or
    stopped first: then the panel says so instead).

    Signals
    -------
    cancel_requested() : the Cancel button was pressed.
    """

    cancel_requested = Signal()

    #: The width the time label keeps: a run of some minutes with its ETA.
    TIME_TEMPLATE = "12:34 elapsed, about 12:34 left"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # the labels take shares of the row (not their text's width, which changes every tick) and elide
        # in a small window: a run must never widen the window (it has to fit 1024 px)
        self.stage_label = QElidingLabel("Idle")
        self.stage_label.setMaximumWidth(190)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setFormat("%p %")
        self.bar.setMinimumWidth(60)
        self.bar.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.time_label = QElidingLabel("")
        # the ETA is what a waiting user reads: room for a typical text, whatever the window, instead
        # of a share that cut it to "1:16 elapsed, ab..." (the memory estimate gives way first)
        self.time_label.setFixedWidth(self.time_label.fontMetrics().horizontalAdvance(self.TIME_TEMPLATE) + 8)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the run (Esc); the previous result stays")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.memory_label = QElidingLabel("")
        self.memory_label.setTextFormat(Qt.TextFormat.PlainText)
        self.memory_label.setMinimumWidth(0)
        for label in (self.stage_label, self.memory_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 2, 8, 2)
        # shares of the room left: the stage and the bar first, the memory estimate (also in its
        # tooltip, and shown before the run) gives way in a small window
        lay.addWidget(self.stage_label, 4)
        lay.addWidget(self.bar, 3)
        lay.addWidget(self.time_label)
        lay.addWidget(self.cancel_button)
        lay.addWidget(self.memory_label, 1)
        self._start = 0.0
        self._run_start: float | None = None
        self._fraction = 0.0
        self._stage = ""
        self._running = False
        self._cancelling = False
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._tick)
        self._stage_text = ""
        self._drawn_at = -1e9  # perf_counter of the last redraw for a progress event
        self._redraw = QTimer(self)  # the trailing redraw of events that came too soon after one
        self._redraw.setSingleShot(True)
        self._redraw.timeout.connect(self._draw_progress)
        self.set_running(False)

    # -- API ------------------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        """Overall fraction of the run done (0..1)."""
        return self._fraction

    @property
    def stage(self) -> str:
        return self._stage

    @property
    def stage_text(self) -> str:
        """What the stage label says, or will say at the next redraw (e.g. ``Encoding 3/8``)."""
        return self._stage_text

    @property
    def cancelling(self) -> bool:
        """The panel shows "Cancelling..." (until :meth:`set_running` is called)."""
        return self._cancelling

    def set_cancelling(self) -> None:
        """Say "Cancelling..." until the run has stopped: Cancel is disabled, progress events ignored."""
        self._cancelling = True
        self._redraw.stop()
        self.cancel_button.setEnabled(False)
        self._show_stage("Cancelling...")
        self._tick()

    def set_running(self, running: bool, text: str = "") -> None:
        """Start (reset the clock) or stop showing a run."""
        self._running = running
        self._cancelling = False
        self._redraw.stop()
        self.cancel_button.setEnabled(running)
        self.bar.setVisible(running)
        self.time_label.setVisible(running)
        if running:
            self._start = time.perf_counter()
            self._run_start = None  # first reconstruction stage (after the model load)
            self._drawn_at = -1e9  # the run's first event is drawn at once
            self._fraction = 0.0
            self._stage = ""
            self.bar.setValue(0)
            self._show_stage(text or "Starting...")
            self.time_label.setText("")
            self._timer.start()
        else:
            self._timer.stop()
            self._show_stage(text or "Idle")

    def set_memory_text(self, text: str, warn: bool = False) -> None:
        """The memory estimate of the coming run (red when it will not fit)."""
        self.memory_label.setText(text)
        self.memory_label.setToolTip(text)  # it elides first when the row is short
        self.memory_label.setStyleSheet("color: #e05050; font-weight: bold;" if warn else "")

    def update_progress(self, event: ProgressEvent) -> None:
        """One progress event of the core (stage, units done, units total, pass).

        In a chunked run the model stages repeat once per pass; their events carry the pass
        (``pass_index`` of ``pass_count``) and the bar then splits the model stages' share evenly
        between the passes, so that it never moves back when the next pass starts encoding.
        """
        if self._cancelling:
            return
        stage, done, total = event.stage, int(event.done), int(event.total)
        self._stage = stage
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        label = STAGE_LABELS.get(stage, stage.capitalize())
        if stage in _BYTES:
            text = f"{label} {done / 1e6:.0f}/{total / 1e6:.0f} MB"
            self._fraction = frac
        elif stage == "load":
            text = label
            self._fraction = frac
        else:
            if self._run_start is None:
                self._run_start = time.perf_counter()
            text = f"{label} {done}/{total}" if total > 1 else label
            before = 0.0
            for name, weight in RUN_STAGES.items():
                if name == stage:
                    break
                if name != "video":
                    before += weight
            fraction = before + RUN_STAGES.get(stage, 0.0) * frac
            index, passes = event.pass_index, event.pass_count
            in_pass = False
            if stage in _PASS_STAGES and index is not None and passes is not None and 0 <= index < passes:
                in_pass = True
                start = RUN_STAGES["images"]  # the model stages follow the images
                share = sum(RUN_STAGES[s] for s in _PASS_STAGES)
                fraction = start + share * (index + (fraction - start) / share) / passes
                if passes > 1:
                    text += f" (pass {index + 1}/{passes})"
            self._fraction = min(1.0, max(self._fraction, fraction) if in_pass else fraction)
        self._stage_text = text
        wait_ms = REDRAW_INTERVAL_MS - 1000 * (time.perf_counter() - self._drawn_at)
        if wait_ms <= 0:
            self._draw_progress()
        elif not self._redraw.isActive():
            self._redraw.start(max(1, round(wait_ms)))

    def _show_stage(self, text: str) -> None:
        self._stage_text = text
        self.stage_label.setText(text)

    def _draw_progress(self) -> None:
        """Show the latest progress event's stage text, bar and times."""
        self._redraw.stop()
        if self._cancelling:
            return
        self._drawn_at = time.perf_counter()
        self._show_stage(self._stage_text)
        self.bar.setValue(round(1000 * self._fraction))
        self._tick()

    def eta_seconds(self) -> float | None:
        """Seconds left, extrapolated from the time since the stage's start (None before 3 % or 1 s).

        Model download and loading have their own bar; the reconstruction's ETA starts with its first
        stage, so that the model's load time does not inflate it.
        """
        start = self._start if self._stage in ("download", "verify", "load") else self._run_start
        if start is None:
            return None
        elapsed = time.perf_counter() - start
        if self._fraction < 0.03 or elapsed < 1.0:
            return None
        return elapsed * (1.0 - self._fraction) / self._fraction

    def _tick(self) -> None:
        if not self._running:
            return
        elapsed = time.perf_counter() - self._start
        # a stopping run makes no more progress: an ETA would only grow
        eta = None if self._cancelling else self.eta_seconds()
        text = f"{format_seconds(elapsed)} elapsed"
        if eta is not None:
            text += f", about {format_seconds(eta)} left"
        self.time_label.setText(text)
