"""Training loop: AdamW, linear warm-up + cosine decay, gradient clipping, checkpoints and resume.

Every step draws a view count N uniformly in [min_views, max_views] and a batch of B ~ images/N
samples of N random views of random cached scenes (view 0, the frame of the global pointmap, is a
random one of them). Image indices for the fusion decoder are drawn as the paper does: view 0 gets 0,
the others distinct random indices in 1..999. The loss is :func:`fast3r_core.train.loss.fast3r_loss`.

A resolution schedule (fraction of the run -> training resolution, images per step) lets most steps
run at a low resolution and the end at the evaluation resolution (224).

Outputs in ``out``: ``log.csv`` (one row per logged step), ``eval.csv`` (pose metrics on held-out
scenes), ``loss.png`` (curves), ``checkpoint.pt`` (everything needed to resume), ``last/`` and
``best/`` (model folders: config.json + model.safetensors).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fast3r_core.errors import CheckpointError, InputError
from fast3r_core.model import Fast3R, Fast3RConfig
from fast3r_core.model.fast3r import draw_image_ids

from .data import SceneCache, scene_seed
from .evaluate import EVAL_SEED, METRIC_KEYS, evaluate_arrays, views_for_scene
from .loss import fast3r_loss
from .plot import plot_curves
from .synthetic import render_sample

__all__ = ["TrainConfig", "export_model", "forward_train", "lr_at", "small_config", "train", "train_step"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
LOG_FIELDS = (
    "step",
    "seconds",
    "lr",
    "res",
    "views",
    "batch",
    "loss",
    "global",
    "local",
    "global_err",
    "local_err",
    "grad_norm",
)


def small_config(
    width: int = 192,
    heads: int = 3,
    enc_depth: int = 6,
    dec_depth: int = 6,
    dpt_layer_dims: tuple[int, int, int, int] = (48, 96, 192, 384),
    dpt_feature_dim: int = 64,
    dpt_last_dim: int = 32,
    patch_size: int = 16,
) -> Fast3RConfig:
    """A small Fast3R of the published architecture (same keys, smaller widths and depths).

    The encoder and decoder share ``width`` (the DPT hook 0 reads encoder tokens). DPT widths use our
    optional ``head_args`` keys; random image indices and the plain attention scale as published.
    """
    from fast3r_core.model.config import DecoderArgs, EncoderArgs, HeadArgs

    enc = EncoderArgs(img_size=224, patch_size=patch_size, embed_dim=width, num_heads=heads, depth=enc_depth)
    dec = DecoderArgs(enc_embed_dim=width, embed_dim=width, num_heads=heads, depth=dec_depth)
    head = HeadArgs(
        patch_size=patch_size,
        dpt_layer_dims=list(dpt_layer_dims),
        dpt_feature_dim=dpt_feature_dim,
        dpt_last_dim=dpt_last_dim,
    )
    return Fast3RConfig(enc, dec, head)


@dataclass
class TrainConfig:
    """Settings of a training run (stored in the checkpoint and in ``out/train_config.json``).

    ``stages``: list of (start fraction of the run, resolution, images per step); the resolution must
    divide the cache resolution.
    """

    out: str
    cache: str
    steps: int = 3000
    lr: float = 3e-4
    min_lr: float = 1e-6
    warmup: int = 150
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    clip: float = 1.0
    alpha: float = 0.2
    min_views: int = 2
    max_views: int = 8
    stages: list[tuple[float, int, int]] = field(default_factory=lambda: [(0.0, 112, 32), (0.6, 224, 12)])
    seed: int = 0
    threads: int = 2
    log_every: int = 10
    ckpt_every: int = 100
    eval_every: int = 500
    eval_scenes: int = 14
    model: dict[str, Any] = field(default_factory=dict)  # small_config() keyword arguments
    init: str | None = None  # start from these weights (a model folder) instead of random
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time

    def stage_at(self, step: int) -> tuple[int, int]:
        """(resolution, images per step) at ``step``."""
        frac = step / max(self.steps, 1)
        res, ips = self.stages[0][1], self.stages[0][2]
        for start, r, n in self.stages:
            if frac >= start:
                res, ips = r, n
        return int(res), int(ips)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine decay to ``min_lr`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * t))


def _image_ids(rng: np.random.Generator, batch: int, views: int) -> torch.Tensor:
    """(B, N) indices: view 0 -> 0, the others distinct random in 1..999 (a fresh draw per sample)."""
    return torch.stack([draw_image_ids(views, seed=int(rng.integers(2**31))) for _ in range(batch)])


def forward_train(
    model: Fast3R, images: list[torch.Tensor], image_ids: torch.Tensor
) -> list[dict[str, torch.Tensor]]:
    """``model(images, image_ids)`` for views of one size, with the heads run once over all views.

    Same outputs as :meth:`Fast3R.forward` (the heads are per-image), but one head call for the N*B
    view-images instead of N calls: on the CPU the per-call overhead of the many small convolutions of
    the DPT heads (and their backward) otherwise dominates a training step.

    images : N tensors (B, 3, H, W) of one size; image_ids : (B, N). Returns N dicts of (B, ...) tensors.
    """
    n_views, bsz = len(images), images[0].shape[0]
    tokens = model.encode(torch.cat(images, dim=0)).split(bsz, dim=0)  # view-major
    hooks = model.fuse(tokens, image_ids)
    T = tokens[0].shape[1]
    # (B, N*T, C) -> (N*B, T, C), view-major like the published inference batching
    per_view = [h.reshape(bsz, n_views, T, -1).transpose(0, 1).reshape(n_views * bsz, T, -1) for h in hooks]
    out = model.heads(per_view, (images[0].shape[-2], images[0].shape[-1]))
    return [{k: v[i * bsz : (i + 1) * bsz] for k, v in out.items()} for i in range(n_views)]


def train_step(
    model: Fast3R,
    optimizer: torch.optim.Optimizer,
    images: list[torch.Tensor],
    gts: list[dict[str, torch.Tensor]],
    image_ids: torch.Tensor,
    *,
    alpha: float = 0.2,
    clip: float | None = 1.0,
) -> dict[str, float]:
    """One optimisation step on one batch; returns the loss and diagnostics as floats."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    preds = forward_train(model, images, image_ids)
    details: dict[str, float] = {}
    loss = fast3r_loss(gts, preds, alpha=alpha, details=details)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {float(loss)}")
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip else float("inf"))
    optimizer.step()
    return {"loss": float(loss.detach()), "grad_norm": float(norm), **details}


