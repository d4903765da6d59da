"""Fast3R Studio core: images -> Fast3R -> point cloud and cameras, exports. No Qt, no VisPy.

Heavy modules (torch) are imported lazily on first use of the names that need them, so that
``import fast3r_core`` stays cheap for the GUI's start-up and for tools that only read project files.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "load_model": "weights",
    "save_model": "weights",
    "predict": "inference",
    "load_images": "images",
    "ViewInput": "images",
    "reconstruct": "pipeline",
    "add_views": "pipeline",
    "ReconstructOptions": "options",
    "Reconstruction": "result",
    "load_project": "result",
    "save_project": "result",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fast3r_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
