"""What the ``fast3r`` command line prints: results, warnings, progress, and the log set-up of a run.

Results and summaries go to stdout (``--json``: one JSON document and nothing else); progress,
warnings and errors go to stderr. Progress is a tqdm bar per stage on a terminal and plain lines
(``encode 3/8``) otherwise; ``--quiet`` prints nothing but errors. Log records reach stderr through the
same writer, so that they never break a progress bar, and go to the rotating log file
(:mod:`fast3r_core.logs`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from fast3r_core.logs import open_log_file
from fast3r_core.progress import SKIPPED_FILE_RECORD, ProgressEvent

__all__ = ["FILE_ONLY", "Console", "LogSetup", "Progress", "fmt_bytes", "progress_for"]

_BYTE_STAGES = frozenset({"download", "verify"})


# ------------------------------------------------------------------------------------------------
# Console output and progress
# ------------------------------------------------------------------------------------------------
# Control characters (C0 but newline and tab, DEL, C1) and the bidirectional overrides: a file name or
# a project field can hold them, and printed raw they drive the terminal (clear the screen, set the
# title) or reorder what is shown. Everything printed goes through _escape_controls.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_controls(text: str, *, json_style: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``; ``\\u001b`` in JSON)."""

    def esc(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\u{code:04x}" if json_style or code > 0xFF else f"\\x{code:02x}"

    return _CONTROL_RE.sub(esc, text)


class Console:
    """The CLI's own user output: results on stdout, warnings and errors on stderr.

    ``quiet`` silences everything but errors (and the JSON document); ``json_mode`` keeps stdout for the
    JSON document only.
    """

    def __init__(self, *, quiet: bool = False, json_mode: bool = False) -> None:
        self.quiet = quiet
        self.json_mode = json_mode
        #: Writes a line to stderr without breaking a progress bar (set by :func:`fast3r_core.cli.main`).
        self.stderr_line: Callable[[str], None] = lambda text: self._write(sys.stderr, text)

    @staticmethod
    def _write(stream: TextIO, text: str, *, json_style: bool = False) -> None:
        text = _escape_controls(text, json_style=json_style)
        try:
            stream.write(text + "\n")
        except UnicodeEncodeError:  # a console that cannot show a non-ASCII path
            enc = getattr(stream, "encoding", None) or "ascii"
            stream.write(text.encode(enc, "backslashreplace").decode(enc) + "\n")
        stream.flush()

    def out(self, text: str) -> None:
        """A line of human-readable result on stdout (not in quiet or JSON mode)."""
        if not (self.quiet or self.json_mode):
            self._write(sys.stdout, text)

    def json(self, data: Any) -> None:
        """The JSON document of a command, on stdout."""
        # json.dumps escapes C0 only; the other control characters become \\uXXXX (still valid JSON)
        self._write(sys.stdout, json.dumps(_jsonable(data), indent=2, ensure_ascii=False), json_style=True)

    def warning(self, text: str) -> None:
        """``warning: ...`` on stderr (not in quiet mode)."""
        if not self.quiet:
            self.stderr_line(f"warning: {text}")

    def error(self, text: str) -> None:
        """A line on stderr, always."""
        self.stderr_line(text)


def _jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf replaced by None, paths by strings and tuples by lists (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def fmt_bytes(n: float) -> str:
    """Human size: 1.2 GB, 34.5 MB, 12 kB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


class Progress:
    """Progress callback for the core: tqdm bars (terminal), plain lines (pipes, logs) or nothing.

    Plain lines are ``STAGE DONE/TOTAL`` (bytes in MB for downloads), written when a stage starts, ends,
    or crosses another tenth of its total.
    """

    def __init__(self, mode: str) -> None:
        if mode not in ("bar", "lines", "off"):
            raise ValueError(f"unknown progress mode {mode!r}")
        self.mode = mode
        self._lock = threading.RLock()
        self._bar: Any = None
        self._stage: tuple[str, int] | None = None
        self._decile = -1
        self._last: tuple[str, int, int] | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if self.mode == "off":
            return
        with self._lock:
            if self.mode == "bar":
                self._update_bar(event)
            else:
                self._update_lines(event)

    def _update_lines(self, ev: ProgressEvent) -> None:
        key = (ev.stage, ev.total)
        decile = int(ev.fraction * 10)
        new_stage = key != self._stage
        if not (new_stage or ev.done >= ev.total or decile > self._decile):
            return
        if (ev.stage, ev.done, ev.total) == self._last:
            return
        self._stage, self._decile, self._last = key, decile, (ev.stage, ev.done, ev.total)
        if ev.stage in _BYTE_STAGES:
            text = f"{ev.stage} {ev.done / 1e6:.1f}/{ev.total / 1e6:.1f} MB"
        else:
            text = f"{ev.stage} {ev.done}/{ev.total}"
        if ev.message and (ev.stage in _BYTE_STAGES or ev.message.startswith("pass ")):
            text += f" {ev.message}"
        Console._write(sys.stderr, text)

    def _update_bar(self, ev: ProgressEvent) -> None:
        from tqdm import tqdm

        key = (ev.stage, ev.total)
        if key != self._stage or self._bar is None:
            self._close_bar()
            is_bytes = ev.stage in _BYTE_STAGES
            self._bar = tqdm(
                total=max(ev.total, 0),
                desc=ev.stage,
                unit="B" if is_bytes else "it",
                unit_scale=is_bytes,
                unit_divisor=1024 if is_bytes else 1000,
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )
            self._stage = key
        done = min(ev.done, ev.total) if ev.total > 0 else ev.done
        if done >= self._bar.n:
            self._bar.update(done - self._bar.n)  # redraws at most every tqdm.mininterval
        else:
            self._bar.n = done
            self._bar.refresh()

    def write_line(self, text: str) -> None:
        """Write a line to stderr; above the bar when one is shown (tqdm redraws it below)."""
        with self._lock:
            if self._bar is not None:
                from tqdm import tqdm

                tqdm.write(_escape_controls(text), file=sys.stderr)
            else:
                Console._write(sys.stderr, text)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        """Finish the current bar (call it before printing anything else)."""
        with self._lock:
            self._close_bar()
            self._stage = None


def progress_for(console: Console) -> Progress:
    """Bars on a terminal, plain lines otherwise, nothing with --quiet."""
    if console.quiet:
        return Progress("off")
    isatty = getattr(sys.stderr, "isatty", None)
    if isatty is None or not isatty():
        return Progress("lines")
    try:  # a pseudo-terminal without a size (some CI runners) would get empty bars
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return Progress("lines")
    return Progress("bar" if size.columns >= 20 and size.lines >= 2 else "lines")


# ------------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------------
#: Attribute of a log record that goes to the log file only (a traceback behind a one-line error).
FILE_ONLY = "fast3r_file_only"


class _StderrFilter(logging.Filter):
    """Keep tracebacks meant for the log file off stderr; the CLI lists skipped files itself."""

    def __init__(self, verbose: int) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, FILE_ONLY, False):
            return False
        # the image loader (images/loading.py) warns once per skipped file; the CLI prints one line
        # listing them from the run's typed report (LoadedInputs / RunReport .skipped), so the
        # per-file records stay off stderr (-v).
        return not (self.verbose == 0 and getattr(record, SKIPPED_FILE_RECORD, False))


class _LineHandler(logging.Handler):
    """Log records as lines on stderr through a writer that keeps progress bars intact."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__()
        self._write_line = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write_line(self.format(record))
        except Exception:
            self.handleError(record)


class _ConsoleFormatter(logging.Formatter):
    """``warning: message`` (or ``[LEVEL] logger: message`` in verbose mode)."""

    def __init__(self, verbose: int) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if self.verbose:
            return f"[{record.levelname}] {record.name}: {msg}"
        return f"{record.levelname.lower()}: {msg}"


class LogSetup:
    """Handlers installed for one ``main()`` call, removed again by :meth:`close`."""

    def __init__(
        self,
        *,
        verbose: int,
        quiet: bool,
        log_file: str | None,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.path: Path | None = None
        self.problem = ""
        self._handlers: list[logging.Handler] = []
        self._package = logging.getLogger("fast3r_core")
        self._old_level = self._package.level
        self._root = logging.getLogger()
        self._old_root_level = self._root.level

        file_level = logging.DEBUG if verbose >= 2 else logging.INFO
        if quiet:
            console_level = logging.ERROR
        else:
            console_level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)

        handler, path, self.problem = open_log_file(log_file, file_level)
        if handler is not None:
            self._add(handler)
            self.path = path

        console = _LineHandler(write or (lambda text: Console._write(sys.stderr, text)))
        console.setLevel(console_level)
        console.setFormatter(_ConsoleFormatter(verbose))
        console.addFilter(_StderrFilter(verbose))
        self._add(console)

        self._package.setLevel(min(file_level, console_level))
        if self._root.level > logging.WARNING or self._root.level == logging.NOTSET:
            self._root.setLevel(logging.WARNING)  # third-party warnings reach the handlers too

    def _add(self, handler: logging.Handler) -> None:
        self._root.addHandler(handler)
        self._handlers.append(handler)

    def details_hint(self) -> str:
        """Where the traceback of an internal error can be read."""
        if self.path is not None:
            return f"details in {self.path}"
        return f"no log file ({self.problem}); run again with -vv for details"

    def close(self) -> None:
        """Remove and close the handlers, restore the logger levels."""
        for h in self._handlers:
            self._root.removeHandler(h)
            h.close()
        self._handlers.clear()
        self._package.setLevel(self._old_level)
        self._root.setLevel(self._old_root_level)
