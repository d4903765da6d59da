"""Transformer building blocks: 2-D RoPE, attention, MLP and the pre-norm block.

Shapes: B = batch (images or samples), T = tokens, C = width, nh = heads, hd = head dim.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MIN_PIECE_ROWS",
    "PIECE_FLOPS",
    "SCORE_BLOCK_BYTES",
    "Attention",
    "Block",
    "Mlp",
    "RoPE2D",
    "attention",
    "interruptible",
    "linear_in_pieces",
    "query_block_rows",
]

#: Largest score matrix (B * heads * Tq * Tk elements of the compute dtype, in bytes) that one attention
#: call may build where attention materialises it. Apple's MPS backend does (no fused kernel for these
#: shapes) and aborts or returns wrong numbers past 2**32 bytes (PyTorch issues 149261, 179592); 2**30
#: keeps a wide margin. ``fast3r_core.forward_memory`` counts these blocks (its copy of the number is tested).
SCORE_BLOCK_BYTES = 1 << 30
#: Device types whose scaled_dot_product_attention materialises the scores. CPU (flash kernel) and CUDA
#: (flash / memory-efficient kernels) do not, and never take the blocked path.
MATERIALISING_DEVICES = frozenset({"mps"})


def query_block_rows(batch: int, heads: int, q_len: int, k_len: int, itemsize: int, device_type: str) -> int:
    """Queries per attention call so that each call's score matrix stays within SCORE_BLOCK_BYTES.

    Returns ``q_len`` (one call, the fused kernels' path) unless ``device_type`` materialises the scores
    and they would exceed the bound; never less than 1.
    """
    if device_type not in MATERIALISING_DEVICES:
        return q_len
    per_row = batch * heads * k_len * itemsize
    if per_row * q_len <= SCORE_BLOCK_BYTES:
        return q_len
    return max(1, SCORE_BLOCK_BYTES // per_row)


#: Work of one uninterruptible piece of a transformer block while a run checks a cancel event on the
#: CPU (:func:`interruptible`), in FLOPs: about 0.12 s at the ~260 GFLOP/s this 2-core host reaches
#: when quiet, so that a cancel waits for less than one such piece plus the unwinding. One attention
#: call over 153 views of 512x384 (117 504 tokens, ViT-L width) is ~57 TFLOP, i.e. minutes, and one
#: MLP over them ~2 TFLOP; pieces of 32 GFLOP keep the matrix products far above the size where their
#: per-call overhead shows (bench/README.md, "Cancel latency").
PIECE_FLOPS = 32e9
#: Device types where pieces are cut. On CUDA and MPS a check runs when the kernels are queued, not
#: when they finish, so smaller pieces would not make a cancel faster there.
_PIECE_DEVICES = frozenset({"cpu"})


@dataclass(frozen=True)
class _Pieces:
    check: Callable[[], None]
    flops: float


#: The check of the run on this thread (a context variable: each thread, hence each run, has its own).
_PIECES: ContextVar[_Pieces | None] = ContextVar("fast3r_interruptible", default=None)


@contextlib.contextmanager
def interruptible(check: Callable[[], None], flops: float | None = None) -> Iterator[None]:
    """Within the block, cut long attention, linear and MLP calls on the CPU into pieces of ~``flops``.

    ``flops`` defaults to :data:`PIECE_FLOPS` (read at entry, so that tests can make it tiny).

    ``check`` runs between pieces (it raises to stop the forward pass, e.g. on a cancel). Only
    inference (no autograd) is cut, and only calls above ``flops``: shorter calls, and every call
    outside the block, take the one-call path unchanged. Attention pieces are blocks of query rows and
    heads (exact: the softmax is per row and head); linear and MLP pieces are blocks of tokens (the same
    per-row products; the matrix kernels may sum in another order, within float rounding).
    """
    token = _PIECES.set(_Pieces(check, float(PIECE_FLOPS if flops is None else flops)))
    try:
        yield
    finally:
        _PIECES.reset(token)


def _pieces_for(x: torch.Tensor) -> _Pieces | None:
    """The active check if calls on ``x`` are to be cut (CPU, no autograd), else None."""
    p = _PIECES.get()
    if p is None or x.device.type not in _PIECE_DEVICES or (torch.is_grad_enabled() and x.requires_grad):
        return None
    return p


def _piece_rows(rows: int, flops_per_row: float, budget: float) -> int:
    """Rows per piece so that a piece is about ``budget`` FLOPs (multiples of 64 rows from 64 up)."""
    n = int(budget // max(flops_per_row, 1.0))
    if n >= rows:
        return rows
    return max(1, n - n % 64 if n >= 64 else n)


def _rowwise(
    fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], x: torch.Tensor, flops_per_row: float
) -> torch.Tensor:
    """``fn(x, None)`` for a row-wise ``fn``: x (..., C) -> (..., C'), in pieces within :func:`interruptible`.

    Pieces are blocks of rows of x flattened to (M, C), with the run's check between them; from the
    second piece on, ``fn(rows, out_rows)`` writes into the rows of the preallocated (M, C') output.
    One call when no check is active or x is small.
    """
    p = _pieces_for(x)
    lead = x.shape[:-1]
    m = math.prod(lead)
    rows = m if p is None else _piece_rows(m, flops_per_row, p.flops)
    if p is None or rows >= m:
        return fn(x, None)
    x2 = x.reshape(m, x.shape[-1])
    first = fn(x2[:rows], None)
    out = first.new_empty(m, first.shape[-1])
    out[:rows] = first
    del first
    for s in range(rows, m, rows):
        p.check()
        fn(x2[s : s + rows], out[s : s + rows])
    return out.view(*lead, out.shape[-1])


def _linear(mod: nn.Module, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``mod(x)`` for a linear layer, written into ``out`` (contiguous rows) when given.

    A plain fp32 ``nn.Linear`` outside autocast writes there directly (the ``addmm`` that ``F.linear``
    runs, with ``out=``): no temporary and no copy per piece. Others (int8, autocast) are copied in.
    """
    if out is None:
        return mod(x)
    if (
        type(mod) is nn.Linear
        and mod.bias is not None
        and x.dtype == mod.weight.dtype == out.dtype
        and not torch.is_autocast_enabled(x.device.type)
    ):
        return torch.addmm(mod.bias, x, mod.weight.t(), out=out)
    return out.copy_(mod(x))


def linear_in_pieces(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``mod(x)`` for a linear layer (``in_features`` -> ``out_features``), in blocks of tokens within
    :func:`interruptible` (e.g. the fusion decoder's input projection over every token of every view)."""
    shape = mod.in_features, mod.out_features  # nn.Linear or the int8 version
    flops = 2.0 * int(shape[0]) * int(shape[1])  # type: ignore[arg-type]
    return _rowwise(partial(_linear, mod), x, flops)


#: Fewest query rows of an attention piece on the CPU. The CPU flash kernel works on 256-row query
#: blocks from 768 rows up and on 64-row blocks below, which runs at ~0.65x the speed (measured:
#: 512-row pieces took 1.5x the time of one call); 1024 = 4 blocks keeps both threads busy. Where
#: 1024 rows of all heads exceed the budget, a piece takes fewer heads instead (heads are independent).
MIN_PIECE_ROWS = 1024


def _attention_pieces(
    p: _Pieces, batch: int, heads: int, q_len: int, k_len: int, head_dim: int
) -> tuple[int, int]:
    """(query rows, heads) of one CPU attention piece of about ``p.flops`` FLOPs."""
    per_row_head = 4.0 * batch * k_len * head_dim  # q.k and p.v: 2 * 2 * Tk * hd per query row and head
    rows = int(p.flops // (per_row_head * heads))
    if rows >= q_len:
        return q_len, heads
    if rows >= MIN_PIECE_ROWS:
        return rows - rows % (MIN_PIECE_ROWS // 2), heads  # whole 256-row kernel blocks, an even number
    rows = min(q_len, MIN_PIECE_ROWS)
    return rows, max(1, min(heads, int(p.flops // (per_row_head * rows))))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """SDPA of q (B, nh, Tq, hd), k, v (B, nh, Tk, hd) -> (B, nh, Tq, hd) in (B, Tq, nh, hd) memory or SDPA's.

    The work is split into pieces, each a block of query rows of some heads attending to all keys
    (exact: the softmax is per query row and head), where the backend builds the score matrix (MPS) and
    it would exceed :data:`SCORE_BLOCK_BYTES` (blocks of rows), and on the CPU within
    :func:`interruptible` when one call would exceed its FLOP budget (the check runs between pieces).
    Otherwise this is one ``scaled_dot_product_attention`` call.
    """
    B, nh, Tq, hd = q.shape
    Tk = k.shape[2]
    rows = query_block_rows(B, nh, Tq, Tk, q.element_size(), q.device.type)
    heads = nh
    p = _pieces_for(q)
    if p is not None:
        rows, heads = _attention_pieces(p, B, nh, Tq, Tk, hd)
    if rows >= Tq and heads >= nh:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    pieces = [(s, h) for s in range(0, Tq, rows) for h in range(0, nh, heads)]
    out: torch.Tensor | None = None
    for n, (s, h) in enumerate(pieces):
        if n and p is not None:
            p.check()
        qs, hs = slice(s, s + rows), slice(h, h + heads)
        piece = F.scaled_dot_product_attention(q[:, hs, qs], k[:, hs], v[:, hs], scale=scale)
        if out is None:  # (B, Tq, nh, hd) memory, so that the caller's transpose + reshape is a view
            out = piece.new_empty(B, Tq, nh, piece.shape[-1])
        out[:, qs, hs] = piece.transpose(1, 2)
        del piece
    assert out is not None
    return out.transpose(1, 2)


class RoPE2D(nn.Module):
    """2-D rotary position embedding of the CroCo encoder (fast3r-spec section 2.2).

    The head channels are split in two halves: the first half is rotated by the token's row y, the
    second by its column x. Inside a half of size D, channels i and i + D/2 (i < D/2) form a pair
    rotated by the angle ``p * base ** (-2 i / D)``. Tables are computed once per grid in fp32 and kept.
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = float(base)
        self._cache: dict[tuple[int, int, int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(
        self, grid_h: int, grid_w: int, head_dim: int, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        """cos and signed-sin tables, each (grid_h * grid_w, head_dim) float32, raster token order."""
        key = (grid_h, grid_w, head_dim, device)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        half = head_dim // 2  # channels per axis
        quarter = half // 2  # rotation pairs per axis
        inv_freq = self.base ** (-torch.arange(0, half, 2, dtype=torch.float64) / half)  # (quarter,)
        ys = torch.arange(grid_h, dtype=torch.float64).repeat_interleave(grid_w)  # row of each token
        xs = torch.arange(grid_w, dtype=torch.float64).repeat(grid_h)  # column of each token
        ang_y = ys[:, None] * inv_freq[None, :]
        ang_x = xs[:, None] * inv_freq[None, :]
        ang = torch.cat([ang_y, ang_y, ang_x, ang_x], dim=1)  # (T, head_dim)
        # rotate-half with the sign folded into sin: out = x*cos + x[perm]*sin_signed
        sign = torch.cat([-torch.ones(quarter), torch.ones(quarter)]).repeat(2).to(torch.float64)
        # normal tensors even when first built under inference_mode, so that a later training step
        # of the same model can save them for backward
        with torch.inference_mode(False):
            cos = ang.cos().to(torch.float32).to(device)
            sin = (ang.sin() * sign).to(torch.float32).to(device)
        self._cache[key] = (cos, sin)
        return cos, sin

    def forward(self, x: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
        """Rotate ``x`` (B, T, ..., hd), T = grid_h * grid_w tokens in raster order; fp32 math.

        Any number of axes may sit between the token axis and the head-dim axis (e.g. (B, T, 2, nh, hd)
        rotates q and k of a fused qkv output in one go). Returns a new contiguous tensor of x's dtype.
        """
        _B, T, *mid, hd = x.shape
        if T != grid_h * grid_w:
            raise ValueError(f"RoPE: {T} tokens for a {grid_h}x{grid_w} grid")
        cos, sin = self.tables(grid_h, grid_w, hd, x.device)
        shape = (T,) + (1,) * len(mid) + (hd,)  # broadcast over the axes between T and hd
        cos, sin = cos.view(shape), sin.view(shape)
        xf = x.float()  # no copy in fp32
        # rotate-half without flip/cat copies: out = x*cos, then each quarter gets its partner
        # quarter times the signed sin, accumulated in place on strided views (2 passes in all)
        out = xf * cos
        q = hd // 4
        for dst, src in ((0, 1), (1, 0), (2, 3), (3, 2)):
            d, s_ = slice(dst * q, (dst + 1) * q), slice(src * q, (src + 1) * q)
            out[..., d].addcmul_(xf[..., s_], sin[..., d])
        return out.to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (timm layout: [q | k | v], head-major).

    ``scale`` defaults to head_dim ** -0.5. ``rope`` (optional) rotates q and k by 2-D token position.
    The qkv output (B, T, 3, nh, hd) is handed to SDPA as strided (B, nh, T, hd) views: the CPU flash
    kernel and the CUDA kernels read strides, so no transpose copies are made (RoPE writes one new
    (B, T, 2, nh, hd) tensor for q and k together).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(
        self, x: torch.Tensor, grid: tuple[int, int] | None = None, scale: float | None = None
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C). ``grid`` = (h, w) of the token grid when RoPE is used."""
        B, T, C = x.shape
        qkv = linear_in_pieces(self.qkv, x).view(B, T, 3, self.num_heads, self.head_dim)
        v = qkv[:, :, 2]
        if self.rope is not None:
            if grid is None:
                raise ValueError("Attention with RoPE needs the token grid (h, w)")
            q, k = self.rope(qkv[:, :, :2], *grid).unbind(2)  # each (B, T, nh, hd)
        else:
            q, k = qkv[:, :, 0], qkv[:, :, 1]
        out = attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            self.scale if scale is None else scale,
        )  # (B, nh, T, hd)
        out = out.transpose(1, 2).reshape(B, T, C)  # a view when SDPA returns (B, T, nh, hd) memory
        return linear_in_pieces(self.proj, out)


class Mlp(nn.Module):
    """Linear -> exact (erf) GELU -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., C) -> (..., C); in blocks of tokens within :func:`interruptible` when long."""
        c, hidden = self.fc1.in_features, self.fc1.out_features
        return _rowwise(self._forward, x, 4.0 * c * hidden)

    def _forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc1(x)
        if h.requires_grad and torch.is_grad_enabled():
            h = self.act(h)
        else:  # inference: GELU in place saves a (tokens x hidden) buffer, the block's largest
            h = torch.ops.aten.gelu_(h)
        return _linear(self.fc2, h, out)


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN1(x)), then x + MLP(LN2(x))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        rope: RoPE2D | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, rope=rope)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(
        self, x: torch.Tensor, grid: tuple[int, int] | None = None, scale: float | None = None
    ) -> torch.Tensor:
        x = _add_residual(self.attn(self.norm1(x), grid=grid, scale=scale), x)
        return _add_residual(self.mlp(self.norm2(x)), x)


def _add_residual(branch: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x + branch, written into the fresh ``branch`` output when that keeps the result's dtype.

    Saves a (B, T, C) buffer per add; autograd allows it (a linear layer's backward does not need its
    output). ``x`` is never written: the fusion decoder may keep it as a hook. Under autocast the branch
    can be bf16 while x is fp32; then the sum is made out of place so that it stays fp32.
    """
    if branch.dtype == torch.promote_types(branch.dtype, x.dtype) and branch.shape == x.shape:
        return branch.add_(x)
    return x + branch


def attention_scale(head_dim: int, long_sequence_rescale: bool) -> float:
    """Softmax scale: head_dim**-0.5, times sqrt(ln 137 / ln 20) when the published switch is on."""
    s = head_dim**-0.5
    return s * math.sqrt(math.log(137) / math.log(20)) if long_sequence_rescale else s
