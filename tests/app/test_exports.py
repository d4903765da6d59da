"""File menu: exports of what the viewport shows, read back; project save/open; unwritable paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import trimesh

from fast3r_core.project_file import load_project
from fast3r_core.sky import sky_point_mask


@pytest.fixture
def win(make_window, synthetic_rec, tmp_path):
    w = make_window()
    w.controller._show(synthetic_rec)
    out = tmp_path / "out"
    out.mkdir()
    # the file dialogs answer with paths in ``out``
    w.ask_save_file = lambda title, kind, name, filt: str(out / name)
    w.ask_folder = lambda title, kind: str(out)
    return w


def _ply_xyz(path: Path) -> np.ndarray:
    cloud = trimesh.load(path)
    return np.asarray(cloud.vertices, dtype=np.float32)


def _export(qtbot, win, fmt: str) -> tuple[str, str]:
    with qtbot.waitSignal(win.controller.export_done, timeout=30_000) as blocker:
        win.export_actions[fmt].trigger()
    assert blocker.args[0] == fmt
    return blocker.args[1], blocker.args[2]


def test_export_ply_honours_filter_views_and_source(qtbot, win, synthetic_rec):
    st = win.state
    win.confidence_panel.slider.setValue(40.0)
    win.views_panel.table.item(2, 0).setCheckState(win.views_panel.table.item(2, 0).checkState().Unchecked)
    path, summary = _export(qtbot, win, "ply")
    sel = synthetic_rec.select(top_percent=40.0, views=[0, 1, 3])
    assert Path(path).name == "points.ply" and summary == f"{len(sel)} points"
    np.testing.assert_array_equal(_ply_xyz(Path(path)), sel.xyz)
    # threshold mode and local points
    st.conf_mode = "threshold"
    st.threshold = 3.0
    st.source = "local"
    path, _ = _export(qtbot, win, "ply")
    sel = synthetic_rec.select("local", threshold=3.0, views=[0, 1, 3])
    np.testing.assert_array_equal(_ply_xyz(Path(path)), sel.xyz)
    # playback step: only views 0..1 (and view 2 is still hidden)
    st.timestep = 1
    path, _ = _export(qtbot, win, "ply")
    sel = synthetic_rec.select("local", threshold=3.0, views=[0, 1])
    assert len(_ply_xyz(Path(path))) == len(sel)
    assert not any(p.name.endswith(".tmp") for p in Path(path).parent.iterdir())  # atomic, nothing left


def test_export_ply_without_sky(qtbot, win, synthetic_rec):
    import dataclasses

    from tests.core.test_sky import _landscape

    colors = tuple(
        _landscape(c.shape[0], c.shape[1], sky_rows=c.shape[0] // 3, seed=i)
        for i, c in enumerate(synthetic_rec.colors)
    )
    rec = dataclasses.replace(synthetic_rec, colors=colors)
    win.controller._show(rec)
    st = win.state
    st.top_percent = 70.0
    st.mask_sky = True
    path, _ = _export(qtbot, win, "ply")
    ps = rec.points("global")
    n = st.prefix_count()
    keep = ~sky_point_mask(rec, "global")[:n]
    expected = ps.xyz[:n][keep]
    got = _ply_xyz(Path(path))
    assert 0 < len(got) < n
    assert len(got) == st.shown_count() == len(expected)
    np.testing.assert_array_equal(np.sort(got, axis=0), np.sort(expected, axis=0))


def test_export_glb_colmap_nerfstudio_cameras_read_back(qtbot, win, synthetic_rec):
    win.state.top_percent = 50.0
    path, _ = _export(qtbot, win, "glb")
    scene = trimesh.load(path)
    clouds = [g for g in scene.geometry.values() if isinstance(g, trimesh.PointCloud)]
    assert len(clouds) == 1 and len(clouds[0].vertices) == len(synthetic_rec.select(top_percent=50.0))

    path, summary = _export(qtbot, win, "colmap")
    assert Path(path).name == "colmap"
    model = pycolmap.Reconstruction(Path(path) / "sparse" / "0")
    assert model.num_reg_images() == 4 and model.num_points3D() > 0
    assert summary.endswith("4 images")

    path, _ = _export(qtbot, win, "nerfstudio")
    doc = json.loads((Path(path) / "transforms.json").read_text())
    assert len(doc["frames"]) == 4
    assert (Path(path) / doc["ply_file_path"]).is_file()

    path, summary = _export(qtbot, win, "cameras")
    doc = json.loads(Path(path).read_text())
    assert len(doc["views"]) == 4 and summary == "4 cameras"


def test_export_to_an_unwritable_place_is_a_clear_error(qtbot, win, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder", encoding="utf-8")
    win.ask_save_file = lambda *a: str(blocked / "points.ply")
    with qtbot.waitSignal(win.controller.failed, timeout=30_000) as blocker:
        win.export_actions["ply"].trigger()
    info = blocker.args[0]
    assert info.kind == "export" and info.title == "Export failed"
    assert "points.ply" in info.message or "blocked" in info.message
    assert win.error_dialog.isVisible()
    assert win.state.reconstruction is not None  # alive, result kept


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else False, reason="root ignores permissions")
def test_export_to_a_read_only_folder(qtbot, win, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    win.ask_save_file = lambda *a: str(ro / "points.ply")
    with qtbot.waitSignal(win.controller.failed, timeout=30_000):
        win.export_actions["ply"].trigger()
    ro.chmod(0o700)


def test_project_save_and_open(qtbot, win, synthetic_rec, tmp_path):
    with qtbot.waitSignal(win.controller.project_saved, timeout=30_000) as blocker:
        win.act_save_project.trigger()  # no project yet: Save As
    path = Path(blocker.args[0])
    assert path.suffix == ".f3r"
    back = load_project(path)
    assert back.n_views == synthetic_rec.n_views
    np.testing.assert_array_equal(back.pts3d[2], synthetic_rec.pts3d[2])
    # open it again through the File menu
    win.ask_open_files = lambda title, kind, filt: [str(path)]
    with qtbot.waitSignal(win.controller.project_loaded, timeout=30_000):
        win.act_open_project.trigger()
    assert win.state.reconstruction is not synthetic_rec
    assert win.state.reconstruction.n_views == 4
    assert str(path.resolve()) in win.settings.recent_files()
    # Save now writes to the same file
    with qtbot.waitSignal(win.controller.project_saved, timeout=30_000) as blocker:
        win.act_save_project.trigger()
    assert Path(blocker.args[0]) == path
    # a corrupt project is an error; the shown result stays
    bad = tmp_path / "bad.f3r"
    bad.write_bytes(b"PK not really")
    shown = win.state.reconstruction
    with qtbot.waitSignal(win.controller.failed, timeout=30_000) as blocker:
        win.open_paths([bad])
    assert blocker.args[0].kind == "project" and "not a Fast3R Studio project" in blocker.args[0].message
    assert win.state.reconstruction is shown


def test_screenshot_and_animations_through_the_viewer(qtbot, win, tmp_path):
    import imageio.v3 as iio

    png = tmp_path / "shot.png"
    assert win.render("screenshot", str(png), (320, 200))
    assert iio.imread(png).shape == (200, 320, 4)
    gif = tmp_path / "turn.gif"
    assert win.render("turntable", str(gif), (64, 48), frames=5, fps=10)
    assert iio.imread(gif).shape[0] == 5
    assert win.render("playback", str(tmp_path / "play.gif"), (64, 48), fps=2)
    bad = tmp_path / "nofolder" / "x" / "shot.png"
    (tmp_path / "nofolder").write_text("file", encoding="utf-8")
    assert not win.render("screenshot", str(bad), (32, 32))
    assert win.error_dialog.isVisible()


# -- issue 17.14 -----------------------------------------------------------------------------------------
def test_export_adds_the_suffix_a_user_left_out(qtbot, win, tmp_path):
    win.ask_save_file = lambda title, kind, name, filt: str(tmp_path / "out" / "mycloud")
    path, _ = _export(qtbot, win, "ply")
    assert path.endswith("mycloud.ply") and Path(path).is_file()
    assert not (tmp_path / "out" / "mycloud").exists()


def test_a_failed_export_does_not_leave_exporting_in_the_status_bar(qtbot, win, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder", encoding="utf-8")
    win.ask_save_file = lambda *a: str(blocked / "points.ply")
    with qtbot.waitSignal(win.controller.failed, timeout=30_000):
        win.export_actions["ply"].trigger()
    msg = win.statusBar().currentMessage()
    assert msg.startswith("Export failed") and "Exporting" not in msg


def test_screenshot_gets_the_usual_file_mode(qtbot, win, tmp_path):
    png = tmp_path / "shot.png"
    assert win.render("screenshot", str(png), (64, 48))
    umask = os.umask(0o022)
    os.umask(umask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask


def test_render_dialog_shows_the_whole_path(qtbot, win, tmp_path):
    from app.widgets import RenderDialog

    folder = "/home/someone/Pictures/fast3r renders"
    dlg = RenderDialog("screenshot", (640, 480), folder, win)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    text = dlg.path_edit.text()
    assert dlg.path_edit.fontMetrics().horizontalAdvance(text) + 12 <= dlg.path_edit.width()


def test_recent_files_list_only_inputs_that_worked(qtbot, make_window, images, tmp_path):
    win = make_window()
    empty = tmp_path / "nothing here"
    empty.mkdir()
    with qtbot.waitSignal(win.controller.failed, timeout=60_000):
        win.start_run([str(empty)])
    assert str(empty) not in win.settings.recent_files()
    with qtbot.waitSignal(win.controller.run_finished, timeout=60_000):
        win.start_run([str(images)])
    assert win.settings.recent_files()[0] == str(images)


def test_low_confidence_class_is_worded_for_people(win):
    from PySide6.QtWidgets import QLabel

    texts = [w.text() for w in win.views_panel.findChildren(QLabel)]
    assert not any("max below" in t for t in texts)
    assert any("Low-confidence view" in t for t in texts)


# -- issue 15: the Export menu comes from the core's export table; an empty export says so --------------
def test_export_menu_is_built_from_the_table(qtbot, win):
    from app.menus import EXPORT_ACTIONS
    from fast3r_core.export import FORMATS

    assert list(EXPORT_ACTIONS) == list(FORMATS) == list(win.export_actions)
    entries = [a for a in win.export_menu.actions() if not a.isSeparator()]
    assert [a.text() for a in entries[: len(FORMATS)]] == [f.menu_text for f in FORMATS.values()]
    for key, (text, _, filt, name) in EXPORT_ACTIONS.items():
        fmt = FORMATS[key]
        assert (text, filt, name) == (fmt.menu_text, fmt.file_filter, fmt.default_name)
    assert win.export_actions["ply"].shortcut().toString() == "Ctrl+E"
    # the dialog asks with the table's filter and default name
    asked = []
    win.ask_save_file = lambda title, kind, name, filt: asked.append((title, name, filt)) or ""
    win.export_actions["glb"].trigger()
    assert asked == [("Export GLB", "scene.glb", "glTF binary (*.glb)")]


def test_export_of_zero_points_is_a_clear_message(qtbot, win, tmp_path):
    st = win.state
    st.conf_mode = "threshold"
    st.threshold = 1e9
    with qtbot.waitSignal(win.controller.failed, timeout=30_000) as blocker:
        win.export_actions["ply"].trigger()
    info = blocker.args[0]
    assert info.kind == "export" and info.title == "Export failed"
    assert "no point is selected" in info.message and "Lower the confidence filter" in info.message
    assert not (tmp_path / "out" / "points.ply").exists()
    assert win.state.reconstruction is not None
