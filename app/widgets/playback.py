"""Playback: a timestep slider that shows views 0..t cumulatively, play/pause and an FPS control."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QToolButton, QWidget
from superqt.utils import signals_blocked

from app.state import ViewerState

__all__ = ["PlaybackBar"]


class PlaybackBar(QWidget):
    """Writes ``timestep`` of a :class:`ViewerState`: -1 (all views) or t (views 0..t).

    The slider's last position means "all views". Play steps t from 0 to the last view at ``fps``
    steps per second and stops there.

    Signals
    -------
    playing_changed(bool)
    """

    playing_changed = Signal(bool)

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.play_button = QToolButton()
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play / pause the views one by one (Space)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Show views 0..t")
        self.label = QLabel("")
        self.label.setMinimumWidth(110)
        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(0.2, 60.0)
        self.fps_spin.setDecimals(1)
        self.fps_spin.setSingleStep(0.5)
        self.fps_spin.setValue(2.0)
        self.fps_spin.setSuffix(" fps")
        self.fps_spin.setToolTip("Playback speed (views per second)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        lay.addWidget(self.play_button)
        lay.addWidget(QLabel("Views"))
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.label)
        lay.addWidget(self.fps_spin)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._advance)
        self.play_button.toggled.connect(self.set_playing)
        self.slider.valueChanged.connect(self._slider_moved)
        self.fps_spin.valueChanged.connect(self._fps_changed)
        state.reconstruction_changed.connect(self._rebuild)
        state.selection_changed.connect(self.sync_from_state)
        self._update_button()
        self._rebuild()

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def _n_views(self) -> int:
        rec = self.state.reconstruction
        return 0 if rec is None else rec.n_views

    def _rebuild(self) -> None:
        self.set_playing(False)
        n = self._n_views()
        self.setEnabled(n > 1)
        with signals_blocked(self.slider):
            self.slider.setRange(0, max(0, n - 1))
        self.sync_from_state()

    def sync_from_state(self) -> None:
        n = self._n_views()
        t = int(self.state.timestep)
        with signals_blocked(self.slider):
            self.slider.setValue(n - 1 if t < 0 or t >= n - 1 else t)
        if n == 0:
            self.label.setText("")
        elif t < 0 or t >= n - 1:
            self.label.setText(f"all {n} views")
        else:
            self.label.setText(f"views 0-{t} of {n}")

    def _slider_moved(self, value: int) -> None:
        n = self._n_views()
        self.state.timestep = -1 if value >= n - 1 else int(value)

    def set_playing(self, on: bool) -> None:
        """Start (from view 0 when at the end) or pause the playback."""
        n = self._n_views()
        if on and n > 1:
            if int(self.state.timestep) < 0:
                self.state.timestep = 0
            self._timer.start(round(1000 / self.fps_spin.value()))
        else:
            self._timer.stop()
        with signals_blocked(self.play_button):
            self.play_button.setChecked(self.playing)
        self._update_button()
        self.playing_changed.emit(self.playing)

    def toggle(self) -> None:
        self.set_playing(not self.playing)

    def _fps_changed(self, fps: float) -> None:
        if self.playing:
            self._timer.setInterval(round(1000 / fps))

    def _advance(self) -> None:
        n = self._n_views()
        t = int(self.state.timestep)
        if t < 0 or t + 1 >= n - 1:
            self.state.timestep = -1
            self.set_playing(False)
            return
        self.state.timestep = t + 1

    def _update_button(self) -> None:
        self.play_button.setText("Pause" if self.playing else "Play")
