"""Memory warnings, error classification, video input, the log folder, re-runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import app.controller as controller_mod
from app.controller import MemoryCheck, estimate_memory
from app.worker import classify_error
from fast3r_core.errors import AlignmentError, InsufficientMemoryError, NoImagesError


def test_memory_estimate_reads_image_headers_and_the_config(tiny_model, images):
    check = estimate_memory([str(images)], str(tiny_model), 512)
    assert check is not None and check.n_views == 4 and check.size == 512
    assert 0 < check.need < check.available and check.fits
    assert check.need_224 is not None and check.need_224 < check.need
    assert estimate_memory([str(images)], "no-such-model-name", 512) is None  # cannot read a config


def test_a_run_that_will_not_fit_warns_and_suggests_224(qtbot, make_window, images, monkeypatch):
    real = controller_mod.estimate_memory

    def tight(*args, **kwargs) -> MemoryCheck:
        c = real(*args, **kwargs)
        return MemoryCheck(c.n_views, c.size, c.need, c.need // 2, False, c.need_224)

    monkeypatch.setattr(controller_mod, "estimate_memory", tight)
    win = make_window()
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        assert win.open_paths([images])  # non-interactive: warn, then run anyway
    text = win.progress_panel.memory_label.text()
    assert text.startswith("memory:") and "e05050" in win.progress_panel.memory_label.styleSheet()
    check = tight([str(images)], win.controller.model, 512)
    assert "At 224 px" in check.describe()


def test_errors_are_classified_for_people():
    assert classify_error(InsufficientMemoryError("need 9 GiB")).kind == "memory"
    oom = classify_error(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert oom.kind == "memory" and "224" in oom.message
    assert classify_error(MemoryError()).kind == "memory"
    assert classify_error(NoImagesError("No usable image in x")).title == "Cannot use these inputs"
    aligned = classify_error(AlignmentError("pass 2 cannot be aligned"))
    assert aligned.title == "Cannot align the passes" and aligned.message == "pass 2 cannot be aligned"
    bug = classify_error(ZeroDivisionError("division by zero"))
    assert bug.kind == "internal" and "ZeroDivisionError" in bug.details


def test_open_a_video(qtbot, make_window, tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 2.0, (160, 120))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (120, 240, 3), dtype=np.uint8)
    for i in range(8):
        writer.write(np.ascontiguousarray(base[:, 10 * i : 10 * i + 160]))
    writer.release()
    win = make_window()
    win.ask_open_files = lambda title, kind, filt: [str(path)]
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        win.act_open_video.trigger()
    assert win.state.reconstruction.n_views == 4  # 4 s of video at the default 1 frame per second
    assert "clip.mp4" in win.settings.recent_files()[0]


def test_rerun_and_recent_menu(qtbot, make_window, images):
    win = make_window()
    assert not win.act_rerun.isEnabled()
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        win.open_paths([images])
    first = win.state.reconstruction
    assert win.act_rerun.isEnabled()
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        win.act_rerun.trigger()
    assert win.state.reconstruction is not first
    win._fill_recent()
    labels = [a.text() for a in win.recent_menu.actions()]
    assert any(str(images.resolve()) in t for t in labels)


def test_open_log_folder(make_window, monkeypatch, tmp_path):
    import app.window_dialogs as mw

    opened: list[str] = []
    monkeypatch.setattr(mw.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    win = make_window()
    assert win.open_log_folder()
    assert Path(opened[0]) == tmp_path / "logs"


def _need(check: MemoryCheck | None) -> tuple[int, int, int, int | None, int]:
    """A check without the available memory (measured anew by every check)."""
    assert check is not None
    return (check.n_views, check.size, check.need, check.need_224, check.passes)


def test_the_memory_check_reads_image_headers_off_the_gui_thread(qtbot, make_window, tmp_path, monkeypatch):
    """New photos: the headers are read on the task pool and the answer comes back on the GUI thread;
    the same photos again: the cached sizes answer at once (the window's estimate is the same)."""
    import threading

    import fast3r_core.preflight as preflight
    from tests.tiny import write_views

    folder = tmp_path / "fresh"
    write_views(folder, 3)
    readers: list[threading.Thread] = []
    real = preflight._read_header
    monkeypatch.setattr(
        preflight, "_read_header", lambda p: readers.append(threading.current_thread()) or real(p)
    )
    win = make_window()
    c = win.controller
    answers: list[tuple[threading.Thread, MemoryCheck | None]] = []

    def on_done(check: MemoryCheck | None) -> None:
        answers.append((threading.current_thread(), check))

    c.check_memory([str(folder)], None, on_done)
    assert answers == []  # not answered synchronously: the headers are being read
    qtbot.waitUntil(lambda: bool(answers), timeout=30_000)
    gui = threading.main_thread()
    assert len(readers) == 3 and all(t is not gui for t in readers)
    assert answers[0][0] is gui and _need(answers[0][1]) == _need(c.memory_check([str(folder)]))
    c.check_memory([str(folder)], None, on_done)
    assert len(answers) == 2 and _need(answers[1][1]) == _need(answers[0][1]) and len(readers) == 3
