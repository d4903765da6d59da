"""Settings persist between sessions in $FAST3R_CONFIG_DIR/settings.ini."""

from __future__ import annotations

from pathlib import Path

from app.settings import MAX_RECENT, Settings, config_dir


def test_config_dir_comes_from_the_environment(tmp_path):
    assert config_dir() == tmp_path / "config"
    s = Settings()
    assert s.path == tmp_path / "config" / "settings.ini"


def test_values_round_trip_with_their_types(tmp_path):
    s = Settings()
    s.set("size", 224)
    s.set("point_size", 3.5)
    s.set("show_axes", True)
    s.set("theme", "light")
    s.accept_license("fast3r-vitl-512")
    s.set_last_dir("open", tmp_path)
    s.sync()
    s2 = Settings()
    assert s2.get("size") == 224 and isinstance(s2.get("size"), int)
    assert s2.get("point_size") == 3.5
    assert s2.get("show_axes") is True
    assert s2.get("theme") == "light"
    assert s2.get("device") == "auto"  # default
    assert s2.license_accepted("fast3r-vitl-512") and not s2.license_accepted("other")
    assert s2.last_dir("open") == str(tmp_path)
    assert s2.last_dir("export") == str(Path.home())


def test_recent_files_most_recent_first_and_bounded(tmp_path):
    s = Settings()
    paths = []
    for i in range(MAX_RECENT + 3):
        p = tmp_path / f"scene{i}"
        p.mkdir()
        paths.append(p)
        s.add_recent(p)
    s.add_recent(paths[0])  # again: moves to the top
    s.sync()
    recent = Settings().recent_files()
    assert len(recent) == MAX_RECENT
    assert recent[0] == str(paths[0].resolve()) and recent[1] == str(paths[-1].resolve())
    paths[-1].rmdir()  # missing files are not offered
    assert str(paths[-1].resolve()) not in Settings().recent_files()
    s.clear_recent()
    assert s.recent_files() == []


def test_invalid_values_fall_back_to_defaults(tmp_path):
    ini = tmp_path / "config" / "settings.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[options]\nsize=banana\npoint_size=\nshow_axes=yes\n", encoding="utf-8")
    s = Settings()
    assert s.get("size") == 512
    assert s.get("show_axes") is True


def test_window_options_persist_between_windows(qtbot, make_window, synthetic_rec):
    win = make_window()
    win.controller._show(synthetic_rec)
    win.resize(640, 480)
    win.state.color_mode = "view"
    win.state.point_size = 4.5
    win.state.top_percent = 33.0
    win.state.mask_sky = True
    win.set_theme("light")
    win.playback.fps_spin.setValue(7.0)
    win.close()
    win2 = make_window()
    assert win2.state.color_mode == "view"
    assert win2.state.point_size == 4.5
    assert win2.state.top_percent == 33.0
    assert win2.state.mask_sky is True
    assert win2.settings.get("theme") == "light"
    assert win2.playback.fps_spin.value() == 7.0
    assert (win2.width(), win2.height()) == (640, 480)
    assert win2.color_actions["view"].isChecked()
    win2.set_theme("dark")
