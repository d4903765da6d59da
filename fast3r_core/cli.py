"""The ``fast3r`` command line: reconstruct, export, info, models, download.

Usage (``fast3r --help`` and ``fast3r COMMAND --help`` for every option)::

    fast3r reconstruct PHOTOS_DIR --out OUT [--model demo|fast3r-vitl-512|FOLDER] [--size 512|224] ...
    fast3r export OUT/project.f3r --format ply|glb|colmap|nerfstudio|cameras --out PATH
    fast3r info OUT/project.f3r
    fast3r add OUT/project.f3r MORE_PHOTOS... [-o OUT/more.f3r]
    fast3r models
    fast3r download fast3r-vitl-512 --accept-license

Exit codes
----------
0  success (unreadable files among good ones are skipped with a warning; still 0)
1  internal error (a bug): one line on stderr, the traceback goes to the log file only
2  bad input or usage: one line ``error: ...`` on stderr, never a traceback
130 cancelled (Ctrl-C): nothing half-written is left behind
143 terminated (SIGTERM): cleaned up like Ctrl-C

Output: results and summaries go to stdout (``--json``: one JSON document on stdout and nothing else);
progress, warnings and errors go to stderr. Progress is a tqdm bar per stage on a terminal and plain
lines (``encode 3/8``) otherwise; ``--quiet`` prints nothing but errors (and the JSON document when
``--json`` is given).

Logging: every run appends to a rotating log file ``fast3r.log`` in ``$FAST3R_LOG_DIR`` if set, else in
``platformdirs.user_log_dir("fast3r-studio")`` (``--log-file`` overrides the file). stderr shows warnings
(``-v``: info, ``-vv``: debug).

The heavy modules (torch, the model, the exporters) are imported inside the commands that use them, so
``fast3r --help``, ``models``, ``info`` and ``export`` never import torch.

Large image sets: ``reconstruct`` splits the views into passes that share anchor views when they do
not fit in the free memory (``--max-views-per-pass N`` and ``--anchors M`` override the plan), and
``add`` reconstructs new photos against anchor views of a project and appends them to it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from fast3r_core import __version__
from fast3r_core.errors import (
    Cancelled,
    ExportError,
    Fast3RError,
    InputError,
    LicenseNotAcceptedError,
    ModelNotAvailableError,
)
from fast3r_core.export.formats import FORMATS
from fast3r_core.logs import LOG_DIR_ENV, LOG_FILE_NAME, default_log_path, open_log_file
from fast3r_core.progress import SKIPPED_FILE_RECORD, ProgressEvent

if TYPE_CHECKING:
    from fast3r_core.result import Reconstruction, RunRecord

__all__ = [
    "DEFAULT_CONF_PERCENTILE",
    "EXIT_CANCELLED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "LOG_DIR_ENV",
    "LOG_FILE_NAME",
    "MANIFEST_NAME",
    "OUTPUT_NAMES",
    "RECONSTRUCT_FORMATS",
    "build_parser",
    "default_log_path",
    "main",
]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM

#: Default of ``--conf-percentile``: drop the lowest 10 % of the points (by confidence) from exports.
DEFAULT_CONF_PERCENTILE = 10.0

#: What ``reconstruct --formats`` accepts.
RECONSTRUCT_FORMATS: tuple[str, ...] = ("ply", "glb", "cameras", "nerfstudio", "colmap", "project")
# Writing order: nerfstudio writes points.ply for its own use, the "ply" output then replaces it.
_WRITE_ORDER: tuple[str, ...] = ("nerfstudio", "ply", "glb", "cameras", "colmap", "project")
#: Name of each output inside ``reconstruct --out DIR`` (``nerfstudio`` also writes points.ply and images/),
#: from the export table (:data:`fast3r_core.export.FORMATS`) plus the project file.
OUTPUT_NAMES: dict[str, str] = {
    **{key: fmt.reconstruct_name for key, fmt in FORMATS.items()},
    "project": "project.f3r",
}
#: Formats of ``export --format`` (keys of :data:`fast3r_core.export.FORMATS`).
EXPORT_FORMATS: tuple[str, ...] = tuple(FORMATS)
_BYTE_STAGES = frozenset({"download", "verify"})
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_MAX_LISTED = 8


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


class _Console:
    """The CLI's own user output: results on stdout, warnings and errors on stderr.

    ``quiet`` silences everything but errors (and the JSON document); ``json_mode`` keeps stdout for the
    JSON document only.
    """

    def __init__(self, *, quiet: bool = False, json_mode: bool = False) -> None:
        self.quiet = quiet
        self.json_mode = json_mode
        #: Writes a line to stderr without breaking a progress bar (set by :func:`main`).
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


def _fmt_bytes(n: float) -> str:
    """Human size: 1.2 GB, 34.5 MB, 12 kB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


class _Progress:
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
        _Console._write(sys.stderr, text)

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
                _Console._write(sys.stderr, text)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        """Finish the current bar (call it before printing anything else)."""
        with self._lock:
            self._close_bar()
            self._stage = None


def _progress_for(console: _Console) -> _Progress:
    """Bars on a terminal, plain lines otherwise, nothing with --quiet."""
    if console.quiet:
        return _Progress("off")
    isatty = getattr(sys.stderr, "isatty", None)
    if isatty is None or not isatty():
        return _Progress("lines")
    try:  # a pseudo-terminal without a size (some CI runners) would get empty bars
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return _Progress("lines")
    return _Progress("bar" if size.columns >= 20 and size.lines >= 2 else "lines")


# ------------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------------
_FILE_ONLY = "fast3r_file_only"


class _StderrFilter(logging.Filter):
    """Keep tracebacks meant for the log file off stderr; the CLI lists skipped files itself."""

    def __init__(self, verbose: int) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _FILE_ONLY, False):
            return False
        # images.py warns once per skipped file; the CLI prints one line listing them from the run's
        # typed report (LoadedInputs / RunReport .skipped), so the per-file records stay off stderr (-v).
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


class _LogSetup:
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

        console = _LineHandler(write or (lambda text: _Console._write(sys.stderr, text)))
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


