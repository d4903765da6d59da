"""Peak-memory estimate of a Fast3R forward pass and the memory available on a device.

No torch at module level: the GUI calls :func:`estimate_peak_memory` before any model is loaded.
The constants below are byte counts per token/pixel of the live tensors of each stage (fp32 unless
``bytes_per_el`` says otherwise), checked against measured peaks by ``bench/inference.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .model.config import Fast3RConfig

__all__ = ["MemoryEstimate", "available_memory", "estimate_peak_memory", "int8_copy_bytes", "plan_chunks"]

GiB = 1024**3
# Process overhead outside the model: the Python interpreter, torch's CPU runtime, the images.
_BASE_OVERHEAD = 400 * 1024**2


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed by a run. ``total`` is what must be free on the device (plus host overhead on CPU)."""

    weights: int
    encoder: int
    fusion: int
    heads: int
    outputs: int
    overhead: int
    encoder_chunk: int
    head_chunk: int

    @property
    def activations(self) -> int:
        return max(self.encoder, self.fusion, self.heads)

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.outputs + self.overhead

    def describe(self) -> str:
        return (
            f"about {self.total / GiB:.1f} GiB (weights {self.weights / GiB:.1f} GiB, "
            f"activations {self.activations / GiB:.1f} GiB)"
        )


def _param_count(cfg: Fast3RConfig) -> int:
    e, d, h = cfg.encoder_args, cfg.decoder_args, cfg.head_args

    def block(c: int, ratio: float) -> int:
        hid = int(c * ratio)
        return 4 * c + (3 * c * c + 3 * c) + (c * c + c) + (c * hid + hid) + (hid * c + c)

    enc = (
        3 * e.patch_size**2 * e.embed_dim
        + e.embed_dim
        + e.depth * block(e.embed_dim, e.mlp_ratio)
        + 2 * e.embed_dim
    )
    dec = (
        d.enc_embed_dim * d.embed_dim
        + d.embed_dim
        + d.depth * block(d.embed_dim, d.mlp_ratio)
        + 2 * d.embed_dim
    )
    d0, d1, d2, d3 = h.dpt_layer_dims
    f, last = h.dpt_feature_dim, h.dpt_last_dim
    c0, c1, c2, c3 = cfg.hook_dims  # hook 0 reads the encoder width, hooks 1-3 the decoder width
    post = (c0 * d0 + d0 + d0 * d0 * 16 + d0) + (c1 * d1 + d1 + d1 * d1 * 4 + d1) + (c2 * d2 + d2)
    post += c3 * d3 + d3 + d3 * d3 * 9 + d3
    scratch = 9 * f * (d0 + d1 + d2 + d3) + 4 * (4 * (9 * f * f + f) + f * f + f)
    head = 9 * f * last + last + 9 * last * last + last + last * 4 + 4
    return enc + dec + 2 * (post + scratch + head)


def int8_copy_bytes(cfg: Fast3RConfig) -> int:
    """Bytes of the fast CPU mode's int8 copy of the linear weights (one byte each; scales negligible)."""
    return _linear_weight_count(cfg)


def _linear_weight_count(cfg: Fast3RConfig) -> int:
    """Weights of the transformer's linear layers (what the int8 mode quantises)."""
    e, d = cfg.encoder_args, cfg.decoder_args

    def block(c: int, ratio: float) -> int:
        return 4 * c * c + 2 * c * int(c * ratio)  # qkv + proj + fc1 + fc2

    return (
        e.depth * block(e.embed_dim, e.mlp_ratio)
        + d.depth * block(d.embed_dim, d.mlp_ratio)
        + (d.enc_embed_dim * d.embed_dim)
    )


