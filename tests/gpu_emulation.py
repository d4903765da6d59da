"""GPU facts emulated on the CPU, for tests and ``bench/gpu_plan.py``: no GPU is needed.

* :class:`EmulatedDevice`: a ``TorchFunctionMode`` applying CUDA's (and MPS's) autocast cast lists:
  matmuls, linears, convolutions and attention run in the low dtype; layer_norm, exp, norm, softmax ...
  in float32; cat/stack/addcmul promote to the widest input. Casts are not cached (the engine turns
  the weight-cast cache off). On "cuda", attention is the flash kernel: it returns its (B, nh, T, hd)
  output in (B, T, nh, hd) memory and never materialises the T x T scores; on "mps" it is the math
  path (scores and probabilities materialised), which is what PyTorch's MPS backend does.
* :class:`LiveBytes`: a ``TorchDispatchMode`` that sums the bytes of the live storages made by ops
  (freed when their last tensor goes), with a resettable peak: the device allocator's view of a run.
* :func:`emulated_stage_peaks`: the engine's stages (encode in chunks, fuse, heads in chunks) run on
  the ``meta`` device under both modes; returns the peak live bytes of each stage.

The cast lists are PyTorch's published autocast op reference (CUDA; MPS follows it for these ops).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

__all__ = ["EmulatedDevice", "LiveBytes", "emulated_stage_peaks"]

LOWER = frozenset(
    "linear conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d matmul __matmul__ "
    "mm bmm addmm baddbmm addbmm addmv addr mv prelu scaled_dot_product_attention".split()
)
FP32 = frozenset(
    "layer_norm group_norm exp expm1 log log1p log2 log10 norm normalize softmax log_softmax pow __pow__ "
    "rsqrt reciprocal acos asin cosh sinh tan erfinv cumsum cumprod prod sum dist cdist "
    "cosine_similarity logsumexp".split()
)
PROMOTE = frozenset("cat stack addcmul addcdiv index_put scatter_add atan2 cross dot".split())
_LOW = (torch.float16, torch.bfloat16, torch.float32)


def _cast(tree: Any, dtype: torch.dtype) -> Any:
    return tree_map(
        lambda t: t.to(dtype) if isinstance(t, torch.Tensor) and t.dtype in _LOW and t.dtype != dtype else t,
        tree,
    )


def _widest(tree: Any) -> torch.dtype | None:
    found: list[torch.dtype] = []
    tree_map(
        lambda t: found.append(t.dtype) if isinstance(t, torch.Tensor) and t.dtype in _LOW else None, tree
    )
    if not found:
        return None
    out = found[0]
    for d in found[1:]:
        out = torch.promote_types(out, d)
    return out


def _flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *_a: Any, **_k: Any) -> torch.Tensor:
    """The flash kernel's output: (B, nh, Tq, hd_v) in (B, Tq, nh, hd_v) memory, no score matrix."""
    B, nh, T, _ = q.shape
    return torch.empty(B, T, nh, v.shape[-1], dtype=q.dtype, device=q.device).transpose(1, 2)


class EmulatedDevice(TorchFunctionMode):
    """CUDA / MPS autocast to ``dtype`` (None: fp32, no autocast) and its attention, on any device.

    In-place ops and ops given an explicit dtype are not eligible, as in real autocast. Attention:
    "cuda" = a fused kernel (no score matrix); "mps" = the math path, scores and probabilities
    materialised in the compute dtype (the largest such matrix is kept in ``max_scores``, bytes);
    "cpu" = PyTorch's own call.
    """

    def __init__(self, dtype: torch.dtype | None = torch.float16, device_type: str = "cuda") -> None:
        super().__init__()
        self.dtype = dtype
        self.device_type = device_type
        self.max_scores = 0

    def _math_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        B, nh, T, _ = q.shape
        scores = torch.empty(B, nh, T, k.shape[2], dtype=q.dtype, device=q.device)
        probs = torch.empty_like(scores)
        self.max_scores = max(self.max_scores, scores.nbytes)
        del scores, probs
        return torch.empty(B, nh, T, v.shape[-1], dtype=q.dtype, device=q.device)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if "dtype" in kwargs or (name.endswith("_") and not name.startswith("__")):
            return func(*args, **kwargs)
        if self.dtype is not None:
            if name in LOWER:
                args, kwargs = _cast((args, kwargs), self.dtype)
            elif name in FP32:
                args, kwargs = _cast((args, kwargs), torch.float32)
            elif name in PROMOTE:
                wide = _widest((args, kwargs))
                if wide is not None:
                    args, kwargs = _cast((args, kwargs), wide)
        if name == "scaled_dot_product_attention":
            if self.device_type == "cuda":
                return _flash_attention(*args, **kwargs)
            if self.device_type == "mps":
                return self._math_attention(*args[:3])
        return func(*args, **kwargs)


