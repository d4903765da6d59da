"""Initialisations that give a model trained from scratch a head start on matching.

* Mimetic attention (Trockman & Kolter, "Mimetic initialization of self-attention layers", 2023): per
  head, W_q^T W_k is set close to a_1 Z + b_1 I and W_proj W_v close to a_2 Z - b_2 I (Z random). With
  W_q^T W_k near the identity, a token attends to tokens that look like it, in its own view and in the
  other views of the fusion decoder: attention starts as a soft nearest-neighbour matcher.
* Patch embedding from PCA of image patches: the first filters are the principal components of random
  16x16 patches of training images (scaled to the default filters' norm), so the tokens start as a
  compact, decorrelated description of the patch instead of random projections.

Both only set initial values of parameters that the published layout already has.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from fast3r_core.model.layers import Attention

__all__ = ["mimetic_init", "pca_patch_embed_init"]

log = logging.getLogger(__name__)


def _factor(M: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A, B (rank, d) with A^T B the best rank-``rank`` approximation of M (d, d)."""
    U, S, Vh = torch.linalg.svd(M)
    s = S[:rank].sqrt()
    return (U[:, :rank] * s).T, s[:, None] * Vh[:rank]


@torch.no_grad()
def mimetic_init(
    model: nn.Module,
    gen: torch.Generator,
    qk: tuple[float, float] = (0.7, 0.7),
    vo: tuple[float, float] = (0.4, 0.4),
) -> int:
    """Mimetic initialisation of every :class:`Attention` of ``model``; returns how many were set.

    qk = (a_1, b_1): W_q^T W_k ~ a_1 Z_1 + b_1 I per head (Z_1 ~ N(0, 1/d)); vo = (a_2, b_2):
    W_proj W_v ~ a_2 Z_2 - b_2 I over all heads. Biases of qkv and proj are zeroed.
    """
    count = 0
    for mod in model.modules():
        if not isinstance(mod, Attention):
            continue
        d = mod.qkv.in_features
        nh, hd = mod.num_heads, mod.head_dim
        W = mod.qkv.weight  # (3d, d): rows [q heads | k heads | v heads]
        for h in range(nh):
            Z = torch.randn(d, d, generator=gen, dtype=torch.float64) / d**0.5
            M = qk[0] * Z + qk[1] * torch.eye(d, dtype=torch.float64)
            A, Bm = _factor(M, hd)
            W[h * hd : (h + 1) * hd] = A.to(W.dtype)
            W[d + h * hd : d + (h + 1) * hd] = Bm.to(W.dtype)
        Z = torch.randn(d, d, generator=gen, dtype=torch.float64) / d**0.5
        M = vo[0] * Z - vo[1] * torch.eye(d, dtype=torch.float64)
        P, V = _factor(M, d)  # P^T V = M: proj weight = P^T (d, d), value weight = V (d, d)
        W[2 * d :] = V.to(W.dtype)
        mod.proj.weight.copy_(P.T.to(W.dtype))
        if mod.qkv.bias is not None:
            mod.qkv.bias.zero_()
        mod.proj.bias.zero_()
        count += 1
    return count


@torch.no_grad()
def pca_patch_embed_init(
    conv: nn.Conv2d, images: np.ndarray, gen: np.random.Generator, samples: int = 20000
) -> None:
    """Set the first filters of the patch-embedding conv to principal components of image patches.

    conv : the (C, 3, p, p) patch projection; images : (M, H, W, 3) uint8 training images (any count).
    The mean patch goes into the bias so that the embedding of an average patch is zero. Filters past
    the 3 p^2 components stay random.
    """
    C, _, p, _ = conv.weight.shape
    M, H, W, _ = images.shape
    idx = gen.integers(0, M, samples)
    ys = gen.integers(0, H - p + 1, samples)
    xs = gen.integers(0, W - p + 1, samples)
    patches = np.stack([images[i, y : y + p, x : x + p] for i, y, x in zip(idx, ys, xs, strict=True)])
    X = torch.from_numpy(patches).double().permute(0, 3, 1, 2).reshape(samples, -1) / 127.5 - 1.0
    mean = X.mean(0)
    Xc = X - mean
    _, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    k = min(C, Vh.shape[0])
    weight = conv.weight.detach().clone().flatten(1).double()
    default_std = float((Xc @ weight.T).std())  # output scale of the default random filters
    var = S[:k] ** 2 / samples
    # near-whitened components: every output has at most the default scale, and the weakest
    # (noise-like) components are damped instead of amplified
    filt = Vh[:k] * (default_std / (var + 0.05 * var[0]).sqrt())[:, None]
    weight[:k] = filt
    conv.weight.copy_(weight.view_as(conv.weight).to(conv.weight.dtype))
    if conv.bias is not None:
        conv.bias.copy_((-(weight @ mean)).to(conv.bias.dtype))
    log.info("patch embedding: %d filters from PCA of %d patches", k, samples)
