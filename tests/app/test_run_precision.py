"""The precision choice of the run options: the fast CPU mode (int8) reaches the run and the memory check."""

from __future__ import annotations

from pathlib import Path

from app.controller import estimate_memory
from app.widgets.run_options import PRECISIONS


def test_fast_cpu_mode_reaches_the_run(qtbot, make_window, images) -> None:
    win = make_window()
    dlg = win.open_run_options()
    assert dlg.precision.currentData() == "auto"
    assert [dlg.precision.itemData(i) for i in range(dlg.precision.count())] == list(PRECISIONS)
    dlg.precision.setCurrentIndex(dlg.precision.findData("int8"))
    dlg.accept()
    assert win.settings.get("precision") == "int8"
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        assert win.start_run([str(images)])
    rec = win.state.reconstruction
    assert rec.options["precision"] == "int8" and rec.n_views == 4

    # a reopened dialog shows the stored choice; Cancel keeps it
    dlg = win.open_run_options()
    assert dlg.precision.currentData() == "int8"
    dlg.precision.setCurrentIndex(dlg.precision.findData("fp32"))
    dlg.reject()
    assert win.settings.get("precision") == "int8"


def test_memory_check_counts_the_int8_weight_copy(tiny_model: Path, images: Path) -> None:
    from fast3r_core.forward_memory import _linear_weight_count
    from fast3r_core.model.config import Fast3RConfig

    fp32 = estimate_memory([str(images)], str(tiny_model), 224)
    int8 = estimate_memory([str(images)], str(tiny_model), 224, int8=True)
    cfg = Fast3RConfig.from_json(tiny_model / "config.json")
    assert int8.need - fp32.need == _linear_weight_count(cfg) > 0
