"""A cancel the core observes late (issue 17.2, the app side): the window says "Cancelling..." until the
worker has really stopped, nothing can start meanwhile, and quitting waits for the worker (bounded).

The runs here block in a stand-in pipeline step that ignores the cancel until the test releases it, the
way a long fusion block did before the core checked inside it: so the assertions hold over a window of
time in which the run is cancelled but not stopped yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fast3r_core.progress import ProgressEvent, check_cancel


class BlockingStep:
    """Replaces ``fast3r_core.pipeline.reconstruct``: reports "fuse", then blocks until ``release``.

    Only then does it look at the cancel (raising :class:`~fast3r_core.errors.Cancelled`), or return the
    real pipeline's result when the run was not cancelled.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(
        self,
        inputs: Any,
        model: Any,
        options: Any = None,
        progress: Any = None,
        cancel: Any = None,
        **kw: Any,
    ) -> Any:
        if progress is not None:
            progress(ProgressEvent("fuse", 1, 4))
        self.entered.set()
        self.release.wait(60)
        check_cancel(cancel)
        return self.real(inputs, model, options, progress, cancel, **kw)


@pytest.fixture
def blocking(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingStep]:
    import fast3r_core.pipeline as pipeline

    step = BlockingStep(pipeline.reconstruct)
    monkeypatch.setattr(pipeline, "reconstruct", step)
    yield step
    step.release.set()  # never leave the worker blocked (the window's teardown waits for it)


def _first_run(qtbot, win, images) -> None:
    """A normal run, so that a result is shown (Add Images then has something to add to)."""
    with qtbot.waitSignal(win.controller.run_finished, timeout=60_000):
        assert win.start_run([str(images)])


def test_cancelling_lasts_until_the_worker_stopped(qtbot, make_window, images, blocking):
    from app.controller import RunState

    win = make_window()
    c = win.controller
    blocking.release.set()
    _first_run(qtbot, win, images)
    blocking.release.clear()
    assert win.act_add_images.isEnabled() and win.act_rerun.isEnabled()

    win.message_timeout_ms = 50  # a message that expires must not take "Cancelling..." with it
    assert win.start_run([str(images)])
    qtbot.waitUntil(blocking.entered.is_set, timeout=30_000)
    qtbot.waitUntil(lambda: win.progress_panel.stage == "fuse", timeout=10_000)
    win.act_cancel.trigger()  # Esc
    assert c.run_state == RunState.CANCELLING

    def still_cancelling() -> None:
        assert c.run_state == RunState.CANCELLING
        assert c.busy
        assert win.progress_panel.isVisibleTo(win)
        assert win.progress_panel.stage_label.text() == "Cancelling..."
        assert "left" not in win.progress_panel.time_label.text()  # no ETA growing while it stops
        assert not win.progress_panel.cancel_button.isEnabled()
        assert not win.act_cancel.isEnabled()
        assert not win.act_rerun.isEnabled()
        assert not win.act_add_images.isEnabled()
        assert win.statusBar().currentMessage() == "Cancelling..."
        assert win.drop_hint.title.text() == "Cancelling..."  # not "Reconstructing..."

    still_cancelling()
    qtbot.wait(300)  # the worker is still in its step: timers run, nothing may clear the state
    win.progress_panel._tick()
    still_cancelling()
    c.message.emit("Exported PLY to /tmp/x.ply (10 points)")  # another message, for its while
    assert win.statusBar().currentMessage().startswith("Exported")
    qtbot.waitUntil(lambda: win.statusBar().currentMessage() == "Cancelling...", timeout=5_000)
    still_cancelling()

    with qtbot.waitSignal(c.host.cancelled, timeout=30_000):
        blocking.release.set()
    assert c.run_state == RunState.CANCELLED
    assert not c.busy
    assert win.progress_panel.isHidden()
    assert not win.act_cancel.isEnabled()
    assert win.act_rerun.isEnabled() and win.act_add_images.isEnabled()
    assert win.statusBar().currentMessage().startswith("Run cancelled")
    qtbot.wait(150)  # the "cancelled" message may expire: the status bar does not go back to cancelling
    assert win.statusBar().currentMessage() != "Cancelling..."


def test_cancel_while_the_run_waits_for_a_preload(qtbot, make_window, images, monkeypatch):
    """The run queued behind the start-up preload stops at once, not after the whole model load."""
    import fast3r_core.weights as weights
    from app.controller import RunState

    real_load = weights.load_model
    release = threading.Event()
    loading = threading.Event()

    def slow_load(source: Any, device: Any, *a: Any, cancel: Any = None, **kw: Any) -> Any:
        loading.set()
        while not release.wait(0.02):  # a big model: checks its cancel between tensors
            check_cancel(cancel)
        return real_load(source, device, *a, cancel=cancel, **kw)

    monkeypatch.setattr(weights, "load_model", slow_load)
    win = make_window()
    c = win.controller
    try:
        c.preload_model()
        qtbot.waitUntil(loading.is_set, timeout=30_000)
        assert win.start_run([str(images)])
        win.act_cancel.trigger()
        assert c.run_state == RunState.CANCELLING
        t0 = time.perf_counter()
        with qtbot.waitSignal(c.host.cancelled, timeout=10_000):
            pass
        assert time.perf_counter() - t0 < 10
        assert c.run_state == RunState.CANCELLED
        assert win.act_rerun.isEnabled()
    finally:
        release.set()