class LiveBytes(TorchDispatchMode):
    """Sum of the bytes of the live storages created by ops under this mode, and its peak.

    Only tensors on ``device_type`` count (the emulated device; host-side temporaries do not).
    Storages that existed before (weights, buffers, anything listed in ``ignore``) are not counted.
    A storage counts from the op that makes it until its last tensor is freed.
    """

    def __init__(self, ignore: Sequence[torch.Tensor] = (), device_type: str = "meta") -> None:
        super().__init__()
        self.device_type = device_type
        self._ignore = {t.untyped_storage()._cdata for t in ignore}
        self._live: dict[int, int] = {}
        self.live = 0
        self.peak = 0

    def reset_peak(self) -> None:
        self.peak = self.live

    def _free(self, key: int) -> None:
        self.live -= self._live.pop(key, 0)

    def _track(self, t: Any) -> None:
        if not isinstance(t, torch.Tensor) or t.device.type != self.device_type:
            return
        s = t.untyped_storage()
        key = s._cdata
        if key in self._ignore or key in self._live:
            return
        self._live[key] = s.nbytes()
        self.live += s.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(s, self._free, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        out = func(*args, **(kwargs or {}))
        tree_map(self._track, out)
        return out


def emulated_stage_peaks(
    model: torch.nn.Module,
    shapes: Sequence[tuple[int, int]],
    *,
    encoder_chunk: int,
    head_chunk: int,
    device_type: str = "cuda",
    dtype: torch.dtype | None = torch.float16,
    fusion_only: bool = False,
) -> dict[str, int]:
    """Peak live bytes of the encode / fuse / heads stages, as the engine runs them, on ``meta`` tensors.

    ``model`` must live on the meta device (build it under ``torch.device("meta")``). ``dtype`` None:
    fp32 (no autocast; on "cuda" attention is still a fused kernel). Views must share one shape per
    chunk (as the engine groups them). Not counted: the weights, and the float32 outputs copied to the
    host (the estimate's separate ``outputs`` term). ``max_scores``: bytes of the largest attention
    score matrix built by one call (MPS only; 0 elsewhere). ``fusion_only``: skip the encoder (its
    output is made as fp32 tokens, as autocast's final layer norm gives) and the heads.
    """
    ignore = [*model.parameters(), *model.buffers()]
    cast_mode = EmulatedDevice(dtype, device_type)
    peaks: dict[str, int] = {}
    live = LiveBytes(ignore)
    from fast3r_core.model import layers

    materialising = layers.MATERIALISING_DEVICES
    if device_type == "mps":  # the meta tensors stand for MPS ones: take the blocked path
        layers.MATERIALISING_DEVICES = materialising | {"meta"}
    try:
        _stages(model, shapes, encoder_chunk, head_chunk, live, cast_mode, peaks, fusion_only)
    finally:
        layers.MATERIALISING_DEVICES = materialising
    peaks["max_scores"] = cast_mode.max_scores
    return peaks


def _stages(model, shapes, encoder_chunk, head_chunk, live, cast_mode, peaks, fusion_only):  # type: ignore[no-untyped-def]
    from fast3r_core.inference import _chunk_tokens, _groups

    n = len(shapes)
    p = model.patch_size
    ids = torch.arange(n, device="meta")[None]
    with torch.inference_mode(), live, cast_mode:
        tokens: list[torch.Tensor | None] = [None] * n
        if fusion_only:
            c = model.config.encoder_args.embed_dim
            tokens = [torch.empty(1, (h // p) * (w // p), c, device="meta") for h, w in shapes]
        for chunk in [] if fusion_only else _groups(shapes, encoder_chunk):
            h, w = shapes[chunk[0]]
            out = model.encode(torch.empty(len(chunk), 3, h, w, device="meta"))
            for j, i in enumerate(chunk):
                tokens[i] = out[j : j + 1]
            del out
        peaks["encoder"] = live.peak
        live.reset_peak()
        hooks = model.fuse(tokens, ids)
        del tokens
        peaks["fusion"] = live.peak
        if fusion_only:
            return
        live.reset_peak()
        counts = [(h // p) * (w // p) for h, w in shapes]
        offsets = [0]
        for c in counts:
            offsets.append(offsets[-1] + c)
        for chunk in _groups(shapes, head_chunk):
            per_hook = [_chunk_tokens(hk, chunk, offsets) for hk in hooks]
            out = model.heads(per_hook, shapes[chunk[0]])
            del out, per_hook  # the host copies are the estimate's separate ``outputs`` term
        peaks["heads"] = live.peak
