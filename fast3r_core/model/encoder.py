"""CroCo ViT encoder with 2-D RoPE (fast3r-spec section 2)."""

from __future__ import annotations

import torch
from torch import nn

from .config import EncoderArgs
from .layers import Block, RoPE2D

__all__ = ["Encoder", "PatchEmbed"]


class PatchEmbed(nn.Module):
    """Conv patchify for any aspect ratio: (B, 3, H, W) -> (B, H/p * W/p, C) in raster order."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        _B, _, H, W = x.shape
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f"image size {H}x{W} is not a multiple of the patch size {p}")
        x = self.proj(x)  # (B, C, h, w)
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), grid


class Encoder(nn.Module):
    """Patch embedding, ``depth`` RoPE blocks (LayerNorm eps 1e-6) and a final LayerNorm.

    Images are used in their true orientation (the published ``PatchEmbedDust3R`` behaviour; the
    training-time ``ManyAR_PatchEmbed`` gives the same tokens for true-orientation input).
    """

    def __init__(self, args: EncoderArgs) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(args.patch_size, args.embed_dim)
        rope = RoPE2D(args.rope_base)
        self.enc_blocks = nn.ModuleList(
            Block(args.embed_dim, args.num_heads, args.mlp_ratio, qkv_bias=True, norm_eps=1e-6, rope=rope)
            for _ in range(args.depth)
        )
        self.enc_norm = nn.LayerNorm(args.embed_dim, eps=1e-6)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """images (B, 3, H, W) in [-1, 1] -> tokens (B, T, C) and the token grid (H/p, W/p)."""
        x, grid = self.patch_embed(images)
        for blk in self.enc_blocks:
            x = blk(x, grid=grid)
        return self.enc_norm(x), grid
