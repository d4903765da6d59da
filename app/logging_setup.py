"""Logging of the app: the same rotating ``fast3r.log`` as the CLI, plus Qt messages and uncaught errors.

The log file is ``$FAST3R_LOG_DIR/fast3r.log`` if the variable is set, else ``fast3r.log`` in the user log
folder (``platformdirs.user_log_dir("fast3r-studio")``): the file is opened by
:func:`fast3r_core.logs.open_log_file`, so the CLI and the app write to the same file, in one format.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fast3r_core.logs import default_log_path, open_log_file, quiet_noisy_loggers

__all__ = ["LogSetup", "install_excepthook", "log_folder", "setup_logging"]

log = logging.getLogger(__name__)


@dataclass
class LogSetup:
    """What :func:`setup_logging` installed.

    Attributes
    ----------
    path : Path or None
        The log file, or None when it could not be opened (``problem`` says why).
    problem : str
        Why there is no log file ("" when there is one).
    handlers : list of logging.Handler
        Handlers added to the root logger (removed by :meth:`close`).
    """

    path: Path | None
    problem: str
    handlers: list[logging.Handler]

    def where(self) -> str:
        """A sentence for error dialogs: where the details are."""
        if self.path is not None:
            return f"Details are in the log file {self.path}"
        return f"No log file could be written ({self.problem})"

    def close(self) -> None:
        root = logging.getLogger()
        for h in self.handlers:
            root.removeHandler(h)
            h.close()
        self.handlers.clear()


_current: LogSetup | None = None


def since_launch() -> float:
    """Seconds since this process was created (the start-up log lines bench/startup.py reads).

    On Linux from the kernel's start time of the process (``/proc/self/stat``, clock ticks of 10 ms on
    ``CLOCK_BOOTTIME``): psutil's ``create_time`` adds that to the boot time in whole seconds, which puts
    the launch up to 1 s too early (0.89 s on one host: every "after launch" figure was that much too
    long). Elsewhere psutil's figure, which is exact there (Windows, macOS).
    """
    import time

    global _CREATED
    if _CREATED is None:
        start = _linux_start_boottime()
        if start is not None:
            _CREATED = ("boottime", start)
        else:
            import psutil

            _CREATED = ("epoch", psutil.Process().create_time())
    clock, start = _CREATED
    now = time.clock_gettime(time.CLOCK_BOOTTIME) if clock == "boottime" else time.time()
    return now - start


def _linux_start_boottime() -> float | None:
    """When this process started, in seconds of ``CLOCK_BOOTTIME`` (Linux), or None elsewhere."""
    import os
    import time

    if not sys.platform.startswith("linux") or not hasattr(time, "CLOCK_BOOTTIME"):
        return None
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        # the fields after the command name, which may itself hold spaces and ")": starttime is field 22
        start_ticks = int(stat.rsplit(b")", 1)[1].split()[19])
        return start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


_CREATED: tuple[str, float] | None = None


def log_folder() -> Path:
    """Folder of the log file (it may not exist yet)."""
    if _current is not None and _current.path is not None:
        return _current.path.parent
    return default_log_path().parent


def current() -> LogSetup | None:
    """The active setup (None before :func:`setup_logging`)."""
    return _current


def setup_logging(verbose: int = 0, *, console: bool = True) -> LogSetup:
    """Log to the rotating file (INFO, DEBUG with ``verbose >= 2``) and warnings to stderr.

    Also routes Qt's own messages (qWarning ...) into the ``qt`` logger and quiets VisPy (WARNING).
    Calling it again replaces the handlers of the previous call.
    """
    global _current
    if _current is not None:
        _current.close()
    root = logging.getLogger()
    handlers: list[logging.Handler] = []
    fh, opened, problem = open_log_file(level=logging.DEBUG if verbose >= 2 else logging.INFO)
    path: Path | None = opened if fh is not None else None
    if fh is not None:
        handlers.append(fh)
    if console:
        sh = logging.StreamHandler(sys.stderr)
        sh.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))
        sh.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handlers.append(sh)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    quiet_noisy_loggers()
    _install_qt_handler()
    _current = LogSetup(path, problem, handlers)
    log.info("Fast3R Studio logging to %s", path if path is not None else f"nowhere ({problem})")
    return _current


def _install_qt_handler() -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("qt")
    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def handler(mode: QtMsgType, context: object, message: str) -> None:
        qt_log.log(levels.get(mode, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


def install_excepthook(show: Callable[[str, str], None]) -> None:
    """Log uncaught exceptions (GUI thread and other threads) and show them with ``show(title, text)``.

    ``show`` is called on the GUI thread for GUI-thread errors; errors of other threads are only logged
    (the worker catches its own and reports them through signals).
    """

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("Uncaught error", exc_info=(exc_type, exc, tb))
        where = _current.where() if _current is not None else ""
        text = f"{exc_type.__name__}: {exc}\n\n{where}"
        try:
            show("Unexpected error", text)
        except Exception:  # never raise from the hook
            traceback.print_exception(exc_type, exc, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        log.error(
            "Uncaught error in thread %s",
            getattr(args.thread, "name", "?"),
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
        )

    sys.excepthook = hook
    threading.excepthook = thread_hook
