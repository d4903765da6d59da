"""Fast CPU mode: int8 dynamic quantisation of the transformer's linear layers (precision "int8").

What it does, for a loaded fp32 :class:`~fast3r_core.model.Fast3R` on the CPU:

* every ``nn.Linear`` of the encoder and the fusion decoder becomes an :class:`Int8Linear`: the weight
  is quantised once, symmetric int8 per output channel (scale = max |w_row| / 127); the activation is
  quantised at each call (dynamic), and the product is accumulated in int32 and rescaled to fp32.
  Backend "fbgemm" uses PyTorch's packed int8 GEMM (``torch.ops.quantized.linear_dynamic``, AVX-512
  VNNI / AVX2 kernels, activation quantised per tensor, asymmetric); backend "int_mm" uses plain int8
  tensors with ``torch._int_mm`` (activation quantised per token, symmetric) and is the fallback when
  the quantised engine is not built in. Attention, LayerNorm and GELU stay in fp32.
* the two DPT heads run in bf16 when the CPU has native bf16 (AVX512-BF16 / AMX), else in fp32.

The eager-mode ``torch.ao.quantization.quantize_dynamic`` API is deprecated in torch 2.x (its
successor is the separate ``torchao`` package); this module only uses the int8 GEMM operators and
swaps modules itself, so it needs neither.

The quantised model shares every non-linear parameter with the fp32 model and is built once per
model (cached; rebuilt if the fp32 weights change), so switching precision between runs is free after
the first int8 run. Extra memory: one int8 copy of the linear weights (~0.6 GiB for ViT-L).
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import warnings
import weakref
from pathlib import Path
from typing import TypeVar, cast

import torch
from torch import nn

from .errors import InputError

__all__ = [
    "Int8Linear",
    "bf16_supported",
    "int8_backend",
    "is_quantized",
    "quantized_model",
    "vnni_supported",
]

log = logging.getLogger(__name__)

_ModuleT = TypeVar("_ModuleT", bound=nn.Module)


@functools.cache
def vnni_supported() -> bool:
    """True if the CPU has AVX-512 VNNI or AVX-VNNI (int8 dot products without int16 saturation)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return " avx512_vnni" in flags or " avx_vnni" in flags


@functools.cache
def bf16_supported() -> bool:
    """True if oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX), so bf16 convs are fast."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def int8_backend() -> str:
    """ "fbgemm" when PyTorch's packed int8 GEMM is available (x86), else "int_mm"."""
    engines = torch.backends.quantized.supported_engines
    return "fbgemm" if ("fbgemm" in engines or "x86" in engines) else "int_mm"


class Int8Linear(nn.Module):
    """A linear layer with an int8 weight (per output channel) and a dynamically quantised input.

    Parameters
    ----------
    linear : the fp32 ``nn.Linear`` to replace (its weight (out, in) is read once; not kept).
    backend : "fbgemm" or "int_mm" (default: :func:`int8_backend`).

    ``forward`` takes x (..., in) float and returns (..., out) float32 on the CPU.
    """

    # buffers of the "int_mm" backend (register_buffer): (out, in) int8, (out,) float32, (out,) or None
    weight_int8: torch.Tensor
    weight_scale: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, linear: nn.Linear, backend: str | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.backend = backend or int8_backend()
        if self.backend not in ("fbgemm", "int_mm"):
            raise ValueError(f"unknown int8 backend {self.backend!r}")
        w = linear.weight.detach().to("cpu", torch.float32)
        bias = None if linear.bias is None else linear.bias.detach().to("cpu", torch.float32).clone()
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (out,) symmetric per output channel
        # without VNNI the fbgemm AVX2 kernel sums pairs in int16 and can saturate: use 7-bit inputs
        self.reduce_range = not vnni_supported()
        if self.backend == "fbgemm":
            with warnings.catch_warnings():
                # the quantised-tensor constructors warn that they are deprecated; the packed GEMM
                # itself is the supported CPU int8 kernel, and only this packing step needs them
                warnings.simplefilter("ignore")
                qw = torch.quantize_per_channel(
                    w, scale.double(), torch.zeros_like(scale, dtype=torch.int64), 0, torch.qint8
                )
                self._packed = torch.ops.quantized.linear_prepack(qw, bias)
        else:
            self.register_buffer("weight_int8", torch.round(w / scale[:, None]).to(torch.int8))  # (out, in)
            self.register_buffer("weight_scale", scale)
            self.register_buffer("bias", bias)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, backend={self.backend}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.backend == "fbgemm":
            return torch.ops.quantized.linear_dynamic(x, self._packed, self.reduce_range)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        xs = (x2.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-12)  # (M, 1) per token
        xq = torch.round(x2 / xs).to(torch.int8)
        if xq.shape[0] <= 16:  # torch._int_mm wants more than 16 rows: pad (rare: tiny inputs)
            xq = torch.cat([xq, xq.new_zeros(17 - xq.shape[0], xq.shape[1])])
        y = torch._int_mm(xq, self.weight_int8.t())[: x2.shape[0]].to(torch.float32)  # (M, out)
        y.mul_(xs).mul_(self.weight_scale)
        if self.bias is not None:
            y.add_(self.bias)
        return y.view(*lead, self.out_features)


