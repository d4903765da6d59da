"""Exit codes of the ``fast3r`` command line (its ``--help`` epilog and the package docstring list them)."""

from __future__ import annotations

__all__ = ["EXIT_CANCELLED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_TERMINATED", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM
