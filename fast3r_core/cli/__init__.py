"""The ``fast3r`` command line: reconstruct, export, info, edit, models, download.

Usage (``fast3r --help`` and ``fast3r COMMAND --help`` for every option)::

    fast3r reconstruct PHOTOS_DIR --out OUT [--model demo|fast3r-vitl-512|FOLDER] [--size 512|224] ...
    fast3r export OUT/project.f3r --format ply|glb|colmap|nerfstudio|cameras --out PATH
    fast3r info OUT/project.f3r
    fast3r edit OUT/project.f3r --scale-cameras 0 5 1.20 --level auto [--origin X Y Z] [--crop-box ...]
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

Modules: :mod:`.parser` (arguments), :mod:`.entry` (:func:`main`, exit codes, SIGTERM), :mod:`.console`
(output, progress, log set-up), :mod:`.output_folder` (output names, manifest, staging), and one module
per command group: :mod:`.commands_reconstruct` (reconstruct, add), :mod:`.commands_project` (export,
info), :mod:`.commands_edit` (edit), :mod:`.commands_models` (models, download); ``fast3r train`` and
``fast3r eval`` are in :mod:`fast3r_core.train.cli_commands`.
"""

from __future__ import annotations

from fast3r_core.logs import LOG_DIR_ENV, LOG_FILE_NAME, default_log_path

from .entry import main
from .exit_codes import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE
from .output_folder import DEFAULT_CONF_PERCENTILE, MANIFEST_NAME, OUTPUT_NAMES, RECONSTRUCT_FORMATS
from .parser import EXPORT_FORMATS, build_parser

__all__ = [
    "DEFAULT_CONF_PERCENTILE",
    "EXIT_CANCELLED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "EXPORT_FORMATS",
    "LOG_DIR_ENV",
    "LOG_FILE_NAME",
    "MANIFEST_NAME",
    "OUTPUT_NAMES",
    "RECONSTRUCT_FORMATS",
    "build_parser",
    "default_log_path",
    "main",
]