class _CastInputs(nn.Module):
    """Runs ``module`` (a DPT head converted to ``dtype``) on hooks cast to ``dtype``."""

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.module = module
        self.dtype = dtype

    def forward(self, hooks: list[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        return self.module([h.to(self.dtype) for h in hooks], grid)


def _weights_stamp(model: nn.Module) -> tuple[object, ...]:
    """Changes whenever a parameter of ``model`` is modified in place or replaced."""
    return tuple((id(p), p._version) for p in model.parameters())


# fp32 model -> (weights stamp, int8 clone); weak keys: dropping the model drops its clone
_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[object, ...], nn.Module]]
_CACHE = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _build(model: _ModuleT, backend: str | None, heads_bf16: bool) -> _ModuleT:
    # a structural copy that shares every parameter and buffer with the fp32 model (no weight copy)
    memo: dict[int, object] = {id(t): t for t in model.parameters()}
    memo.update({id(t): t for t in model.buffers()})
    clone = copy.deepcopy(model, memo)
    count = 0
    for parent_name in ("encoder", "decoder"):
        parent = getattr(clone, parent_name)
        for name, mod in list(parent.named_modules()):
            if isinstance(mod, nn.Linear):
                owner = parent.get_submodule(name.rpartition(".")[0]) if "." in name else parent
                setattr(owner, name.rpartition(".")[2], Int8Linear(mod, backend))
                count += 1
    if heads_bf16:
        for head in ("downstream_head", "downstream_head_local"):
            bf = copy.deepcopy(getattr(model, head)).to(torch.bfloat16)  # small: ~2 x 40 MB in bf16
            setattr(clone, head, _CastInputs(bf, torch.bfloat16))
    clone.eval()
    log.info("int8 model: %d linear layers quantised, heads in %s", count, "bf16" if heads_bf16 else "fp32")
    return clone


def is_quantized(model: nn.Module) -> bool:
    """Whether the int8 version of ``model`` is built and current (its memory is then already in use)."""
    with _LOCK:
        hit = _CACHE.get(model)
    return hit is not None and hit[0][:-2] == _weights_stamp(model)


def quantized_model(model: _ModuleT, backend: str | None = None, heads_bf16: bool | None = None) -> _ModuleT:
    """The int8 fast-CPU-mode version of ``model`` (a :class:`Fast3R` on the CPU), built once and cached.

    Parameters
    ----------
    backend : "fbgemm" or "int_mm"; default :func:`int8_backend`.
    heads_bf16 : run the DPT heads in bf16; default :func:`bf16_supported`.

    Raises
    ------
    InputError : if the model is not on the CPU (int8 mode is a CPU mode).
    """
    p = next(model.parameters())
    if p.device.type != "cpu":
        raise InputError(
            f"precision 'int8' is a CPU mode; the model is on {p.device.type}: use auto, bf16 or fp16"
        )
    backend = backend or int8_backend()
    heads_bf16 = bf16_supported() if heads_bf16 is None else heads_bf16
    stamp = (*_weights_stamp(model), backend, heads_bf16)
    with _LOCK:
        hit = _CACHE.get(model)
        if hit is not None and hit[0] == stamp:
            return cast(_ModuleT, hit[1])  # the cached clone is a copy of `model`: the same class
        clone = _build(model, backend, heads_bf16)
        _CACHE[model] = (stamp, clone)
        return clone
