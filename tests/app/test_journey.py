"""The app as a new user meets it (issue 17): cancel, honest states, first launch, exports."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest


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
