"""Fast3R Studio desktop app (PySide6 + VisPy) on top of :mod:`fast3r_core`.

Start it with ``python main.py`` or the ``fast3r-studio`` script (:func:`app.__main__.main`). Importing
this package imports nothing heavy: the window modules pull Qt in, and torch is only ever imported on
the worker thread.
"""

from __future__ import annotations

__all__ = ["APP_NAME", "ORG_NAME", "plural"]

APP_NAME = "Fast3R Studio"
ORG_NAME = "fast3r-studio"


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """``1 view``, ``2 views``, ``1,234 points`` (``plural_form`` for irregular nouns)."""
    return f"{n:,} {noun if n == 1 else plural_form or noun + 's'}"
