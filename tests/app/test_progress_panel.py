"""The progress panel redraws at a bounded rate: every repaint flushes the window with the viewport."""

from __future__ import annotations

from app.widgets.progress_panel import REDRAW_INTERVAL_MS, ProgressPanel
from fast3r_core.progress import ProgressEvent


def test_a_burst_of_progress_events_draws_its_first_and_last_event_only(qtbot) -> None:
    panel = ProgressPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_running(True)
    drawn: list[int] = []
    panel.bar.valueChanged.connect(drawn.append)
    for done in range(1, 41):  # 40 events at once, as a fast stage sends them (well within an interval)
        panel.update_progress(ProgressEvent("encode", done, 40))
        assert panel.stage_text == f"Encoding {done}/40"  # the state is current at once
    assert panel.stage_label.text() == "Encoding 1/40"  # the first event was drawn at once ...
    assert len(drawn) == 1  # ... and none of the 39 others yet
    # the last event is drawn by the trailing redraw, within one interval, and only it
    qtbot.waitUntil(lambda: panel.stage_label.text() == "Encoding 40/40", timeout=3 * REDRAW_INTERVAL_MS)
    assert len(drawn) == 2
    assert panel.bar.value() == round(1000 * panel.fraction)


def test_cancelling_and_stopping_drop_a_pending_redraw(qtbot) -> None:
    panel = ProgressPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_running(True)
    panel.update_progress(ProgressEvent("encode", 1, 8))
    panel.update_progress(ProgressEvent("encode", 2, 8))  # too soon: pending
    panel.set_cancelling()
    qtbot.wait(2 * REDRAW_INTERVAL_MS)
    assert panel.stage_label.text() == "Cancelling..."
    panel.set_running(True)
    panel.update_progress(ProgressEvent("fuse", 0, 4))
    panel.update_progress(ProgressEvent("fuse", 1, 4))
    panel.set_running(False, "Done")
    qtbot.wait(2 * REDRAW_INTERVAL_MS)
    assert panel.stage_label.text() == "Done"


def test_a_result_resizes_the_viewport_once(qtbot, make_window, images) -> None:
    """The end of a run shows the playback bar, hides the progress panel and may show a banner: the
    viewport is laid out once for all of them (each resize of the OpenGL viewport redraws the whole
    cloud at once: 50-80 ms on a software renderer)."""
    from PySide6.QtCore import QEvent, QObject

    win = make_window()
    win.resize(1024, 700)
    win.show()
    qtbot.waitExposed(win)
    sizes: list[tuple[int, int]] = []

    class _Resizes(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Resize:
                sizes.append((obj.width(), obj.height(), obj.isVisible()))
            return False

    watcher = _Resizes()
    win.viewer.native.installEventFilter(watcher)
    fitted_at: list[tuple[int, int]] = []  # the viewport's size when the new result was framed
    real_fit = win.viewer.fit_to_scene
    win.viewer.fit_to_scene = lambda *a, **k: (
        fitted_at.append((win.viewer.native.width(), win.viewer.native.height())),
        real_fit(*a, **k),
    )[1]
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        win.open_paths([images])
        qtbot.waitUntil(win.progress_panel.isVisible)
        qtbot.wait(20)  # the progress panel's own layout
        sizes.clear()
    qtbot.wait(100)
    assert win.playback.isVisible() and not win.progress_panel.isVisible()
    # the progress panel's and the playback bar's change: one resize while it is on screen (a page of
    # the stack gets its size before it is shown, which draws nothing)
    shown = [s for s in sizes if s[2]]
    assert len(shown) == 1, sizes
    assert shown[0][:2] == (win.viewer.native.width(), win.viewer.native.height())
    assert fitted_at == [shown[0][:2]]  # framed once, for the final size


def test_the_eta_and_the_stage_are_whole_in_a_small_window(qtbot, make_window, synthetic_rec) -> None:
    """At 1024 x 640 the time label shows "1:16 elapsed, about 4:23 left" whole; the memory estimate
    gives way (its tooltip has it)."""
    import time

    win = make_window()
    win.resize(1024, 640)
    win.show()
    win.controller._show(synthetic_rec)
    p = win.progress_panel
    p.set_running(True, "Reconstructing")
    p.show()
    p.set_memory_text("memory: 3.4 GiB per pass (2 passes)")
    p.update_progress(ProgressEvent("encode", 3, 8))
    p._start -= 75
    p._run_start = time.perf_counter() - 70
    qtbot.wait(REDRAW_INTERVAL_MS + 100)
    p._tick()
    qtbot.wait(50)
    assert "elapsed, about" in p.time_label.text()
    label = p.time_label  # the stage shares the rest of the row, which the docks' widths decide
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width(), label.text()
    assert p.time_label.geometry().right() < p.cancel_button.geometry().left()
    assert p.memory_label.toolTip() == "memory: 3.4 GiB per pass (2 passes)"
