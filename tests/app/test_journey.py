"""The app as a new user meets it (issue 17): cancel, honest states, first launch, exports."""

from __future__ import annotations

import os

import numpy as np

from fast3r_core.progress import ProgressEvent


def _run(qtbot, win, inputs: list[str]) -> None:
    with qtbot.waitSignal(win.controller.run_finished, timeout=60_000):
        assert win.start_run(inputs)


# -- 1. Cancel is enabled during every run ---------------------------------------------------------
def test_cancel_is_enabled_in_the_second_run_and_rerun_disabled(qtbot, make_window, images):
    win = make_window()
    _run(qtbot, win, [str(images)])
    assert not win.act_cancel.isEnabled()
    with qtbot.waitSignal(win.controller.run_finished, timeout=60_000):
        assert win.start_run([str(images)])
        # the model is loaded: the state goes straight to RUNNING; the actions must see the queued job
        assert win.act_cancel.isEnabled()
        assert not win.act_rerun.isEnabled()
        assert not win.act_add_images.isEnabled()
    assert not win.act_cancel.isEnabled()
    assert win.act_rerun.isEnabled()


# -- 2. "Cancelling..." until the run has stopped ----------------------------------------------------
def test_cancel_says_cancelling_until_the_run_stopped(qtbot, make_window, images):
    from app.controller import RunState

    win = make_window()
    c = win.controller
    fired: list[str] = []

    def on_progress(ev: ProgressEvent) -> None:
        if ev.stage == "encode" and not fired:
            fired.append(ev.stage)
            win.act_cancel.trigger()  # Esc
            assert c.run_state == RunState.CANCELLING
            assert win.progress_panel.stage_label.text() == "Cancelling..."
            assert not win.progress_panel.cancel_button.isEnabled()
            assert not win.act_cancel.isEnabled()
            assert win.statusBar().currentMessage() == "Cancelling..."
            # a late progress event of the stopping run does not bring the stage back
            c._on_progress(c._job.job_id, ProgressEvent("fuse", 1, 4))
            assert win.progress_panel.stage_label.text() == "Cancelling..."
            assert c.run_state == RunState.CANCELLING

    c.progress.connect(on_progress)
    with qtbot.waitSignal(c.host.cancelled, timeout=60_000):
        assert win.start_run([str(images)])
    assert fired
    assert c.run_state == RunState.CANCELLED
    assert win.progress_panel.isHidden()
    assert not win.act_cancel.isEnabled()
    assert win.statusBar().currentMessage().startswith("Run cancelled")


