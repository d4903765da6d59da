"""The entry point of the ``fast3r`` command line: :func:`main`, which maps every outcome to an exit code.

Bad input (a :class:`~fast3r_core.errors.Fast3RError`) or too little memory: one ``error: ...`` line;
a bug: one line on stderr and the traceback in the log file; Ctrl-C and SIGTERM unwind like a
cancellation, so that nothing half-written is left behind.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from fast3r_core import __version__
from fast3r_core.errors import Cancelled, Fast3RError

from .console import FILE_ONLY, Console, LogSetup, progress_for
from .exit_codes import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from .parser import build_parser

__all__ = ["main"]

log = logging.getLogger(__name__)


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

    console = Console(quiet=args.quiet, json_mode=args.json)
    progress = progress_for(console)
    console.stderr_line = progress.write_line
    logs = LogSetup(verbose=args.verbose, quiet=args.quiet, log_file=args.log_file, write=progress.write_line)
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
        log.info("error: %s", exc, exc_info=True, extra={FILE_ONLY: True})
        console.error(f"error: {exc}")
        return EXIT_USAGE
    except MemoryError as exc:
        progress.close()
        log.error("out of memory", exc_info=True, extra={FILE_ONLY: True})
        console.error(
            f"error: not enough memory ({exc or 'MemoryError'}); try --size 224 or fewer views (--max-views)"
        )
        return EXIT_USAGE
    except Exception as exc:
        progress.close()
        log.error("internal error", exc_info=True, extra={FILE_ONLY: True})
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
