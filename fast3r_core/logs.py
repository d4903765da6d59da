"""The log file shared by the CLI and the app: where it is, how it rotates, how its lines look.

The log file is ``$FAST3R_LOG_DIR/fast3r.log`` if the variable is set, else ``fast3r.log`` in the user
log folder (``platformdirs.user_log_dir("fast3r-studio")``). Both front-ends open it with
:func:`open_log_file`, so a CLI run and an app session write to the same rotating file in the same
format. What goes to the terminal (the CLI's console lines, the app's Qt messages) stays with each
front-end.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

__all__ = [
    "LOG_BACKUPS",
    "LOG_DIR_ENV",
    "LOG_FILE_NAME",
    "LOG_FORMAT",
    "LOG_MAX_BYTES",
    "NOISY_LOGGERS",
    "default_log_path",
    "open_log_file",
    "quiet_noisy_loggers",
]

#: Environment variable: folder of the log file (tests, portable installs).
LOG_DIR_ENV = "FAST3R_LOG_DIR"
LOG_FILE_NAME = "fast3r.log"
#: The file is rotated at this size, keeping this many old files (fast3r.log.1 ...).
LOG_MAX_BYTES = 2 * 1024 * 1024
LOG_BACKUPS = 3
#: Format of a log file line (the process id tells a CLI run from an app session).
LOG_FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"
#: Third-party loggers that are chatty at INFO / DEBUG: kept at WARNING.
NOISY_LOGGERS = ("vispy", "PIL", "matplotlib", "urllib3", "httpx", "httpcore", "filelock")


def default_log_path() -> Path:
    """``$FAST3R_LOG_DIR/fast3r.log``, else ``<user log dir>/fast3r.log`` (nothing is created)."""
    root = os.environ.get(LOG_DIR_ENV)
    if root:
        return Path(root).expanduser() / LOG_FILE_NAME
    import platformdirs

    return Path(platformdirs.user_log_dir("fast3r-studio", appauthor=False)) / LOG_FILE_NAME


def open_log_file(
    path: str | os.PathLike[str] | None = None, level: int = logging.INFO
) -> tuple[logging.Handler | None, Path, str]:
    """A rotating file handler on ``path`` (default :func:`default_log_path`), its folder created.

    Returns ``(handler, path, problem)``: the handler (not yet added to any logger) at ``level`` with
    :data:`LOG_FORMAT`, or None with ``problem`` saying why the file cannot be written.
    """
    dest = Path(path).expanduser() if path else default_log_path()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            dest, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        return None, dest, f"cannot write the log file {dest}: {exc.strerror or exc}"
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler, dest, ""


def quiet_noisy_loggers() -> None:
    """Keep :data:`NOISY_LOGGERS` at WARNING (their INFO lines would drown the log file)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
