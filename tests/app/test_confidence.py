"""Confidence panel: slider, histogram line and state stay in sync both ways, without loops."""

from __future__ import annotations

import numpy as np
import pytest

from app.state import ViewerState
from app.widgets.confidence_panel import ConfidencePanel, format_confidence


@pytest.fixture
def panel(qtbot, synthetic_rec):
    state = ViewerState()
    state.top_percent = 80.0
    p = ConfidencePanel(state)
    qtbot.addWidget(p)
    state.set_reconstruction(synthetic_rec)
    return p


def _emissions(state: ViewerState) -> list[int]:
    count = [0]
    state.selection_changed.connect(lambda: count.__setitem__(0, count[0] + 1))
    return count


def test_new_reconstruction_keeps_the_filter(panel):
    st = panel.state
    ps = st.point_set()
    assert st.top_percent == 80.0  # the histogram's line clamping must not write the state
    assert panel.slider.value() == pytest.approx(80.0)
    assert panel.line_confidence() == pytest.approx(ps.threshold_for_count(st.prefix_count()))
    n = ps.count_top_percent(80.0)
    assert panel.count_label.text().startswith(f"{n:,} of {len(ps):,} points shown")
    counts, _ = panel._all_curve.getData()[1], None
    assert np.sum(counts) == len(ps)  # the histogram counts every point


def test_slider_moves_the_state_and_the_line_top_percent(qtbot, panel):
    st = panel.state
    ps = st.point_set()
    hits = _emissions(st)
    panel.slider.setValue(30.0)
    panel.flush()
    assert st.top_percent == pytest.approx(30.0)
    n = ps.count_top_percent(30.0)
    assert st.prefix_count() == n
    assert panel.line_confidence() == pytest.approx(ps.threshold_for_count(n))
    assert panel.count_label.text().startswith(f"{n:,} of")
    assert hits[0] == 1  # one state change, no echo from the line or the slider


def test_line_drag_moves_the_slider_and_the_state(qtbot, panel):
    st = panel.state
    ps = st.point_set()
    hits = _emissions(st)
    t = float(np.quantile(ps.conf, 0.5))
    panel.set_line_confidence(t)  # what a drag does (sigPositionChanged)
    panel.line.sigPositionChangeFinished.emit(panel.line)
    expected = round(100.0 * ps.count_above(t) / len(ps), 1)
    assert st.top_percent == pytest.approx(expected)
    assert panel.slider.value() == pytest.approx(expected, abs=0.05)
    assert 45 < expected < 55
    assert hits[0] == 1


