"""The app icon in resources/icons: present in every size the installers use, and reproducible.

Not marked ``packaging``: fast, part of the default run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
ICONS = REPO / "resources" / "icons"


def _make_icon_module():
    spec = importlib.util.spec_from_file_location("make_icon", REPO / "packaging" / "make_icon.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("size", [16, 32, 48, 128, 256])
def test_png_sizes_are_square_rgba_with_transparent_corners(size: int) -> None:
    img = Image.open(ICONS / f"fast3r-studio-{size}.png")
    assert img.size == (size, size)
    rgba = np.asarray(img.convert("RGBA"))
    assert rgba[0, 0, 3] < 16  # rounded corner (LANCZOS may leave alpha 1-2 there)
    assert rgba[size // 2, size // 2, 3] == 255
    # not a flat square: the motif is drawn
    assert len(np.unique(rgba.reshape(-1, 4), axis=0)) > (8 if size <= 16 else 40)


def test_ico_holds_the_windows_sizes() -> None:
    ico = Image.open(ICONS / "fast3r-studio.ico")
    assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])


def test_icons_are_small() -> None:
    total = sum(p.stat().st_size for p in ICONS.iterdir())
    assert total < 200_000


def test_make_icon_reproduces_the_committed_files(tmp_path: Path) -> None:
    """packaging/make_icon.py is deterministic and the committed icons are its output."""
    written = _make_icon_module().write_icons(tmp_path)
    assert {p.name for p in written} == {p.name for p in ICONS.iterdir()}
    for path in written:
        if path.suffix == ".png":
            fresh = np.asarray(Image.open(path).convert("RGBA")).astype(np.int16)
            committed = np.asarray(Image.open(ICONS / path.name).convert("RGBA")).astype(np.int16)
            assert fresh.shape == committed.shape
            # identical with the Pillow that made them; a little slack for another Pillow's resampling
            assert np.abs(fresh - committed).mean() < 1.0, path.name


def test_qt_loads_the_window_icon(qapp) -> None:
    """The file app/__main__.py gives to QApplication.setWindowIcon loads in Qt, at 256 px."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    from fast3r_core.weights import resources_dir

    icon = QIcon(str(resources_dir() / "icons" / "fast3r-studio.png"))
    assert not icon.isNull()
    assert QSize(256, 256) in icon.availableSizes()
