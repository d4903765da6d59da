"""``python -m fast3r_core.cli``: the command line (the same as ``python -m fast3r_core``)."""

import sys

from .entry import main

sys.exit(main())
