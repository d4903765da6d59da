"""Issue 19 in the app: the input run options (intrinsics, masks, video frames) reach the run; the masks/
folder beside the photos is picked up; the mask overlay of the image preview; the views list's intrinsics
column; "Re-run Without These"."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QDialog, QMenu

from app.run_inputs import MIN_VIEWS_LEFT, auto_masks_folder, input_choices, views_to_exclude
from app.settings import Settings
from app.widgets.image_preview import MASK_TINT, ImagePreview
from app.worker import OPTION_ERROR_TITLES, RunRequest, classify_error
from fast3r_core.errors import InputError, IntrinsicsError, MaskError


def _capture_submits(win, monkeypatch: pytest.MonkeyPatch) -> list[RunRequest]:
    """Replace the worker's submit: the requests the controller would run are kept, nothing runs."""
    sent: list[RunRequest] = []
    monkeypatch.setattr(win.controller.host, "submit", sent.append)
    return sent


def _submitted(qtbot, sent: list[RunRequest], n: int = 1) -> RunRequest:
    # the memory check may read the image headers on the thread pool first
    qtbot.waitUntil(lambda: len(sent) >= n, timeout=20_000)
    return sent[-1]


def _intrinsics_json(folder: Path) -> Path:
    path = folder / "intrinsics.json"
    path.write_text(json.dumps({"fx": 100.0, "fy": 100.0, "cx": 63.5, "cy": 47.5}))
    return path


# ---------------------------------------------------------------------------------------------------
# run options -> ReconstructOptions
# ---------------------------------------------------------------------------------------------------


def test_input_options_reach_the_submitted_run(qtbot, make_window, images, tmp_path, monkeypatch) -> None:
    win = make_window()
    sent = _capture_submits(win, monkeypatch)
    intr = _intrinsics_json(tmp_path)
    masks = tmp_path / "my_masks"
    masks.mkdir()

    dlg = win.open_run_options()
    assert dlg.intrinsics.currentData() == "auto" and dlg.masks.currentData() == "auto"
    assert dlg.frames.currentData() == "sharp"
    monkeypatch.setattr(dlg, "ask_intrinsics_file", lambda: str(intr))
    monkeypatch.setattr(dlg, "ask_masks_folder", lambda: str(masks))
    # "From file..." opens the chooser (the user's own action: activated), as does "From folder..."
    dlg.intrinsics.setCurrentIndex(dlg.intrinsics.findData("file"))
    dlg.intrinsics.activated.emit(dlg.intrinsics.currentIndex())
    dlg.masks.setCurrentIndex(dlg.masks.findData("folder"))
    dlg.masks.activated.emit(dlg.masks.currentIndex())
    dlg.frames.setCurrentIndex(dlg.frames.findData("uniform"))
    assert dlg.intrinsics_file.path() == str(intr) and dlg.intrinsics_file.isEnabled()
    assert dlg.masks_folder.path() == str(masks) and dlg.masks_folder.isEnabled()
    dlg.accept()
    assert dlg.result() == QDialog.DialogCode.Accepted
    assert win.statusBar().currentMessage() == "Run options saved: they apply to the next run"

    # persisted like the other run options (a fresh reader of the same file sees them)
    win.settings.sync()
    again = Settings(win.settings.path)
    assert again.get("intrinsics") == "file" and again.get("intrinsics_file") == str(intr)
    assert again.get("masks") == "folder" and again.get("masks_folder") == str(masks)
    assert again.get("frames") == "uniform"

    assert win.start_run([str(images)])
    opts = _submitted(qtbot, sent).options
    assert opts.intrinsics == str(intr)
    assert opts.masks == str(masks)
    assert opts.frames == "uniform"
    assert opts.exclude == ()

    # a reopened dialog shows the stored choices; "Estimate" and no masks reach the next run
    dlg = win.open_run_options()
    assert dlg.intrinsics.currentData() == "file" and dlg.masks.currentData() == "folder"
    assert dlg.frames.currentData() == "uniform"
    dlg.intrinsics.setCurrentIndex(dlg.intrinsics.findData("estimate"))
    dlg.masks.setCurrentIndex(dlg.masks.findData("none"))
    dlg.frames.setCurrentIndex(dlg.frames.findData("sharp"))
    dlg.accept()
    assert win.start_run([str(images)])
    opts = _submitted(qtbot, sent, 2).options
    assert (opts.intrinsics, opts.masks, opts.frames) == ("estimate", None, "sharp")