# -- 3. An absolute confidence threshold does not carry over to another scene ---------------------------
def test_threshold_is_reset_for_a_new_scene_and_kept_for_a_rerun(qtbot, make_window, images, tmp_path):
    from tests.tiny import write_views

    win = make_window()
    st = win.state
    _run(qtbot, win, [str(images)])
    ps = st.point_set()
    st.conf_mode = "threshold"
    st.threshold = float(ps.conf[len(ps) // 2])
    _run(qtbot, win, [str(images)])  # the same scene and model: the threshold means the same
    assert st.conf_mode == "threshold"
    other = tmp_path / "other"
    write_views(other, 3, size=(96, 128))
    _run(qtbot, win, [str(other)])
    assert st.conf_mode == "top_percent"
    assert st.prefix_count() == st.point_set().count_top_percent(float(st.top_percent))
    assert "confidence filter reset to the top" in win.statusBar().currentMessage()


def test_a_saved_threshold_does_not_carry_over_to_the_next_session(qtbot, make_window, images):
    win = make_window()
    win.state.conf_mode = "threshold"  # what the settings of the last session restore
    win.state.threshold = 1e9
    _run(qtbot, win, [str(images)])
    assert win.state.conf_mode == "top_percent"
    assert win.state.shown_count() > 0


# -- 5. The Pose column shows what the pose estimate knows ----------------------------------------------
def test_pose_column_shows_the_inlier_share_and_flags_unreliable_views(qtbot, make_window, images, caplog):
    from fast3r_core.result import LOW_POSE_INLIER_SHARE

    win = make_window()
    _run(qtbot, win, [str(images)])
    rec = win.state.reconstruction
    share = rec.pose_inlier_share
    assert share.shape == (rec.n_views,) and np.isfinite(share).all()
    assert ((share >= 0) & (share <= 1)).all()
    table = win.views_panel.table
    col = win.views_panel.COL_POSE
    warned = [r.getMessage() for r in caplog.records if "unreliable" in r.getMessage()]
    for v in range(rec.n_views):
        text = table.item(v, col).text()
        assert text.startswith(f"{100 * share[v]:.0f} %")
        flagged = share[v] < LOW_POSE_INLIER_SHARE
        assert text.endswith("!") == flagged
        assert any(f"view {v}:" in m for m in warned) == flagged  # the list agrees with the log
    n_weak = int((share < LOW_POSE_INLIER_SHARE).sum())
    if n_weak:
        assert "without a reliable pose" in win.views_panel.summary.text()
        assert "Unreliable pose" in win.banner.text()


def test_pose_share_survives_a_project_round_trip(synthetic_rec, tmp_path):
    import dataclasses

    from fast3r_core.project_file import load_project, save_project

    share = np.linspace(0.1, 0.9, synthetic_rec.n_views).astype(np.float32)
    rec = dataclasses.replace(synthetic_rec, pose_inlier_share=share)
    back = load_project(save_project(rec, tmp_path / "p.f3r"))
    np.testing.assert_array_equal(back.pose_inlier_share, share)
    assert not back.per_view_stats()[0].pose_reliable and back.per_view_stats()[-1].pose_reliable


# -- 6. The whole wait, with the model load as a part; plural rules --------------------------------------
def test_status_shows_the_whole_wait_with_the_model_load(qtbot, make_window, images, tmp_path):
    from tests.tiny import write_views

    win = make_window()
    c = win.controller
    _run(qtbot, win, [str(images)])  # the first run loads the model
    w = c.last_wait
    assert w["load"] > 0 and w["wait"] >= w["load"] + w["run"] - 0.05
    msg = win.statusBar().currentMessage()
    if w["load"] >= 0.05:  # a tiny model in a warm process can load faster: then no load part is named
        assert f"in {w['wait']:.1f} s (model load {w['load']:.1f} s)" in msg
        assert f"last run {w['wait']:.1f} s (model load {w['load']:.1f} s" in win.timing_label.text()
    else:
        assert f"in {w['wait']:.1f} s" in msg and f"last run {w['wait']:.1f} s" in win.timing_label.text()
    one = tmp_path / "one"
    write_views(one, 1)
    _run(qtbot, win, [str(one)])  # the model is loaded now: no load part
    assert c.last_wait["load"] == 0.0
    msg = win.statusBar().currentMessage()
    assert msg.startswith("Reconstructed 1 view in ") and "model load" not in msg


def test_preloading_the_model_takes_the_load_off_the_first_run(qtbot, make_window, images):
    win = make_window()
    c = win.controller
    with qtbot.waitSignal(c.host.model_ready, timeout=60_000):
        c.preload_model()
    assert c.loaded_source == c.model
    _run(qtbot, win, [str(images)])
    assert c.last_result.load_seconds == 0.0


# -- 8. First launch: what the demo model is, how to go on ------------------------------------------------
def test_first_launch_says_what_the_demo_model_is_and_how_to_go_on(qtbot, make_window):
    from app.controller import first_sample
    from fast3r_core.weights import MODELS

    win = make_window()
    win.controller.set_model("demo")
    tb = win.toolbar
    assert not tb.isHidden()
    acts = tb.actions()
    for act in (win.act_open_folder, win.act_open_video, win.act_cancel, win.act_models):
        assert act in acts
    assert win.export_button.menu() is win.export_menu
    assert win.export_actions["ply"] in win.export_menu.actions()
    assert not win.export_button.isEnabled()  # nothing to export yet
    assert not win.demo_note.isHidden()
    sample_seen: list[bool] = []

    def on_state(st: str) -> None:
        if st in ("loading", "running"):
            sample_seen.append(win.drop_hint.sample_button.isVisibleTo(win))

    win.controller.state_changed.connect(on_state)
    with qtbot.waitSignal(win.controller.run_finished, timeout=120_000):
        win.open_sample()
    assert sample_seen and not any(sample_seen)  # no "Open Sample" while the sample runs
    assert win.state.reconstruction.model_name == "demo"
    assert first_sample() is not None
    note = win.demo_note
    assert not note.isHidden()
    text = note.label.text()
    pub = MODELS["fast3r-vitl-512"]
    assert "synthetic" in text and "not made for real photos" in text
    assert "2.6 GB" in text and pub.license_name in text and "Model Manager" in text
    assert "%" not in text  # no accuracy figures
    assert win.export_button.isEnabled()
    note.models_button.click()  # opens the model manager (non-modal in tests)
    note.dismiss()
    assert note.isHidden()
    win.controller.set_model("fast3r-vitl-512")
    win._update_empty()
    assert note.isHidden()


def test_no_demo_note_for_other_models(qtbot, make_window, images):
    win = make_window()  # the tiny test model
    _run(qtbot, win, [str(images)])
    assert win.demo_note.isHidden()


# -- 7. Video inputs: the video's name in the title, frame names that fit ----------------------------------
def test_video_title_and_frame_names(qtbot, make_window, tmp_path):
    import cv2

    path = tmp_path / "kitchen.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 2.0, (160, 120))
    base = np.random.default_rng(0).integers(0, 255, (120, 240, 3), dtype=np.uint8)
    for i in range(6):
        writer.write(np.ascontiguousarray(base[:, 10 * i : 10 * i + 160]))
    writer.release()
    win = make_window()
    win.resize(1280, 800)
    win.show()
    _run(qtbot, win, [str(path)])
    assert win.windowTitle().startswith("kitchen.mp4 - ")
    table = win.views_panel.table
    rec = win.state.reconstruction
    qtbot.wait(50)
    fm = table.fontMetrics()
    for v in range(rec.n_views):
        text = table.item(v, 0).text()
        assert text.startswith(f"{v}  frame ") and "kitchen-" not in text
        needed = fm.horizontalAdvance(text) + table.iconSize().width() + 24  # icon, checkbox, margins
        assert needed <= table.columnWidth(0) + 28, (text, needed, table.columnWidth(0))
        assert table.item(v, 0).toolTip() == rec.image_paths[v]


# -- 10. The visibility checkbox does not fly the camera ----------------------------------------------------
def test_checkbox_click_toggles_without_flying(qtbot, make_window, synthetic_rec):
    from PySide6.QtCore import QPoint, Qt

    win = make_window()
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    win.controller._show(synthetic_rec)
    table = win.views_panel.table
    flights = lambda: [c for c in win.viewer.calls if c[0] == "fly_to_view"]  # noqa: E731
    rect = table.visualItemRect(table.item(1, 0))
    check = QPoint(rect.left() + 12, rect.center().y())  # the check indicator comes first in the cell
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=check)
    assert not win.state.visible_views[1]
    assert flights() == []
    qtbot.wait(10)
    # a click on the name still highlights the view and flies to it
    qtbot.mouseClick(
        table.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.center().x() + 40, rect.center().y())
    )
    assert win.state.visible_views[1] is not None and flights() and flights()[-1][1] == (1,)
    assert win.state.highlighted_view == 1


