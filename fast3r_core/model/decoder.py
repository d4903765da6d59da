"""Fusion decoder: global all-to-all attention over the tokens of all views (fast3r-spec section 3)."""

from __future__ import annotations

import torch
from torch import nn

from .config import DecoderArgs
from .layers import Block, attention_scale, linear_in_pieces

__all__ = ["FusionDecoder", "image_index_table"]

MAX_VIEWS = 1000


def image_index_table(num: int, dim: int) -> torch.Tensor:
    """Sinusoidal image-index table (num, dim) float32: [sin(p w_j) | cos(p w_j)], w_j = 1e4^(-j/(dim/2)).

    Computed in float64 on the CPU as the published model does, then stored as float32 on the default
    device (the one of a ``with torch.device(...)`` block). Always computing on the CPU matters for the
    model build on the meta device (weights/model_io.py): ``arange`` on meta runs through torch's
    Python decompositions, which import ``torch._dynamo``, as long again as ``import torch`` itself,
    on the start-up path of every first model load.
    """
    half = dim // 2
    cpu = torch.device("cpu")
    omega = 10000.0 ** (-torch.arange(half, dtype=torch.float64, device=cpu) / half)
    ang = torch.arange(num, dtype=torch.float64, device=cpu)[:, None] * omega[None, :]
    table = torch.cat([ang.sin(), ang.cos()], dim=1)
    return table.to(device=torch.empty(0).device, dtype=torch.float32)


class FusionDecoder(nn.Module):
    """``decoder_embed`` -> + image-index embedding -> ``depth`` blocks (LN eps 1e-5, no RoPE) -> dec_norm.

    Only the layers that the DPT heads read (``hooks``) are returned, so the other intermediate outputs
    are freed as soon as the next block has run.
    """

    #: (MAX_VIEWS, embed_dim) sinusoidal image-index table; a non-persistent buffer (register_buffer)
    image_idx_emb: torch.Tensor

    def __init__(self, args: DecoderArgs, hooks: tuple[int, ...]) -> None:
        super().__init__()
        self.args = args
        self.hooks = tuple(hooks)
        self.decoder_embed = nn.Linear(args.enc_embed_dim, args.embed_dim)
        self.dec_blocks = nn.ModuleList(
            Block(args.embed_dim, args.num_heads, args.mlp_ratio, qkv_bias=args.qkv_bias, norm_eps=1e-5)
            for _ in range(args.depth)
        )
        self.dec_norm = nn.LayerNorm(args.embed_dim, eps=1e-6)
        self.register_buffer("image_idx_emb", image_index_table(MAX_VIEWS, args.embed_dim), persistent=False)

    def attn_scale(self) -> float:
        """The softmax scale; the published long-sequence rescale applies only at inference when enabled."""
        head_dim = self.args.embed_dim // self.args.num_heads
        return attention_scale(head_dim, self.args.attn_bias_for_inference_enabled and not self.training)

    def forward(self, tokens: list[torch.Tensor], image_ids: torch.Tensor) -> list[torch.Tensor]:
        """Fuse the views of each sample.

        Parameters
        ----------
        tokens : list of N tensors (B, T_v, C_enc), the encoder output of each view (view order kept).
        image_ids : (B, N) int64, the image index of each view in 0..999 (view 0 normally gets 0).

        Returns
        -------
        list of len(hooks) tensors (B, sum T_v, C): layer 0 is the concatenated encoder output before
        ``decoder_embed``; the last layer is after ``dec_norm``.
        """
        x0 = torch.cat(tokens, dim=1)
        B = x0.shape[0]
        if image_ids.shape != (B, len(tokens)):
            raise ValueError(f"image_ids must be (B={B}, N={len(tokens)}), got {tuple(image_ids.shape)}")
        ids = image_ids.to(x0.device, non_blocking=True)
        # (B, sum T) image index of every token; expand + cat rather than a tensor-valued
        # repeat_interleave, whose output size would need a device-to-host sync on CUDA
        token_ids = torch.cat([ids[:, v : v + 1].expand(B, t.shape[1]) for v, t in enumerate(tokens)], dim=1)
        # in pieces while a run checks a cancel event: over all tokens this is ~0.25 TFLOP at 153 views
        x = linear_in_pieces(self.decoder_embed, x0) + self.image_idx_emb[token_ids].to(x0.dtype)
        out: list[torch.Tensor] = [x0] if 0 in self.hooks else []
        scale = self.attn_scale()
        depth = len(self.dec_blocks)
        for i, blk in enumerate(self.dec_blocks, start=1):
            x = blk(x, scale=scale)
            if i == depth:
                x = self.dec_norm(x)
            if i in self.hooks:
                out.append(x)
        return out
