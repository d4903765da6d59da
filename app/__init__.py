"""Fast3R Studio desktop app (PySide6 + VisPy) on top of :mod:`fast3r_core`.

Start it with ``python main.py`` or the ``fast3r-studio`` script (:func:`app.__main__.main`). Importing
this package imports nothing heavy: the window modules pull Qt in, and torch is only ever imported on
the worker thread.
"""

from __future__ import annotations

__all__ = ["APP_NAME", "ORG_NAME"]

APP_NAME = "Fast3R Studio"
ORG_NAME = "fast3r-studio"