# -- 13. A runtime switch to the light theme leaves no pale text on white --------------------------------
def test_runtime_light_theme_has_dark_text(qtbot, make_window, synthetic_rec, tmp_path):
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLabel
    from superqt import QLabeledDoubleSlider

    from app.theme import apply_theme

    app = QApplication.instance()
    apply_theme(app, "dark")
    try:
        win = make_window()
        win.resize(1280, 800)
        win.show()
        qtbot.waitExposed(win)
        win.controller._show(synthetic_rec)
        win.set_theme("light")
        qtbot.wait(50)
        table = win.views_panel.table
        for v in range(synthetic_rec.n_views):
            fg = table.item(v, 0).foreground().color()
            assert fg.lightness() < 110, (v, fg.name())
        for w in [*win.confidence_panel.findChildren(QLabel), *win.display_panel.findChildren(QLabel)]:
            if w.isVisibleTo(win) and w.text():
                assert w.palette().color(w.foregroundRole()).lightness() < 110, (w.text(), w.objectName())
        for w in [
            *win.confidence_panel.findChildren(QAbstractSpinBox),
            *win.display_panel.findChildren(QAbstractSpinBox),
        ]:
            if w.isVisibleTo(win):
                assert w.palette().color(w.foregroundRole()).lightness() < 110
                assert w.palette().color(w.palette().ColorRole.Text).lightness() < 110
        # what is drawn, not only the palette: the sliders' value labels carry a style sheet, and a
        # widget with a style sheet kept the dark theme's pale text after the switch
        shot = win.grab().toImage()
        for slider in (win.confidence_panel.slider, win.display_panel.findChild(QLabeledDoubleSlider)):
            label = slider._label
            at = label.mapTo(win, QPoint(0, 0))
            darkest = min(
                shot.pixelColor(at.x() + x, at.y() + y).lightness()
                for x in range(label.width())
                for y in range(label.height())
            )
            assert darkest < 110, (label.text(), darkest)
        win.grab().save(os.environ.get("F3R_SHOT_DIR", str(tmp_path)) + "/light.png")
    finally:
        apply_theme(app, "dark")


# -- 12. A small window (1024 x 640) keeps a usable viewport, and no dock covers another ---------------------
def test_small_window_layout(qtbot, make_window, synthetic_rec):
    from PySide6.QtWidgets import QCheckBox

    win = make_window()
    win.resize(1440, 900)  # a user shrinks the window (the docks keep their widths otherwise)
    win.show()
    qtbot.waitExposed(win)
    win.controller._show(synthetic_rec)
    qtbot.wait(50)
    win.resize(1024, 640)
    qtbot.wait(200)
    win.grab().save(os.environ.get("F3R_SHOT_DIR", "/tmp") + "/small.png")
    assert (win.width(), win.height()) == (1024, 640)  # the window can be that small
    assert win.viewer.native.width() >= 480
    sky = next(c for c in win.controls_dock.findChildren(QCheckBox) if c.text().startswith("Mask sky"))
    docks = [d for d in (win.views_dock, win.controls_dock, win.preview_dock) if d.isVisible()]
    shown = [d for d in docks if not d.visibleRegion().isEmpty()]
    for i, a in enumerate(shown):
        for b in shown[i + 1 :]:
            assert not a.geometry().intersects(b.geometry()), (a.windowTitle(), b.windowTitle())
    # the controls are all reachable: the sky checkbox is inside its dock (scrolled to if needed)
    area = win.controls_scroll
    area.ensureWidgetVisible(sky)
    qtbot.wait(10)
    top_left = sky.mapTo(win.controls_dock, sky.rect().topLeft())
    bottom = sky.mapTo(win.controls_dock, sky.rect().bottomLeft())
    assert win.controls_dock.rect().contains(top_left) and win.controls_dock.rect().contains(bottom)
    assert sky.visibleRegion().boundingRect().height() == sky.height()
