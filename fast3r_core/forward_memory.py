"""Peak-memory estimate of a Fast3R forward pass and the memory available on a device.

No torch at module level: the GUI calls :func:`estimate_peak_memory` before any model is loaded.
The estimate counts the live tensors of each stage, each in the dtype it has (CUDA/MPS autocast keeps
layer-norm outputs in fp32), checked against an emulated-autocast peak on the meta device
(``bench/gpu_plan.py``, ``tests/core/test_gpu_path.py``) and against measured CPU peaks
(``bench/inference.py``).
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
# Per stage: the small tensors beside the big ones (image indices, biases, softmax statistics).
_SMALL_TENSORS = 1024**2


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


#: Largest attention score matrix of one call where the backend materialises it (MPS): the query
#: blocking of ``fast3r_core.model.layers.SCORE_BLOCK_BYTES`` (a test keeps the two equal).
SCORE_BLOCK_BYTES = 1 << 30


def _scores_bytes(batch: int, heads: int, tokens: int, a: int) -> int:
    """Scores + probabilities of one attention call on MPS, with the queries blocked (layers.attention)."""
    per_row = batch * heads * tokens * a
    rows = tokens if per_row * tokens <= SCORE_BLOCK_BYTES else max(1, SCORE_BLOCK_BYTES // per_row)
    return 2 * rows * per_row


def estimate_peak_memory(
    cfg: Fast3RConfig,
    view_shapes: Sequence[tuple[int, int]],
    *,
    bytes_per_el: int = 4,
    weight_bytes_per_el: int = 4,
    encoder_chunk: int | None = None,
    head_chunk: int | None = None,
    int8: bool = False,
    device_type: str = "cpu",
) -> MemoryEstimate:
    """Estimate the peak bytes of one forward pass over views of the given (H, W) shapes.

    The three stages do not overlap (tokens of the earlier stage are all that is carried over), so the
    peak is the weights plus the largest stage plus what is carried. Each tensor is sized by the dtype
    it really has: ``bytes_per_el`` is the compute dtype (2 under bf16/fp16 autocast: matmuls, convs,
    attention), but layer norms run in fp32 under autocast, so the encoder output, the fusion decoder's
    residual stream, the hooked layers the heads read and the RoPE temporaries are 4 bytes whatever
    the precision. Checked against an emulation of CUDA/MPS autocast on the meta device
    (tests/core/test_gpu_path.py, bench/gpu_plan.py).

    ``device_type``: "cuda": attention uses fused kernels (no T x T matrix) and the float32 outputs go
    to host memory, so they are not counted (``outputs`` = 0); "mps": attention materialises the
    scores, in query blocks of at most :data:`SCORE_BLOCK_BYTES`, counted per stage; "cpu": fused
    kernels, outputs in the same memory. ``int8``: the fast CPU mode keeps an int8 copy of the linear
    weights beside the fp32 model.
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
    a = bytes_per_el  # compute dtype
    r = 4  # layer-norm outputs and what is made from them: fp32 under autocast too
    low = a < r  # autocast: casts of fp32 inputs to the compute dtype exist beside them
    c_e, c_d = e.embed_dim, d.embed_dim
    # per token of a block, the peak over its phases; the caller's input x and the block's new x are
    # both alive in the MLP. Encoder (RoPE): stream x in the compute dtype; LN out fp32; qkv (3C);
    # RoPE's fp32 copy and product of q, k (2C each) and the result in x's dtype; then SDPA + proj.
    rope = a + r + 3 * a + (2 * r + 2 * a if low else 0) + 2 * r
    attn_e = a + r + 3 * a + 2 * a + a + a
    mlp_e = 2 * a + r + e.mlp_ratio * a + a  # + the cast of LN out (autocast) or fc2's output
    # the chunk's fp32 images stay on the device through the encoder; the patch embedding adds their
    # cast and the conv output
    image = 3 * p * p * 4
    patch = 3 * p * p * (a if low else 0) + a * c_e
    per_tok_e = image + max(max(rope, attn_e, mlp_e) * c_e, patch)
    # fusion decoder: fp32 stream (decoder_embed output + fp32 image-index embedding); no RoPE
    attn_d = r + r + (a if low else 0) + 3 * a + a + a
    mlp_d = 2 * r + r + d.mlp_ratio * a + a
    per_tok_d = max(attn_d, mlp_d) * c_d
    # the largest transient fp32 -> compute-dtype weight cast (autocast's cast cache is off)
    weight_cast = int(max(e.mlp_ratio * c_e, d.mlp_ratio * c_d) * max(c_e, c_d) * a) if low else 0
    weight_cast += _SMALL_TENSORS
    mps = device_type == "mps"
    carried = total_tok * c_e * r  # encoder output (after its fp32 layer norm) of all views
    # RoPE's cos / sin tables, fp32 (T, head dim) each, kept per grid size
    rope_tables = max_tok * (c_e // e.num_heads) * 2 * 4 * len(set(view_shapes))
    encoder = enc_chunk * max_tok * per_tok_e + carried + weight_cast + rope_tables
    if mps:
        encoder += _scores_bytes(enc_chunk, e.num_heads, max_tok, a)
    # fusion: x0 = the encoder tokens concatenated (hook 0) beside the tokens themselves, the hooked
    # layers kept until the last block, and one block's temporaries, over all tokens
    mid_hooks = max(0, len(cfg.hooks) - 2)
    # (+ 8 bytes per token: the int64 image index of every token)
    fusion = total_tok * (per_tok_d + mid_hooks * c_d * r + c_e * r + 8) + carried + weight_cast
    if mps:
        fusion += _scores_bytes(1, d.num_heads, total_tok, a)
    # heads: the hooked layers of all views stay (fp32); per view of a chunk: the DPT's largest
    # moment, at full resolution (two ``last``-channel maps beside the half-resolution ``feature``
    # map) in the compute dtype, plus the fp32 postprocessed outputs of both heads (48 bytes/pixel)
    f, last = cfg.head_args.dpt_feature_dim, cfg.head_args.dpt_last_dim
    per_view_head = ((2 * last + f / 2) * a + 48) * max_px + (max_tok * sum(cfg.hook_dims) * a)
    hooks_kept = total_tok * sum(cfg.hook_dims) * r
    heads = hd_chunk * per_view_head + hooks_kept + weight_cast
    # 2 x (xyz + conf) float32 per pixel, kept until the end: on the host, which is the device's memory
    # except on CUDA
    outputs = 0 if device_type == "cuda" else sum(h * w for h, w in view_shapes) * 8 * 4
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
    """Bytes that a run may use on the device.

    CUDA: the GPU's free memory plus what this process's caching allocator holds without using it
    (``memory_reserved - memory_allocated``: a previous run's blocks, reusable at once). MPS: Metal's
    recommended working-set size less what this process's tensors hold, and never more than the free
    RAM (the memory is shared with the host). CPU: the available RAM.
    """
    import psutil

    if device_type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device_index)
        cached = torch.cuda.memory_reserved(device_index) - torch.cuda.memory_allocated(device_index)
        return int(free) + max(0, int(cached))
    ram = int(psutil.virtual_memory().available)
    if device_type == "mps":
        import torch

        limit = int(torch.mps.recommended_max_memory()) - int(torch.mps.current_allocated_memory())
        return max(0, min(limit, ram))
    return ram


def plan_chunks(
    cfg: Fast3RConfig,
    view_shapes: Sequence[tuple[int, int]],
    budget: int,
    *,
    bytes_per_el: int = 4,
    weight_bytes_per_el: int = 4,
    weights_loaded: bool = True,
    device_type: str = "cpu",
) -> tuple[int, int]:
    """Largest encoder and head chunk sizes (views) whose estimate fits in ``budget`` bytes.

    ``budget`` is the free memory (the caller takes its margin off); with ``weights_loaded`` the
    weights are already resident and do not count against it. ``device_type`` as for
    :func:`estimate_peak_memory`. Returns at least (1, 1); whether that fits is for the caller to check.
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
            device_type=device_type,
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
