"""The training objective of Fast3R (fast3r-spec section 8).

Confidence-weighted, scale-normalised regression of two pointmaps per view:

* global: every view's points in the camera frame of view 0, normalised per sample by the average
  distance to the origin over the valid pixels of all views (prediction and ground truth separately);
* local: every view's points in its own camera frame, normalised per view and sample the same way.

Per view the pixel error ``e = ||pred' - gt'||`` enters as ``C e - alpha log C`` averaged over the valid
pixels of that view across the whole batch; the total is the mean of the 2N view terms.

Frames: ``camera_pose`` is cam-to-world (OpenCV axes, any world frame); ``pts3d`` are world points.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fast3r_core.errors import InputError

__all__ = ["LossDetails", "fast3r_loss", "normalised_targets"]

_DIST_EPS = 1e-8

LossDetails = dict[str, float]


def _inverse_rigid(T: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid transforms (B, 4, 4): [R^T, -R^T t]."""
    R, t = T[:, :3, :3], T[:, :3, 3:]
    out = torch.zeros_like(T)
    out[:, :3, :3] = R.transpose(1, 2)
    out[:, :3, 3:] = -R.transpose(1, 2) @ t
    out[:, 3, 3] = 1.0
    return out


def _apply(T: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """T (B, 4, 4) applied to points (B, H, W, 3)."""
    R, t = T[:, None, None, :3, :3], T[:, None, None, :3, 3]
    return (R @ pts[..., None])[..., 0] + t


def _avg_dis(pts: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean norm (B,) of the points (B, H, W, 3) over the valid pixels (B, H, W) of all given views."""
    total = sum((p.norm(dim=-1) * m).flatten(1).sum(1) for p, m in zip(pts, masks, strict=True))
    count = sum(m.flatten(1).sum(1) for m in masks)
    return (total / count.clamp(min=1)).clamp(min=_DIST_EPS)  # type: ignore[union-attr]


def normalised_targets(
    gts: Sequence[dict[str, torch.Tensor]],
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Ground-truth pointmaps in the loss frames, before normalisation.

    Returns (global points in view 0's camera frame, local points in each view's camera frame, masks),
    each a list over views of (B, H, W, 3) / (B, H, W) tensors.
    """
    w2c0 = _inverse_rigid(gts[0]["camera_pose"].float())
    glob = [_apply(w2c0, g["pts3d"].float()) for g in gts]
    local = [_apply(_inverse_rigid(g["camera_pose"].float()), g["pts3d"].float()) for g in gts]
    masks = [g["valid_mask"].bool() for g in gts]
    return glob, local, masks


def _conf_term(err: torch.Tensor, conf: torch.Tensor, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """mean over valid pixels (all batch items together) of C e - alpha log C."""
    e, c = err[mask], conf[mask]
    if e.numel() == 0:
        return err.sum() * 0.0  # no valid pixel in this view anywhere in the batch: no contribution
    return (c * e - alpha * torch.log(c)).mean()


def fast3r_loss(
    gts: Sequence[dict[str, torch.Tensor]],
    preds: Sequence[dict[str, torch.Tensor]],
    alpha: float = 0.2,
    details: LossDetails | None = None,
) -> torch.Tensor:
    """The Fast3R training loss (ConfLoss of normalised global and local pointmap regressions).

    Parameters
    ----------
    gts : N dicts (one per view) with ``camera_pose`` (B, 4, 4) cam-to-world (OpenCV axes),
        ``pts3d`` (B, H, W, 3) world points and ``valid_mask`` (B, H, W) bool.
    preds : N dicts with ``pts3d_in_other_view`` (B, H, W, 3) (view 0's camera frame), ``conf``
        (B, H, W) > 0, ``pts3d_local`` (B, H, W, 3) (own camera frame) and ``conf_local`` (B, H, W).
    alpha : weight of the ``-log C`` confidence regulariser (0.2 in the paper).
    details : if given, filled with float diagnostics: ``global``, ``local`` (mean confidence terms),
        ``global_err``, ``local_err`` (mean normalised pixel errors, unweighted).

    Returns
    -------
    Scalar tensor (float32, differentiable w.r.t. the predictions); computed in fp32 even under autocast.
    """
    n = len(gts)
    if n == 0 or len(preds) != n:
        raise InputError(f"fast3r_loss needs as many predictions as views (got {len(preds)} and {n})")
    with torch.autocast(device_type="cpu", enabled=False):
        glob, local, masks = normalised_targets(gts)
        p_glob = [p["pts3d_in_other_view"].float() for p in preds]
        p_local = [p["pts3d_local"].float() for p in preds]

        z_gt = _avg_dis(glob, masks)[:, None, None, None]
        z_pr = _avg_dis(p_glob, masks)[:, None, None, None]
        terms_g, terms_l, errs_g, errs_l = [], [], [], []
        for v in range(n):
            m = masks[v]
            e_g = (p_glob[v] / z_pr - glob[v] / z_gt).norm(dim=-1)
            zl_gt = _avg_dis([local[v]], [m])[:, None, None, None]
            zl_pr = _avg_dis([p_local[v]], [m])[:, None, None, None]
            e_l = (p_local[v] / zl_pr - local[v] / zl_gt).norm(dim=-1)
            terms_g.append(_conf_term(e_g, preds[v]["conf"].float(), m, alpha))
            terms_l.append(_conf_term(e_l, preds[v]["conf_local"].float(), m, alpha))
            if details is not None:
                errs_g.append(e_g[m].detach())
                errs_l.append(e_l[m].detach())
        total = (torch.stack(terms_g).sum() + torch.stack(terms_l).sum()) / (2 * n)
    if details is not None:
        details["global"] = float(torch.stack(terms_g).detach().mean())
        details["local"] = float(torch.stack(terms_l).detach().mean())
        details["global_err"] = float(torch.cat(errs_g).mean()) if errs_g else float("nan")
        details["local_err"] = float(torch.cat(errs_l).mean()) if errs_l else float("nan")
    return total
