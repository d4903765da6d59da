"""Models: the registry, weight download and checkpoint loading.

Where each part lives:

* :mod:`.registry`: the registered models (:data:`MODELS`), the cache folders, what is available
  locally (:func:`list_models`, :func:`is_cached`, :func:`resolve_model_dir`);
* :mod:`.download`: the resumable, checksum-verified download from the Hugging Face Hub
  (:func:`download_model`);
* :mod:`.checkpoint`: reading ``.safetensors``/``.pth`` files and checking them against a config
  (:func:`read_state_dict`, :func:`check_config_matches_weights`);
* :mod:`.device`: the torch device and dtype (:func:`choose_device`);
* :mod:`.model_io`: :func:`load_model` and :func:`save_model`.

A checkpoint is data, never code: ``.pth`` files are read with ``torch.load(weights_only=True)``.
Keys are checked strictly; every problem a user can cause is a typed error of
:mod:`fast3r_core.errors`.

Importing this package is light on purpose (no torch, no huggingface_hub) so that the GUI can show
the registry and the cache state without importing torch; both are imported inside the functions
that need them. A test that replaces a function replaces it in the module that defines it (where the
other functions look it up), e.g. ``fast3r_core.weights.registry.resources_dir``.
"""

from __future__ import annotations

from .checkpoint import check_config_matches_weights, read_state_dict
from .device import choose_device
from .download import download_model
from .model_io import load_model, save_model
from .registry import (
    CACHE_ENV,
    CONFIG_NAME,
    MODELS,
    WEIGHTS_NAME,
    ModelInfo,
    ModelStatus,
    is_cached,
    list_models,
    model_cache_dir,
    models_cache_dir,
    resolve_model_dir,
    resources_dir,
)

__all__ = [
    "CACHE_ENV",
    "CONFIG_NAME",
    "MODELS",
    "WEIGHTS_NAME",
    "ModelInfo",
    "ModelStatus",
    "check_config_matches_weights",
    "choose_device",
    "download_model",
    "is_cached",
    "list_models",
    "load_model",
    "model_cache_dir",
    "models_cache_dir",
    "read_state_dict",
    "resolve_model_dir",
    "resources_dir",
    "save_model",
]
