"""Transformer building blocks: 2-D RoPE, attention, MLP and the pre-norm block.

Shapes: B = batch (images or samples), T = tokens, C = width, nh = heads, hd = head dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "Block", "Mlp", "RoPE2D"]


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
        cos = ang.cos().to(torch.float32).to(device)
        sin = (ang.sin() * sign).to(torch.float32).to(device)
        self._cache[key] = (cos, sin)
        return cos, sin

    @staticmethod
    def _swap_pairs(x: torch.Tensor) -> torch.Tensor:
        """For each half of the head channels, swap its two quarters: [a, b] -> [b, a]."""
        *lead, d = x.shape
        q = x.reshape(*lead, 2, 2, d // 4)
        return q.flip(-2).reshape(*lead, d)

    def forward(self, x: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
        """Rotate ``x`` (B, nh, T, hd) with T = grid_h * grid_w tokens in raster order; fp32 math."""
        cos, sin = self.tables(grid_h, grid_w, x.shape[-1], x.device)
        xf = x.float()
        out = xf * cos + self._swap_pairs(xf) * sin
        return out.to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (timm layout: [q | k | v], head-major).

    ``scale`` defaults to head_dim ** -0.5. ``rope`` (optional) rotates q and k by 2-D token position.
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
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, nh, T, hd)
        if self.rope is not None:
            if grid is None:
                raise ValueError("Attention with RoPE needs the token grid (h, w)")
            q = self.rope(q, *grid)
            k = self.rope(k, *grid)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale if scale is None else scale)
        out = out.transpose(1, 2).reshape(B, T, C)
        return self.proj(out)


class Mlp(nn.Module):
    """Linear -> exact (erf) GELU -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


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
        x = x + self.attn(self.norm1(x), grid=grid, scale=scale)
        return x + self.mlp(self.norm2(x))


def attention_scale(head_dim: int, long_sequence_rescale: bool) -> float:
    """Softmax scale: head_dim**-0.5, times sqrt(ln 137 / ln 20) when the published switch is on."""
    s = head_dim**-0.5
    return s * math.sqrt(math.log(137) / math.log(20)) if long_sequence_rescale else s
