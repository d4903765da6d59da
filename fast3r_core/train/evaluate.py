"""Pose evaluation of a model on held-out synthetic scenes (spec section 9.1 metrics).

A scene folder holds images ``000.png`` ... and ``gt.npz`` / ``cameras.json`` (see
:func:`fast3r_core.train.synthetic.save_scene_folder`). :func:`evaluate_scenes` runs the real pipeline
(:func:`fast3r_core.pipeline.reconstruct`: image loading with the published resize/crop, inference,
focal + PnP poses) on each scene and compares the cam-to-world poses with the ground truth by
:func:`fast3r_core.metrics.pose_metrics` (relative poses, so the world frame and scale do not matter).

Scene k uses ``2 + k mod 7`` of its views (2..8) unless a fixed count is asked for, so a set of
scenes covers every view count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fast3r_core.errors import InputError
from fast3r_core.metrics import pose_metrics

from .synthetic import load_scene_folder, render_sample, save_scene_folder

if TYPE_CHECKING:
    from fast3r_core.model import Fast3R

__all__ = [
    "EVAL_SEED",
    "QUALITY_KEYS",
    "EvalReport",
    "evaluate_arrays",
    "evaluate_scenes",
    "find_scene_folders",
    "make_eval_scenes",
    "scene_quality",
    "views_for_scene",
]

log = logging.getLogger(__name__)

#: Seed of the held-out scene stream (training caches use other seeds).
EVAL_SEED = 1_000_001
METRIC_KEYS = ("RRA@5", "RTA@5", "RRA@15", "RTA@15", "RRA@30", "RTA@30", "mAA@30")
#: Per-scene quality figures besides the pose metrics (NaN where the scene lacks what they need).
QUALITY_KEYS = ("focal_err", "point_err", "conf_ratio")


def scene_quality(
    pts3d: Sequence[np.ndarray],
    conf: Sequence[np.ndarray],
    focal: float,
    gt_c2w: np.ndarray,
    gt_K: np.ndarray,
    gt_depth: np.ndarray | None,
) -> dict[str, float]:
    """Focal error and confidence quality of one reconstruction against ground truth.

    Parameters
    ----------
    pts3d, conf : per view (H, W, 3) predicted global points and (H, W) confidences, at the resolution
        and pixel grid of the ground truth (the caller checks that no resize or crop happened).
    focal : the focal (pixels of these images) used for the poses; gt_K : (V, 3, 3) true intrinsics.
    gt_c2w : (V, 4, 4) cam-to-world (OpenCV axes); gt_depth : (V, H, W) z-depth (0 = background) or None.

    Returns
    -------
    ``focal_err``: |f - f_gt| / f_gt. ``point_err``: mean distance of the predicted points, mapped onto the
    truth by one similarity (Umeyama over all valid pixels), in units of the truth's mean distance to its
    centroid. ``conf_ratio``: mean error of the 50 % most confident valid points over that of the other
    50 % (below 1: confidence ranks points by accuracy; the goal is <= 0.5).
    """
    from fast3r_core.geometry import umeyama_similarity

    out = {"focal_err": abs(focal - float(gt_K[0, 0, 0])) / float(gt_K[0, 0, 0])}
    out["point_err"] = out["conf_ratio"] = float("nan")
    if gt_depth is None:
        return out
    P, G, C = [], [], []
    for v, (p, c) in enumerate(zip(pts3d, conf, strict=True)):
        d = gt_depth[v].astype(np.float64)
        H, W = d.shape
        if p.shape[:2] != (H, W):
            return out
        K = gt_K[v]
        vv, uu = np.mgrid[0:H, 0:W] + 0.5
        cam = np.stack([(uu - K[0, 2]) / K[0, 0] * d, (vv - K[1, 2]) / K[1, 1] * d, d], -1)
        world = cam @ gt_c2w[v, :3, :3].T + gt_c2w[v, :3, 3]
        m = (d > 0) & np.isfinite(p).all(-1)
        P.append(p[m])
        G.append(world[m])
        C.append(c[m])
    p_all, g_all, c_all = np.concatenate(P), np.concatenate(G), np.concatenate(C)
    if len(p_all) < 10:
        return out
    s, R, t = umeyama_similarity(p_all, g_all)
    err = np.linalg.norm(s * p_all @ R.T + t - g_all, axis=1)
    err /= max(float(np.linalg.norm(g_all - g_all.mean(0), axis=1).mean()), 1e-12)
    out["point_err"] = float(err.mean())
    order = np.argsort(-c_all, kind="stable")
    half = len(order) // 2
    rest = float(err[order[half:]].mean())
    out["conf_ratio"] = float(err[order[:half]].mean()) / rest if rest > 0 else float("nan")
    return out


@dataclass
class EvalReport:
    """Pose metrics averaged over scenes (each scene's metrics are over its view pairs)."""

    metrics: dict[str, float]
    per_scene: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        m = self.metrics
        return (
            f"{len(self.per_scene)} scenes: RRA@15 {m['RRA@15']:.3f}  RTA@15 {m['RTA@15']:.3f}  "
            f"mAA@30 {m['mAA@30']:.3f}  (RRA@5 {m['RRA@5']:.3f}, RTA@5 {m['RTA@5']:.3f}, "
            f"RRA@30 {m['RRA@30']:.3f}, RTA@30 {m['RTA@30']:.3f})"
        )


def _mean_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    if not rows:
        raise InputError("no scene was evaluated")
    out = {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS}
    for k in QUALITY_KEYS:
        vals = [r[k] for r in rows if k in r and np.isfinite(r[k])]
        if vals:
            out[k] = float(np.mean(vals))
    return out


def views_for_scene(index: int, available: int, num_views: int | None = None) -> int:
    """How many views scene ``index`` uses: ``num_views`` if given, else 2 + index mod 7 (capped)."""
    n = num_views if num_views is not None else 2 + index % 7
    return max(2, min(n, available))


def make_eval_scenes(
    folder: str | Path, num_scenes: int, seed: int = EVAL_SEED, size: int = 224, views: int = 8
) -> list[Path]:
    """Render ``num_scenes`` held-out square scenes as scene folders ``folder/scene_000`` ...

    Uses the same generator as training with a seed stream that training does not use.
    """
    from .data import scene_seed

    out = []
    for i in range(num_scenes):
        sample = render_sample(scene_seed(seed, i), views, aspect="square", long_side=size)
        out.append(save_scene_folder(sample, Path(folder) / f"scene_{i:03d}", with_depth=False))
    return out


def _scene_depth(folder: Path) -> np.ndarray | None:
    """(V, H, W) float32 z-depth from the scene folder's gt.npz, or None when it has none."""
    gt = folder / "gt.npz"
    if not gt.is_file():
        return None
    with np.load(gt, allow_pickle=False) as z:
        return z["depth"].astype(np.float32) if "depth" in z.files else None


def _scene_kind(folder: Path) -> str:
    import json

    try:
        return str(json.loads((folder / "cameras.json").read_text(encoding="utf-8")).get("kind", ""))
    except (OSError, ValueError):
        return ""


def find_scene_folders(root: str | Path) -> list[Path]:
    """Scene folders under ``root`` (``root`` itself if it is one), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"No such scenes folder: {root}")

    def is_scene(p: Path) -> bool:
        return (p / "gt.npz").is_file() or (p / "cameras.json").is_file()

    if is_scene(root):
        return [root]
    found = sorted(p for p in root.iterdir() if p.is_dir() and is_scene(p))
    if not found:
        raise InputError(f"No scene folders (with gt.npz or cameras.json) in {root}")
    return found


def evaluate_arrays(
    model: Fast3R, images: np.ndarray, gt_c2w: np.ndarray, seed: int = 0
) -> tuple[dict[str, float], np.ndarray]:
    """Pose metrics of one scene given as model-resolution arrays (no file I/O, used during training).

    Parameters
    ----------
    images : (V, H, W, 3) uint8 RGB at the model resolution (H, W multiples of the patch size).
    gt_c2w : (V, 4, 4) cam-to-world, OpenCV axes.

    Returns
    -------
    (metrics dict, predicted cam-to-world (V, 4, 4) float64)
    """
    import torch

    from fast3r_core.inference import InferenceOptions, predict
    from fast3r_core.poses import estimate_poses_detailed

    tensors = [
        torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float() / 127.5 - 1.0 for im in images
    ]
    preds = predict(model, tensors, options=InferenceOptions(precision="fp32", seed=seed, check_memory=False))
    est = estimate_poses_detailed(
        [p["pts3d_in_other_view"] for p in preds], [p["conf"] for p in preds], seed=seed, max_workers=1
    )
    return pose_metrics(est.c2w, gt_c2w), est.c2w


def evaluate_scenes(
    model: Fast3R,
    scenes: str | Path | Sequence[str | Path],
    *,
    size: int = 224,
    num_views: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Run the real pipeline on scene folders and average the pose metrics over scenes.

    Parameters
    ----------
    model : a loaded Fast3R.
    scenes : a folder of scene folders, one scene folder, or a list of scene folders.
    size : model resolution of the pipeline (224: square centre crop; 512).
    num_views : views per scene (default: 2 + k mod 7 for the k-th scene, i.e. 2..8).
    seed : image-index seed of the runs.
    progress : called with (done, total) after each scene.
    """
    from fast3r_core.pipeline import ReconstructOptions, reconstruct

    if isinstance(scenes, (str, Path)):
        folders = find_scene_folders(scenes)
    else:
        folders = [Path(s) for s in scenes]
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    opts = ReconstructOptions(size=size, seed=seed, precision="fp32")
    for k, folder in enumerate(folders):
        paths, gt_c2w, gt_K = load_scene_folder(folder)
        n = views_for_scene(k, len(paths), num_views)
        rec = reconstruct([str(p) for p in paths[:n]], model, opts)
        m = pose_metrics(rec.cam_to_world, gt_c2w[:n])
        depth = _scene_depth(folder)
        # the confidence figures need the model's pixels to be the scene's pixels (no resize, no crop)
        same_grid = all(
            tuple(int(x) for x in o) == tuple(int(x) for x in r) == (p.shape[1], p.shape[0])
            for o, r, p in zip(rec.original_sizes, rec.resized_sizes, rec.pts3d, strict=True)
        )
        q = scene_quality(
            rec.pts3d,
            rec.conf,
            float(rec.intrinsics_original[0, 0, 0]),
            gt_c2w[:n],
            gt_K[:n],
            depth[:n] if depth is not None and same_grid else None,
        )
        rows.append({"scene": folder.name, "views": n, "kind": _scene_kind(folder), **m, **q})
        log.info(
            "%s (%d views): RRA@15 %.2f RTA@15 %.2f mAA@30 %.2f",
            folder.name,
            n,
            m["RRA@15"],
            m["RTA@15"],
            m["mAA@30"],
        )
        if progress is not None:
            progress(k + 1, len(folders))
    return EvalReport(_mean_metrics(rows), rows, time.perf_counter() - t0)
