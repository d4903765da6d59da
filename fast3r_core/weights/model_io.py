"""Loading a Fast3R model from a checkpoint (any source :mod:`.registry` resolves) and saving one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fast3r_core.atomic import atomic_path
from fast3r_core.errors import ConfigError, InsufficientMemoryError
from fast3r_core.progress import ProgressCallback, check_cancel, report

from .checkpoint import _check_keys, _normalise_keys, _Reader, check_config_matches_weights
from .device import _as_dtype, choose_device
from .download import download_model
from .registry import CONFIG_NAME, MODELS, WEIGHTS_NAME, _as_local_path, _local_files

if TYPE_CHECKING:
    import torch

    from fast3r_core.model import Fast3R

__all__ = ["load_model", "save_model"]

log = logging.getLogger(__name__)


def load_model(
    source: str | Path,
    device: str | torch.device | None = None,
    *,
    accept_license: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    dtype: torch.dtype | str | None = None,
    cache_dir: str | Path | None = None,
) -> Fast3R:
    """Build a Fast3R model from a checkpoint, in eval mode, on ``device``.

    Parameters
    ----------
    source : str or Path
        A folder with ``config.json`` + ``model.safetensors`` (or ``model.pth``/``.pt``/``.bin``); a
        weights file with ``config.json`` beside it; a registered name (:data:`MODELS`); or a Hub repo
        id ``owner/name``, downloaded into the cache if needed (see :func:`download_model`).
    device : str or torch.device, optional
        See :func:`choose_device` (default: auto).
    accept_license : bool
        Needed to download a model whose licence requires acceptance (not to load a cached copy).
    progress, cancel
        Progress (stages "download", "verify", then "load" per tensor) and cancellation.
    dtype : torch.dtype or str, optional
        Parameter dtype (default float32). Stored fp16/bf16 weights are cast to it.
    cache_dir : path, optional
        Models cache folder (default :func:`models_cache_dir`).

    Raises
    ------
    ConfigError
        config.json missing or invalid.
    CheckpointError
        Weights missing, damaged, not plain data, or not matching the config (keys named).
    ModelNotAvailableError, LicenseNotAcceptedError, DownloadError, Cancelled
        From the download.
    """
    path = _as_local_path(source)
    if path is None:
        folder = download_model(
            str(source), accept_license=accept_license, progress=progress, cancel=cancel, cache_dir=cache_dir
        )
        path = folder
    config_path, weights_path = _local_files(path)
    torch_device = choose_device(device)
    torch_dtype = _as_dtype(dtype)

    import torch

    from fast3r_core.model import Fast3R, Fast3RConfig

    config = Fast3RConfig.from_json(config_path)
    reader = _Reader(weights_path)  # reads and checks the header before the (slow) model build
    no_memory = InsufficientMemoryError(
        f"Not enough memory on {torch_device} for the model {weights_path}: use another device "
        "(--device cpu) or half precision"
    )
    try:
        check_config_matches_weights(config, reader.shapes, config_path, weights_path)
        try:
            # built on the meta device: no time and no memory spent on a random init that the weights
            # overwrite; the parameters get memory (uninitialised) on the target device only below
            with torch.device("meta"):
                model = Fast3R(config)
        except ValueError as exc:  # a combination of values the config validation does not cover
            raise ConfigError(f"Cannot build a model from {config_path}: {exc}") from exc
        if torch_dtype is not None:
            model = model.to(dtype=torch_dtype)
        targets = model.state_dict()
        mapping = _normalise_keys(list(reader.shapes), set(targets))
        _check_keys(reader, mapping, {k: tuple(v.shape) for k, v in targets.items()}, config_path)
        try:
            _materialize(model, torch_device)
        except torch.cuda.OutOfMemoryError as exc:  # = torch.OutOfMemoryError
            raise no_memory from exc
        model.reset_buffers()
        targets = model.state_dict()
        with torch.no_grad():
            for i, (key, target) in enumerate(targets.items()):
                check_cancel(cancel)
                # each tensor is read from the file straight into its parameter: the process holds the
                # weights once while loading (no second copy, no mapped file pages)
                reader.read_into(mapping[key], target)
                report(progress, "load", i + 1, len(targets), weights_path.name)
    finally:
        reader.close()
    try:
        model = model.to(torch_device).eval()
    except torch.cuda.OutOfMemoryError as exc:  # = torch.OutOfMemoryError
        raise no_memory from exc
    model.name = _display_name(source, path)
    log.info("Loaded %s (%s) on %s", weights_path, model.__class__.__name__, torch_device)
    return model


def _materialize(model: torch.nn.Module, device: torch.device) -> None:
    """Give the parameters and buffers of a model built on the meta device memory on ``device``, in
    place (uninitialised: the weights are read into them next); parameters shared by several modules
    stay shared.

    Not ``Module.to_empty``: its ``empty_like`` of meta tensors runs torch's Python reference
    implementations, whose first use imports sympy: 0.2 s of the 0.3 s load of the demo model. Unlike
    it, a parameter tied between modules stays tied (Fast3R has none).
    """
    import torch

    new: dict[int, torch.Tensor] = {}  # id of a meta tensor -> its replacement (shared stays shared)

    def empty(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in new:
            data = torch.empty(t.shape, dtype=t.dtype, device=device, memory_format=_memory_format(t))
            is_param = isinstance(t, torch.nn.Parameter)
            new[id(t)] = torch.nn.Parameter(data, requires_grad=t.requires_grad) if is_param else data
        return new[id(t)]

    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if param.is_meta:
                setattr(module, name, empty(param))
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf.is_meta:
                setattr(module, name, empty(buf))  # an existing buffer keeps its persistence


def _memory_format(t: torch.Tensor) -> torch.memory_format:
    """The dense layout of ``t`` (channels-last conv weights stay so); contiguous for any other."""
    import torch

    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _display_name(source: str | Path, path: Path) -> str:
    """A registered name or hub id as given; else the local folder or file name."""
    text = str(source)
    if text in MODELS or _as_local_path(source) is None:
        return text
    return path.name if path.name not in (CONFIG_NAME, WEIGHTS_NAME) else path.parent.name


def _unique_storage(state: dict[str, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor]]:
    """CPU contiguous tensors; ones sharing memory are cloned (safetensors refuses shared storage)."""
    seen: set[tuple[int, int]] = set()
    for key, value in state.items():
        t = value.detach().to("cpu").contiguous()
        # int(): storage_offset is typed int | SymInt (symbolic only under torch.compile tracing)
        ident = (t.untyped_storage().data_ptr(), int(t.storage_offset()))
        if t.numel() and ident in seen:
            t = t.clone()
        seen.add((t.untyped_storage().data_ptr(), int(t.storage_offset())))
        yield key, t


def save_model(model: Fast3R, folder: str | Path) -> Path:
    """Write ``config.json`` (published format) + ``model.safetensors`` into ``folder``, atomically.

    Each file is written to a temporary name in ``folder`` and renamed into place, so a crash never
    leaves a half-written file under the final name. Returns the folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = dict(_unique_storage(model.state_dict()))
    # error=None: an OSError (disk full) reaches the caller as it is
    with atomic_path(folder / WEIGHTS_NAME, error=None) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    with atomic_path(folder / CONFIG_NAME, error=None) as tmp:
        model.config.to_json(tmp)
    log.info("Saved model to %s", folder)
    return folder