# ------------------------------------------------------------------------------------------------
# Output folder: checked before the model runs, filled atomically
# ------------------------------------------------------------------------------------------------
MANIFEST_NAME = ".fast3r-outputs.json"
"""File in an output folder listing the files this program wrote there (so a later run may replace
them, and only them)."""
_MANIFEST_FORMAT = "fast3r-outputs"


def _read_manifest(folder: Path) -> set[str] | None:
    """Relative paths (forward slashes) listed in ``folder``'s manifest; None when there is none."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT:
        return None
    files = data.get("files")
    if not isinstance(files, list):
        return None
    return {f for f in files if isinstance(f, str)}


def _files_under(folder: Path) -> list[str]:
    """Every file and symlink under ``folder`` (relative, forward slashes), without the manifest."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            p = (rel / name).as_posix()
            if p != MANIFEST_NAME:
                out.append(p)
    return sorted(out)


class _OutputFolder:
    """An output folder (``reconstruct --out``, ``export`` to a folder), written through a staging folder.

    Creation checks that the folder can be created and written (before anything slow runs) and that
    it is new, empty, or a previous output of this program (its manifest lists every file in it);
    a folder holding anything else is refused unless ``overwrite``. Stale staging folders and
    temporary files of killed runs are removed first.

    Outputs are written into a hidden staging folder beside it (inside it when its parent is
    read-only), then moved into place by :meth:`commit`: when the folder holds only our files, it is
    swapped with the staging folder by two renames, so a reader (or a killed run) never sees old and
    new outputs mixed (``replace_all``: earlier outputs this run does not write again go too, as a
    result folder holds one result). Otherwise (files of the user's there with ``overwrite``, or
    earlier outputs of another command) the staged files are moved in one by one: files of the same
    names are replaced, the others kept. :meth:`discard` removes the staging
    folder and the folders this run created, so a failed or cancelled run leaves nothing behind.
    """

    def __init__(
        self, out: str | os.PathLike[str], *, overwrite: bool = False, replace_all: bool = False
    ) -> None:
        self.replace_all = replace_all
        from fast3r_core.atomic import clean_stale

        self.out = Path(os.path.abspath(os.fspath(out)))
        self._created: list[Path] = []
        missing = []
        p = self.out
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"The output folder {self.out} is a file, not a folder")
        clean_stale(self.out.parent, restore_to=self.out)
        if self.out.is_dir():
            clean_stale(self.out)
        self.previous = _read_manifest(self.out) if self.out.is_dir() else None
        present = _files_under(self.out) if self.out.is_dir() else []
        self.foreign = [f for f in present if f not in (self.previous or set())]
        if self.foreign and not overwrite:
            shown = ", ".join(self.foreign[:5]) + (
                f" and {len(self.foreign) - 5} more" if len(self.foreign) > 5 else ""
            )
            raise InputError(
                f"The output folder {self.out} holds files this program did not write ({shown}). "
                "Choose a new or empty folder, or pass --overwrite to write into it anyway (files of the "
                "same names are then replaced, the others kept)."
            )
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"Cannot create the output folder {self.out}: {exc.strerror or exc}") from exc
        self._created = list(reversed(missing))  # shallowest first
        try:
            fd, probe = tempfile.mkstemp(prefix=".fast3r-write-test-", dir=self.out)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            self._remove_created()
            reason = exc.strerror or exc
            raise InputError(f"Cannot write into the output folder {self.out}: {reason}") from exc
        prefix = f".{self.out.name or 'out'}.partial-{os.getpid()}-"
        self._beside = True
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=prefix, dir=self.out.parent))
        except OSError:
            self.staging = Path(tempfile.mkdtemp(prefix=prefix, dir=self.out))
            self._beside = False
        log.debug("staging outputs in %s", self.staging)

    def commit(self) -> list[Path]:
        """Move the staged outputs into the output folder; return the top-level outputs.

        Conflicts (a file where a folder goes or the reverse) are found before anything is moved.
        """
        entries = sorted(self.staging.iterdir())
        written = _files_under(self.staging)
        replaced = self.replace_all or (self.previous or set()) <= set(written)
        if self._beside and not self.foreign and replaced:
            # everything there is ours and is replaced: swap the folders, no mixed state ever
            self._write_manifest(self.staging, written)
            self._swap()
        else:
            for entry in entries:
                self._check_merge(entry, self.out / entry.name)
            for entry in entries:
                self._merge(entry, self.out / entry.name)
            shutil.rmtree(self.staging, ignore_errors=True)
            self._write_manifest(self.out, sorted((self.previous or set()) | set(written)))
        return [self.out / e.name for e in entries]

    def _swap(self) -> None:
        """Replace the folder by the staging folder: two renames (a previous output is moved aside)."""
        from fast3r_core.atomic import replace_dir

        replace_dir(self.staging, self.out)

    @staticmethod
    def _write_manifest(folder: Path, files: list[str]) -> None:
        from fast3r_core.atomic import atomic_write

        with atomic_write(folder / MANIFEST_NAME, "w") as f:
            json.dump({"format": _MANIFEST_FORMAT, "files": files}, f, indent=0)

    @staticmethod
    def _is_dir(p: Path) -> bool:
        return p.is_dir() and not p.is_symlink()

    def _check_merge(self, src: Path, dest: Path) -> None:
        if not dest.exists() and not dest.is_symlink():
            return
        if self._is_dir(src) != self._is_dir(dest):
            what = "file" if self._is_dir(src) else "folder"
            raise ExportError(f"Cannot write {dest}: a {what} of that name is in the way")
        if self._is_dir(src):
            for child in src.iterdir():
                self._check_merge(child, dest / child.name)

    def _merge(self, src: Path, dest: Path) -> None:
        if self._is_dir(src) and self._is_dir(dest):
            for child in sorted(src.iterdir()):
                self._merge(child, dest / child.name)
        else:
            self._move(src, dest)

    @staticmethod
    def _move(src: Path, dest: Path) -> None:
        try:
            os.replace(src, dest)
        except OSError:  # another file system (the output folder is a mount point)
            shutil.move(os.fspath(src), os.fspath(dest))

    def discard(self) -> None:
        """Remove the staged outputs and the folders this run created (if still empty)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self._remove_created()

    def _remove_created(self) -> None:
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty


@contextlib.contextmanager
def _staged(out: _OutputFolder) -> Iterator[_OutputFolder]:
    """Discard the staged outputs when the block fails (including Ctrl-C)."""
    try:
        yield out
    except BaseException:
        out.discard()
        raise


# ------------------------------------------------------------------------------------------------
# Argument types
# ------------------------------------------------------------------------------------------------
def _formats_arg(text: str) -> list[str]:
    """Parse ``--formats``: comma-separated names or "all", returned in writing order."""
    names: list[str] = []
    for part in text.replace(" ", "").lower().split(","):
        if not part:
            continue
        if part == "all":
            names.extend(RECONSTRUCT_FORMATS)
        elif part in RECONSTRUCT_FORMATS:
            names.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown format {part!r} (choose from {', '.join(sorted(RECONSTRUCT_FORMATS))} or all)"
            )
    if not names:
        raise argparse.ArgumentTypeError("no format given")
    return [f for f in _WRITE_ORDER if f in names]  # writing order, no duplicates


def _percentile_arg(text: str) -> float:
    """Parse ``--conf-percentile``: a number in [0, 100)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 100.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 100), got {text}")
    return value


