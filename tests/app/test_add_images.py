"""Large image sets in the GUI: the run options (views per pass, anchors), a chunked run through the
real worker with its status-bar note and a progress bar that never moves back, and File > Add Images
on an opened project (worker thread, save back, cancel)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from app.controller import RunState
from app.widgets.progress_panel import ProgressPanel
from app.widgets.run_options import RunOptionsDialog
from fast3r_core.progress import ProgressEvent
from fast3r_core.project_file import load_project, save_project
from tests.tiny import write_views


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A 4-view project made by the tiny model at 224 px (single pass)."""
    import fast3r_core
    from fast3r_core.pipeline import ReconstructOptions, reconstruct

    root = tmp_path_factory.mktemp("base")
    paths = write_views(root / "photos", 4)
    model = fast3r_core.load_model(tiny_model, device="cpu")
    rec = reconstruct(paths, model, ReconstructOptions(size=224))
    return save_project(rec, root / "scene.f3r")


def test_progress_bar_spreads_the_passes_and_never_goes_back(qtbot) -> None:
    panel = ProgressPanel()
    qtbot.addWidget(panel)
    panel.set_running(True)
    fractions = []
    panel.update_progress(ProgressEvent("images", 4, 4))
    fractions.append(panel.fraction)
    for p in range(3):
        for stage, total in (("encode", 5), ("fuse", 1), ("heads", 5)):
            for done in range(total + 1):
                # the pass reaches the panel as numbers (no message to parse)
                panel.update_progress(ProgressEvent(stage, done, total, pass_index=p, pass_count=3))
                fractions.append(panel.fraction)
        if p == 1:
            assert panel.stage_text == "Heads 5/5 (pass 2/3)"
    panel.update_progress(ProgressEvent("poses", 2, 10))
    fractions.append(panel.fraction)
    one_pass = ProgressPanel()
    qtbot.addWidget(one_pass)
    one_pass.set_running(True)
    one_pass.update_progress(ProgressEvent("encode", 1, 5, pass_index=0, pass_count=1))
    assert one_pass.stage_text == "Encoding 1/5"  # no "(pass 1/1)"
    assert all(b >= a for a, b in itertools.pairwise(fractions))
    # pass 2 of 3 ends two thirds of the way through the model stages (images 0.10, model 0.75)
    assert fractions[2 * 14] == pytest.approx(0.10 + 0.75 * 2 / 3)  # 14 events per pass
    assert fractions[-1] == pytest.approx(0.85 + 0.10 * 0.2)


def test_run_options_dialog_and_a_chunked_run(qtbot, make_window, images) -> None:
    win = make_window()
    dlg = win.open_run_options()
    assert isinstance(dlg, RunOptionsDialog)
    assert dlg.mode.currentData() == "auto" and not dlg.per_pass.isEnabled()
    assert win.controller.chunk_options() == {"max_views_per_pass": None, "anchors": None}
    dlg.mode.setCurrentIndex(dlg.mode.findData("fixed"))
    assert dlg.per_pass.isEnabled()
    dlg.per_pass.setValue(3)
    dlg.anchors.setValue(1)
    dlg.accept()
    assert win.settings.get("chunking") == "fixed" and win.settings.get("views_per_pass") == 3
    assert win.controller.chunk_options() == {"max_views_per_pass": 3, "anchors": 1}

    fractions: list[float] = []
    passes: set[str] = set()
    pass_numbers: set[tuple[int | None, int]] = set()

    def seen(ev: ProgressEvent) -> None:
        if ev.stage not in ("download", "verify", "load"):  # the model's load has a bar of its own
            fractions.append(win.progress_panel.fraction)  # the panel was updated first
        if ev.message:
            passes.add(ev.message)
        if ev.pass_count is not None:
            pass_numbers.add((ev.pass_index, ev.pass_count))

    win.controller.progress.connect(seen)
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        assert win.start_run([str(images)])
    rec = win.state.reconstruction
    assert rec.n_views == 4 and rec.runs[0].passes == 2 and rec.runs[0].anchors == [0]
    assert {"pass 1/2", "pass 2/2"} <= passes
    assert pass_numbers == {(0, 2), (1, 2)}
    assert fractions and all(b >= a for a, b in itertools.pairwise(fractions))
    assert "made in 2 passes of up to 3 views (1 shared anchor)" in win.timing_label.text()

    # "Always one pass": the next run is one pass again
    dlg = win.open_run_options()
    dlg.mode.setCurrentIndex(dlg.mode.findData("single"))
    dlg.accept()
    assert win.controller.chunk_options()["max_views_per_pass"] == 0


