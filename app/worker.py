"""The model owner: one QObject living on one long-lived QThread.

The GUI talks to it only through queued signals (``WorkerHost.submit`` emits a signal connected to
:meth:`ReconstructionWorker.run`), and it answers through signals (progress, finished, failed,
cancelled). Two rules from superqt's workers hold here: every exception raised in a slot is caught and
becomes a ``failed`` signal with a typed :class:`ErrorInfo`; cancellation is cooperative, through a
``threading.Event`` that the GUI thread sets and the core checks between steps (there is no Qt event
loop running in the worker while it computes).

torch is imported on this thread only (when the first model loads), never on the GUI thread, and the
model stays loaded between runs: it is reloaded only when the model source or the device changes.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import importlib.util
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.logging_setup import since_launch
from fast3r_core.errors import (
    AlignmentError,
    Cancelled,
    CheckpointError,
    ConfigError,
    DownloadError,
    Fast3RError,
    InputError,
    InsufficientMemoryError,
    IntrinsicsError,
    LicenseNotAcceptedError,
    MaskError,
    ModelNotAvailableError,
)
from fast3r_core.options import ReconstructOptions
from fast3r_core.progress import ProgressEvent, check_cancel

if TYPE_CHECKING:  # the pipeline imports scipy: keep it off the start-up path (loaded on the worker)
    from fast3r_core.pipeline import RunReport

__all__ = [
    "OPTION_ERROR_TITLES",
    "ErrorInfo",
    "ReconstructionWorker",
    "RunRequest",
    "RunResult",
    "WorkerHost",
    "classify_error",
    "connect_run_signals",
    "gui_run_threads",
]

log = logging.getLogger(__name__)

#: Seconds between two progress signals of the same stage (the first and the last always go).
PROGRESS_INTERVAL = 0.033
#: How long quitting waits for the worker to stop after cancelling its jobs. The core stops within
#: about a second at any stage (its cancel checks reach into the fusion decoder and the heads); the
#: margin is for a loaded host. Past it the app exits anyway rather than work on with no window.
SHUTDOWN_TIMEOUT_MS = 30_000


#: Cores from which a run leaves one to the GUI (its event loop and a software renderer's threads).
KEEP_A_CORE_FROM = 6


def gui_run_threads(cores: int) -> int:
    """CPU threads of a run started from the window, out of ``cores`` usable cores.

    Every core up to :data:`KEEP_A_CORE_FROM` - 1 cores: the event loop does not need a core of its own
    (on 2 cores, with the run on 1 and on 2 threads, a 10 ms timer was late by the same 1.0-1.2 ms at
    the 95th percentile), while leaving one idle made runs 1.3-2x slower (the sample: 0.69 -> 0.36 s).
    From 6 cores one is left free for the GUI and a software renderer, at a cost of at most a sixth.
    """
    return max(1, cores - 1) if cores >= KEEP_A_CORE_FROM else max(1, cores)


@dataclass(frozen=True)
class RunRequest:
    """One reconstruction job.

    Attributes
    ----------
    inputs : list of str
        A folder, image files, or a video file.
    model : str
        Registered model name, Hub repo id, or a local folder / weights file.
    device : str
        "auto", "cpu", "cuda", "cuda:N" or "mps".
    options : ReconstructOptions
        Run options; ``num_threads=None`` becomes :func:`gui_run_threads` and ``device`` becomes the
        device the model was loaded on.
    accept_license : bool
        The user accepted the model's licence (allows the download of a licensed model).
    cancel : threading.Event
        Set by the GUI thread to stop the run.
    job_id : int
        Caller's identifier, echoed in the answers.
    base : Reconstruction or None
        When given, the inputs are added to this result (:func:`fast3r_core.pipeline.add_views`)
        instead of being reconstructed on their own.
    """

    inputs: list[str]
    model: str
    device: str = "auto"
    options: ReconstructOptions = field(default_factory=ReconstructOptions)
    accept_license: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    job_id: int = 0
    base: Any = None


@dataclass(frozen=True)
class RunResult:
    """What a successful run gives back: the reconstruction, its report and where time went."""

    job_id: int
    reconstruction: Any  # fast3r_core.result.Reconstruction
    report: RunReport
    model_name: str
    device: str
    load_seconds: float
    run_seconds: float


@dataclass(frozen=True)
class ErrorInfo:
    """A failure, classified for the user.

    Attributes
    ----------
    kind : str
        "input" (bad or no images, unreadable video), "model" (cannot load), "license", "download",
        "memory", "export", "project", "cancelled" or "internal" (a bug).
    title : str
        Short dialog title.
    message : str
        The message meant for people (the core's typed errors carry one).
    details : str
        Traceback text for internal errors ("" for typed errors).
    job_id : int
        Echo of the request's id (0 when not from a run).
    """

    kind: str
    title: str
    message: str
    details: str = ""
    job_id: int = 0


INTRINSICS_ERROR_TITLE = "Cannot use the intrinsics file"
MASKS_ERROR_TITLE = "Cannot use the masks"
#: Titles of the failures that a choice of the run options causes (the dialog says where to change it).
OPTION_ERROR_TITLES = frozenset({INTRINSICS_ERROR_TITLE, MASKS_ERROR_TITLE})

_KINDS: tuple[tuple[type[BaseException], str, str], ...] = (
    (Cancelled, "cancelled", "Cancelled"),
    (LicenseNotAcceptedError, "license", "Licence not accepted"),
    (DownloadError, "download", "Download failed"),
    (ModelNotAvailableError, "model", "Model not available"),
    (ConfigError, "model", "Cannot load the model"),
    (CheckpointError, "model", "Cannot load the model"),
    (InsufficientMemoryError, "memory", "Not enough memory"),
    # before InputError, their base: the message names the file, the title says which option it is
    (IntrinsicsError, "input", INTRINSICS_ERROR_TITLE),
    (MaskError, "input", MASKS_ERROR_TITLE),
    (InputError, "input", "Cannot use these inputs"),
    (AlignmentError, "input", "Cannot align the passes"),
)


def classify_error(exc: BaseException, job_id: int = 0) -> ErrorInfo:
    """Turn an exception into an :class:`ErrorInfo` (typed core errors keep their message)."""
    for typ, kind, title in _KINDS:
        if isinstance(exc, typ):
            return ErrorInfo(kind, title, str(exc), "", job_id)
    if isinstance(exc, Fast3RError):
        return ErrorInfo("input", "Error", str(exc), "", job_id)
    text = str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return ErrorInfo(
            "memory",
            "Not enough memory",
            "The run ran out of memory. Use 224 px (Model > Resolution) or fewer images, or another "
            f"device. ({type(exc).__name__}: {text})",
            "",
            job_id,
        )
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo("internal", "Internal error", f"{type(exc).__name__}: {text}", details, job_id)


def preload_torch_libraries() -> float:
    """Load torch's shared libraries with the GIL released, before ``import torch``; returns seconds.

    Importing torch loads a few hundred MB of shared libraries; Python's import machinery does it with
    the GIL held, which stalls the GUI thread for a few hundred milliseconds. Calling the C library's
    ``dlopen`` through ctypes releases the GIL during the load, and the ``import torch`` that follows
    finds the libraries already mapped. Linux only (elsewhere this does nothing); any problem is
    ignored, the import then simply does the work itself. The flags mirror torch's own loading
    (``libtorch_global_deps`` global, the rest local).
    """
    if not sys.platform.startswith("linux") or "torch" in sys.modules:
        return 0.0
    t0 = time.perf_counter()
    try:
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.origin is None:
            return 0.0
        lib = Path(spec.origin).parent / "lib"
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        order = (
            ("libtorch_global_deps.so", os.RTLD_NOW | os.RTLD_GLOBAL),
            ("libtorch_python.so", os.RTLD_NOW | os.RTLD_LOCAL),  # pulls libtorch, libtorch_cpu, libc10
        )
        for name, flags in order:
            path = lib / name
            if path.is_file() and not dlopen(str(path).encode(), flags):
                log.debug("preloading %s failed", path)
    except (OSError, AttributeError, ValueError, ImportError):
        log.debug("preloading torch's libraries failed", exc_info=True)
    return time.perf_counter() - t0


def import_heavy_modules() -> float:
    """Import torch, the model and the pipeline on this (worker) thread without stalling the GUI thread.

    Two things would block the GUI thread for 100-300 ms at a time while torch is imported: the load
    of its shared libraries with the GIL held (avoided by :func:`preload_torch_libraries`) and full
    garbage collections over the hundreds of thousands of objects the import creates. The collector is
    paused during the import and the imported objects are then frozen (``gc.freeze``: moved out of the
    collected generations; they live as long as the process anyway). Returns the seconds spent.
    """
    if "fast3r_core.pipeline" in sys.modules and "torch" in sys.modules:
        return 0.0
    t0 = time.perf_counter()
    preload_torch_libraries()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import torch  # noqa: F401  (torch._dynamo is not needed: the model build no longer pulls it in)

        import fast3r_core

        fast3r_core.import_run_modules(heavy=True)
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    return time.perf_counter() - t0


class ReconstructionWorker(QObject):
    """Loads a model once and runs reconstructions with it, on the thread it was moved to.

    Signals
    -------
    progress(int job_id, object event)
        A :class:`~fast3r_core.progress.ProgressEvent`. Stages: "download", "verify", "load" (model),
        "video", "images", "encode", "fuse", "heads", "poses"; in a run of several passes the model
        stages carry ``pass_index`` / ``pass_count``.
    model_ready(int job_id, str model_name, str device)
        The model of the job is loaded (or was already).
    finished(object)
        A :class:`RunResult`.
    failed(object)
        An :class:`ErrorInfo` (never for a cancellation).
    cancelled(int job_id)
        The job stopped because its cancel event was set; nothing is kept.
    """

    progress = Signal(int, object)
    model_ready = Signal(int, str, str)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self._model: Any = None
        self._model_key: tuple[str, str] | None = None
        self._model_name = ""
        self._device = ""

    # -- state ----------------------------------------------------------------------------------------
    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def _progress_cb(self, job_id: int) -> Callable[[ProgressEvent], None]:
        """A core progress callback that emits at most ~30 events per second (plus every stage change
        and end), so that a burst of small steps (a model's tensors, download chunks) never floods the
        GUI thread's event queue."""
        emit = self.progress.emit
        last = {"stage": "", "time": 0.0}

        def cb(ev: ProgressEvent) -> None:
            now = time.perf_counter()
            if ev.stage == last["stage"] and ev.done < ev.total and now - last["time"] < PROGRESS_INTERVAL:
                return
            last["stage"], last["time"] = ev.stage, now
            emit(job_id, ev)

        return cb

    def _ensure_model(self, req: RunRequest) -> float:
        """Load the model of ``req`` unless it is already loaded; returns the seconds spent."""
        from fast3r_core.weights import choose_device, load_model

        local = Path(req.model).expanduser()
        key = (str(local.resolve()) if local.exists() else req.model, req.device)
        if self._model is not None and self._model_key == key:
            return 0.0
        t0 = time.perf_counter()
        imported = import_heavy_modules()
        if imported:
            log.info("torch imported in %.2f s, %.2f s after launch", imported, since_launch())
        t1 = time.perf_counter()
        self._model = None  # release the old one before loading another
        self._model_key = None
        device = choose_device(req.device)
        model = load_model(
            req.model,
            device,
            accept_license=req.accept_license,
            progress=self._progress_cb(req.job_id),
            cancel=req.cancel,
        )
        self._model, self._model_key = model, key
        self._model_name = getattr(model, "name", req.model) or req.model
        self._device = str(device)
        log.info(
            "model %s loaded in %.2f s, %.2f s after launch",
            self._model_name,
            time.perf_counter() - t1,
            since_launch(),
        )
        return time.perf_counter() - t0

    def _release_device_cache(self) -> None:
        """Give the GPU cache of the run back (after success, cancel and failure alike), so that the
        next run, and other programs, see it as free; nothing to do on the CPU or before torch loads."""
        if not self._device or self._device == "cpu" or "torch" not in sys.modules:
            return
        try:
            from fast3r_core.inference import release_device_cache

            release_device_cache(self._device)
        except Exception:  # never turn a finished run into a failure
            log.warning("releasing the %s cache failed", self._device, exc_info=True)

    # -- slots ----------------------------------------------------------------------------------------
    @Slot(object)
    def run(self, req: RunRequest) -> None:
        """Load the model if needed and reconstruct ``req.inputs``; answers with one signal."""
        try:
            self._run_job(req)
        finally:  # after the job's except blocks: no traceback holds the run's tensors any more
            self._release_device_cache()

    def _run_job(self, req: RunRequest) -> None:
        try:
            if req.cancel.is_set():
                raise Cancelled("Cancelled before the start")
            load_s = self._ensure_model(req)
            self.model_ready.emit(req.job_id, self._model_name, self._device)
            from fast3r_core import default_cpu_threads
            from fast3r_core.pipeline import RunReport, add_views, reconstruct

            opts = req.options
            if opts.num_threads is None:
                opts = replace(opts, num_threads=gui_run_threads(default_cpu_threads()))
            opts = replace(opts, device=self._device)
            report = RunReport()
            t0 = time.perf_counter()
            # adding images runs the same pipeline with the shown result as the base
            run = functools.partial(add_views, req.base) if req.base is not None else reconstruct
            progress = self._progress_cb(req.job_id)
            rec = run(
                list(req.inputs),
                self._model,
                opts,
                progress=progress,
                cancel=req.cancel,
                model_name=self._model_name,
                run_report=report,
            )
            run_s = time.perf_counter() - t0
            # build the confidence-ordered point sets here, off the GUI thread: seconds for a large
            # run, so they are a stage of their own, and a cancel meanwhile still wins
            for done, source in enumerate(("global", "local")):
                progress(ProgressEvent("points", done, 2))
                rec.points(source)
                check_cancel(req.cancel)
            progress(ProgressEvent("points", 2, 2))
        except Cancelled:
            log.info("run %d cancelled", req.job_id)
            self.cancelled.emit(req.job_id)
            return
        except BaseException as exc:  # nothing escapes the thread
            info = classify_error(exc, req.job_id)
            if info.kind == "internal":
                log.exception("run %d failed", req.job_id)
            else:
                log.warning("run %d failed: %s", req.job_id, info.message)
            if info.kind == "model":
                self._model = None  # retry a clean load next time
                self._model_key = None
            # a memory refusal keeps the model: the up-front check allocated nothing, and after an
            # out-of-memory the engine has freed the run's tensors (the cache is released below)
            self.failed.emit(info)
            return
        log.info(
            "run %d: %d views with %s on %s in %.2f s (model load %.2f s), %.2f s after launch",
            req.job_id,
            rec.n_views,
            self._model_name,
            self._device,
            run_s,
            load_s,
            since_launch(),
        )
        self.finished.emit(RunResult(req.job_id, rec, report, self._model_name, self._device, load_s, run_s))

    @Slot(object)
    def preload(self, req: RunRequest) -> None:
        """Import torch and load the model of ``req`` now (at start-up, while the window appears), so
        that the first run finds it loaded. Answers with ``model_ready(req.job_id, ...)``; a failure is
        only logged (the run that follows reports it)."""
        try:
            seconds = self._ensure_model(req)
            log.info("worker preload: %s loaded in %.2f s", self._model_name, seconds)
            self.model_ready.emit(req.job_id, self._model_name, self._device)
        except Cancelled:  # the user cancelled the run waiting for it, or the app is quitting
            log.info("preloading the model %s cancelled", req.model)
        except BaseException:  # nothing escapes the thread
            log.warning("preloading the model %s failed", req.model, exc_info=True)

    @Slot()
    def prefetch(self) -> None:
        """Map torch's shared libraries now (the GIL is released meanwhile: the GUI thread builds the
        window on the other core); the ``import torch`` of the preload that follows is then shorter."""
        seconds = preload_torch_libraries()
        if seconds:
            log.info("torch's libraries mapped in %.2f s, %.2f s after launch", seconds, since_launch())

    @Slot()
    def warm_up(self) -> None:
        """Import torch and the pipeline now (idle time after start-up), so the first run starts sooner."""
        try:
            seconds = import_heavy_modules()
            log.info("worker warm-up: torch and the pipeline imported in %.2f s", seconds)
        except BaseException:  # nothing escapes the thread; the run will report a real problem
            log.warning("worker warm-up failed", exc_info=True)

    @Slot()
    def unload(self) -> None:
        """Forget the loaded model (frees its memory)."""
        self._model = None
        self._model_key = None


class _RunSlots(Protocol):
    """The receiver of the run signals (progress, model_ready, finished, failed, cancelled)."""

    def _on_progress(self, job_id: int, event: ProgressEvent) -> None: ...
    def _on_model_ready(self, job_id: int, name: str, device: str) -> None: ...
    def _on_finished(self, res: RunResult) -> None: ...
    def _on_failed(self, info: ErrorInfo) -> None: ...
    def _on_cancelled(self, job_id: int) -> None: ...


def connect_run_signals(source: ReconstructionWorker | WorkerHost, receiver: _RunSlots) -> None:
    """Connect the run signals of ``source`` (the worker, or its host) to ``receiver``'s ``_on_*`` slots."""
    source.progress.connect(receiver._on_progress)
    source.model_ready.connect(receiver._on_model_ready)
    source.finished.connect(receiver._on_finished)
    source.failed.connect(receiver._on_failed)
    source.cancelled.connect(receiver._on_cancelled)


class WorkerHost(QObject):
    """Owns the worker thread: starts it, submits jobs through a queued signal, stops it cleanly.

    The worker's answers are relayed by signals of the same names emitted on the GUI thread (the
    thread of this object), so that anything connected to them, lambdas included, runs there.
    """

    progress = Signal(int, object)
    model_ready = Signal(int, str, str)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal(int)

    _submit = Signal(object)
    _preload = Signal(object)
    _unload = Signal()
    _warm_up = Signal()
    _prefetch = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("fast3r-worker")
        self.worker = ReconstructionWorker()
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run)
        self._preload.connect(self.worker.preload)
        self._unload.connect(self.worker.unload)
        self._warm_up.connect(self.worker.warm_up)
        self._prefetch.connect(self.worker.prefetch)
        self.thread.finished.connect(self.worker.deleteLater)
        self._pending: dict[int, RunRequest] = {}
        self._preloads: dict[int, RunRequest] = {}  # preloads not answered yet (cancelled at quit)
        self._gave_up = False  # shutdown timed out once: do not block the GUI thread again
        connect_run_signals(self.worker, self)
        self.thread.start()

    @property
    def busy(self) -> bool:
        """A job is queued or running."""
        return bool(self._pending)

    def submit(self, req: RunRequest) -> None:
        """Queue a job on the worker thread (returns at once)."""
        self._pending[req.job_id] = req
        self._submit.emit(req)

    def cancel(self, *, preloads: bool = False) -> None:
        """Ask every queued or running job to stop (each answers with ``cancelled``).

        With ``preloads``, a model preload under way stops too (at its next tensor): a run queued
        behind it would otherwise wait for the whole load before it could notice its own cancel.
        A new run that replaces the current one keeps the preload (it needs the model).
        """
        for req in self._pending.values():
            req.cancel.set()
        if preloads:
            for req in self._preloads.values():
                req.cancel.set()
            self._preloads.clear()

    def preload(self, req: RunRequest) -> None:
        """Load the model of ``req`` on the worker thread now (no run; not counted as ``busy``)."""
        self._preloads[req.job_id] = req
        self._preload.emit(req)

    def unload_model(self) -> None:
        self._unload.emit()

    def warm_up(self) -> None:
        """Import torch on the worker thread now, while the user looks at the window."""
        self._warm_up.emit()

    def prefetch(self) -> None:
        """Map torch's shared libraries on the worker thread now, without holding the GIL (at start-up,
        while the window is built; no Python module is imported)."""
        self._prefetch.emit()

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: ProgressEvent) -> None:
        self.progress.emit(job_id, event)

    @Slot(int, str, str)
    def _on_model_ready(self, job_id: int, name: str, device: str) -> None:
        self._preloads.pop(job_id, None)
        self.model_ready.emit(job_id, name, device)

    @Slot(object)
    def _on_finished(self, res: RunResult) -> None:
        self._pending.pop(res.job_id, None)
        self.finished.emit(res)

    @Slot(object)
    def _on_failed(self, info: ErrorInfo) -> None:
        self._pending.pop(info.job_id, None)
        self.failed.emit(info)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        self._pending.pop(job_id, None)
        self.cancelled.emit(job_id)

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Cancel the jobs and preloads, stop the thread and wait for it, at most ``timeout_ms``
        (default :data:`SHUTDOWN_TIMEOUT_MS`); True when it stopped.

        False means the worker is still computing: the caller must then end the process itself
        (``os._exit``), since a QThread destroyed while it runs aborts the interpreter. A second call
        after a timeout does not wait again.
        """
        if not self.thread.isRunning():
            return True
        if self._gave_up:
            return False
        self.cancel(preloads=True)
        self.thread.quit()
        limit = SHUTDOWN_TIMEOUT_MS if timeout_ms is None else timeout_ms
        t0 = time.perf_counter()
        ok = bool(self.thread.wait(limit))
        if ok:
            log.info("the worker thread stopped in %.2f s", time.perf_counter() - t0)
        else:
            self._gave_up = True
            log.error("the worker thread did not stop within %d ms", limit)
        return ok