def _positive_int(text: str) -> int:
    """Parse an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    """Parse a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _pass_size_arg(text: str) -> int:
    """Parse ``--max-views-per-pass``: 0 (one pass) or an integer >= 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0 or value == 1:
        raise argparse.ArgumentTypeError(f"must be 0 (one pass) or at least 2, got {value}")
    return value


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    """Device, precision, threads, seed, video sampling and licence acceptance (reconstruct, add)."""
    parser.add_argument("--device", type=_device_arg, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16", "int8"),
        default="auto",
        help="compute precision (int8: fast CPU mode, int8 linear layers; CPU only)",
    )
    parser.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image-index draw (0)")
    parser.add_argument(
        "--video-fps", type=_positive_float, default=1.0, metavar="F", help="video frames per second (1)"
    )
    parser.add_argument(
        "--video-max-frames",
        type=_positive_int,
        default=100,
        metavar="N",
        help="at most N frames per video (100)",
    )
    parser.add_argument(
        "--accept-license",
        action="store_true",
        help="accept the model's licence if it has to be downloaded first",
    )


def _add_overwrite(parser: argparse.ArgumentParser) -> None:
    """``--overwrite`` (reconstruct, export): write into a folder that holds files of the user's."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an output folder (or over a file) that this program did not write: files of the "
        "same names are replaced. Without it, only a new or empty folder or a previous output is used",
    )


def _add_link_images(parser: argparse.ArgumentParser) -> None:
    """``--link-images`` (reconstruct, export): hard links instead of copies in images/."""
    parser.add_argument(
        "--link-images",
        action="store_true",
        help="hard-link the photos into the COLMAP / Nerfstudio images/ folders instead of copying them "
        "(saves space; but a tool that edits those images in place then edits your originals)",
    )


def _add_chunking(parser: argparse.ArgumentParser) -> None:
    """``--max-views-per-pass`` and ``--anchors`` (reconstruct, add)."""
    parser.add_argument(
        "--max-views-per-pass",
        type=_pass_size_arg,
        metavar="N",
        help="at most N views (anchors included) in one forward pass; larger sets run in several passes "
        "that share anchor views. 0: always one pass (default: automatic from the free memory)",
    )
    parser.add_argument(
        "--anchors",
        type=_positive_int,
        metavar="M",
        help="anchor views shared by every pass of a chunked run, view 0 included "
        "(default: a third of a pass, 1 to 8)",
    )


def _device_arg(text: str) -> str:
    """Parse ``--device``: auto, cpu, mps, cuda or cuda:N (availability is checked when loading)."""
    value = text.strip().lower()
    if not _DEVICE_RE.match(value):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (auto, cpu, cuda, cuda:N or mps)")
    return value


def _display_name(fmt: str) -> str:
    """Output name of a format in ``reconstruct --out DIR`` (folders end in "/")."""
    folder = fmt in FORMATS and FORMATS[fmt].is_folder and FORMATS[fmt].output_name is None
    return OUTPUT_NAMES[fmt] + ("/" if folder else "")


def _top_percent(conf_percentile: float) -> float:
    """``--conf-percentile P`` drops the lowest P % of the points: keep the top (100 - P) %."""
    return 100.0 - conf_percentile


