"""Fast3R Studio core: images -> Fast3R -> point cloud and cameras, exports. No Qt, no VisPy.

Heavy modules (torch) are imported lazily on first use of the names that need them, so that
``import fast3r_core`` stays cheap for the GUI's start-up and for tools that only read project files.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it. The app imports the core's names from here (or from a few
# public modules that declare ``__all__``: errors, geometry, result, images, logs, ...); the import
# contracts in pyproject.toml keep it off the CLI, the model internals and the private modules.
_LAZY = {
    # run
    "reconstruct": "pipeline",
    "add_views": "pipeline",
    "ReconstructOptions": "options",
    "RunReport": "pipeline",
    "predict": "inference",
    "default_cpu_threads": "inference",
    "release_device_cache": "inference",
    "ProgressEvent": "progress",
    # before a run
    "MemoryCheck": "preflight",
    "estimate_memory": "preflight",
    "estimate_run_memory": "preflight",
    "headers_cached": "preflight",
    "image_sizes": "preflight",
    "license_to_accept": "preflight",
    "model_config": "preflight",
    # models
    "CONFIG_NAME": "weights.registry",
    "MODELS": "weights.registry",
    "ModelInfo": "weights.registry",
    "choose_device": "weights.device",
    "download_model": "weights.download",
    "is_cached": "weights.registry",
    "list_models": "weights.registry",
    "load_model": "weights.model_io",
    "resolve_model_dir": "weights.registry",
    "resources_dir": "weights.registry",
    "save_model": "weights.model_io",
    # inputs
    "VIDEO_EXTENSIONS": "images.discovery",
    "ViewInput": "images.decoding",
    "discover_inputs": "images.discovery",
    "image_extensions": "images.discovery",
    "is_image_file": "images.discovery",
    "is_video": "images.discovery",
    "load_images": "images.loading",
    # known intrinsics, masks, video frames, excluded views (issue 19)
    "FRAME_METHODS": "options",
    "KnownIntrinsics": "intrinsics",
    "MASK_EXTENSION": "masks",
    "PreparedViews": "pipeline",
    "exclude_views": "pipeline",
    "find_mask": "masks",
    "load_mask": "masks",
    "prepare_views": "pipeline",
    "read_intrinsics_file": "intrinsics",
    "resolve_intrinsics": "intrinsics",
    # results and projects
    "LOW_POSE_INLIER_SHARE": "result",
    "PROJECT_SUFFIX": "project_file",
    "PointSet": "point_set",
    "Reconstruction": "result",
    "load_project": "project_file",
    "project_size": "project_file",
    "save_project": "project_file",
    "sky_point_mask": "sky",
    "without_sky": "sky",
}

__all__ = ["__version__", "import_run_modules", *sorted(_LAZY)]

#: Modules :func:`import_run_modules` imports: light (image decoding, the memory estimate) and heavy
#: (torch, the model, inference and the pipeline).
_LIGHT_MODULES = ("images", "forward_memory", "preflight")
_HEAVY_MODULES = ("inference", "model.fast3r", "pipeline")


def import_run_modules(*, heavy: bool = False) -> None:
    """Import now the modules a run will need, so that the first run does not wait for them.

    A GUI calls it while it is idle: ``heavy=False`` imports the light modules of the first drop
    (image headers, the memory estimate); ``heavy=True`` also torch's side (model, inference, pipeline).
    """
    for name in _LIGHT_MODULES + (_HEAVY_MODULES if heavy else ()):
        importlib.import_module(f".{name}", __name__)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fast3r_core' has no attribute {name!r}")
    # not cached here: the defining module's attribute is the one truth (a test may replace it)
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
