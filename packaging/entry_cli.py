"""Entry point of the ``fast3r`` executable in the PyInstaller bundle (the command line).

The same as the ``fast3r`` console script (:func:`fast3r_core.cli.main`), plus
``multiprocessing.freeze_support()``: ``fast3r train`` loads data in worker processes, and a spawned
child re-runs this executable (Windows, macOS).
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from fast3r_core.cli import main

    sys.exit(main())
