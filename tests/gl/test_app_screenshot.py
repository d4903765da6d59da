"""The whole app under a real OpenGL context: ``python main.py ... --screenshot`` and the window's renders.

The PNGs are checked for content (not blank: many colours, the viewport not one flat colour). The
sample-scene test runs exactly the README's ``python main.py`` (no INPUT: the first bundled sample with
the bundled demo model).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tiny import make_tiny_model, write_views

pytestmark = [
    pytest.mark.gl,
    pytest.mark.filterwarnings("ignore:Function.*QMouseEvent.pos:DeprecationWarning"),
]

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "xcb"),
        FAST3R_CONFIG_DIR=str(tmp_path / "config"),
        FAST3R_LOG_DIR=str(tmp_path / "logs"),
        FAST3R_CACHE_DIR=str(tmp_path / "cache"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(REPO),
    )
    return env


def _run(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "main.py"), *args, "--screenshot-timeout", "240"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=timeout,
    )


def _viewport_stats(png: Path) -> tuple[int, float, int]:
    """(distinct colours of the whole window, fraction of the centre that is not background, width)."""
    img = np.asarray(Image.open(png).convert("RGB"))
    h, w = img.shape[:2]
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    centre = img[int(0.25 * h) : int(0.75 * h), int(0.35 * w) : int(0.65 * w)].reshape(-1, 3).astype(int)
    values, counts = np.unique(centre, axis=0, return_counts=True)
    background = values[np.argmax(counts)]
    not_bg = float(np.mean(np.abs(centre - background).sum(axis=1) > 24))
    return colours, not_bg, w


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gl-app")
    model = make_tiny_model(root / "model")
    images = root / "images"
    write_views(images, 4, size=(256, 192))
    return model, images


def test_screenshot_of_a_reconstruction(tmp_path, tiny):
    model, images = tiny
    png = tmp_path / "window.png"
    out = _run(tmp_path, str(images), "--model", str(model), "--size", "224", "--screenshot", str(png))
    assert out.returncode == 0, out.stderr[-3000:]
    colours, not_bg, width = _viewport_stats(png)
    assert width >= 800
    assert colours > 500, "the window looks blank"
    assert not_bg > 0.2, f"the viewport is nearly empty ({not_bg:.1%} drawn)"
    log = (tmp_path / "logs" / "fast3r.log").read_text(encoding="utf-8")
    assert "run 1: 4 views" in log
    # the startup figure bench/startup.py reads: logged once, a plausible number of seconds
    visible = re.findall(r"window visible ([0-9.]+) s after launch", log)
    assert len(visible) == 1 and 0 < float(visible[0]) < 120
    # the start-up order (issue 17.8b): the window is on screen before torch is imported, the model is
    # preloaded on the worker, the run queued behind it is drawn; bench/startup.py splits on these lines
    order = (
        "window visible",
        "torch imported in",
        "loaded in",
        "run 1: 4 views",
        "first result shown",
        "first frame with the result drawn",
    )
    lines = log.splitlines()
    where = [next((i for i, line in enumerate(lines) if key in line), -1) for key in order]
    assert -1 not in where and where == sorted(where), dict(zip(order, where, strict=True))
    assert "preloading the model" in log


def test_screenshot_of_the_error_dialog(tmp_path, tiny):
    _, images = tiny
    png = tmp_path / "error.png"
    out = _run(tmp_path, str(images), "--model", str(tmp_path / "no-such-model"), "--screenshot", str(png))
    assert out.returncode == 1
    assert png.is_file()
    colours, _, _ = _viewport_stats(png)
    assert colours > 50


def test_sample_scene_with_the_demo_model(tmp_path):
    """README's ``python main.py``: the first bundled sample scene with the bundled demo model."""
    from app.controller import first_sample
    from fast3r_core.weights import is_cached

    if first_sample() is None or not is_cached("demo"):
        reason = (
            "the bundled demo model or sample scenes are missing (resources/models/demo, resources/samples)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    png = tmp_path / "sample.png"
    out = _run(tmp_path, "--screenshot", str(png), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    colours, not_bg, _ = _viewport_stats(png)
    assert colours > 500 and not_bg > 0.2


def test_window_with_the_real_viewer(qtbot, tmp_path, monkeypatch):
    """In-process: the real SceneViewer in the window draws the scene; screenshot and turntable files."""
    import imageio.v3 as iio

    from app.main_window import MainWindow
    from tests.core.recon_factory import make_synthetic_reconstruction

    for key, value in _env(tmp_path).items():
        if key.startswith(("FAST3R", "XDG", "HF_")):
            monkeypatch.setenv(key, value)
    win = MainWindow(interactive=False)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    rec = make_synthetic_reconstruction(4, image_dir=tmp_path / "photos", long_side=96)
    win.controller._show(rec)
    qtbot.wait(300)
    png = tmp_path / "win.png"
    assert win.save_window_screenshot(str(png))
    colours, not_bg, _ = _viewport_stats(png)
    assert colours > 500 and not_bg > 0.05
    shot = tmp_path / "viewport.png"
    assert win.render("screenshot", str(shot), (640, 360))
    img = iio.imread(shot)
    assert img.shape == (360, 640, 4) and len(np.unique(img.reshape(-1, 4), axis=0)) > 100
    gif = tmp_path / "turntable.gif"
    assert win.render("turntable", str(gif), (160, 120), frames=6, fps=10)
    assert iio.imread(gif).shape[0] == 6
    win.close()
