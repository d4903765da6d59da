"""The torch device and parameter dtype a model runs with (torch is imported when called)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fast3r_core.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["choose_device"]


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to run on.

    ``None`` or ``"auto"``: CUDA if available, else Apple MPS if available, else CPU. Anything else is
    checked: an unknown name or an unavailable device raises :class:`InputError`.
    """
    import torch

    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if device is None or str(device).lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("CUDA was requested but no CUDA GPU is available (use --device cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"{dev} was requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type == "mps" and not mps_ok:
        raise InputError("Apple MPS was requested but is not available (use --device cpu or auto)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"Device type {dev.type!r} is not supported: use auto, cpu, cuda, cuda:N or mps")
    return dev


_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def _as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise InputError(f"Unknown dtype {dtype!r}: use float32, float16 or bfloat16")
    return getattr(torch, name)