def test_closing_waits_for_a_late_cancel(qtbot, make_window, images, blocking):
    """Quitting during a run cancels it and waits until the worker has stopped."""
    win = make_window()
    win.show()
    assert win.start_run([str(images)])
    qtbot.waitUntil(blocking.entered.is_set, timeout=30_000)
    timer = threading.Timer(0.5, blocking.release.set)  # the core notices the cancel 0.5 s later
    timer.start()
    t0 = time.perf_counter()
    win.close()
    took = time.perf_counter() - t0
    timer.join()
    assert not win.controller.worker_running
    assert took >= 0.4  # it did wait for the worker


def test_closing_gives_up_on_a_worker_that_does_not_stop(qtbot, make_window, images, blocking, monkeypatch):
    """The wait is bounded: past it the controller says the worker still runs (the app then exits)."""
    import app.worker as worker

    monkeypatch.setattr(worker, "SHUTDOWN_TIMEOUT_MS", 300)
    win = make_window()
    c = win.controller
    assert win.start_run([str(images)])
    qtbot.waitUntil(blocking.entered.is_set, timeout=30_000)
    t0 = time.perf_counter()
    assert not c.shutdown()
    assert time.perf_counter() - t0 < 5
    assert c.worker_running
    t0 = time.perf_counter()
    assert not c.shutdown()  # a second call (aboutToQuit after the close) does not wait again
    assert time.perf_counter() - t0 < 1
    blocking.release.set()
    qtbot.waitUntil(lambda: not c.worker_running, timeout=30_000)


def test_main_exits_when_the_worker_does_not_stop(monkeypatch):
    """After the event loop, ``app.__main__`` ends the process (``os._exit``) rather than work on with no
    window when the worker did not stop; else it returns the exit code normally."""
    import app.__main__ as main_mod

    exits: list[int] = []

    class Exited(Exception):
        pass

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise Exited

    monkeypatch.setattr(main_mod.os, "_exit", fake_exit)

    class Setup:
        closed = 0

        def close(self) -> None:
            self.closed += 1

    class Ctl:
        def __init__(self, stuck: bool) -> None:
            self.worker_running = stuck
            self.shutdowns = 0

        def shutdown(self) -> bool:
            self.shutdowns += 1
            return not self.worker_running

    ok, setup = Ctl(False), Setup()
    assert main_mod._finish(ok, setup, 0) == 0
    assert exits == [] and ok.shutdowns == 1 and setup.closed == 1
    stuck, setup = Ctl(True), Setup()
    with pytest.raises(Exited):
        main_mod._finish(stuck, setup, 3)
    assert exits == [3] and setup.closed == 1  # the log is closed before the process ends


def test_a_cancel_while_the_points_are_sorted_stops_the_run(qtbot, make_window, images, monkeypatch):
    """After the core's last stage the worker sorts the point sets (seconds for a large run): that is a
    stage of its own on the panel, and a cancel then still stops the run; the previous result stays."""
    from app.controller import RunState
    from fast3r_core.result import Reconstruction

    win = make_window()
    c = win.controller
    _first_run(qtbot, win, images)
    shown = win.state.reconstruction
    real_points = Reconstruction.points
    entered, release = threading.Event(), threading.Event()

    def slow_points(self: Reconstruction, source: Any = "global") -> Any:
        if threading.current_thread() is not threading.main_thread() and self is not shown:
            entered.set()
            release.wait(60)
        return real_points(self, source)

    monkeypatch.setattr(Reconstruction, "points", slow_points)
    try:
        assert win.start_run([str(images)])
        qtbot.waitUntil(entered.is_set, timeout=60_000)
        qtbot.waitUntil(lambda: win.progress_panel.stage == "points", timeout=5_000)
        assert win.progress_panel.stage_text.startswith("Sorting points")
        win.act_cancel.trigger()
        with qtbot.waitSignal(c.host.cancelled, timeout=30_000):
            release.set()
    finally:
        release.set()
    assert c.run_state == RunState.CANCELLED
    assert win.state.reconstruction is shown
    assert win.statusBar().currentMessage().startswith("Run cancelled")


def test_a_result_that_arrives_after_the_cancel_is_dropped(qtbot, make_window, images, monkeypatch):
    """A run that ends between the click on Cancel and the worker's next check: the user asked for the
    previous result, so the finished one is not shown."""
    from app.controller import RunState

    win = make_window()
    c = win.controller
    _first_run(qtbot, win, images)
    shown = win.state.reconstruction
    monkeypatch.setattr(c.host, "cancel", lambda **_kw: None)  # the worker never sees this cancel
    assert win.start_run([str(images)])
    qtbot.waitUntil(lambda: c.run_state == RunState.RUNNING, timeout=30_000)
    win.act_cancel.trigger()
    assert c.run_state == RunState.CANCELLING
    qtbot.waitUntil(lambda: not c.host.busy and c.run_state != RunState.CANCELLING, timeout=60_000)
    assert c.run_state == RunState.CANCELLED
    assert win.state.reconstruction is shown
    assert not c.busy and win.act_rerun.isEnabled()
    assert win.statusBar().currentMessage().startswith("Run cancelled")
