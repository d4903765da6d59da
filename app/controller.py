"""The app's state machine: idle -> loading -> running (-> cancelling) -> done / failed / cancelled.

The controller owns the worker thread (:class:`~app.worker.WorkerHost`), the shown
:class:`~app.state.ViewerState` and the background tasks for project files and exports. The window
calls its methods and listens to its signals; it never touches the worker directly. A failed or
cancelled run keeps the previous result on screen.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from app import plural
from app.run_inputs import InputChoices, input_choices, views_to_exclude
from app.settings import Settings
from app.state import ViewerState
from app.tasks import TaskRunner
from app.widgets.progress_panel import STAGE_LABELS  # re-exported: the stage labels of the GUI
from app.worker import ErrorInfo, RunRequest, RunResult, WorkerHost, classify_error, connect_run_signals
from fast3r_core import (
    PROJECT_SUFFIX,
    MemoryCheck,
    Reconstruction,
    ReconstructOptions,
    estimate_memory,
    headers_cached,
    license_to_accept,
    model_config,
)
from fast3r_core.errors import InputError

if TYPE_CHECKING:
    from fast3r_core import ModelInfo, RunReport
    from fast3r_core.edits import Edits
    from fast3r_core.export import PointSelection
    from fast3r_core.progress import ProgressEvent

__all__ = [
    "STAGE_LABELS",
    "Controller",
    "MemoryCheck",
    "RunState",
    "default_model",
    "first_sample",
]

log = logging.getLogger(__name__)

_LOADING_STAGES = frozenset({"download", "verify", "load"})


class RunState(str, enum.Enum):
    """Where the controller is. LOADING = the model is being downloaded or loaded; CANCELLING = a cancel
    was asked and the run has not stopped yet."""

    IDLE = "idle"
    LOADING = "loading"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


def default_model() -> str:
    """The bundled demo model when it is installed, else the published model."""
    from fast3r_core import MODELS, list_models

    for status in list_models():
        if status.info.name == "demo" and status.available:
            return "demo"
    return next(n for n in MODELS if n != "demo")


def first_sample() -> Path | None:
    """The first bundled sample scene folder (``resources/samples/<scene>/``), or None."""
    from fast3r_core import resources_dir

    root = resources_dir() / "samples"
    if not root.is_dir():
        return None
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            return child
    return None


class Controller(QObject):
    """Runs reconstructions, opens and saves projects, exports; keeps the last good result.

    Signals
    -------
    state_changed(str) : a :class:`RunState` value.
    progress(object) : a :class:`~fast3r_core.progress.ProgressEvent` of the current run.
    result_ready(object) : a new Reconstruction is shown (run, project).
    run_finished(object) : the :class:`~app.worker.RunResult` of a successful run.
    failed(object) : an :class:`~app.worker.ErrorInfo` to show (the previous result is kept).
    message(str) : a one-line status message.
    model_changed() : the chosen model, device or size changed, or a model finished loading.
    export_done(str fmt, str path, str summary) : an export was written.
    project_saved(str path), project_loaded(str path)
    """

    state_changed = Signal(str)
    progress = Signal(object)
    result_ready = Signal(object)
    run_finished = Signal(object)
    failed = Signal(object)
    message = Signal(str)
    model_changed = Signal()
    export_done = Signal(str, str, str)
    project_saved = Signal(str)
    project_loaded = Signal(str)

    def __init__(
        self,
        state: ViewerState | None = None,
        settings: Settings | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state if state is not None else ViewerState(self)
        self.settings = settings if settings is not None else Settings()
        self.host = WorkerHost(self)
        self.tasks = TaskRunner(self)
        connect_run_signals(self.host, self)
        app = QCoreApplication.instance()
        if app is not None:  # never leave the worker thread running at exit
            app.aboutToQuit.connect(self.shutdown)
        self._ids = itertools.count(1)
        self._preload_ids = itertools.count(-1, -1)
        self._job: RunRequest | None = None
        self._run_state = RunState.IDLE
        self._native_sizes: dict[str, int | None] = {}
        self._model = self.settings.get("model") or default_model()
        self._device = self.settings.get("device")
        self._size = int(self.settings.get("size"))
        self.loaded_model = ""  # name of the model loaded on the worker ("" = none yet)
        self.loaded_source = ""  # the model source (as given to set_model) it was loaded from
        self.loaded_device = ""
        self.last_result: RunResult | None = None
        self.last_report: RunReport | None = None
        self.project_path: Path | None = None
        # the project an "add images" run extends, taken when it starts: Save must write back to that file
        # even if another project was opened meanwhile (None: the result was not saved yet)
        self._add_origin: Path | None = None
        # the inputs (folders, videos, photos) of the run whose result is shown, and the file names it
        # left out: Run Again and Re-run Without These read them again. Set when a run's result is
        # shown, never when a run starts (a failed or cancelled run must not replace them) and cleared
        # when a project is opened (its photos are then the inputs).
        self.inputs: list[str] = []
        self.exclude: tuple[str, ...] = ()
        # the inputs and exclusions of the last run started: Run Again retries them while no result
        # is shown (a first run cancelled or failed)
        self._attempted: tuple[list[str], tuple[str, ...]] | None = None
        self.run_started = 0.0
        self._sources: dict[int, str] = {}  # job id -> model source (runs and preloads)
        self._load_began: float | None = None  # a model load is under way since then (run or preload)
        self._load_span = (0.0, 0.0)  # (start, end) of the last model load, perf_counter seconds
        #: the last run's whole wait: {"wait": s from the request to the result, "load": s of it spent
        #: loading the model (0 when it was loaded already), "run": s of the reconstruction}
        self.last_wait: dict[str, float] = {}
        #: the user's current edits (the window's ``EditsSession.edits``): saves and exports write the
        #: shown reconstruction with them (:meth:`edited_reconstruction`); None: the result's own edits
        self.edits_source: Callable[[], Edits] | None = None

    # -- properties -----------------------------------------------------------------------------------
    @property
    def run_state(self) -> RunState:
        return self._run_state

    @property
    def busy(self) -> bool:
        """A run is queued or running."""
        return self.host.busy

    @property
    def reconstruction(self) -> Reconstruction | None:
        return self.state.reconstruction

    @property
    def model(self) -> str:
        return self._model

    @property
    def device(self) -> str:
        return self._device

    @property
    def size(self) -> int:
        return self._size

    def native_size(self, model: str | None = None) -> int | None:
        """The input size a local model was made for when it is 224 (its config.json), else None.

        A model trained at 224 px (the bundled demo) is run at 224 whatever the chosen resolution.
        """
        name = model or self._model
        if name not in self._native_sizes:
            cfg = model_config(name)
            native = cfg is not None and int(getattr(cfg.encoder_args, "img_size", 512)) == 224
            self._native_sizes[name] = 224 if native else None
        return self._native_sizes[name]

    def effective_size(self) -> int:
        """The resolution the next run uses: the chosen one, or 224 for a model made for 224."""
        return self.native_size() or self._size

    def set_model(self, model: str) -> None:
        """Choose the model for the next runs (registered name, Hub id, folder or weights file)."""
        self._choose("model", model)

    def set_device(self, device: str) -> None:
        self._choose("device", device)

    def set_size(self, size: int) -> None:
        if size not in (224, 512):
            raise ValueError(f"size must be 224 or 512, got {size}")
        self._choose("size", size)

    def _choose(self, key: str, value: str | int) -> None:
        """Set ``self._<key>`` and the setting ``key``; say so when it changed."""
        if value != getattr(self, f"_{key}"):
            setattr(self, f"_{key}", value)
            self.settings.set(key, value)
            self.model_changed.emit()

    def _set_state(self, st: RunState) -> None:
        if st != self._run_state:
            self._run_state = st
            self.state_changed.emit(st.value)

    # -- licences -------------------------------------------------------------------------------------
    def license_needed(self, model: str | None = None) -> ModelInfo | None:
        """The ModelInfo whose licence must be accepted before ``model`` can be downloaded, else None."""
        name = model or self._model
        return license_to_accept(name, self.settings.license_accepted(name))

    # -- runs -----------------------------------------------------------------------------------------
    def preload_model(self) -> int:
        """Load the chosen model on the worker thread now (at start-up: while the window is built), so
        that the first run does not wait for torch and the weights. Returns the preload's id."""
        job_id = next(self._preload_ids)  # negative: run ids stay 1, 2, ... (the log names them)
        self._sources[job_id] = self._model
        self._load_began = time.perf_counter()
        req = RunRequest(
            inputs=[],
            model=self._model,
            device=self._device,
            accept_license=self.settings.license_accepted(self._model),
            job_id=job_id,
        )
        log.info("preloading the model %s", self._model)
        self.host.preload(req)
        return job_id

    def chunk_options(self) -> dict[str, int | None]:
        """``max_views_per_pass`` and ``anchors`` of the next run (ReconstructOptions keywords) from the
        run options: automatic passes, always one pass, or passes of a fixed size."""
        mode = str(self.settings.get("chunking"))
        per_pass: int | None = None
        if mode == "single":
            per_pass = 0
        elif mode == "fixed":
            per_pass = max(2, int(self.settings.get("views_per_pass")))
        anchors = int(self.settings.get("anchors"))
        return {"max_views_per_pass": per_pass, "anchors": anchors if anchors > 0 else None}

    def _memory_job(
        self, inputs: Sequence[str | os.PathLike[str]], size: int | None
    ) -> Callable[[], MemoryCheck | None]:
        """The memory estimate of a run of ``inputs`` with the current options, as a call that may run on
        another thread (the options are read now, on the GUI thread)."""
        paths = [str(p) for p in inputs]
        model = self._model
        run_size = size or self.effective_size()
        max_views = int(self.settings.get("max_views")) or None
        chunks = self.chunk_options()
        int8 = self.settings.get("precision") == "int8"

        def job() -> MemoryCheck | None:
            try:
                # looked up at call time: tests replace the module's estimate_memory
                return estimate_memory(
                    paths,
                    model,
                    run_size,
                    max_views=max_views,
                    max_views_per_pass=chunks["max_views_per_pass"],
                    anchors=chunks["anchors"],
                    int8=int8,
                )
            except Exception:
                log.exception("memory estimate failed")
                return None

        return job

    def memory_check(
        self, inputs: Sequence[str | os.PathLike[str]], size: int | None = None
    ) -> MemoryCheck | None:
        """The memory estimate of a run of ``inputs`` (None: it cannot be estimated). It reads every
        image header not read before: on the GUI thread, prefer :meth:`check_memory`."""
        return self._memory_job(inputs, size)()

    def check_memory(
        self,
        inputs: Sequence[str | os.PathLike[str]],
        size: int | None,
        on_done: Callable[[MemoryCheck | None], None],
    ) -> None:
        """Estimate a run's memory and call ``on_done(check)`` on the GUI thread.

        At once when every image header was read before (a re-run, a second look at the same photos);
        else the headers are read on the thread pool first, so that a folder of many photos (or a slow
        disk) does not freeze the window.
        """
        job = self._memory_job(inputs, size)
        if headers_cached(list(inputs)):
            on_done(job())
            return

        def on_error(exc: BaseException) -> None:  # job() catches its own errors; never block a run
            log.error("memory estimate failed", exc_info=(type(exc), exc, exc.__traceback__))
            on_done(None)

        self.tasks.submit(job, on_done, on_error)

    def open_paths(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Open what the user dropped or chose: one .f3r project, or inputs to reconstruct."""
        items = [str(p) for p in paths]
        if not items:
            return
        projects = [p for p in items if p.lower().endswith(PROJECT_SUFFIX)]
        if projects:
            if len(items) > 1:
                self.message.emit(
                    f"Opening the project {Path(projects[0]).name}; the other items were ignored"
                )
            self.open_project(projects[0])
            return
        self.start_run(items)

    def input_choices(self, inputs: Sequence[str | os.PathLike[str]]) -> InputChoices:
        """Intrinsics, masks (the chosen folder, or a ``masks/`` folder beside the photos) and video
        frames of a run of ``inputs``, from the run options."""
        return input_choices(self.settings, inputs)

    def start_run(
        self,
        inputs: Sequence[str | os.PathLike[str]],
        *,
        size: int | None = None,
        exclude: Sequence[str] = (),
    ) -> int:
        """Reconstruct ``inputs`` with the chosen model (cancels a run in progress). Returns the job id.

        ``exclude``: file names of inputs to leave out (``ReconstructOptions.exclude``).
        """
        if self.host.busy:
            self.host.cancel()
        job_id = next(self._ids)
        max_views = int(self.settings.get("max_views")) or None
        choices = self.input_choices(inputs)
        opts = ReconstructOptions(
            size=size or self.effective_size(),
            device=self._device,
            max_views=max_views,
            precision=str(self.settings.get("precision")),
            **self.chunk_options(),
            **choices.keywords(),
            exclude=tuple(exclude),
            # the app's exclusions come from a result: a video's frames chosen another way since may
            # not hold them (those are then not in the run anyway); said on the status bar
            exclude_missing_ok=True,
        )
        model = self._model
        accept = self.settings.license_accepted(model)
        req = RunRequest(
            inputs=[str(p) for p in inputs],
            model=model,
            device=self._device,
            options=opts,
            accept_license=accept,
            cancel=threading.Event(),
            job_id=job_id,
        )
        self._job = req
        self._sources[job_id] = model
        self._attempted = (list(req.inputs), opts.exclude)
        self.run_started = time.perf_counter()
        if self.loaded_source != model and self._load_began is None:
            self._load_began = self.run_started
        log.info("run %d: %s with %s (%s, %d px)", job_id, req.inputs, model, self._device, opts.size)
        self._say_inputs(job_id, choices, opts.exclude)
        self.host.submit(req)  # first: the actions read ``busy`` when the state changes
        self._set_state(RunState.LOADING if self.loaded_source != model else RunState.RUNNING)
        return job_id

    def _say_inputs(self, job_id: int, choices: InputChoices, exclude: Sequence[str]) -> None:
        """Log (and show on the status bar) the input options that are not the defaults: the user
        should know that a masks/ folder was picked up, or which views were left out."""
        parts = [choices.describe()] if choices.describe() else []
        if exclude:
            parts.append(f"leaving out {plural(len(exclude), 'file')}: {', '.join(exclude)}")
        if parts:
            text = "; ".join(parts)
            log.info("run %d: %s", job_id, text)
            self.message.emit(text[0].upper() + text[1:])

    def rerun_plan(self, views: Sequence[int] = ()) -> tuple[list[str], tuple[str, ...]]:
        """The inputs and ``exclude`` of a re-run of the shown result without ``views`` (none: Run Again).

        The inputs are the shown result's run inputs when it is this session's own run result (so
        that a folder or a video is read again), and the views that run left out stay out; else they
        are the photos of the result's views (an opened project, a result with added images), which
        the views left out earlier are not among (the core refuses a name that matches no input).
        Never the inputs of a run that failed or was cancelled while a result is shown: those did not
        make it; with nothing shown, Run Again retries the last run started.

        Raises
        ------
        InputError
            Nothing is shown, fewer than two views would remain, or none of the result's photos can be
            found.
        """
        rec = self.reconstruction
        if rec is None:
            if not views and self._attempted is not None:
                return list(self._attempted[0]), self._attempted[1]
            raise InputError("There is no result to run again.")
        last = self.last_result
        own = bool(self.inputs) and last is not None and last.reconstruction is rec and len(rec.runs) <= 1
        if views:
            exclude = views_to_exclude(rec.image_paths, rec.options, views)
        else:
            exclude = self.exclude if own else ()
        if own:
            return list(self.inputs), exclude
        photos = [p for p in rec.image_paths if os.path.isfile(p)]
        if not photos:
            raise InputError("The photos of this result cannot be found, so it cannot be run again.")
        names = {n for p in photos for n in (Path(p).name, Path(p).stem, p)}
        return photos, tuple(n for n in exclude if n in names)

    @property
    def can_run_again(self) -> bool:
        """Run Again has something to run: a result is shown, or a run was started before."""
        return self.reconstruction is not None or self._attempted is not None

    @property
    def running_inputs(self) -> list[str]:
        """The inputs of the run under way (empty when none is)."""
        return list(self._job.inputs) if self._job is not None else []

    def add_images(self, inputs: Sequence[str | os.PathLike[str]]) -> int:
        """Add photos to the shown result (reconstructs only them, with anchor views of the result).

        The new views are prepared at the result's resolution; the answer is a normal run result whose
        reconstruction holds the old views and then the new ones. Returns the job id (0: nothing shown).
        """
        from fast3r_core import project_size

        base = self.edited_reconstruction()  # with the user's edits, for the result to keep them
        if base is None:
            self.failed.emit(
                ErrorInfo("input", "Nothing to add to", "Open a project or reconstruct photos first.")
            )
            return 0
        if self.host.busy:
            self.host.cancel()
        job_id = next(self._ids)
        choices = self.input_choices(inputs)
        opts = ReconstructOptions(
            size=project_size(base),
            device=self._device,
            precision=str(self.settings.get("precision")),
            **self.chunk_options(),
            **choices.keywords(),
        )
        model = self._model_for_addition(base)
        req = RunRequest(
            inputs=[str(p) for p in inputs],
            model=model,
            device=self._device,
            options=opts,
            accept_license=self.settings.license_accepted(model),
            cancel=threading.Event(),
            job_id=job_id,
            base=base,
        )
        self._job = req
        self._sources[job_id] = model
        self._add_origin = self.project_path
        self.run_started = time.perf_counter()
        if self.loaded_source != model and self._load_began is None:
            self._load_began = self.run_started
        log.info("run %d: adding %s to %d views with %s", job_id, req.inputs, base.n_views, model)
        self._say_inputs(job_id, choices, ())
        self.host.submit(req)  # first: the actions read ``busy`` when the state changes
        self._set_state(RunState.LOADING if self.loaded_source != model else RunState.RUNNING)
        return job_id

    def _model_for_addition(self, base: Reconstruction) -> str:
        """The model that made ``base`` when it can be had (new views are aligned to its predictions,
        which another model would not match as well), else the chosen model, and say which."""
        from fast3r_core import MODELS

        name = base.model_name
        if not name or name == self._model:
            return self._model
        if name in MODELS:
            self.message.emit(f"Adding with the project's model, {name}")
            return name
        # a project file does not choose a local path to load or a repository to download: only a
        # registered model, or the user's own choice (equal to ``name`` above)
        self.message.emit(
            f"The project's model ({Path(name).name or name}) is not a registered model: adding with "
            f"{self._model} (choose it in Model > Model Manager to use it); the new views may align less well"
        )
        return self._model

    @property
    def cancelling(self) -> bool:
        """A cancel was asked and the run has not answered yet."""
        return self._run_state == RunState.CANCELLING

    def cancel(self) -> None:
        """Stop the current run (the previous result stays). The state is CANCELLING until the worker
        answers (the core stops within about a second, at its next check point)."""
        if self.host.busy and not self.cancelling:
            self.host.cancel(preloads=True)  # a run waiting for a preload must not wait for the load
            self.message.emit("Cancelling...")
            self._set_state(RunState.CANCELLING)

    def _current(self, job_id: int) -> bool:
        return self._job is not None and self._job.job_id == job_id

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: ProgressEvent) -> None:
        if not self._current(job_id) or self.cancelling:
            return  # a cancelled run's last events: the panel keeps saying "Cancelling..."
        if event.stage in _LOADING_STAGES:
            self._set_state(RunState.LOADING)
        else:
            self._set_state(RunState.RUNNING)
        self.progress.emit(event)

    @Slot(int, str, str)
    def _on_model_ready(self, job_id: int, name: str, device: str) -> None:
        self.loaded_model, self.loaded_device = name, device
        source = self._sources.pop(job_id, "")
        if source and (self._current(job_id) or self._job is None or self._job.model == source):
            self.loaded_source = source
        if self._load_began is not None:
            self._load_span = (self._load_began, time.perf_counter())
            self._load_began = None
        if self._current(job_id) and not self.cancelling:
            self._set_state(RunState.RUNNING)
        self.model_changed.emit()

    @Slot(object)
    def _on_finished(self, res: RunResult) -> None:
        if not self._current(res.job_id):
            return
        if self.cancelling:
            # the run ended between the user's cancel and the worker's next check: the user asked for
            # the previous result to stay, so this one is dropped
            log.info("run %d finished after its cancel: result dropped", res.job_id)
            self._on_cancelled(res.job_id)
            return
        job = self._job
        added = job is not None and job.base is not None
        n_before = job.base.n_views if job is not None and job.base is not None else 0
        if job is not None and not added:
            self.inputs, self.exclude = list(job.inputs), tuple(job.options.exclude)
            if len(job.inputs) == 1:
                self.settings.add_recent(job.inputs[0])  # only inputs that worked are recent
        self._job = None
        # the whole wait, from the request to the result, with the model load (or the part of a
        # preload the request waited for) as a part of it
        now = time.perf_counter()
        began, ended = self._load_span
        load = max(0.0, min(ended, now) - max(began, self.run_started))
        self.last_wait = {"wait": now - self.run_started, "load": load, "run": res.run_seconds}
        self.last_result = res
        self.last_report = res.report
        # views added to an opened project: Save writes that project (the one the run started from)
        self.project_path = self._add_origin if added else None
        self._add_origin = None
        note = self._show(res.reconstruction)
        self._set_state(RunState.DONE)
        self.run_finished.emit(res)
        rep = res.report
        rec = res.reconstruction
        run = rec.runs[-1]
        load = self.last_wait["load"]
        took = f"{self.last_wait['wait']:.1f} s"
        if load >= 0.05:
            took += f" (model load {load:.1f} s)"
        if run.passes > 1:
            took += f" in {run.passes} passes"
        if added:
            parts = [f"Added {plural(rec.n_views - n_before, 'view')} to {n_before} in {took}"]
        else:
            parts = [f"Reconstructed {plural(rec.n_views, 'view')} in {took}"]
        if rep.skipped:
            parts.append(f"{plural(len(rep.skipped), 'file')} skipped")
        if rep.failed_poses:
            parts.append(f"pose failed for {plural(len(rep.failed_poses), 'view')}")
        if rep.unmatched_exclude:
            names = ", ".join(rep.unmatched_exclude[:3]) + (" ..." if len(rep.unmatched_exclude) > 3 else "")
            parts.append(
                f"{plural(len(rep.unmatched_exclude), 'left-out file')} not among this run's inputs "
                f"(frames chosen another way?): {names}"
            )
        if note:
            parts.append(note)
        self.message.emit("; ".join(parts))

    @Slot(object)
    def _on_failed(self, info: ErrorInfo) -> None:
        if not self._current(info.job_id):
            return
        self._job = None
        self._set_state(RunState.FAILED)
        if info.kind in ("model", "memory"):
            self.loaded_model = self.loaded_source = ""
            self.model_changed.emit()
        # the status bar must not go on reporting the previous run (the dialog has the details)
        self.message.emit(f"Run failed: {info.title}; the previous result is kept")
        self.failed.emit(info)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if not self._current(job_id):
            return
        self._job = None
        self._set_state(RunState.CANCELLED)
        self.message.emit("Run cancelled; the previous result is kept")

    def _show(self, rec: Reconstruction) -> str:
        """Show ``rec``; returns a note for the status message ("" or why the filter changed)."""
        note = self._reset_threshold_for(rec)
        self.state.set_reconstruction(rec)
        self.result_ready.emit(rec)
        return note

    @staticmethod
    def _scene_key(rec: Reconstruction | None) -> tuple[str, str] | None:
        """(model, first image) of a result: two results with the same key share a confidence scale."""
        if rec is None:
            return None
        return (rec.model_name, str(rec.image_paths[0]) if rec.image_paths else "")

    def _reset_threshold_for(self, rec: Reconstruction) -> str:
        """Go back to "keep top %" when an absolute confidence threshold would not mean the same thing.

        Confidence scales differ between models and scenes: a threshold is kept only when the new result
        comes from the same model and scene as the one shown (a re-run, added images). Returns the
        note that tells the user ("" when nothing changed).
        """
        st = self.state
        if st.conf_mode != "threshold":
            return ""
        if self._scene_key(st.reconstruction) == self._scene_key(rec):
            return ""
        st.conf_mode = "top_percent"
        return (
            f"confidence filter reset to the top {float(st.top_percent):g} % (a threshold is "
            "kept only for the same scene and model: confidence scales differ)"
        )

    # -- projects -------------------------------------------------------------------------------------
    def open_project(self, path: str | os.PathLike[str]) -> None:
        """Load a .f3r project in the background and show it (no model needed)."""
        from fast3r_core import load_project

        src = str(path)
        self.message.emit(f"Opening {Path(src).name}...")

        def job() -> Reconstruction:
            rec = load_project(src)
            _ = rec.global_points  # sort the points off the GUI thread
            _ = rec.local_points
            return rec

        def done(rec: Reconstruction) -> None:
            self.project_path = Path(src)
            self.last_report = None
            self.inputs, self.exclude = [], ()  # a re-run reads the project's photos
            self.settings.add_recent(src)
            note = self._show(rec)
            self.message.emit(
                f"Opened {Path(src).name} ({plural(rec.n_views, 'view')}){'; ' + note if note else ''}"
            )
            self.project_loaded.emit(src)

        self.tasks.submit(job, done, self._task_failed("project"))

    def edited_reconstruction(self) -> Reconstruction | None:
        """The shown reconstruction with the user's current edits (:attr:`edits_source`).

        The model's arrays are shared, not copied, and so are its sorted point sets: only ``edits``
        differs. Saves and exports write this; the core applies the edits on the way out.
        """
        rec = self.reconstruction
        if rec is None or self.edits_source is None:
            return rec
        edits = self.edits_source()
        if edits == rec.edits:
            return rec
        out = dataclasses.replace(rec, edits=edits)
        for cached in ("global_points", "local_points"):  # functools.cached_property values
            if cached in rec.__dict__:
                out.__dict__[cached] = rec.__dict__[cached]
        return out

    def save_project(self, path: str | os.PathLike[str]) -> None:
        """Write the shown reconstruction, with the current edits, to a .f3r project (atomically, in
        the background)."""
        from fast3r_core import save_project

        rec = self.edited_reconstruction()
        if rec is None:
            self.failed.emit(
                ErrorInfo("project", "Nothing to save", "There is no reconstruction to save yet.")
            )
            return
        dest = str(path)

        def done(written: Path) -> None:
            self.project_path = Path(written)
            self.settings.add_recent(written)
            self.message.emit(f"Saved {written}")
            self.project_saved.emit(str(written))

        self.tasks.submit(lambda: save_project(rec, dest), done, self._task_failed("project"))

    def _task_failed(self, kind: str) -> Callable[[BaseException], None]:
        def on_error(exc: BaseException) -> None:
            info = classify_error(exc)
            if info.kind == "internal":
                log.error("%s task failed", kind, exc_info=(type(exc), exc, exc.__traceback__))
            else:
                info = dataclasses.replace(
                    info, kind=kind, title="Export failed" if kind == "export" else "Project file error"
                )
                log.warning("%s task failed: %s", kind, info.message)
            # replaces "Exporting ..." / "Opening ...", which would otherwise stay on the status bar
            self.message.emit(f"{info.title}: {info.message}")
            self.failed.emit(info)

        return on_error

    # -- exports --------------------------------------------------------------------------------------
    def export_selection(self) -> PointSelection:
        """What the viewport shows, as the exporters' :class:`~fast3r_core.export.PointSelection`.

        The confidence filter (top p % or threshold), the shown views (visibility, playback step and
        confidence classes), the point source and the sky mask are honoured: like the viewport, the
        confidence prefix counts every point and the sky pixels are then left out (as masks). Call it
        on the GUI thread: it reads the viewer state.
        """
        from fast3r_core.export import PointSelection

        st = self.state
        rec = st.reconstruction
        if rec is None:
            raise ValueError("no reconstruction")
        shown = st.shown_views()
        masks = None
        if st.mask_sky:
            from fast3r_core.sky import sky_pixel_masks

            masks = sky_pixel_masks(rec)
        top = st.conf_mode == "top_percent"
        return PointSelection(
            threshold=None if top else float(st.threshold),
            top_percent=float(st.top_percent) if top else None,
            views=None if shown.all() else shown,
            source=st.source,
            masks=masks,
        )

    def export(self, fmt: str, path: str | os.PathLike[str]) -> None:
        """Export what the viewport shows in ``fmt`` (a key of :data:`fast3r_core.export.FORMATS`)
        to ``path``, in the background; answers with ``export_done`` or ``failed``.

        Every exporter writes atomically; an empty selection is refused with a clear message
        (:class:`~fast3r_core.errors.EmptyExportError`). "cameras" writes every view's camera (the
        format takes no selection).
        """
        from fast3r_core.export import FORMATS

        if self.reconstruction is None:
            self.failed.emit(ErrorInfo("export", "Nothing to export", "There is no reconstruction yet."))
            return
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        dest = str(path)
        rec = self.edited_reconstruction()
        assert rec is not None
        selection = self.export_selection()
        spec = FORMATS[fmt]

        def job() -> str:
            report = spec.export(rec, dest, selection)
            return spec.summarize(report)

        def done(summary: str) -> None:
            self.settings.set_last_dir("export", dest)
            self.message.emit(f"Exported {spec.label} to {dest} ({summary})")
            self.export_done.emit(fmt, dest, summary)

        self.message.emit(f"Exporting {spec.label} to {dest}...")
        self.tasks.submit(job, done, self._task_failed("export"))

    # -- shutdown -------------------------------------------------------------------------------------
    def shutdown(self) -> bool:
        """Cancel a run, stop the worker thread, wait for background tasks (at window close).

        Returns False when the worker did not stop in time (:data:`app.worker.SHUTDOWN_TIMEOUT_MS`):
        the process must then exit without waiting for it (``app.__main__`` does).
        """
        stopped = self.host.shutdown()
        self.tasks.wait()
        return stopped

    @property
    def worker_running(self) -> bool:
        """The worker thread still runs (after :meth:`shutdown`: it did not stop in time)."""
        return bool(self.host.thread.isRunning())