# ------------------------------------------------------------------------------------------------
# Parser
# ------------------------------------------------------------------------------------------------
def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before and after the command name (``fast3r -v info X`` = ``fast3r info X -v``)."""

    def d(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("output and logging")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=d(0),
        help="show info messages on stderr (-vv: debug messages, also in the log file)",
    )
    g.add_argument("-q", "--quiet", action="store_true", default=d(False), help="print nothing but errors")
    g.add_argument(
        "--json",
        action="store_true",
        default=d(False),
        help="print the result as one JSON document on stdout (nothing else goes to stdout)",
    )
    g.add_argument(
        "--log-file",
        metavar="PATH",
        default=d(None),
        help=f"log file (default: ${LOG_DIR_ENV}/{LOG_FILE_NAME} or the user log folder)",
    )


def _add_percentile(parser: argparse.ArgumentParser) -> None:
    """Add ``--conf-percentile`` (shared by reconstruct and export)."""
    parser.add_argument(
        "--conf-percentile",
        metavar="P",
        type=_percentile_arg,
        default=DEFAULT_CONF_PERCENTILE,
        help="drop the lowest P %% of the points by confidence from point exports (keep the top "
        f"100-P %%); 0 keeps every point (default: {DEFAULT_CONF_PERCENTILE:g})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``fast3r`` argument parser (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog="fast3r",
        description="Fast3R Studio: unposed photos -> point cloud and camera poses (Fast3R, CVPR 2025).",
        epilog="Exit codes: 0 ok, 1 internal error, 2 bad input or usage, 130 cancelled. "
        "Run 'fast3r COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"fast3r {__version__}")
    _add_common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # reconstruct ------------------------------------------------------------------------------
    p = sub.add_parser(
        "reconstruct",
        help="photos or a video -> point cloud, cameras and exports",
        description="Run Fast3R on a folder of photos, image files or a video and write the outputs "
        "into --out: " + ", ".join(_display_name(f) for f in RECONSTRUCT_FORMATS) + ". The outputs "
        "appear only when the run succeeded (a failed or cancelled run leaves nothing).",
    )
    _add_common(p, suppress=True)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder, image files, or a video file")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument(
        "-m",
        "--model",
        default="demo",
        metavar="NAME_OR_PATH",
        help="registered model name (see 'fast3r models'), Hugging Face repo id, or a folder with "
        "config.json + model.safetensors (default: demo)",
    )
    p.add_argument("--size", type=int, choices=(512, 224), default=512, help="model resolution (default 512)")
    _add_run_args(p)
    _add_percentile(p)
    p.add_argument("--max-views", type=_positive_int, metavar="N", help="use at most N images, evenly spaced")
    p.add_argument(
        "--per-view-focal", action="store_true", help="estimate one focal length per view (mixed cameras)"
    )
    p.add_argument(
        "--formats",
        type=_formats_arg,
        default=list(_WRITE_ORDER),
        metavar="LIST",
        help="comma-separated outputs among " + ",".join(RECONSTRUCT_FORMATS) + " (default: all)",
    )
    _add_chunking(p)
    _add_link_images(p)
    _add_overwrite(p)
    p.set_defaults(handler=_cmd_reconstruct)

    # add ----------------------------------------------------------------------------------------
    p = sub.add_parser(
        "add",
        help="add photos to a project (reconstructs only the new views)",
        description="Reconstruct new photos together with anchor views of an existing project, align "
        "them into its frame and write the project with the new views appended (the project records "
        "which views came from which run). The photos are used at the project's resolution.",
    )
    _add_common(p, suppress=True)
    p.add_argument("project", metavar="PROJECT.f3r")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder, image files, or a video file")
    p.add_argument(
        "-o", "--out", metavar="OUT.f3r", help="write the result here (default: update PROJECT.f3r in place)"
    )
    p.add_argument(
        "-m",
        "--model",
        metavar="NAME_OR_PATH",
        help="model to use (default: the project's model)",
    )
    _add_run_args(p)
    _add_chunking(p)
    p.set_defaults(handler=_cmd_add)

    # export -------------------------------------------------------------------------------------
    p = sub.add_parser(
        "export",
        help="write a project's result in another format",
        description="Export a project file (.f3r, written by 'fast3r reconstruct' or the app). "
        "ply, glb and cameras write a file (into the folder when --out is an existing folder); "
        "colmap and nerfstudio write a folder.",
    )
    _add_common(p, suppress=True)
    p.add_argument("project", metavar="PROJECT.f3r")
    p.add_argument(
        "-f",
        "--format",
        required=True,
        choices=EXPORT_FORMATS,
        help="; ".join(f"{key}: {fmt.description}" for key, fmt in FORMATS.items()),
    )
    p.add_argument("-o", "--out", required=True, metavar="PATH")
    _add_percentile(p)
    _add_link_images(p)
    _add_overwrite(p)
    p.set_defaults(handler=_cmd_export)

    # info ---------------------------------------------------------------------------------------
    p = sub.add_parser("info", help="describe a project file", description="Describe a project file.")
    _add_common(p, suppress=True)
    p.add_argument("project", metavar="PROJECT.f3r")
    p.set_defaults(handler=_cmd_info)

    # models -------------------------------------------------------------------------------------
    p = sub.add_parser(
        "models",
        help="list the registered models and whether they are available offline",
        description="List the registered models: name, size, licence, cached or not, and folder.",
    )
    _add_common(p, suppress=True)
    p.set_defaults(handler=_cmd_models)

    # download -----------------------------------------------------------------------------------
    p = sub.add_parser(
        "download",
        help="download a model into the cache",
        description="Download a registered model (or a Hugging Face repo id) into the user cache. "
        "An interrupted download resumes.",
    )
    _add_common(p, suppress=True)
    p.add_argument("name", metavar="NAME", help="model name (see 'fast3r models') or owner/repo")
    p.add_argument("--accept-license", action="store_true", help="accept the model's licence")
    p.set_defaults(handler=_cmd_download)

    # train / eval (the demo model's training and evaluation; torch is imported by the handlers) -----
    from fast3r_core.train.cli_commands import add_eval_parser, add_train_parser

    add_train_parser(sub, add_common=lambda q: _add_common(q, suppress=True))
    add_eval_parser(sub, add_common=lambda q: _add_common(q, suppress=True))
    return parser


# ------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------
def _list_files(items: Sequence[tuple[str, str]]) -> str:
    """``a.jpg (reason), b.png (reason) and N more`` for one warning line."""
    shown = ", ".join(f"{name} ({reason})" for name, reason in items[:_MAX_LISTED])
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return shown + more


def _model_label(source: str) -> str:
    """The model name stored in the project: the registered name or the absolute path of a local model."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def _log_memory_estimate(args: argparse.Namespace) -> None:
    """Log the run's peak-memory estimate from the image headers, as the app shows it before a run.

    Only logged: the estimate is for the CPU's RAM and the run checks the memory again, exactly, once
    the images are decoded and the model is on its device.
    """
    from fast3r_core.preflight import estimate_memory

    try:
        check = estimate_memory(
            args.inputs,
            args.model,
            args.size,
            max_views=args.max_views,
            video_max_frames=args.video_max_frames,
            max_views_per_pass=args.max_views_per_pass,
            anchors=args.anchors,
            int8=args.precision == "int8",
        )
    except Exception:  # an estimate that cannot be made must not stop the run that would check anyway
        log.debug("no memory estimate", exc_info=True)
        return
    if check is not None:
        log.info("memory estimate (RAM): %s", check.describe())


