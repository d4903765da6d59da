"""Start-up order (issue 17.8b): the window is on screen before torch is imported, the model loads on
the worker thread right after, and the run that was queued behind it is drawn (the log lines that
bench/startup.py splits its figure with are all there, in this order)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny import make_tiny_model, write_views

pytestmark = [pytest.mark.gl]

REPO = Path(__file__).resolve().parents[2]

#: The start-up log lines, in the order they must come.
ORDER = (
    "window visible",
    "torch imported in",
    "loaded in",
    "run 1: 3 views",  # the worker's line at the end of the run
    "first result shown",
    "first frame with the result drawn",
)


def test_window_before_torch_then_model_then_run(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "model")
    images = tmp_path / "images"
    write_views(images, 3, size=(128, 96))
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "xcb"),
        FAST3R_CONFIG_DIR=str(tmp_path / "config"),
        FAST3R_LOG_DIR=str(tmp_path / "logs"),
        FAST3R_CACHE_DIR=str(tmp_path / "cache"),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(REPO),
    )
    env.pop("FAST3R_PRELOAD", None)
    out = subprocess.run(
        [
            *(sys.executable, str(REPO / "main.py"), str(images), "--model", str(model), "--size", "224"),
            *("-v", "--screenshot", str(tmp_path / "shot.png"), "--screenshot-timeout", "240"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stderr.splitlines()
    where = []
    for key in ORDER:
        found = [i for i, line in enumerate(lines) if key in line]
        assert found, f"no {key!r} line in:\n{out.stderr[-3000:]}"
        where.append(found[0])
    assert where == sorted(where), out.stderr
    assert "preloading the model" in out.stderr  # the model came from the preload, not from the run
