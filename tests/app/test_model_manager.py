"""Model manager: registry listing, licence before download, fake download with progress/cancel/resume."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from fast3r_core.errors import Cancelled
from fast3r_core.progress import ProgressEvent
from fast3r_core.weights import models_cache_dir

TOTAL = 1000


class FakeDownload:
    """Stands in for fast3r_core.weights.download_model: writes a .part file chunk by chunk (resumable)."""

    def __init__(self, pause_at: int | None = None) -> None:
        self.pause_at = pause_at
        self.calls: list[dict] = []
        self.gate = threading.Event()
        self.resumed_from: list[int] = []

    def __call__(self, name, *, accept_license, progress, cancel) -> Path:
        self.calls.append({"name": name, "accept_license": accept_license})
        folder = models_cache_dir() / name
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / "model.safetensors.part"
        done = part.stat().st_size if part.exists() else 0
        self.resumed_from.append(done)
        while done < TOTAL:
            if self.pause_at is not None and done >= self.pause_at:
                self.pause_at = None
                self.gate.wait(10)  # the test presses Cancel here
            if cancel.is_set():
                raise Cancelled("Cancelled by the user")
            with part.open("ab") as f:
                f.write(b"x" * 100)
            done += 100
            progress(ProgressEvent("download", done, TOTAL, "model.safetensors"))
        part.rename(folder / "model.safetensors")
        (folder / "config.json").write_text("{}", encoding="utf-8")
        return folder


def _row(dlg, name: str) -> int:
    for r in range(dlg.table.rowCount()):
        if dlg.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == name:
            return r
    raise AssertionError(name)


@pytest.fixture
def manager(make_window):
    def make(fake: FakeDownload, accept: bool):
        win = make_window()
        prompts: list[str] = []

        def prompt(parent, info) -> bool:
            prompts.append(info.name)
            return accept

        dlg = win.open_model_manager(download_fn=fake, license_prompt=prompt)
        return win, dlg, prompts

    return make


def test_registry_is_listed_with_size_licence_and_status(manager):
    _, dlg, _ = manager(FakeDownload(), True)
    r = _row(dlg, "fast3r-vitl-512")
    assert dlg.table.item(r, 2).text() == "2.6 GB"
    assert "Noncommercial" in dlg.table.item(r, 3).text()
    assert dlg.table.item(r, 4).text() == "not downloaded"
    d = _row(dlg, "demo")
    assert dlg.table.item(d, 0).text() == "demo\n(synthetic scenes only)"
    assert "tiny" in dlg.current_label.text()


def test_download_needs_the_licence(qtbot, manager):
    fake = FakeDownload()
    win, dlg, prompts = manager(fake, False)
    dlg.table.selectRow(_row(dlg, "fast3r-vitl-512"))
    assert dlg.download_button.isEnabled()
    dlg.download_button.click()
    assert prompts == ["fast3r-vitl-512"]
    assert fake.calls == []
    assert not win.settings.license_accepted("fast3r-vitl-512")
    assert "not accepted" in dlg.progress_label.text()


def test_download_with_progress_cancel_and_resume(qtbot, manager):
    fake = FakeDownload(pause_at=400)
    win, dlg, prompts = manager(fake, True)
    dlg.table.selectRow(_row(dlg, "fast3r-vitl-512"))
    values: list[int] = []
    dlg._relay.progress.connect(lambda *a: values.append(dlg.progress.value()))
    dlg.download_button.click()
    assert prompts == ["fast3r-vitl-512"] and win.settings.license_accepted("fast3r-vitl-512")
    assert dlg.cancel_download_button.isEnabled() and not dlg.download_button.isEnabled()
    qtbot.waitUntil(lambda: dlg.progress.value() >= 400, timeout=5000)
    with qtbot.waitSignal(dlg.download_finished, timeout=10_000) as blocker:
        dlg.cancel_download_button.click()
        fake.gate.set()
    assert blocker.args == ["fast3r-vitl-512", False]
    assert "cancelled" in dlg.progress_label.text()
    r = _row(dlg, "fast3r-vitl-512")
    assert dlg.table.item(r, 4).text().startswith("partly downloaded")
    assert dlg.download_button.text() == "Resume download"
    # resume: the licence is not asked again, the download continues from the .part file
    with qtbot.waitSignal(dlg.download_finished, timeout=10_000) as blocker:
        dlg.download_button.click()
    assert blocker.args == ["fast3r-vitl-512", True]
    assert prompts == ["fast3r-vitl-512"]
    assert fake.resumed_from == [0, 400]
    assert all(c["accept_license"] for c in fake.calls)
    assert values == sorted(values[: len(values)]) or max(values) == 1000
    assert dlg.table.item(r, 4).text().startswith("downloaded")
    assert win.controller.model == "fast3r-vitl-512"  # the downloaded model is chosen
    assert "fast3r-vitl-512" in win.model_label.text()


def test_local_checkpoint_device_and_resolution(qtbot, manager, tiny_model, tmp_path):
    win, dlg, _ = manager(FakeDownload(), True)
    assert dlg.use_local(str(tiny_model / "model.safetensors"))
    assert win.controller.model == str((tiny_model / "model.safetensors").resolve())
    bad = tmp_path / "nomodel"
    bad.mkdir()
    monkey = []
    import app.widgets.model_manager as mm

    orig = mm.QMessageBox.warning
    mm.QMessageBox.warning = lambda *a: monkey.append(a[2])
    try:
        assert not dlg.use_local(str(bad))
    finally:
        mm.QMessageBox.warning = orig
    assert monkey
    dlg.device_combo.setCurrentIndex(dlg.device_combo.findData("cpu"))
    dlg.size_combo.setCurrentIndex(dlg.size_combo.findData(512))
    assert win.controller.device == "cpu" and win.controller.size == 512
    assert win.device_actions["cpu"].isChecked() and win.size_actions[512].isChecked()
    dlg.table.selectRow(_row(dlg, "demo"))
    assert dlg.use_button.isEnabled() == dlg._statuses[_row(dlg, "demo")].available


def test_run_with_a_licensed_model_not_accepted_is_refused(qtbot, make_window, images):
    win = make_window()
    win.controller.set_model("fast3r-vitl-512")
    assert not win.open_paths([images])
    assert win._last_error is not None and win._last_error.kind == "license"
    assert "Model Manager" in win._last_error.message
    assert not win.controller.busy


class FailingDownload(FakeDownload):
    def __call__(self, name, *, accept_license, progress, cancel) -> Path:
        from fast3r_core.errors import DownloadError

        self.calls.append({"name": name, "accept_license": accept_license})
        progress(ProgressEvent("download", 100, TOTAL, "model.safetensors"))
        raise DownloadError("connection reset by peer")


def test_use_this_model_switches_only_when_the_download_succeeded(qtbot, manager):
    win, dlg, _ = manager(FailingDownload(), True)
    before = win.controller.model
    dlg.table.selectRow(_row(dlg, "fast3r-vitl-512"))
    with qtbot.waitSignal(dlg.download_finished, timeout=10_000) as blocker:
        dlg.use_button.click()
        assert win.controller.model == before  # not while the download runs
    assert blocker.args == ["fast3r-vitl-512", False]
    assert win.controller.model == before
    assert "fast3r-vitl-512" not in dlg.current_label.text()
    assert "fast3r-vitl-512" not in win.model_label.text()
    assert "failed" in dlg.progress_label.text()
    assert "loaded" not in dlg.current_label.text()  # nothing was loaded yet in this session


def test_every_model_row_is_in_sight_when_the_dialog_opens(qtbot, manager):
    _, dlg, _ = manager(FakeDownload(), True)
    qtbot.waitExposed(dlg)
    view = dlg.table.viewport().rect()
    for r in range(dlg.table.rowCount()):
        rect = dlg.table.visualItemRect(dlg.table.item(r, 0))
        assert view.contains(rect), (r, rect, view)
