"""Short background jobs (project files, exports) on Qt's thread pool, answered on the GUI thread.

A lambda connected to a signal emitted from a pool thread would run in that pool thread, so the
answers go through signals of a :class:`TaskRunner` living on the GUI thread, which then calls the
callbacks there.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

__all__ = ["TaskRunner"]

log = logging.getLogger(__name__)


class _Relay(QObject):
    done = Signal(int, object)
    error = Signal(int, object)


class _Task(QRunnable):
    def __init__(self, task_id: int, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._id, self._fn, self._relay = task_id, fn, relay

    def run(self) -> None:
        try:
            result = self._fn()
        except BaseException as exc:  # nothing escapes the pool thread
            self._relay.error.emit(self._id, exc)
        else:
            self._relay.done.emit(self._id, result)


class TaskRunner(QObject):
    """Runs callables on a thread pool; ``on_done(result)`` / ``on_error(exc)`` run on the GUI thread.

    Signals
    -------
    busy_changed(bool) : whether any task is running.
    """

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._relay = _Relay()
        self._relay.done.connect(self._on_done)
        self._relay.error.connect(self._on_error)
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Callable[[Any], None], Callable[[BaseException], None]]] = {}

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def submit(
        self, fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[BaseException], None]
    ) -> int:
        """Run ``fn()`` in the pool; returns a task id."""
        task_id = next(self._ids)
        was_busy = self.busy
        self._callbacks[task_id] = (on_done, on_error)
        self._pool.start(_Task(task_id, fn, self._relay))
        if not was_busy:
            self.busy_changed.emit(True)
        return task_id

    @Slot(int, object)
    def _on_done(self, task_id: int, result: object) -> None:
        on_done, _ = self._callbacks.pop(task_id)
        try:
            on_done(result)
        finally:
            if not self.busy:
                self.busy_changed.emit(False)

    @Slot(int, object)
    def _on_error(self, task_id: int, exc: object) -> None:
        _, on_error = self._callbacks.pop(task_id)
        try:
            on_error(exc)  # type: ignore[arg-type]
        finally:
            if not self.busy:
                self.busy_changed.emit(False)

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Wait for the running tasks (at shutdown)."""
        return bool(self._pool.waitForDone(timeout_ms))