def export_model(model: Fast3R, folder: str | Path, fp16: bool = True) -> Path:
    """Save ``model`` as a model folder (config.json + model.safetensors), fp16 weights by default.

    :func:`fast3r_core.weights.load_model` casts fp16 weights back to fp32 when loading.
    """
    import copy

    from fast3r_core.weights import save_model

    m = copy.deepcopy(model).cpu()
    if fp16:
        m = m.half()
    return save_model(m, folder)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _eval_set(n: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out scenes as (images (V, S, S, 3) uint8, c2w (V, 4, 4)), V = 2 + k mod 7."""
    out = []
    for k in range(n):
        s = render_sample(scene_seed(EVAL_SEED, k), 8, aspect="square", long_side=size)
        v = views_for_scene(k, 8)
        out.append((s.images[:v], s.cam_to_world[:v]))
    return out


def _evaluate(model: Fast3R, scenes: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    rows = [evaluate_arrays(model, im, c2w)[0] for im, c2w in scenes]
    model.train()
    return {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS}


def _read_csv(path: Path, max_step: int) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if int(float(r["step"])) <= max_step]


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def train(
    cfg: TrainConfig, resume: bool = False, on_log: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run (or resume) a training run; returns a summary dict (steps, seconds, last loss, best eval).

    Reproducible: with the same config and seed the same batches, image indices and initial weights
    are drawn (up to the non-determinism of multi-threaded CPU kernels). ``resume`` continues from
    ``out/checkpoint.pt`` with its optimiser, schedule and RNG states.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, cfg.threads))
    cache = SceneCache(cfg.cache)
    for _start, res, _n in cfg.stages:
        if cache.size % res or res % 16:
            raise InputError(
                f"stage resolution {res} must be a multiple of 16 dividing the cache size {cache.size}"
            )

    if not 1 <= cfg.min_views <= cfg.max_views <= cache.views:
        raise InputError(
            f"views per sample {cfg.min_views}..{cfg.max_views} must lie in 1..{cache.views} (cache)"
        )
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.init:
        from fast3r_core.weights import load_model

        model = load_model(cfg.init, device="cpu")
    else:
        model = Fast3R(small_config(**cfg.model))
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model: %.2f M parameters", n_params / 1e6)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "pos" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=cfg.betas,
    )
    step, elapsed, best = 0, 0.0, -1.0
    ckpt_path = out / CHECKPOINT_NAME
    if resume:
        if not ckpt_path.is_file():
            raise CheckpointError(f"cannot resume: no {ckpt_path}")
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        rng.bit_generator.state = ck["np_rng"]
        torch.set_rng_state(ck["torch_rng"])
        step, elapsed, best = ck["step"], ck["seconds"], ck.get("best", -1.0)
        log.info("resumed from %s at step %d", ckpt_path, step)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    rows = _read_csv(out / "log.csv", step)
    eval_rows = _read_csv(out / "eval.csv", step)
    eval_set = _eval_set(cfg.eval_scenes, 224) if cfg.eval_scenes > 0 else []

    def checkpoint() -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "np_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "seconds": elapsed,
            "best": best,
            "config": asdict(cfg),
            "model_config": model.config.to_dict(),
        }
        _atomic_torch_save(state, ckpt_path)
        _write_csv(out / "log.csv", LOG_FIELDS, rows)
        _write_csv(out / "eval.csv", ("step", "seconds", *METRIC_KEYS), eval_rows)
        plot_curves(rows, eval_rows, out / "loss.png")
        export_model(model, out / "last", fp16=False)

    t_start = time.perf_counter() - elapsed
    model.train()
    while step < cfg.steps:
        res, ips = cfg.stage_at(step)
        views = int(rng.integers(cfg.min_views, cfg.max_views + 1))
        bsz = max(1, round(ips / views))
        batch = cache.batch(rng, bsz, views, res)
        ids = _image_ids(rng, bsz, views)
        for g in optimizer.param_groups:
            g["lr"] = lr_at(cfg, step)
        stats = train_step(model, optimizer, batch.images, batch.gts, ids, alpha=cfg.alpha, clip=cfg.clip)
        step += 1
        elapsed = time.perf_counter() - t_start
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {
                "step": step,
                "seconds": round(elapsed, 1),
                "lr": lr_at(cfg, step - 1),
                "res": res,
                "views": views,
                "batch": bsz,
                **stats,
            }
            rows.append(row)
            log.info(
                "step %d/%d  %.0fs  res %d  %dx%d  loss %.4f  gerr %.3f  lerr %.3f  |g| %.2f",
                *(step, cfg.steps, elapsed, res, bsz, views, stats["loss"]),
                *(stats["global_err"], stats["local_err"], stats["grad_norm"]),
            )
            if on_log is not None:
                on_log(row)
        do_eval = eval_set and (step % cfg.eval_every == 0 or step == cfg.steps)
        if do_eval:
            m = _evaluate(model, eval_set)
            eval_rows.append({"step": step, "seconds": round(elapsed, 1), **m})
            log.info(
                "eval at step %d: RRA@15 %.3f RTA@15 %.3f mAA@30 %.3f",
                step,
                m["RRA@15"],
                m["RTA@15"],
                m["mAA@30"],
            )
            # only models at the evaluation resolution compete for "best"
            if res == 224 and m["mAA@30"] > best:
                best = m["mAA@30"]
                export_model(model, out / "best", fp16=False)
        timeout = cfg.max_minutes is not None and elapsed > cfg.max_minutes * 60
        if step % cfg.ckpt_every == 0 or step == cfg.steps or do_eval or timeout:
            checkpoint()
        if timeout:
            log.warning("time limit of %.0f min reached at step %d: stopping", cfg.max_minutes, step)
            break
    return {
        "steps": step,
        "seconds": elapsed,
        "parameters": n_params,
        "last_loss": rows[-1]["loss"] if rows else float("nan"),
        "best_mAA@30": best,
        "last_eval": eval_rows[-1] if eval_rows else None,
    }
