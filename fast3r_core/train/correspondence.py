"""Direct correspondence supervision for training: which patch of view j shows the surface of a patch of
view i, and an InfoNCE loss that pulls the tokens of such patches together.

The pointmap regression of the paper supervises cross-view matching only through the global pointmap,
which a small model trained from scratch learns slowly. Ground truth gives the matches directly: the
surface point at the centre of patch p of view i, projected into view j (and visible there: its depth
agrees with view j's depth map), falls into patch q of view j. An InfoNCE loss over the tokens of all
patches of view j, with q the positive, teaches the fusion decoder (and the encoder) to match.

It lives in the training code only: the projection heads it uses are not part of the model, so the
exported checkpoint keeps the published key layout.

Frames: ``c2w`` cam-to-world, OpenCV axes; ``K`` in pixels of the training images, principal point
(W/2, H/2), pixel (col u, row v) centred at (u + 0.5, v + 0.5); depth is z-depth, 0 = invalid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ProjectionHeads", "info_nce", "patch_correspondences"]


def patch_correspondences(
    depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor, patch: int, depth_tol: float = 0.03
) -> torch.Tensor:
    """Patch-level ground-truth matches between every ordered pair of views of every sample.

    Parameters
    ----------
    depth : (B, N, H, W) float32 z-depth of each view (0 = background).
    K : (B, N, 3, 3) intrinsics in pixels of these images.
    c2w : (B, N, 4, 4) cam-to-world, OpenCV axes.
    patch : patch size in pixels (the model's, 16).
    depth_tol : a projected point counts as visible in view j when |z_proj - depth_j| <= tol * depth_j.

    Returns
    -------
    (B, N, N, T) int64: for sample b, source view i, target view j and source patch p (raster order over
    the (H/patch, W/patch) grid), the index of the target patch that shows the same surface point, or -1
    (background, outside view j, occluded, or i == j).
    """
    B, N, H, W = depth.shape
    gh, gw = H // patch, W // patch
    rows = torch.arange(gh) * patch + patch // 2
    cols = torch.arange(gw) * patch + patch // 2
    vv, uu = torch.meshgrid(rows, cols, indexing="ij")
    uu, vv = uu.reshape(-1), vv.reshape(-1)  # (T,) integer pixel of each patch centre
    z = depth[:, :, vv, uu]  # (B, N, T)
    u = uu.float() + 0.5
    v = vv.float() + 0.5
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    cam = torch.stack([(u - cx) / fx * z, (v - cy) / fy * z, z], dim=-1)  # (B, N, T, 3)
    world = (c2w[:, :, None, :3, :3] @ cam[..., None])[..., 0] + c2w[:, :, None, :3, 3]
    # into every view j: x_j = R_j^T (X - t_j)
    R = c2w[:, :, :3, :3]
    t = c2w[:, :, :3, 3]
    rel = world[:, :, None] - t[:, None, :, None, :]  # (B, Ni, Nj, T, 3)
    xj = torch.einsum("bjcd,bijtc->bijtd", R, rel)  # R_j^T rel (R^T x = einsum over the row index)
    zj = xj[..., 2]
    with torch.no_grad():
        Kj = K[:, None, :, None]  # (B, 1, Nj, 1, 3, 3)
        pu = Kj[..., 0, 0] * xj[..., 0] / zj.clamp(min=1e-6) + Kj[..., 0, 2]
        pv = Kj[..., 1, 1] * xj[..., 1] / zj.clamp(min=1e-6) + Kj[..., 1, 2]
        inside = (zj > 1e-6) & (pu >= 0) & (pu < W) & (pv >= 0) & (pv < H)
        iu = pu.floor().long().clamp(0, W - 1)
        iv = pv.floor().long().clamp(0, H - 1)
        bidx = torch.arange(B)[:, None, None, None]
        jidx = torch.arange(N)[None, None, :, None]
        dj = depth[bidx, jidx, iv, iu]  # (B, Ni, Nj, T) depth of view j where the point lands
        visible = inside & (dj > 0) & ((zj - dj).abs() <= depth_tol * dj)
        valid = visible & (z[:, :, None] > 0)
        valid &= ~torch.eye(N, dtype=torch.bool)[None, :, :, None]
        q = (iv // patch) * gw + (iu // patch)
        return torch.where(valid, q, torch.full_like(q, -1))


class ProjectionHeads(nn.Module):
    """One linear projection (width -> dim) per supervised token layer; training-only parameters."""

    def __init__(self, widths: list[int], dim: int = 64) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(w, dim) for w in widths)

    def forward(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj[layer](x), dim=-1)


def info_nce(
    feats: torch.Tensor, matches: torch.Tensor, temperature: float = 0.1, max_anchors: int = 4096
) -> tuple[torch.Tensor, float]:
    """InfoNCE of patch tokens across views, with ground-truth matches as positives.

    Parameters
    ----------
    feats : (B, N, T, D) L2-normalised token features of the N views of B samples.
    matches : (B, N, N, T) from :func:`patch_correspondences` (-1 = no match).
    temperature : softmax temperature.
    max_anchors : at most this many (i, p -> j) anchors are used (random subset) to bound the cost.

    Returns
    -------
    (loss, top-1 matching accuracy over the anchors used); loss 0 when there is no match in the batch.
    """
    b, i, j, p = torch.nonzero(matches >= 0, as_tuple=True)
    if len(b) == 0:
        return feats.sum() * 0.0, float("nan")
    if len(b) > max_anchors:
        keep = torch.randperm(len(b))[:max_anchors]
        b, i, j, p = b[keep], i[keep], j[keep], p[keep]
    target = matches[b, i, j, p]
    anchor = feats[b, i, p]  # (A, D)
    cands = feats[b, j]  # (A, T, D): every patch of the target view is a candidate
    logits = torch.einsum("ad,atd->at", anchor, cands) / temperature
    loss = F.cross_entropy(logits, target)
    acc = float((logits.argmax(dim=1) == target).float().mean())
    return loss, acc