def _precheck_model(source: str, accept_license: bool) -> None:
    """Fail fast (before images are decoded) on a model that cannot be loaded or downloaded.

    Raises ModelNotAvailableError for an unknown name or a missing bundled model, and
    LicenseNotAcceptedError for a model that needs a download whose licence was not accepted. Models
    that will be downloaded are not contacted here.
    """
    from fast3r_core import weights
    from fast3r_core.preflight import license_to_accept

    try:
        weights.resolve_model_dir(source)
        return
    except ModelNotAvailableError:
        info = weights.MODELS.get(source)
        if info is None:
            if _HUB_ID_RE.match(source):
                return  # any Hub repo: load_model downloads it
            raise
        if info.repo_id is None:
            raise
        if license_to_accept(source, accept_license) is not None:
            size = f", about {_fmt_bytes(info.approx_size_bytes)}" if info.approx_size_bytes else ""
            raise LicenseNotAcceptedError(
                f"The model '{info.name}' must be downloaded first{size}. Its weights are under the "
                f"{info.license_name} ({info.license_url}). {info.license_summary} To accept the licence "
                "and download it, pass --accept-license (or run 'fast3r download "
                f"{info.name} --accept-license')."
            ) from None


def _export_outputs(
    rec: Reconstruction,
    folder: Path,
    formats: Sequence[str],
    top_percent: float,
    progress: Callable[[ProgressEvent], None],
    *,
    link_images: bool = False,
) -> tuple[dict[str, Path], dict[str, int], float | None]:
    """Write ``formats`` into ``folder``: (output paths, points written per format, COLMAP error)."""
    from fast3r_core.export import PointSelection
    from fast3r_core.project_file import save_project

    selection = PointSelection(top_percent=top_percent)
    paths: dict[str, Path] = {}
    counts: dict[str, int] = {}
    reproj: float | None = None
    for i, fmt in enumerate(formats):
        progress(ProgressEvent("export", i, len(formats), fmt))
        dest = folder / OUTPUT_NAMES[fmt]
        paths[fmt] = dest
        if fmt == "project":
            save_project(rec, dest)
            continue
        spec = FORMATS[fmt]
        options: dict[str, Any] = {"link_images": link_images} if spec.copies_images else {}
        if fmt == "nerfstudio":
            # points.ply beside transforms.json; the "ply" output (written after) has the same points
            # plus those of views without a pose, which nerfstudio leaves out.
            options["ply_file_path"] = OUTPUT_NAMES["ply"]
        report = spec.export(rec, dest, selection, **options)
        if spec.takes_selection:
            counts[fmt] = report.n_points
        if fmt == "colmap":
            reproj = float(report.mean_reproj_px)
    progress(ProgressEvent("export", len(formats), len(formats)))
    return paths, counts, reproj


def _cmd_reconstruct(args: argparse.Namespace, console: _Console, progress: _Progress) -> int:
    """``fast3r reconstruct``: inputs -> model -> every requested output in ``--out``."""
    t_start = time.perf_counter()
    top_percent = _top_percent(args.conf_percentile)
    # fail fast: before images and model
    out = _OutputFolder(args.out, overwrite=args.overwrite, replace_all=True)
    with _staged(out):
        from fast3r_core import images, pipeline, weights

        options = pipeline.ReconstructOptions(
            size=args.size,
            device=args.device,
            precision=args.precision,
            num_threads=args.threads,
            seed=args.seed,
            max_views=args.max_views,
            video_fps=args.video_fps,
            video_max_frames=args.video_max_frames,
            per_view_focal=args.per_view_focal,
            max_views_per_pass=args.max_views_per_pass,
            anchors=args.anchors,
        )
        # Cheap checks first (paths exist, model loadable), then decoding, then the slow model load.
        images.discover_inputs(args.inputs)
        _precheck_model(args.model, args.accept_license)
        _log_memory_estimate(args)
        t = time.perf_counter()
        loaded = images.load_inputs(
            args.inputs,
            size=args.size,
            fps=args.video_fps,
            max_frames=args.video_max_frames,
            progress=progress,
        )
        t_images = time.perf_counter() - t
        # the result and the exports must fit too: refuse now rather than run out of memory at the end
        from fast3r_core.output_memory import check_output_memory

        used = pipeline._subsample(list(loaded.views), args.max_views)
        check_output_memory([v.true_shape for v in used], args.formats, top_percent=top_percent)
        skipped = [(str(s.path), s.reason) for s in loaded.skipped]
        if skipped:
            progress.close()
            console.warning(
                f"skipped {len(skipped)} file(s) that could not be used: "
                + _list_files([(Path(p).name, r) for p, r in skipped])
            )

        t = time.perf_counter()
        model = weights.load_model(
            args.model, args.device, accept_license=args.accept_license, progress=progress
        )
        t_model = time.perf_counter() - t

        report = pipeline.RunReport(skipped=list(loaded.skipped), ignored=loaded.ignored)
        rec = pipeline.reconstruct(
            loaded.views,
            model,
            options,
            progress,
            None,
            model_name=_model_label(args.model),
            run_report=report,
        )
        del model
        timings = {
            "load_images": t_images,
            "load_model": t_model,
            "inference": float(rec.timings.get("model", math.nan)),
            "poses": float(rec.timings.get("poses", math.nan)),
        }
        rec = dataclasses.replace(rec, timings={**rec.timings, "images": t_images, "load_model": t_model})
        failed = sorted(int(v) for v in report.failed_poses)
        if failed:
            progress.close()
            names = [Path(rec.image_paths[v]).name for v in failed]
            console.warning(
                f"pose estimation failed for {len(failed)} view(s): {', '.join(names[:_MAX_LISTED])}; "
                "they are left out of the COLMAP and Nerfstudio exports"
            )

        t = time.perf_counter()
        paths, counts, reproj = _export_outputs(
            rec, out.staging, args.formats, top_percent, progress, link_images=args.link_images
        )
        out.commit()
        timings["export"] = time.perf_counter() - t
    progress.close()
    timings["total"] = time.perf_counter() - t_start

    final = {fmt: out.out / p.name for fmt, p in paths.items()}
    if "nerfstudio" in final and "ply" not in final:
        final["nerfstudio_points"] = out.out / OUTPUT_NAMES["ply"]
    if console.json_mode:
        console.json(
            {
                "command": "reconstruct",
                "status": "ok",
                "model": rec.model_name,
                "architecture": rec.runs[0].architecture or None,
                "views": rec.n_views,
                "images": [os.path.abspath(p) for p in rec.image_paths],
                "image_size": args.size,
                "conf_percentile": args.conf_percentile,
                "points_total": rec.n_pixels,
                "points_written": counts,
                "skipped": [{"path": p, "reason": r} for p, r in skipped],
                "failed_poses": failed,
                "runs": [r.to_json(complete=True) for r in rec.runs],
                "colmap_mean_reprojection_error_px": reproj,
                "timings": timings,
                "out_dir": out.out,
                "outputs": final,
            }
        )
        return EXIT_OK
    extra = []
    if skipped:
        extra.append(f"{len(skipped)} file(s) skipped")
    if failed:
        extra.append(f"{len(failed)} pose(s) failed")
    note = f" ({', '.join(extra)})" if extra else ""
    console.out(
        f"Reconstructed {rec.n_views} view(s) with {rec.model_name} in {timings['total']:.1f} s{note}."
    )
    if rec.chunking_summary():
        console.out(f"  ({rec.chunking_summary()})")
    console.out(f"Wrote into {out.out}:")
    for fmt in (f for f in RECONSTRUCT_FORMATS if f in args.formats):
        name = _display_name(fmt)
        detail = ""
        if fmt in counts:
            detail = f"{counts[fmt]} points"
        if fmt == "colmap" and reproj is not None and math.isfinite(reproj):
            detail += f", mean reprojection error {reproj:.2f} px"
        if fmt == "cameras":
            detail = f"{rec.n_views} cameras"
        console.out(f"  {name:<16} {detail}".rstrip())
    return EXIT_OK


