"""Session set-up shared by all tests: the Qt platform and a display for the OpenGL (``gl``) tests.

Qt picks its platform once per process, when the first QApplication is made, so the choice is made
here after collection and before any test runs:

* no ``gl`` test selected: ``QT_QPA_PLATFORM=offscreen`` (unless set already): widgets work, nothing
  is shown, no display is needed;
* ``gl`` tests selected: ``QT_QPA_PLATFORM=xcb`` on an X display. ``$DISPLAY`` is used when set (for
  example under ``xvfb-run``); otherwise an ``Xvfb`` server is started for the session (Mesa llvmpipe
  renders OpenGL in software) and stopped at the end. When no display can be had, the ``gl`` tests are
  skipped, except on CI (``CI`` set to true), where they fail: they must never be skipped silently there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_xvfb: subprocess.Popen[bytes] | None = None
_no_display_reason = ""


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _display_usable(display: str) -> bool:
    """Whether an X server answers on ``display`` (``:N`` local sockets only; others are trusted)."""
    if not display.startswith(":"):
        return True
    number = display[1:].split(".")[0]
    return Path(f"/tmp/.X11-unix/X{number}").exists()


def _start_xvfb() -> str | None:
    """Start ``Xvfb`` on a free display number; returns ``:N`` or None."""
    global _xvfb
    exe = shutil.which("Xvfb")
    if exe is None:
        return None
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [exe, "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        number = f.readline().strip().decode() if proc.poll() is None else ""
    if not number:
        proc.terminate()
        return None
    _xvfb = proc
    return f":{number}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    global _no_display_reason
    gl_items = [item for item in items if item.get_closest_marker("gl") is not None]
    if not gl_items:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return
    if not sys.platform.startswith("linux"):
        return  # native windowing with a real GPU driver
    display = os.environ.get("DISPLAY", "")
    if not (display and _display_usable(display)):
        display = _start_xvfb() or ""
        if display:
            os.environ["DISPLAY"] = display
    if display:
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
        return
    _no_display_reason = "no X display for the OpenGL tests: install Xvfb (see README) or set DISPLAY"
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for item in gl_items:
        if _on_ci():
            item.add_marker(pytest.mark.usefixtures("_fail_without_display"))
        else:
            item.add_marker(pytest.mark.skip(reason=_no_display_reason))


@pytest.fixture
def _fail_without_display() -> None:
    pytest.fail(f"CI: {_no_display_reason}")


def pytest_unconfigure(config: pytest.Config) -> None:
    global _xvfb
    if _xvfb is not None:
        _xvfb.terminate()
        try:
            _xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _xvfb.kill()
        _xvfb = None
