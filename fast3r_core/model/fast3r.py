"""The Fast3R model: encoder -> fusion decoder -> global and local DPT heads (fast3r-spec sections 1-4).

Outputs, per view, in the frame conventions of the published model: ``pts3d_in_other_view`` (points of
the view in the common frame, approximately view 0's OpenCV camera frame), ``conf``, ``pts3d_local``
(points in the view's own OpenCV camera frame) and ``conf_local``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fast3r_core.errors import InputError

from .config import Fast3RConfig
from .decoder import MAX_VIEWS, FusionDecoder, image_index_table
from .dpt import DPTHead, postprocess
from .encoder import Encoder

__all__ = ["DEFAULT_SEED", "Fast3R", "draw_image_ids"]

DEFAULT_SEED = 0


def draw_image_ids(num_views: int, seed: int | None = DEFAULT_SEED, random_ids: bool = True) -> torch.Tensor:
    """Image indices for the fusion decoder's image-index embedding, (num_views,) int64 on the CPU.

    View 0 gets 0; the others get distinct indices in 1..999 drawn from a generator seeded with
    ``seed`` (the published model draws them afresh from the global RNG; a fixed seed makes the same
    input give the same output). ``seed=None`` draws from fresh entropy. With ``random_ids=False``
    view v gets v (the published ``random_image_idx_embedding: false``).
    """
    if num_views < 1:
        raise InputError("at least one view is needed")
    if num_views > MAX_VIEWS:
        raise InputError(
            f"{num_views} views: Fast3R handles at most {MAX_VIEWS} views in one pass "
            "(its image-index embedding has 1000 entries); use fewer images"
        )
    if not random_ids:
        return torch.arange(num_views, dtype=torch.int64)
    gen = torch.Generator()
    gen.manual_seed(seed) if seed is not None else gen.seed()
    rest = torch.randperm(MAX_VIEWS - 1, generator=gen)[: num_views - 1] + 1
    return torch.cat([torch.zeros(1, dtype=torch.int64), rest])


class Fast3R(nn.Module):
    """Fast3R network. State-dict keys match the published ``model.safetensors``.

    The stages are exposed separately (``encode``, ``fuse``, ``heads``) so that the inference engine can
    run the encoder and the heads in chunks of views; ``forward`` runs them all (training, tests).
    """

    def __init__(self, config: Fast3RConfig | None = None) -> None:
        super().__init__()
        self.config = config or Fast3RConfig()
        self.name = ""  # set by the loader: registered name, hub id or folder name
        c = self.config
        self.patch_size = c.encoder_args.patch_size
        self.encoder = Encoder(c.encoder_args)
        self.decoder = FusionDecoder(c.decoder_args, c.hooks)
        h = c.head_args
        dims = list(h.dpt_layer_dims)
        # hook 0 is the encoder output (encoder width), hooks 1-3 are decoder layers (decoder width)
        hook_dims = c.hook_dims
        self.downstream_head = DPTHead(hook_dims, dims, h.dpt_feature_dim, h.dpt_last_dim)
        self.downstream_head_local = DPTHead(hook_dims, dims, h.dpt_feature_dim, h.dpt_last_dim)

    def reset_buffers(self) -> None:
        """Recompute the non-persistent buffers (after ``to_empty`` from the meta device)."""
        emb = self.decoder.image_idx_emb
        self.decoder.image_idx_emb = image_index_table(emb.shape[0], emb.shape[1]).to(emb.device, emb.dtype)

    # -- stages ------------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (n, 3, H, W) float in [-1, 1] -> encoder tokens (n, T, C), T = (H/p)(W/p), raster order."""
        tokens, _ = self.encoder(images)
        return tokens

    def fuse(self, tokens: Sequence[torch.Tensor], image_ids: torch.Tensor) -> list[torch.Tensor]:
        """tokens: N tensors (B, T_v, C_enc); image_ids (B, N) -> 4 hooked layers (B, sum T_v, C_k).

        C_k is ``config.hook_dims[k]``: the encoder width for hook 0, the decoder width for the others.
        """
        return self.decoder(list(tokens), image_ids)

    def heads(self, hooks: Sequence[torch.Tensor], true_shape: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Run both heads on views of one size.

        hooks: 4 tensors (n, T, C_k) of n views of size true_shape = (H, W), C_k = ``config.hook_dims[k]``.
        Returns float32 ``pts3d_in_other_view`` (n, H, W, 3), ``conf`` (n, H, W), ``pts3d_local``,
        ``conf_local``.
        """
        H, W = true_shape
        grid = (H // self.patch_size, W // self.patch_size)
        pts, conf = postprocess(self.downstream_head(list(hooks), grid))
        pts_l, conf_l = postprocess(self.downstream_head_local(list(hooks), grid))
        return {"pts3d_in_other_view": pts, "conf": conf, "pts3d_local": pts_l, "conf_local": conf_l}

    # -- whole model -------------------------------------------------------------------------------
    def forward(
        self, images: Sequence[torch.Tensor], image_ids: torch.Tensor | None = None
    ) -> list[dict[str, torch.Tensor]]:
        """Run all N views of B samples in one pass.

        Parameters
        ----------
        images : N tensors (B, 3, H_v, W_v) in [-1, 1]; sizes may differ between views.
        image_ids : (B, N) or (N,) int64 image indices; default ``draw_image_ids(N)`` for every sample.

        Returns
        -------
        N dicts (one per view) of tensors: ``pts3d_in_other_view`` (B, H, W, 3), ``conf`` (B, H, W),
        ``pts3d_local`` (B, H, W, 3), ``conf_local`` (B, H, W).
        """
        N = len(images)
        B = images[0].shape[0]
        if image_ids is None:
            image_ids = draw_image_ids(N, random_ids=self.config.decoder_args.random_image_idx_embedding)
        if image_ids.dim() == 1:
            image_ids = image_ids[None].expand(B, N)
        shapes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        if len(set(shapes)) == 1:
            tokens = self.encode(torch.cat(list(images), dim=0)).split(B, dim=0)  # view-major
        else:
            tokens = [self.encode(im) for im in images]
        hooks = self.fuse(tokens, image_ids)
        if len(set(shapes)) == 1:
            # all views the same size: one batched head pass over (B*N) views instead of a loop
            T = tokens[0].shape[1]
            flat = [h.reshape(B * N, T, h.shape[-1]) for h in hooks]  # views: tokens are view-major
            out = self.heads(flat, shapes[0])
            return [{k: t.view(B, N, *t.shape[1:])[:, v] for k, t in out.items()} for v in range(N)]
        counts = [t.shape[1] for t in tokens]
        per_view = [h.split(counts, dim=1) for h in hooks]  # [hook][view] (B, T_v, C)
        return [self.heads([per_view[k][v] for k in range(len(hooks))], shapes[v]) for v in range(N)]