def _cmd_export(args: argparse.Namespace, console: _Console, progress: _Progress) -> int:
    """``fast3r export``: a project file -> one export format."""
    from fast3r_core.export import PointSelection
    from fast3r_core.project_file import load_project

    rec = load_project(args.project)
    fmt = FORMATS[args.format]
    dest = Path(args.out)
    if not fmt.is_folder and dest.is_dir():
        dest = dest / fmt.default_name
    staged: _OutputFolder | None = None
    target = dest
    if fmt.is_folder:
        # the whole export appears at once (staging folder, then renames), or not at all
        if dest.suffix.lower() == ".json":  # nerfstudio's transforms.json named by the user
            staged = _OutputFolder(dest.parent, overwrite=args.overwrite)
            target = staged.staging / dest.name
        else:
            staged = _OutputFolder(dest, overwrite=args.overwrite)
            target = staged.staging
    else:
        from fast3r_core.atomic import clean_stale

        clean_stale(dest.parent)
        _check_file_destination(dest, args.format, args.overwrite)
    selection = PointSelection(top_percent=_top_percent(args.conf_percentile))
    options: dict[str, Any] = {"link_images": args.link_images} if fmt.copies_images else {}
    progress(ProgressEvent("export", 0, 1, args.format))
    if staged is not None:
        with _staged(staged):
            report = fmt.export(rec, target, selection, **options)
            staged.commit()
        output = dest
        if args.format == "nerfstudio" and dest.suffix.lower() != ".json":
            output = dest / report.path.name
    else:
        report = fmt.export(rec, target, selection, **options)
        output = dest
    progress(ProgressEvent("export", 1, 1, args.format))
    progress.close()

    summary: dict[str, Any] = {"command": "export", "format": args.format, "output": dest.resolve()}
    if args.format in ("ply", "glb"):
        summary["points_written"] = report.n_points
    elif args.format == "colmap":
        summary["points_written"] = report.n_points
        summary["colmap_mean_reprojection_error_px"] = float(report.mean_reproj_px)
        summary["missing_images"] = list(report.missing_images)
    elif args.format == "nerfstudio":
        summary["output"] = output.resolve()
    elif args.format == "cameras":
        summary["cameras"] = report.n_cameras
    for warning in report.warnings:
        console.warning(warning)
    if console.json_mode:
        console.json(summary)
        return EXIT_OK
    detail = ""
    if "points_written" in summary:
        detail = f" ({summary['points_written']} points)"
    elif "cameras" in summary:
        detail = f" ({summary['cameras']} cameras)"
    console.out(f"Wrote {summary['output']}{detail}")
    return EXIT_OK


_SIGNATURES: dict[str, bytes] = {
    "ply": b"comment Fast3R Studio point cloud",
    "glb": b'"generator":"Fast3R Studio"',
    "cameras": b'"convention": "cam_to_world maps camera coordinates',
}


def _check_file_destination(dest: Path, fmt: str, overwrite: bool) -> None:
    """Refuse to replace an existing file that this program did not write (unless ``overwrite``).

    A file of ours is recognised by its content (the PLY header comment, the GLB generator, the
    cameras.json convention), read from its first 64 kB.
    """
    if overwrite or not (dest.exists() or dest.is_symlink()):
        return
    if dest.is_file() and not dest.is_symlink():
        try:
            with open(dest, "rb") as f:
                head = f.read(65536)
        except OSError:
            head = b""
        if _SIGNATURES.get(fmt, b"\0never") in head:
            return
    raise InputError(
        f"{dest} already exists and was not written by this program; choose another name, or pass "
        "--overwrite to replace it"
    )