def estimate_peak_memory(
    cfg: Fast3RConfig,
    view_shapes: Sequence[tuple[int, int]],
    *,
    bytes_per_el: int = 4,
    weight_bytes_per_el: int = 4,
    encoder_chunk: int | None = None,
    head_chunk: int | None = None,
    int8: bool = False,
) -> MemoryEstimate:
    """Estimate the peak bytes of one forward pass over views of the given (H, W) shapes.

    The three stages do not overlap (tokens of the earlier stage are all that is carried over), so the
    peak is the weights plus the largest stage plus what is carried. Attention is assumed to use the
    fused SDPA kernels (no T x T matrix), which is what PyTorch picks for these shapes.
    ``int8``: the fast CPU mode keeps an int8 copy of the linear weights beside the fp32 model.
    """
    e, d = cfg.encoder_args, cfg.decoder_args
    p = e.patch_size
    n = len(view_shapes)
    toks = [(h // p) * (w // p) for h, w in view_shapes]
    total_tok = sum(toks)
    max_tok = max(toks) if toks else 0
    max_px = max((h * w for h, w in view_shapes), default=0)
    enc_chunk = min(n, encoder_chunk or n) or 1
    hd_chunk = min(n, head_chunk or n) or 1
    b = bytes_per_el
    c_e, c_d = e.embed_dim, d.embed_dim
    # live per token in a block: x, LN(x), qkv (3C), attention out, proj; or fc1 (ratio*C), which the
    # GELU overwrites in place at inference
    per_tok_e = (4 + e.mlp_ratio) * c_e * b
    per_tok_d = (4 + d.mlp_ratio) * c_d * b
    carried = total_tok * c_e * b  # encoder tokens of all views
    encoder = enc_chunk * max_tok * per_tok_e + carried
    # fusion: the running x plus 4 kept hooks plus one block's temporaries, over all tokens
    # (hook 0 is at the encoder width, the other three at the decoder width)
    hook_width = sum(cfg.hook_dims)
    fusion = total_tok * (per_tok_d + hook_width * b) + carried
    # heads: DPT features at 1/2 resolution (feature dim channels, ~8 alive at once incl. the
    # upsampled refinenet1 input) and the 128-channel full-resolution head (3 alive), per view
    f, last = cfg.head_args.dpt_feature_dim, cfg.head_args.dpt_last_dim
    per_view_head = (8 * f * (max_px // 4) + 3 * last * max_px) * b
    hooks_kept = total_tok * hook_width * b
    heads = hd_chunk * per_view_head + hooks_kept
    outputs = sum(h * w for h, w in view_shapes) * 8 * 4  # 2 x (xyz + conf) float32 on the host
    weights = _param_count(cfg) * weight_bytes_per_el
    if int8:
        weights += _linear_weight_count(cfg)  # one byte each (+ per-channel scales, negligible)
    return MemoryEstimate(
        weights=weights,
        encoder=int(encoder),
        fusion=int(fusion),
        heads=int(heads),
        outputs=int(outputs),
        overhead=_BASE_OVERHEAD,
        encoder_chunk=enc_chunk,
        head_chunk=hd_chunk,
    )


def available_memory(device_type: str = "cpu", device_index: int | None = None) -> int:
    """Bytes that a run may use on the device: free CUDA memory, or available RAM (CPU, MPS)."""
    if device_type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device_index)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def plan_chunks(
    cfg: Fast3RConfig,
    view_shapes: Sequence[tuple[int, int]],
    budget: int,
    *,
    bytes_per_el: int = 4,
    weight_bytes_per_el: int = 4,
    weights_loaded: bool = True,
) -> tuple[int, int]:
    """Largest encoder and head chunk sizes (views) whose estimate fits in ``budget`` bytes.

    ``budget`` is the free memory; with ``weights_loaded`` the weights are already resident and do
    not count against it. Returns at least (1, 1); whether that fits is for the caller to check.
    """
    n = max(1, len(view_shapes))

    def fits(enc: int, head: int) -> bool:
        est = estimate_peak_memory(
            cfg,
            view_shapes,
            bytes_per_el=bytes_per_el,
            weight_bytes_per_el=weight_bytes_per_el,
            encoder_chunk=enc,
            head_chunk=head,
        )
        need = est.total - (est.weights if weights_loaded else 0)
        return need <= budget

    # the published defaults are large chunks (400 images for the encoder, 25 views for the heads);
    # bigger chunks bring little speed on the CPU, so cap them there as well
    enc = min(n, 64)
    while enc > 1 and not fits(enc, 1):
        enc = math.ceil(enc / 2)
    head = min(n, 25)
    while head > 1 and not fits(enc, head):
        head = math.ceil(head / 2)
    return enc, head