def test_threshold_mode_both_ways(qtbot, panel):
    st = panel.state
    ps = st.point_set()
    n_before = st.prefix_count()
    panel.mode_combo.setCurrentIndex(1)  # "Above threshold"
    assert st.conf_mode == "threshold"
    assert st.prefix_count() == n_before  # switching modes keeps the same points
    t = float(ps.conf[len(ps) // 4])
    panel.set_slider_value(t)
    panel.flush()
    assert st.threshold == pytest.approx(panel.slider_value())
    assert panel.line_confidence() == pytest.approx(st.threshold)
    assert st.prefix_count() == ps.count_above(st.threshold)
    panel.set_line_confidence(float(ps.conf[len(ps) // 2]))
    panel.flush()
    assert st.threshold == pytest.approx(float(ps.conf[len(ps) // 2]), rel=1e-5)
    assert panel.slider_value() == pytest.approx(st.threshold, rel=1e-3)
    # back to top %: same points again
    n = st.prefix_count()
    panel.mode_combo.setCurrentIndex(0)
    assert abs(st.prefix_count() - n) <= len(ps) * 0.001 + 1


def test_state_changes_update_the_widgets_without_writing_back(qtbot, panel):
    st = panel.state
    hits = _emissions(st)
    st.top_percent = 12.5
    assert hits[0] == 1
    assert panel.slider.value() == pytest.approx(12.5)
    st.conf_mode = "threshold"
    assert panel.mode_combo.currentIndex() == 1
    st.threshold = 3.0
    assert panel.slider_value() == pytest.approx(3.0, rel=1e-3)
    assert panel.line_confidence() == pytest.approx(3.0)
    assert hits[0] == 3  # only the three writes above


def test_moving_the_slider_never_recomputes(qtbot, panel, monkeypatch):
    """A slider move is a prefix slice: the confidence-ordered point set is not rebuilt."""
    from fast3r_core import result

    calls = []
    monkeypatch.setattr(result, "build_point_set", lambda *a: calls.append(a))
    for v in np.linspace(5, 95, 25):
        panel.slider.setValue(float(v))
    panel.flush()
    assert calls == []


def test_keyboard_steps_and_empty_state(qtbot, panel):
    before = panel.state.top_percent
    panel.step(+1)
    assert panel.state.top_percent == pytest.approx(min(100.0, before + 5.0))
    panel.step(-1)
    panel.step(-1)
    assert panel.state.top_percent == pytest.approx(before - 5.0)
    panel.state.set_reconstruction(None)
    assert not panel.slider.isEnabled() and panel.count_label.text() == "No points"


def test_confidences_just_above_one_stay_readable(qtbot, synthetic_rec):
    """An under-trained model's confidences (1.0001..1.01): distinct tick labels, exact line round trip."""
    import dataclasses

    from app.widgets.confidence_panel import _ticks

    conf = tuple(1.0 + (c - 1.0) * 1e-3 for c in synthetic_rec.conf)
    rec = dataclasses.replace(synthetic_rec, conf=conf)
    state = ViewerState()
    p = ConfidencePanel(state)
    qtbot.addWidget(p)
    state.set_reconstruction(rec)
    ps = state.point_set()
    labels = [text for _, text in _ticks(float(ps.conf[-1]), float(ps.conf[0]))]
    assert len(labels) >= 2 and len(set(labels)) == len(labels)
    assert all(text.startswith("1.0") for text in labels)
    assert "x0.001" not in p.plot.getAxis("bottom").labelString()
    t = float(ps.conf[len(ps) // 3])
    p.set_line_confidence(t)
    p.flush()
    assert state.prefix_count() == pytest.approx(ps.count_above(t), abs=len(ps) * 0.001 + 1)  # 0.1 % steps


def test_threshold_slider_shares_the_histograms_log_scale(qtbot, panel):
    """Equal handle steps move the line by equal steps on the histogram; the kept share changes
    gradually (a linear slider on a log histogram jumped from 20 % to 0.1 % in a few pixels)."""
    st = panel.state
    ps = st.point_set()
    panel.mode_combo.setCurrentIndex(1)
    lo, hi = panel.slider.minimum(), panel.slider.maximum()
    shares, lines = [], []
    for k in range(21):
        panel.slider.setValue(lo + (hi - lo) * k / 20)
        panel.flush()
        shares.append(st.prefix_count() / len(ps))
        lines.append(float(panel.line.value()))
        assert panel.slider.value() == pytest.approx(lines[-1], abs=(hi - lo) / 200)  # one scale
        assert panel.value_label.text() == f"> {format_confidence(st.threshold)}"
    steps = np.diff(lines[1:])
    assert np.allclose(steps, steps[0], rtol=1e-2)
    assert shares[0] == pytest.approx(1.0) and shares[-1] < 0.02
    assert max(-np.diff(shares)) < 0.35  # no single step throws most of the cloud away


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(1.0005, 1.02), (1.0001, 1.05), (1.0003, 1.0012), (1.0225, 80.0), (1.5, 3.0), (1.00001, 1.5)],
)
def test_histogram_ticks_do_not_collide(lo, hi):
    """Neighbouring tick labels stay a quarter of the (log) axis apart: at a 250 px plot that is 60 px,
    more than two 7-character labels need ("1.00051.001" was drawn before)."""
    from app.widgets.confidence_panel import _ticks, _u

    ticks = _ticks(lo, hi)
    span = float(_u(hi) - _u(lo))
    assert len(ticks) >= 2
    xs = [x for x, _ in ticks]
    assert xs == sorted(xs)
    assert min(np.diff(xs)) >= span / 4.2 - 1e-9
    assert all(len(label) <= 7 for _, label in ticks)