def _cmd_info(args: argparse.Namespace, console: _Console, progress: _Progress) -> int:
    """``fast3r info``: views, sizes, points, model, options, timings, per-view confidence."""
    import numpy as np

    from fast3r_core.project_file import load_project

    rec = load_project(args.project)
    stats = rec.per_view_stats()
    finite = sum(
        int(np.count_nonzero(np.isfinite(p).all(axis=-1) & np.isfinite(c)))
        for p, c in zip(rec.pts3d, rec.conf, strict=True)
    )
    sizes: dict[str, int] = {}
    model_sizes: dict[str, int] = {}
    for v in range(rec.n_views):
        w, h = (int(x) for x in rec.original_sizes[v])
        sizes[f"{w}x{h}"] = sizes.get(f"{w}x{h}", 0) + 1
        mh, mw = rec.view_shape(v)
        model_sizes[f"{mw}x{mh}"] = model_sizes.get(f"{mw}x{mh}", 0) + 1
    views: list[dict[str, Any]] = [
        {
            "index": s.view,
            "image": rec.image_paths[s.view],
            "original_size": [int(x) for x in rec.original_sizes[s.view]],
            "model_size": [rec.view_shape(s.view)[1], rec.view_shape(s.view)[0]],
            "mean_confidence": s.mean_conf,
            "pose_ok": s.pose_ok,
        }
        for s in stats
    ]
    if console.json_mode:
        console.json(
            {
                "command": "info",
                "project": Path(args.project).resolve(),
                "model": rec.model_name,
                "architecture": rec.runs[0].architecture or None,
                "views": rec.n_views,
                "image_sizes": sizes,
                "model_sizes": model_sizes,
                "points": rec.n_pixels,
                "finite_points": finite,
                "failed_poses": [s.view for s in stats if not s.pose_ok],
                "options": rec.options,
                "timings": rec.timings,
                "runs": [r.to_json(complete=True) for r in rec.runs],
                "view_runs": rec.view_runs.tolist(),
                "per_view": views,
            }
        )
        return EXIT_OK

    def counted(d: dict[str, int]) -> str:
        return ", ".join(f"{k} (x{n})" if n > 1 else k for k, n in d.items())

    console.out(f"Project      {Path(args.project).resolve()}")
    arch = rec.runs[0].architecture
    console.out(f"Model        {rec.model_name}" + (f" ({arch})" if arch else ""))
    console.out(f"Views        {rec.n_views} ({sum(not s.pose_ok for s in stats)} failed poses)")
    console.out(f"Image sizes  {counted(sizes)}")
    console.out(f"Model sizes  {counted(model_sizes)}")
    console.out(f"Points       {rec.n_pixels} ({finite} finite)")
    opts = ", ".join(f"{k}={v}" for k, v in sorted(rec.options.items()) if v is not None)
    console.out(f"Options      {opts}")
    tim = ", ".join(f"{k} {v:.2f} s" for k, v in rec.timings.items())
    console.out(f"Timings      {tim}")
    for i, run in enumerate(rec.runs):
        console.out(f"{'Runs' if i == 0 else '':<12} {_describe_run(i, run)}")
    console.out("Per view (mean confidence, pose):")
    for item in views:
        pose = "ok" if item["pose_ok"] else "FAILED"
        console.out(
            f"  {item['index']:>4}  {item['mean_confidence']:9.3f}  {pose:<6}  {Path(item['image']).name}"
        )
    return EXIT_OK


def _describe_run(index: int, run: RunRecord) -> str:
    """``run 1 (add): views 8-10, 1 pass of 7 views, anchors 0, 3, 5, 6, model demo``."""
    views = run.views
    span = (
        f"{views[0]}-{views[-1]}" if len(views) > 1 and views == list(range(views[0], views[-1] + 1)) else ""
    )
    text = f"run {index} ({run.kind}): {len(views)} view(s)"
    text += f" {span}" if span else ""
    passes = run.passes
    if passes > 1 or run.anchors:
        largest = max(run.views_per_pass, default=len(views))
        text += f", {passes} pass{'es' if passes != 1 else ''} of up to {largest} views"
        text += f", anchors {', '.join(str(a) for a in run.anchors)}"
    if run.model:
        text += f", model {run.model}"
    return text


def _cmd_add(args: argparse.Namespace, console: _Console, progress: _Progress) -> int:
    """``fast3r add``: a project + new photos -> the project with the new views appended."""
    from fast3r_core import images, pipeline, weights
    from fast3r_core.project_file import load_project, save_project

    t_start = time.perf_counter()
    base = load_project(args.project)
    dest = Path(args.out) if args.out else Path(args.project)
    if dest.is_dir():
        raise InputError(f"--out {str(dest)!r} is a folder; give a project file name (e.g. more.f3r)")
    if not dest.parent.is_dir():
        raise InputError(f"the folder of --out {str(dest)!r} does not exist")
    from fast3r_core.atomic import clean_stale

    clean_stale(dest.parent)
    try:  # fail now, not after the whole run: the result is written there at the end
        fd, probe = tempfile.mkstemp(prefix=".fast3r-write-test-", dir=dest.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"Cannot write into {str(dest.parent)!r}: {exc.strerror or exc}") from exc
    if dest.exists() and not os.access(dest, os.W_OK):
        raise InputError(f"Cannot write {str(dest)!r}: it is read-only")
    model_source = args.model or base.model_name
    if not model_source:
        raise InputError("the project does not name its model: pass --model")
    try:
        _precheck_model(model_source, args.accept_license)
    except ModelNotAvailableError as exc:
        if args.model:
            raise
        raise ModelNotAvailableError(f"The project's model is not available ({exc}); pass --model") from exc
    size = pipeline.project_size(base)
    options = pipeline.ReconstructOptions(
        size=size,
        device=args.device,
        precision=args.precision,
        num_threads=args.threads,
        seed=args.seed,
        video_fps=args.video_fps,
        video_max_frames=args.video_max_frames,
        max_views_per_pass=args.max_views_per_pass,
        anchors=args.anchors,
    )
    images.discover_inputs(args.inputs)
    model = weights.load_model(
        model_source, args.device, accept_license=args.accept_license, progress=progress
    )
    report = pipeline.RunReport()
    rec = pipeline.add_views(
        base,
        args.inputs,
        model,
        options,
        progress,
        None,
        model_name=_model_label(model_source),
        run_report=report,
    )
    del model
    save_project(rec, dest)
    progress.close()
    skipped = [(str(s.path), s.reason) for s in report.skipped]
    if skipped:
        console.warning(
            f"skipped {len(skipped)} file(s): " + _list_files([(Path(p).name, r) for p, r in skipped])
        )
    failed = sorted(int(v) for v in report.failed_poses)
    run = rec.runs[-1]
    if console.json_mode:
        console.json(
            {
                "command": "add",
                "status": "ok",
                "project": dest.resolve(),
                "views": rec.n_views,
                "added": run.views,
                "anchors": run.anchors,
                "passes": run.passes,
                "alignment": run.alignment,
                "skipped": [{"path": p, "reason": r} for p, r in skipped],
                "failed_poses": failed,
                "seconds": time.perf_counter() - t_start,
            }
        )
        return EXIT_OK
    note = f" ({len(failed)} pose(s) failed)" if failed else ""
    seconds = time.perf_counter() - t_start
    console.out(
        f"Added {len(run.views)} view(s) to {base.n_views} in {seconds:.1f} s{note}: "
        f"{_describe_run(len(rec.runs) - 1, run)}."
    )
    console.out(f"Wrote {dest.resolve()}")
    return EXIT_OK