def test_cancelled_chooser_keeps_the_previous_choice(make_window, monkeypatch) -> None:
    win = make_window()
    dlg = win.open_run_options()
    monkeypatch.setattr(dlg, "ask_intrinsics_file", lambda: "")
    monkeypatch.setattr(dlg, "ask_masks_folder", lambda: "")
    dlg.intrinsics.setCurrentIndex(dlg.intrinsics.findData("file"))
    dlg.intrinsics.activated.emit(dlg.intrinsics.currentIndex())
    assert dlg.intrinsics.currentData() == "auto" and not dlg.intrinsics_file.isEnabled()
    dlg.masks.setCurrentIndex(dlg.masks.findData("folder"))
    dlg.masks.activated.emit(dlg.masks.currentIndex())
    assert dlg.masks.currentData() == "auto"


def test_bad_intrinsics_file_or_masks_folder_is_reported_in_the_dialog(make_window, tmp_path) -> None:
    win = make_window()
    bad = tmp_path / "broken.json"
    bad.write_text('{"fx": "wide"')
    dlg = win.open_run_options()
    dlg.intrinsics.setCurrentIndex(dlg.intrinsics.findData("file"))
    dlg.intrinsics_file.edit.setText(str(bad))
    dlg.accept()
    assert dlg.isVisible() and dlg.result() != QDialog.DialogCode.Accepted  # stays open
    assert not dlg.error.isHidden() and "broken.json" in dlg.error.text()
    assert win.settings.get("intrinsics") == "auto"  # nothing stored

    dlg.intrinsics.setCurrentIndex(dlg.intrinsics.findData("auto"))
    dlg.masks.setCurrentIndex(dlg.masks.findData("folder"))
    dlg.masks_folder.edit.setText(str(tmp_path / "missing"))
    dlg.accept()
    assert dlg.isVisible() and "missing" in dlg.error.text()
    assert win.settings.get("masks") == "auto"


@pytest.mark.parametrize(
    ("exc", "title"),
    [
        (IntrinsicsError("/x/cameras.txt: line 4: 3 values, expected 4"), "Cannot use the intrinsics file"),
        (MaskError("/x/masks/a.png: the mask is 10x10 but its photo is 20x20"), "Cannot use the masks"),
    ],
)
def test_core_input_errors_are_shown_with_the_file(make_window, exc, title) -> None:
    info = classify_error(exc, job_id=3)
    assert (info.kind, info.title, info.message) == ("input", title, str(exc))
    assert info.title in OPTION_ERROR_TITLES
    win = make_window()
    win.show_error(info)
    box = win.error_dialog
    assert box is not None and box.isVisible()
    assert str(exc) in box.informativeText() and "Run Options" in box.informativeText()


# ---------------------------------------------------------------------------------------------------
# the masks/ folder beside the photos
# ---------------------------------------------------------------------------------------------------


def test_masks_folder_beside_the_photos_is_picked_up(qtbot, make_window, tmp_path, monkeypatch) -> None:
    from tests.tiny import write_views

    photos = tmp_path / "photos"
    files = write_views(photos, 3)
    (photos / "masks").mkdir()
    win = make_window()
    sent = _capture_submits(win, monkeypatch)
    messages: list[str] = []
    win.controller.message.connect(messages.append)

    assert win.start_run([str(photos)])
    opts = _submitted(qtbot, sent).options
    assert opts.masks == str((photos / "masks").resolve())
    assert any("found beside the photos" in m and "masks" in m for m in messages)
    # the run options say so too (for the last run's photos)
    dlg = win.open_run_options()
    assert f"Found: {(photos / 'masks').resolve()}" in dlg.masks_note.text()
    dlg.reject()

    # image files of one folder: the same folder; "None" turns it off
    assert auto_masks_folder([str(f) for f in files]) == (photos / "masks").resolve()
    win.settings.set("masks", "none")
    assert input_choices(win.settings, [str(photos)]).masks is None
    # no masks/ folder, or a video: nothing
    assert auto_masks_folder([str(tmp_path)]) is None
    assert auto_masks_folder([str(photos / "clip.mp4")]) is None


