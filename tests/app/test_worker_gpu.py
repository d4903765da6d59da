"""The worker on a GPU (mocked): the device cache is given back after every run, and a memory refusal
keeps the loaded model. The worker is driven directly (no thread): run() answers with one signal."""

from __future__ import annotations

from typing import Any

import pytest

import fast3r_core.inference
import fast3r_core.pipeline
from app.worker import ReconstructionWorker, RunRequest
from fast3r_core.errors import Cancelled, InsufficientMemoryError
from fast3r_core.options import ReconstructOptions


class _Rec:
    n_views = 2

    def points(self, source: str = "global") -> None:
        return None


@pytest.fixture
def gpu_worker(monkeypatch, qtbot):
    """A worker whose model is "loaded on cuda:0"; records release_device_cache calls with the state
    (signals already sent) at that moment."""
    import torch  # noqa: F401  (the worker releases the cache only once torch is loaded)

    w = ReconstructionWorker()
    events: list[Any] = []
    model = object()

    def ensure(req: RunRequest) -> float:
        w._model, w._model_key, w._model_name, w._device = model, ("m", "cuda:0"), "m", "cuda:0"
        return 0.0

    monkeypatch.setattr(w, "_ensure_model", ensure)
    release = lambda d: events.append(("release", d))  # noqa: E731
    monkeypatch.setattr(fast3r_core.inference, "release_device_cache", release)
    w.finished.connect(lambda res: events.append("finished"))
    w.failed.connect(lambda info: events.append(("failed", info.kind)))
    w.cancelled.connect(lambda job: events.append("cancelled"))
    return w, events, model


def _run_with(monkeypatch, worker: ReconstructionWorker, outcome: Any) -> None:
    def reconstruct(*a: Any, **k: Any) -> Any:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(fast3r_core.pipeline, "reconstruct", reconstruct)
    worker.run(RunRequest(inputs=["x"], model="m", device="cuda:0", options=ReconstructOptions(size=224)))


@pytest.mark.parametrize(
    ("outcome", "answer"),
    [
        (_Rec(), "finished"),
        (Cancelled("stop"), "cancelled"),
        (InsufficientMemoryError("Out of memory on cuda in the heads stage"), ("failed", "memory")),
        (RuntimeError("a bug"), ("failed", "internal")),
    ],
)
def test_the_device_cache_is_released_after_every_run(monkeypatch, gpu_worker, outcome, answer):
    worker, events, _model = gpu_worker
    _run_with(monkeypatch, worker, outcome)
    assert events == [answer, ("release", "cuda:0")]


def test_a_memory_refusal_keeps_the_loaded_model(monkeypatch, gpu_worker):
    """The up-front refusal allocated nothing; reloading 2.6 GB of weights would only cost time."""
    worker, events, model = gpu_worker
    _run_with(monkeypatch, worker, InsufficientMemoryError("32 views at 512 px need about 20 GiB"))
    assert ("failed", "memory") in events
    assert worker.model_loaded and worker._model is model
