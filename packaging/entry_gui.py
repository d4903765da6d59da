"""Entry point of the ``fast3r-studio`` executable in the PyInstaller bundle (the GUI).

The same as the ``fast3r-studio`` console script (:func:`app.__main__.main`), plus what a frozen
program needs: ``multiprocessing.freeze_support()`` (a spawned child process re-runs this executable,
on Windows) and a null stdout/stderr when the Windows GUI executable has no console (``sys.stdout``
is None there, and argparse/logging would fail writing to it).
"""

import multiprocessing
import os
import sys


def _run() -> int:
    multiprocessing.freeze_support()
    if sys.stdout is None or sys.stderr is None:  # windowed executable on Windows: no console
        devnull = open(os.devnull, "w", encoding="utf-8")  # kept open for the whole process
        sys.stdout = sys.stdout or devnull
        sys.stderr = sys.stderr or devnull
    from app.__main__ import main

    return main()


if __name__ == "__main__":
    sys.exit(_run())