def _architecture_of(folder: Path | None) -> str | None:
    """Depths and widths from a local model folder's config.json (no torch), or None."""
    if folder is None:
        return None
    from fast3r_core.errors import ConfigError
    from fast3r_core.model.config import Fast3RConfig

    try:
        return Fast3RConfig.from_json(Path(folder) / "config.json").describe()
    except ConfigError as exc:
        log.warning("Cannot read the config of %s: %s", folder, exc)
        return None


def _cmd_models(args: argparse.Namespace, console: _Console, progress: _Progress) -> int:
    """``fast3r models``: the registry with size, licence, local state and folder."""
    from fast3r_core import weights

    rows: list[dict[str, Any]] = []
    for st in weights.list_models():
        info = st.info
        if st.available:
            size = st.size_on_disk
            state = "bundled" if st.bundled else "yes"
        else:
            size = info.approx_size_bytes or 0
            state = f"partial ({_fmt_bytes(st.partial_bytes)})" if st.partial_bytes else "no"
        rows.append(
            {
                "name": info.name,
                "size_bytes": size or None,
                "license": info.license_name,
                "license_url": info.license_url,
                "requires_license_acceptance": info.requires_license_acceptance,
                "cached": st.available,
                "state": state,
                "path": st.local_path,
                "repo_id": info.repo_id,
                "description": info.description,
                "architecture": _architecture_of(st.local_path),
            }
        )
    if console.json_mode:
        console.json({"command": "models", "cache_dir": weights.models_cache_dir(), "models": rows})
        return EXIT_OK
    table = [("NAME", "SIZE", "LICENCE", "CACHED", "PATH")]
    for r in rows:
        size_text = "?" if r["size_bytes"] is None else _fmt_bytes(r["size_bytes"])
        if not r["cached"] and r["size_bytes"]:
            size_text = "~" + size_text
        table.append((r["name"], size_text, r["license"], r["state"], str(r["path"] or "-")))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        console.out("  ".join([*cells, row[4]]))
        arch = next((r["architecture"] for r in rows if r["name"] == row[0]), None)
        if arch:
            console.out(f"  {arch}")
    console.out(f"Cache folder: {weights.models_cache_dir()}")
    return EXIT_OK


def _cmd_download(args: argparse.Namespace, console: _Console, progress: _Progress) -> int:
    """``fast3r download``: fetch a model into the cache (needs --accept-license when it says so)."""
    from fast3r_core import weights

    folder = weights.download_model(args.name, accept_license=args.accept_license, progress=progress)
    progress.close()
    if console.json_mode:
        console.json({"command": "download", "name": args.name, "path": Path(folder)})
    else:
        console.out(f"{args.name} is ready in {folder}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------
def _exit_code(code: object) -> int:
    """Exit code of a SystemExit raised by argparse."""
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds (and cleans up) like Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _catch_sigterm() -> Any:
    """Install the SIGTERM handler (main thread only); return the previous one, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fast3r`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Never raises and never calls ``sys.exit``: usage errors return 2 after argparse printed its message.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, usage errors (argparse printed the message)
        return _exit_code(exc.code)
    if getattr(args, "command", None) is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write("fast3r: error: choose a command (fast3r --help lists them)\n")
        return EXIT_USAGE

    console = _Console(quiet=args.quiet, json_mode=args.json)
    progress = _progress_for(console)
    console.stderr_line = progress.write_line
    logs = _LogSetup(
        verbose=args.verbose, quiet=args.quiet, log_file=args.log_file, write=progress.write_line
    )
    if logs.problem:
        console.warning(logs.problem)
    shown = list(argv) if argv is not None else sys.argv[1:]
    log.info("fast3r %s: %s", __version__, " ".join(["fast3r", *shown]))
    old_sigterm = _catch_sigterm()
    try:
        return int(args.handler(args, console, progress))
    except _Terminated:
        progress.close()
        log.info("terminated (SIGTERM)")
        console.error("terminated")
        return EXIT_TERMINATED
    except (KeyboardInterrupt, Cancelled):
        progress.close()
        log.info("cancelled by the user")
        console.error("cancelled")
        return EXIT_CANCELLED
    except Fast3RError as exc:
        progress.close()
        log.info("error: %s", exc, exc_info=True, extra={_FILE_ONLY: True})
        console.error(f"error: {exc}")
        return EXIT_USAGE
    except MemoryError as exc:
        progress.close()
        log.error("out of memory", exc_info=True, extra={_FILE_ONLY: True})
        console.error(
            f"error: not enough memory ({exc or 'MemoryError'}); try --size 224 or fewer views (--max-views)"
        )
        return EXIT_USAGE
    except Exception as exc:
        progress.close()
        log.error("internal error", exc_info=True, extra={_FILE_ONLY: True})
        if args.verbose >= 2 and logs.path is None:
            import traceback

            sys.stderr.write(traceback.format_exc())
        console.error(f"internal error: {type(exc).__name__}: {exc} ({logs.details_hint()})")
        return EXIT_INTERNAL
    finally:
        if old_sigterm is not None:
            signal.signal(signal.SIGTERM, old_sigterm)
        progress.close()
        logs.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
