"""Progress reporting shared by the inference engine, downloads, the CLI and the GUI (no Qt here)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled

__all__ = [
    "SKIPPED_FILE_RECORD",
    "CancelToken",
    "ProgressCallback",
    "ProgressEvent",
    "check_cancel",
    "report",
]


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    Attributes
    ----------
    stage : str
        One of "images", "encode", "fuse", "heads", "poses", "download", "export" (free text allowed).
    done, total : int
        Units done so far in this stage and units in the stage (views, chunks or bytes).
    message : str
        Optional human-readable detail.
    pass_index, pass_count : int or None
        In a run of several forward passes, the pass this event belongs to (0-based) and how many
        passes the run makes; None outside the passes (and in a one-pass run).
    """

    stage: str
    done: int
    total: int
    message: str = ""
    pass_index: int | None = None
    pass_count: int | None = None

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


#: Attribute set on the log record of each skipped input file (``extra={SKIPPED_FILE_RECORD: True}``).
#: The skipped files themselves travel typed, in ``LoadedInputs.skipped`` and ``RunReport.skipped``; a
#: front end that lists them from there (the CLI's one summary line) drops these per-file records by this
#: flag rather than by their wording.
SKIPPED_FILE_RECORD = "fast3r_skipped_file"

ProgressCallback = Callable[[ProgressEvent], None]
CancelToken = threading.Event


def report(progress: ProgressCallback | None, stage: str, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` with a new event if it is given."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, message))


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("Cancelled by the user")
