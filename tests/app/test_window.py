"""Main window: drag-and-drop, runs through the real worker, errors, cancel, views, playback, close."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.controller import RunState
from fast3r_core.progress import ProgressEvent
from fast3r_core.project_file import save_project


def _mime(*paths: Path | str) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def _drag_enter(mime: QMimeData) -> QDragEnterEvent:
    """A drag-enter event at (50, 50) (the QPoint constructor is deprecated in recent PySide6 builds,
    the QPointF one missing in others)."""
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    try:
        return QDragEnterEvent(QPointF(50, 50), *args)
    except TypeError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return QDragEnterEvent(QPoint(50, 50), *args)


def _drop(win, *paths: Path | str) -> tuple[bool, bool]:
    """Send a drag-enter then a drop with these files; returns (enter accepted, drop accepted)."""
    mime = _mime(*paths)
    actions = Qt.DropAction.CopyAction
    enter = _drag_enter(mime)
    QApplication.sendEvent(win, enter)
    drop = QDropEvent(
        QPointF(50, 50), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    if enter.isAccepted():
        QApplication.sendEvent(win, drop)
    return enter.isAccepted(), drop.isAccepted()


def test_empty_window_shows_the_drop_hint(make_window):
    win = make_window()
    assert win.stack.currentWidget() is win.drop_hint
    assert "Drop" in win.drop_hint.title.text()
    assert not win.export_actions["ply"].isEnabled()
    assert win.scene_label.text() == "No reconstruction"


def test_drop_a_folder_runs_and_shows_the_result(qtbot, make_window, images):
    win = make_window()
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        entered, dropped = _drop(win, images)
        assert entered and dropped
    rec = win.state.reconstruction
    assert rec is not None and rec.n_views == 4
    assert win.stack.currentWidget() is win.viewer.native
    assert win.controller.run_state == RunState.DONE
    assert win.progress_panel.isHidden()
    assert win.views_panel.table.rowCount() == 4
    assert "4/4 views" in win.scene_label.text()
    assert "last run" in win.timing_label.text()
    assert win.export_actions["ply"].isEnabled()
    assert ("fit_to_scene", (), {}) in win.viewer.calls
    assert str(images.resolve()) in win.settings.recent_files()


def test_drop_image_files_and_a_project(qtbot, make_window, images, synthetic_rec, tmp_path):
    win = make_window()
    files = sorted(images.glob("*.png"))[:3]
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        _drop(win, *files)
    assert win.state.reconstruction.n_views == 3
    project = save_project(synthetic_rec, tmp_path / "p.f3r")
    with qtbot.waitSignal(win.controller.project_loaded, timeout=30_000):
        _drop(win, project)
    assert win.state.reconstruction.n_views == synthetic_rec.n_views
    assert win.controller.project_path == project
    assert "p.f3r" in win.windowTitle()


def test_drop_of_unusable_files_is_refused(make_window, tmp_path):
    win = make_window()
    text = tmp_path / "notes.txt"
    text.write_text("hello", encoding="utf-8")
    entered, _ = _drop(win, text)
    assert not entered
    mime = QMimeData()
    mime.setText("just text")
    enter = _drag_enter(mime)
    QApplication.sendEvent(win, enter)
    assert not enter.isAccepted()


@pytest.mark.parametrize("case", ["empty", "unreadable", "bad_video", "bad_model"])
def test_failures_show_a_dialog_and_keep_the_previous_result(
    qtbot, make_window, synthetic_rec, tmp_path, case
):
    win = make_window()
    win.controller._show(synthetic_rec)  # a previous result
    folder = tmp_path / case
    folder.mkdir()
    target: list[Path] = [folder]
    if case == "unreadable":
        (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
        (folder / "empty.png").write_bytes(b"")
    elif case == "bad_video":
        video = folder / "clip.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
        target = [video]
    elif case == "bad_model":
        win.controller.set_model(str(tmp_path / "no-such-model"))
        (folder / "a.png").write_bytes((Path(__file__)).read_bytes()[:0])
    with qtbot.waitSignal(win.controller.failed, timeout=60_000) as blocker:
        assert win.open_paths([str(p) for p in target])
    info = blocker.args[0]
    assert info.kind == ("model" if case == "bad_model" else "input")
    box = win.error_dialog
    assert box is not None and box.isVisible()
    assert info.message in box.informativeText()
    assert "log" in box.informativeText()  # where the details are
    assert win.state.reconstruction is synthetic_rec  # kept
    assert win.controller.run_state == RunState.FAILED
    assert info.title in win.banner.text()
    # the status bar no longer reports the previous run
    assert win.statusBar().currentMessage().startswith(f"Run failed: {info.title}")
    if case == "unreadable":
        assert "broken.jpg" in info.message


def test_skipped_files_are_listed(qtbot, make_window, images, tmp_path):
    win = make_window()
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in sorted(images.glob("*.png")):
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "zz_broken.jpg").write_bytes(b"garbage")
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        win.open_paths([folder])
    assert win.state.reconstruction.n_views == 4
    assert "1 file(s) skipped" in win.banner.text() and "zz_broken.jpg" in win.banner.text()


def test_cancel_keeps_the_previous_result(qtbot, make_window, images, synthetic_rec):
    win = make_window()
    win.controller._show(synthetic_rec)
    seen: list[str] = []

    def on_progress(ev: ProgressEvent) -> None:
        seen.append(ev.stage)
        if ev.stage in ("encode", "images") and win.progress_panel.cancel_button.isEnabled():
            win.progress_panel.cancel_button.click()

    win.controller.progress.connect(on_progress)
    with qtbot.waitSignal(
        win.controller.state_changed, timeout=60_000, check_params_cb=lambda s: s == "cancelled"
    ):
        win.open_paths([images])
        assert win.progress_panel.isVisibleTo(win)
    assert win.state.reconstruction is synthetic_rec
    assert "poses" not in seen
    assert win.progress_panel.isHidden()
    assert not win.controller.busy


def test_progress_panel_shows_stage_eta_and_cancel(qtbot, make_window, images):
    win = make_window()
    panel = win.progress_panel
    stages: list[tuple[str, str, float]] = []
    win.controller.progress.connect(lambda ev: stages.append((ev.stage, panel.stage_text, panel.fraction)))
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        win.open_paths([images])
        assert panel.isVisibleTo(win) and panel.cancel_button.isEnabled()
    labels = {s: text for s, text, _ in stages}
    assert labels["encode"].startswith("Encoding")
    assert labels["poses"].startswith("Cameras")
    assert labels["images"].startswith("Loading images")
    values = [v for s, _, v in stages if s not in ("load",)]
    assert values == sorted(values)  # the overall bar only moves forward during the run
    assert panel.memory_label.text().startswith("memory:")


def test_views_panel_visibility_highlight_and_fly(qtbot, make_window, synthetic_rec):
    win = make_window()
    win.controller._show(synthetic_rec)
    table = win.views_panel.table
    item = table.item(1, 0)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert list(win.state.visible_views) == [True, False, True, True]
    assert "3 of 4 views" in win.views_panel.summary.text()
    qtbot.waitUntil(lambda: "3/4 views" in win.scene_label.text(), timeout=2000)  # throttled
    rect = table.visualItemRect(table.item(2, 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert win.state.highlighted_view == 2
    assert ("fly_to_view", (2,), {}) in win.viewer.calls
    assert win.preview.view == 2 and "View 2" in win.preview.caption.text()
    assert win.preview.image_label.pixmap() is not None and not win.preview.image_label.pixmap().isNull()
    # a frustum clicked in the viewport highlights the view and shows its photo, without flying
    win.viewer.view_clicked.emit(3)
    assert win.state.highlighted_view == 3 and win.preview.view == 3
    assert table.selectionModel().selectedRows()[0].row() == 3
    # low/high confidence classes
    win.views_panel.class_spin.setValue(1e5)  # every view is "low" now
    win.views_panel.low_check.setChecked(False)
    assert not win.state.shown_views().any()
    win.views_panel.low_check.setChecked(True)
    win.views_panel.none_button.click()
    assert not win.state.visible_views.any()
    win.views_panel.invert_button.click()
    assert win.state.visible_views.all()


def test_playback_shows_views_cumulatively(qtbot, make_window, synthetic_rec):
    win = make_window()
    win.controller._show(synthetic_rec)
    bar = win.playback
    assert bar.isVisibleTo(win) and bar.label.text() == "all 4 views"
    bar.slider.setValue(1)
    assert win.state.timestep == 1
    assert list(win.state.shown_views()) == [True, True, False, False]
    bar.fps_spin.setValue(50.0)
    bar.slider.setValue(3)  # the end = all views
    assert win.state.timestep == -1
    win.act_play.trigger()
    assert bar.playing and win.state.timestep == 0
    qtbot.waitUntil(lambda: not bar.playing, timeout=3000)
    assert win.state.timestep == -1


def test_view_menu_writes_the_state_and_calls_the_viewer(make_window, synthetic_rec):
    win = make_window()
    win.controller._show(synthetic_rec)
    win.act_show_axes.trigger()
    assert win.state.show_axes is True
    win.act_show_cameras.trigger()
    assert win.state.show_cameras is False
    win.color_actions["confidence"].trigger()
    assert win.state.color_mode == "confidence"
    assert win.display_panel.color_combo.currentData() == "confidence"
    win.act_local.trigger()
    assert win.state.source == "local"
    assert win.display_panel.source_combo.currentData() == "local"
    size = win.state.point_size
    win.act_bigger.trigger()
    assert win.state.point_size > size
    win.act_sky.trigger()
    assert win.state.mask_sky is True and win.display_panel.sky_check.isChecked()
    win.act_arcball_cam.trigger()
    win.act_reset.trigger()
    win.act_fit.trigger()
    names = [c[0] for c in win.viewer.calls]
    assert ("set_camera_mode", ("arcball",), {}) in win.viewer.calls
    assert "reset_view" in names and "fit_to_scene" in names
    # and the panel writes back into the menu
    win.display_panel.axes_check.setChecked(False)
    assert not win.act_show_axes.isChecked()


def test_theme_switch(make_window):
    win = make_window()
    win.theme_actions["light"].trigger()
    light = QApplication.instance().palette().window().color().lightness()
    win.theme_actions["dark"].trigger()
    dark = QApplication.instance().palette().window().color().lightness()
    assert light > 150 > 80 > dark
    assert win.settings.get("theme") == "dark"


def test_help_menu(make_window):
    win = make_window()
    dlg = win.show_shortcuts()
    names = {win.shortcuts_table.item(r, 0).text() for r in range(win.shortcuts_table.rowCount())}
    assert {"Open Folder", "Export PLY", "Reset Camera", "Cancel Run", "Play / Pause Views"} <= names
    dlg.close()
    about = win.show_about()
    text = about.text()
    assert "FAIR Noncommercial Research License" in text and "Apache-2.0" in text and "PySide6" in text
    about.close()


def test_closing_during_a_run_cancels_it(qtbot, make_window, images):
    win = make_window()
    win.show()
    started = []
    win.controller.progress.connect(lambda ev: started.append(ev.stage))
    win.open_paths([images])
    qtbot.waitUntil(lambda: bool(started), timeout=30_000)
    t0 = time.perf_counter()
    win.close()
    assert time.perf_counter() - t0 < 30
    assert not win.controller.host.thread.isRunning()
    assert win.settings.geometry() is not None


def test_model_and_size_in_the_status_bar(make_window):
    win = make_window()
    assert "224 px" in win.model_label.text() and "tiny" in win.model_label.text()
    win.size_actions[512].trigger()
    assert win.controller.size == 512 and "512 px" in win.model_label.text()
    win.device_actions["cpu"].trigger()
    assert win.controller.device == "cpu"
    assert np.isclose(win.settings.get("size"), 512)


def test_progress_panel_eta_excludes_the_model_load(qtbot, monkeypatch):
    from app.widgets import progress_panel as pp

    now = [100.0]
    monkeypatch.setattr(pp.time, "perf_counter", lambda: now[0])
    panel = pp.ProgressPanel()
    qtbot.addWidget(panel)
    panel.set_running(True)
    panel.update_progress(ProgressEvent("load", 5, 10))
    now[0] += 30.0  # a slow model load
    panel.update_progress(ProgressEvent("load", 10, 10))
    assert panel.eta_seconds() is None or panel.eta_seconds() < 1
    panel.update_progress(ProgressEvent("images", 0, 4))
    now[0] += 2.0
    panel.update_progress(ProgressEvent("encode", 4, 4))  # 40 % of the run in 2 s
    assert panel.fraction == pytest.approx(0.4)
    assert panel.eta_seconds() == pytest.approx(3.0)
    assert "32 s elapsed, about 3 s left" in panel.time_label.text()
    assert pp.format_seconds(3725) == "1:02:05"


def test_the_image_caption_flags_the_views_the_list_flags(qtbot, make_window, synthetic_rec) -> None:
    """A view whose pose fits few of its points is "unreliable" in the caption too, not "ok"."""
    import dataclasses

    share = np.array([0.9, 0.05, 0.9, 0.9], dtype=np.float32)
    pose_ok = np.array([True, True, False, True])
    rec = dataclasses.replace(synthetic_rec, pose_inlier_share=share, pose_ok=pose_ok)
    win = make_window()
    win.controller._show(rec)
    captions = {}
    for v in range(3):
        win.state.set_highlighted_view(v)
        captions[v] = win.preview.caption.text()
    assert "pose ok (90 % of its points fit)" in captions[0]
    assert "unreliable (5 % of its points fit)" in captions[1] and "pose ok" not in captions[1]
    assert ">failed<" in captions[2]
    assert win.views_panel.table.item(1, win.views_panel.COL_POSE).text() == "5 % !"


def test_the_pose_banner_belongs_to_the_shown_result(
    qtbot, make_window, synthetic_rec, images, tmp_path
) -> None:
    """An opened project with unreliable poses shows the warning; a run started and cancelled over it
    leaves the result shown, and its warning comes back."""
    import dataclasses

    from fast3r_core.project_file import save_project

    share = np.array([0.9, 0.05, 0.9, 0.9], dtype=np.float32)
    rec = dataclasses.replace(synthetic_rec, pose_inlier_share=share)
    project = save_project(rec, tmp_path / "weak.f3r")
    win = make_window()
    with qtbot.waitSignal(win.controller.project_loaded, timeout=30_000):
        win.open_paths([str(project)])
    assert "Unreliable pose for 1 view (1)" in win.banner.text()

    with qtbot.waitSignal(
        win.controller.state_changed, timeout=30_000, check_params_cb=lambda v: v == "cancelled"
    ):
        win.start_run([str(images)])
        qtbot.waitUntil(lambda: win.controller.busy, timeout=20_000)
        assert win.banner.text() == ""  # a new run clears it
        win.controller.cancel()
    assert win.state.reconstruction is not None and win.state.reconstruction.n_views == 4
    assert "Unreliable pose for 1 view (1)" in win.banner.text()