def test_input_choice_fallbacks(tmp_path) -> None:
    settings = Settings(tmp_path / "s.ini")
    settings.set("intrinsics", "file")  # no file chosen: EXIF / estimate
    settings.set("masks", "folder")  # no folder chosen: the automatic one
    choices = input_choices(settings, [str(tmp_path)])
    assert (choices.intrinsics, choices.masks, choices.frames) == ("auto", None, "sharp")
    assert choices.describe() == ""
    settings.set("intrinsics_file", str(tmp_path / "cams.json"))  # missing: the core names it
    assert input_choices(settings, [str(tmp_path)]).intrinsics == str(tmp_path / "cams.json")


# ---------------------------------------------------------------------------------------------------
# image preview: the mask overlay
# ---------------------------------------------------------------------------------------------------


def _masked(rec, known=None):
    """``rec`` with keep-masks that leave out the left half of every view (view 2: nothing left out)."""
    masks = []
    for v, c in enumerate(rec.conf):
        keep = np.ones(c.shape, dtype=bool)
        if v != 2:
            keep[:, : c.shape[1] // 2] = False
        masks.append(keep)
    known = np.array(known if known is not None else [True, False] * (rec.n_views // 2), dtype=bool)
    return dataclasses.replace(rec, keep_masks=tuple(masks), intrinsics_known=known)


def test_mask_overlay_tints_the_left_out_pixels(qtbot, synthetic_rec) -> None:
    from app.state import ViewerState

    state = ViewerState()
    preview = ImagePreview(state)
    qtbot.addWidget(preview)
    rec = _masked(synthetic_rec)
    state.set_reconstruction(rec)
    state.set_highlighted_view(1)
    assert preview.mask_check.isEnabled() and not preview.mask_check.isChecked()
    photo = preview.shown_image().copy()
    assert (photo.width(), photo.height()) == tuple(int(x) for x in rec.original_sizes[1])

    preview.mask_check.setChecked(True)
    shown = preview.shown_image()
    left, top, right, bottom = (int(x) for x in rec.crop_boxes[1])
    rw, rh = (int(x) for x in rec.resized_sizes[1])
    sx, sy = photo.width() / rw, photo.height() / rh
    y = int((top + bottom) / 2 * sy)
    masked_x = int((left + (right - left) / 4) * sx)  # the mask's left half: False
    kept_x = int((left + 3 * (right - left) / 4) * sx)  # its right half: True
    before, after = QColor(photo.pixel(masked_x, y)), QColor(shown.pixel(masked_x, y))
    assert after != before
    # blended towards the tint (source-over with the tint's alpha)
    alpha = MASK_TINT.alpha() / 255
    for channel in ("red", "green", "blue"):
        b, t = getattr(before, channel)(), getattr(MASK_TINT, channel)()
        assert abs(getattr(after, channel)() - round(b * (1 - alpha) + t * alpha)) <= 2, channel
    assert QColor(shown.pixel(kept_x, y)) == QColor(photo.pixel(kept_x, y))
    # the text says how much is left out and whether the intrinsics were known
    assert "mask leaves out 50 %" in preview.caption.text() and "estimated" in preview.caption.text()

    # a view whose mask keeps everything: no overlay to show, and the box does not claim one (shown
    # unchecked); the choice stays for the next view with a mask
    state.set_highlighted_view(2)
    assert not preview.mask_check.isEnabled() and not preview.mask_check.isChecked()
    assert preview.shown_image().pixel(masked_x, y) == QImage(rec.image_paths[2]).pixel(masked_x, y)
    state.set_highlighted_view(0)
    assert preview.mask_check.isEnabled() and preview.mask_check.isChecked()
    assert preview.shown_image().pixel(masked_x, y) != QImage(rec.image_paths[0]).pixel(masked_x, y)
    preview.mask_check.setChecked(False)
    assert preview.shown_image().pixel(masked_x, y) == QImage(rec.image_paths[0]).pixel(masked_x, y)

    # a result without masks: disabled, unchecked; the user's "off" stays off for masked views
    state.set_reconstruction(synthetic_rec)
    state.set_highlighted_view(1)
    assert not preview.mask_check.isEnabled() and not preview.mask_check.isChecked()
    assert "no mask" in preview.mask_check.toolTip()
    state.set_reconstruction(rec)
    state.set_highlighted_view(1)
    assert preview.mask_check.isEnabled() and not preview.mask_check.isChecked()
    preview.mask_check.setChecked(True)
    state.set_reconstruction(synthetic_rec)
    state.set_highlighted_view(1)
    assert not preview.mask_check.isChecked()
    state.set_reconstruction(rec)
    state.set_highlighted_view(1)
    assert preview.mask_check.isChecked()  # remembered across the maskless result
    assert preview.shown_image().pixel(masked_x, y) != QImage(rec.image_paths[1]).pixel(masked_x, y)


def test_views_list_shows_a_dash_not_nan_for_a_view_without_points(make_window, synthetic_rec) -> None:
    """A view whose mask leaves out every pixel (and whose pose failed) has no confidence to show."""
    win = make_window()
    panel = win.views_panel
    masks = [np.ones(c.shape, dtype=bool) for c in synthetic_rec.conf]
    masks[1][:] = False
    pose_ok = np.array(synthetic_rec.pose_ok, dtype=bool).copy()
    pose_ok[1] = False
    share = np.array(synthetic_rec.pose_inlier_share, dtype=np.float64).copy()
    share[1] = np.nan
    rec = dataclasses.replace(
        synthetic_rec, keep_masks=tuple(masks), pose_ok=pose_ok, pose_inlier_share=share
    )
    win.state.set_reconstruction(rec)
    texts = [panel.table.item(1, col).text() for col in range(panel.table.columnCount())]
    assert not any("nan" in t.lower() for t in texts), texts
    conf = panel.table.item(1, panel.COL_CONF)
    assert conf.text() == "\u2013"
    assert "no points" in conf.toolTip() and "mask" in conf.toolTip()
    win.state.set_highlighted_view(1)
    assert "nan" not in win.preview.caption.text().lower()
    # the other views keep their numbers and tooltips
    assert panel.table.item(0, panel.COL_CONF).text() != "\u2013"
    assert "confidence view" in panel.table.item(0, panel.COL_CONF).toolTip()


def test_mask_overlay_on_the_model_colours_when_the_photo_is_missing(qtbot, synthetic_rec) -> None:
    from app.state import ViewerState

    rec = _masked(
        dataclasses.replace(synthetic_rec, image_paths=tuple(f"/nowhere/{i}.png" for i in range(4)))
    )
    state = ViewerState()
    preview = ImagePreview(state)
    qtbot.addWidget(preview)
    state.set_reconstruction(rec)
    state.set_highlighted_view(0)
    preview.mask_check.setChecked(True)
    img = preview.shown_image()
    h, w = rec.conf[0].shape
    assert (img.width(), img.height()) == (w, h)  # the model input itself, pixel for pixel
    keep = rec.keep_masks[0]
    colors = rec.colors[0]
    for x in (0, w // 2 - 1, w // 2, w - 1):
        c = QColor(img.pixel(x, h // 2))
        same = (c.red(), c.green(), c.blue()) == tuple(int(v) for v in colors[h // 2, x])
        assert same == bool(keep[h // 2, x])


# ---------------------------------------------------------------------------------------------------
# views list: intrinsics source and masked share
# ---------------------------------------------------------------------------------------------------


def test_views_list_shows_known_or_estimated_intrinsics(make_window, synthetic_rec) -> None:
    win = make_window()
    panel = win.views_panel
    rec = _masked(synthetic_rec, known=[True, False, True, False])
    win.state.set_reconstruction(rec)
    col = panel.COL_INTR
    assert panel.table.horizontalHeaderItem(col).text() == "Intr."
    texts = [panel.table.item(v, col).text() for v in range(4)]
    assert texts == ["known", "est.", "known", "est."]
    assert "Known intrinsics" in panel.table.item(0, col).toolTip()
    assert "Estimated intrinsics" in panel.table.item(1, col).toolTip()
    assert "leaves out 50 %" in panel.table.item(1, col).toolTip()
    assert "leaves out" not in panel.table.item(2, col).toolTip()  # its mask keeps everything
    assert panel.table.item(3, panel.COL_NAME).toolTip() == rec.image_paths[3]  # the path, as before
    assert "2 with known intrinsics, 3 masked" in panel.summary.text()

    assert not panel.table.isColumnHidden(col)
    assert "Known intrinsics" in panel.table.item(0, col).toolTip()

    # no masks, nothing known (a project from before): the column would only say "est.", it is hidden
    win.state.set_reconstruction(synthetic_rec)
    assert [panel.table.item(v, col).text() for v in range(4)] == ["est."] * 4
    assert panel.table.isColumnHidden(col)
    assert "with known intrinsics" not in panel.summary.text()


# ---------------------------------------------------------------------------------------------------
# Re-run Without These
# ---------------------------------------------------------------------------------------------------


def _ctrl_click_rows(qtbot, panel, rows: list[int]) -> None:
    table = panel.table
    for i, row in enumerate(rows):
        rect = table.visualRect(table.model().index(row, panel.COL_CONF))
        mod = Qt.KeyboardModifier.ControlModifier if i else Qt.KeyboardModifier.NoModifier
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, mod, rect.center())


def _context_menu_action(panel, row: int):
    """Ask for the list's context menu over ``row`` (as a right-click does); its re-run action."""
    table = panel.table
    before = set(panel.findChildren(QMenu))
    pos = table.visualRect(table.model().index(row, panel.COL_CONF)).center()
    table.customContextMenuRequested.emit(pos)
    menu = next(m for m in panel.findChildren(QMenu) if m not in before)
    action = next(a for a in menu.actions() if a.text() == "Re-run Without These")
    menu.close()
    return action


def test_rerun_without_selected_views_submits_exclude(qtbot, make_window, synthetic_rec, monkeypatch) -> None:
    win = make_window()
    win.show()
    sent = _capture_submits(win, monkeypatch)
    # like an opened project (its photos are the inputs) whose run left out a photo: that one is not
    # among the inputs, so it is not named again (the core refuses a name that matches no input)
    shown = dataclasses.replace(synthetic_rec, options={**synthetic_rec.options, "exclude": ["gone.png"]})
    win.state.set_reconstruction(shown)
    panel = win.views_panel
    assert not panel.rerun_action.isEnabled()  # nothing selected
    _ctrl_click_rows(qtbot, panel, [1, 3])
    assert panel.selected_views() == [1, 3]
    assert win.state.highlighted_view == 1  # the plain click highlights; Ctrl+click only selects
    action = _context_menu_action(panel, 3)
    assert action is panel.rerun_action and action.isEnabled()
    assert panel.rerun_button.defaultAction() is action
    action.trigger()

    req = _submitted(qtbot, sent)
    assert req.options.exclude == ("view_01.png", "view_03.png")
    assert req.inputs == list(synthetic_rec.image_paths)
    # the run has not given a result: the shown result's inputs are unchanged, and Run Again reads them
    assert win.controller.inputs == [] and win.controller.exclude == ()
    assert win.controller.rerun_plan() == (list(synthetic_rec.image_paths), ())


def test_rerun_without_refuses_to_leave_fewer_than_two_views(
    qtbot, make_window, synthetic_rec, monkeypatch
) -> None:
    win = make_window()
    win.show()
    sent = _capture_submits(win, monkeypatch)
    win.state.set_reconstruction(synthetic_rec)
    panel = win.views_panel
    _ctrl_click_rows(qtbot, panel, [0, 1, 2])
    _context_menu_action(panel, 0).trigger()
    box = win.error_dialog
    assert box is not None and box.isVisible()
    assert box.windowTitle() == "Cannot leave out these views"
    assert f"at least {MIN_VIEWS_LEFT} views must remain" in box.informativeText()
    qtbot.wait(50)
    assert sent == []

    with pytest.raises(InputError, match="leave no view"):
        views_to_exclude(synthetic_rec.image_paths, {}, range(4))
    with pytest.raises(InputError, match="Select"):
        views_to_exclude(synthetic_rec.image_paths, {}, [])
    # views left out earlier stay out, each name once
    assert views_to_exclude(["/a/x.jpg", "/a/y.jpg", "/a/z.jpg"], {"exclude": ["w.jpg"]}, [1]) == (
        "w.jpg",
        "y.jpg",
    )


def test_rerun_without_these_runs_and_the_project_records_them(qtbot, make_window, images, tmp_path) -> None:
    from fast3r_core import load_project

    win = make_window()
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        assert win.start_run([str(images)])
    rec = win.state.reconstruction
    names = [Path(p).name for p in rec.image_paths]
    win.views_panel.table.selectRow(2)
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        win.views_panel.rerun_action.trigger()
    assert win.controller.inputs == [str(images)]  # the folder again, not its files
    rec2 = win.state.reconstruction
    assert rec2.options["exclude"] == [names[2]]
    # Run Again keeps it out
    assert win.controller.rerun_plan() == ([str(images)], (names[2],))
    assert "1 left out of the run" in win.views_panel.summary.text()
    # the project keeps them
    dest = tmp_path / "scene.f3r"
    with qtbot.waitSignal(win.controller.project_saved, timeout=60_000):
        win.controller.save_project(dest)
    assert load_project(dest).options["exclude"] == [names[2]]


def test_rerun_without_names_a_file_by_its_path_when_another_input_shares_its_name() -> None:
    from app.run_inputs import views_to_exclude

    paths = ["/p/camA/view_00.png", "/p/camA/view_01.png", "/p/camB/view_00.png", "/p/camB/view_02.png"]
    assert views_to_exclude(paths, {}, [2, 3]) == ("/p/camB/view_00.png", "view_02.png")
    assert views_to_exclude(paths, {"exclude": ["x.png"]}, [1]) == ("x.png", "view_01.png")


def test_a_masks_folder_or_intrinsics_file_is_not_carried_into_the_next_session(tmp_path) -> None:
    """Chosen for one set of photos, they would silently drop or skew the next ones: a new launch
    starts from the automatic choices (the paths are kept for the dialog to offer)."""
    from app.settings import Settings

    s = Settings(tmp_path / "settings.ini")
    s.set("masks", "folder")
    s.set("masks_folder", str(tmp_path))
    s.set("intrinsics", "file")
    s.set("frames", "uniform")
    Settings(tmp_path / "settings.ini").start_session()
    again = Settings(tmp_path / "settings.ini")
    assert again.get("masks") == "auto" and again.get("intrinsics") == "auto"
    assert again.get("masks_folder") == str(tmp_path) and again.get("frames") == "uniform"


def test_rerun_without_ignores_a_malformed_stored_exclusion() -> None:
    """A project's options are data from a file: an "exclude" that is not a list of names is ignored."""
    from app.run_inputs import views_to_exclude

    paths = ["/p/a.png", "/p/b.png", "/p/c.png"]
    for stored in ("abc", 7, {"x": 1}, ["ok.png", 3, None]):
        got = views_to_exclude(paths, {"exclude": stored}, [0])
        assert got == (("ok.png", "a.png") if isinstance(stored, list) else ("a.png",))


def test_a_failed_or_cancelled_run_does_not_replace_the_inputs_run_again_reads(
    qtbot, make_window, images, tmp_path
) -> None:
    """Run Again and Re-run Without These re-run the shown result's inputs: never those of a later run
    that failed or was cancelled, and an opened project's own photos, not the folder run before it."""
    win = make_window()
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        assert win.start_run([str(images)])
    names = [Path(p).name for p in win.state.reconstruction.image_paths]
    assert win.act_rerun.isEnabled()

    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(win.controller.failed, timeout=30_000):
        win.controller.start_run([str(empty)])
    assert win.controller.rerun_plan() == ([str(images)], ())
    assert win.controller.rerun_plan([1]) == ([str(images)], (names[1],))

    from tests.tiny import write_views

    other = tmp_path / "other"
    write_views(other, 3)
    with qtbot.waitSignal(
        win.controller.state_changed, timeout=30_000, check_params_cb=lambda v: v == "cancelled"
    ):
        win.controller.start_run([str(other)])
        win.controller.cancel()
    assert win.controller.rerun_plan() == ([str(images)], ())
    qtbot.waitUntil(lambda: win.act_rerun.isEnabled(), timeout=10_000)

    # an opened project: its photos, not the folder run before it
    project = tmp_path / "p.f3r"
    with qtbot.waitSignal(win.controller.project_saved, timeout=60_000):
        win.controller.save_project(project)
    with qtbot.waitSignal(win.controller.result_ready, timeout=60_000):
        win.controller.start_run([str(other)])
    with qtbot.waitSignal(win.controller.project_loaded, timeout=60_000):
        win.controller.open_project(project)
    inputs, exclude = win.controller.rerun_plan()
    assert sorted(Path(p).name for p in inputs) == sorted(names) and exclude == ()
    assert all(Path(p).parent == images for p in inputs)


def test_a_left_out_name_that_matches_no_input_is_ignored_and_said(qtbot, make_window, images) -> None:
    """A re-run carries the names left out of a result; when the inputs no longer hold one (a video's
    frames chosen another way) the run goes on without it and the status bar says so."""
    win = make_window()
    messages: list[str] = []
    win.controller.message.connect(messages.append)
    names = sorted(p.name for p in images.iterdir())
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        win.controller.start_run([str(images)], exclude=("frame_000010.jpg", names[1]))
    rec = win.state.reconstruction
    assert [Path(p).name for p in rec.image_paths] == [n for n in names if n != names[1]]
    assert any(
        "1 left-out file not among this run's inputs" in m and "frame_000010.jpg" in m for m in messages
    )