def test_add_images_to_an_opened_project(qtbot, make_window, base_project, tmp_path) -> None:
    win = make_window()
    assert not win.act_add_images.isEnabled()  # nothing shown yet
    with qtbot.waitSignal(win.controller.project_loaded, timeout=30_000):
        win.open_paths([str(base_project)])
    assert win.act_add_images.isEnabled() and win.state.reconstruction.n_views == 4

    more = [str(p) for p in write_views(tmp_path / "more", 2, size=(112, 96))]
    win.ask_open_files = lambda *a, **k: more  # the file dialog
    messages: list[str] = []
    win.controller.message.connect(messages.append)
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        win.act_add_images.trigger()
        assert win.controller.busy and not win.act_add_images.isEnabled()
    rec = win.state.reconstruction
    assert rec.n_views == 6 and rec.view_runs.tolist() == [0, 0, 0, 0, 1, 1]
    assert rec.image_paths[4:] == tuple(more)
    assert win.controller.run_state == RunState.DONE
    assert any(m.startswith("Added 2 views to 4") for m in messages)
    assert "+2 views added later" in win.timing_label.text()
    assert win.views_panel.table.rowCount() == 6
    # Save writes the opened project (now with 6 views)
    assert win.controller.project_path == base_project
    with qtbot.waitSignal(win.controller.project_saved, timeout=30_000):
        win.save_project()
    back = load_project(base_project)
    assert back.n_views == 6 and back.runs[-1].kind == "add"


def test_add_images_cancelled_keeps_the_result(qtbot, make_window, base_project, tmp_path) -> None:
    win = make_window()
    rec = load_project(base_project)
    win.controller._show(rec)
    more = [str(p) for p in write_views(tmp_path / "more", 2)]
    with qtbot.waitSignal(win.controller.host.cancelled, timeout=60_000):
        assert win.add_images(more)
        win.controller.cancel()
    assert win.controller.run_state == RunState.CANCELLED
    assert win.state.reconstruction is rec


def test_add_images_without_a_result_is_refused(qtbot, make_window) -> None:
    win = make_window()
    assert not win.add_images(["/nonexistent/a.png"])
    with qtbot.waitSignal(win.controller.failed, timeout=5_000) as blocker:
        assert win.controller.add_images(["/nonexistent/a.png"]) == 0
    assert blocker.args[0].title == "Nothing to add to"


def test_memory_check_plans_passes_when_one_pass_does_not_fit(monkeypatch, tiny_model, images) -> None:
    """The pre-run memory check follows the core's plan: automatic passes fit where one pass does not."""
    import fast3r_core.forward_memory
    from app.controller import estimate_memory
    from fast3r_core.chunking.plan import BUDGET_FRACTION, host_output_bytes
    from fast3r_core.forward_memory import estimate_peak_memory
    from fast3r_core.model.config import Fast3RConfig

    cfg = Fast3RConfig.from_json(Path(tiny_model) / "config.json")
    shapes = [(384, 512)] * 4  # the 4 128x96 photos at 512 px
    one_pass = estimate_peak_memory(cfg, shapes).total
    two = estimate_peak_memory(cfg, shapes[:2], encoder_chunk=1, head_chunk=1)
    # free memory that holds a pass of 2 views (after the weights and every view's outputs), not all 4
    free = two.weights + int((two.total - two.weights + host_output_bytes(shapes)) / BUDGET_FRACTION) + 1
    assert free < one_pass
    monkeypatch.setattr(fast3r_core.forward_memory, "available_memory", lambda *a, **k: free)
    single = estimate_memory([str(images)], str(tiny_model), 512, max_views_per_pass=0)
    assert single.passes == 1 and not single.fits and single.need == one_pass
    auto = estimate_memory([str(images)], str(tiny_model), 512, max_views_per_pass=None)
    assert auto.fits and auto.passes == 3 and auto.need == two.total  # view 0 + 1 new view per pass
    assert "in 3 passes" in auto.describe()


def test_add_images_saves_back_to_the_project_it_started_from(
    qtbot, make_window, base_project, tmp_path
) -> None:
    """Another project opened while photos are being added must not become the Save target of the
    result (the added views belong to the first project); a project model that cannot be had is said."""
    import dataclasses
    import shutil

    win = make_window()
    a, b = tmp_path / "a.f3r", tmp_path / "b.f3r"
    shutil.copy(base_project, a)
    shutil.copy(base_project, b)
    with qtbot.waitSignal(win.controller.project_loaded, timeout=30_000):
        win.open_paths([str(a)])
    # the project names a local folder as its model: a project file does not choose a path to load
    # (nor a repository to download), so the chosen model is used, and said
    elsewhere = tmp_path / "no-such-model"
    elsewhere.mkdir()
    rec = dataclasses.replace(win.state.reconstruction, model_name=str(elsewhere))
    win.controller._show(rec)
    messages: list[str] = []
    win.controller.message.connect(messages.append)
    more = [str(p) for p in write_views(tmp_path / "more", 2, size=(112, 96))]
    with qtbot.waitSignal(win.controller.result_ready, timeout=120_000):
        assert win.add_images(more)
        win.controller.project_path = b  # what opening b.f3r meanwhile does (open_project's done())
    assert any("no-such-model" in m and "not a registered model" in m for m in messages)
    assert win.controller.loaded_source != str(elsewhere)
    assert win.state.reconstruction.n_views == rec.n_views + 2
    assert win.controller.project_path == a
