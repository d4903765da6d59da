"""Training loop: AdamW, linear warm-up + cosine decay, gradient clipping, checkpoints and resume.

Every step draws a view count N uniformly in [min_views, max_views] and a batch of B ~ images/N
samples of N random views of random cached scenes (view 0, the frame of the global pointmap, is a
random one of them). Image indices for the fusion decoder are drawn as the paper does: view 0 gets 0,
the others distinct random indices in 1..999. The loss is :func:`fast3r_core.train.loss.fast3r_loss`.

A schedule of stages (fraction of the run -> resolution, images per step, views per sample, the largest
camera rotation from view 0, the share of room scenes) makes a curriculum: small, overlapping view sets
at a low resolution first, then more views, wider spreads and rooms, the evaluation resolution last.

Besides the paper's loss, an optional InfoNCE loss on the tokens of corresponding patches
(:mod:`.correspondence`) supervises cross-view matching directly; mimetic attention and PCA patch
filters (:mod:`.init`) start the model closer to a matcher; an exponential moving average (EMA) of the
weights is what gets evaluated and exported. None of these change the model's key layout.

Outputs in ``out``: ``log.csv`` (one row per logged step), ``eval.csv`` (pose metrics on held-out
scenes), ``loss.png`` (curves), ``state/`` (everything needed to resume: ``state.safetensors`` with
model, EMA, optimiser and RNG tensors, ``state.json`` with the rest; data only, nothing pickled),
``last/`` and ``best/`` (model folders: config.json + model.safetensors).
"""

from __future__ import annotations

import csv
import json
import logging
import math
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

from .correspondence import ProjectionHeads, info_nce, patch_correspondences
from .data import SceneCache, scene_seed
from .evaluate import EVAL_SEED, METRIC_KEYS, evaluate_arrays
from .loss import fast3r_loss
from .plot import plot_curves
from .synthetic import render_sample

__all__ = [
    "Stage",
    "TrainConfig",
    "export_model",
    "forward_train",
    "load_train_state",
    "lr_at",
    "small_config",
    "train",
    "train_step",
]

log = logging.getLogger(__name__)

STATE_DIR = "state"
LEGACY_CHECKPOINT = "checkpoint.pt"
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
    "nce",
    "nce_acc",
    "angle",
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
    dec_width: int | None = None,
    dec_heads: int | None = None,
) -> Fast3RConfig:
    """A small Fast3R of the published architecture (same keys, smaller widths and depths).

    The fusion decoder is ``dec_width`` wide with ``dec_heads`` heads (default: the encoder's ``width``
    and ``heads``; the published training config uses a narrower decoder, 1024 -> 768). DPT widths use
    our optional ``head_args`` keys; random image indices and the plain attention scale as published.
    """
    from fast3r_core.model.config import DecoderArgs, EncoderArgs, HeadArgs

    enc = EncoderArgs(img_size=224, patch_size=patch_size, embed_dim=width, num_heads=heads, depth=enc_depth)
    dec = DecoderArgs(
        enc_embed_dim=width,
        embed_dim=dec_width or width,
        num_heads=dec_heads or heads,
        depth=dec_depth,
    )
    head = HeadArgs(
        patch_size=patch_size,
        dpt_layer_dims=list(dpt_layer_dims),
        dpt_feature_dim=dpt_feature_dim,
        dpt_last_dim=dpt_last_dim,
    )
    return Fast3RConfig(enc, dec, head)


@dataclass(frozen=True)
class Stage:
    """What a training step looks like from ``start`` (fraction of the run) on.

    res : training resolution (a multiple of 16 dividing the size of one of the caches).
    images : images per step (batch = round(images / views)).
    min_views, max_views : views per sample, drawn uniformly.
    max_angle : largest camera rotation (degrees) of a sample's views from its view 0 (>= 180: any).
    room_share : share of room scenes (None: as the cache has them).
    """

    start: float
    res: int
    images: int
    min_views: int = 2
    max_views: int = 8
    max_angle: float = 180.0
    room_share: float | None = None

    @classmethod
    def parse(cls, item: Any, defaults: tuple[int, int]) -> Stage:
        """From a Stage, a dict of its fields, or a tuple (start, res, images[, min_views, max_views,
        max_angle, room_share]); missing view counts come from ``defaults``."""
        if isinstance(item, Stage):
            return item
        if isinstance(item, dict):
            return cls(**{"min_views": defaults[0], "max_views": defaults[1], **item})
        vals = list(item)
        if len(vals) < 3:
            raise InputError(f"a stage needs at least (start, res, images), got {item!r}")
        vals += [None] * (7 - len(vals))
        start, res, images, vlo, vhi, angle, room = vals[:7]
        return cls(
            float(start),
            int(res),
            int(images),
            int(vlo if vlo is not None else defaults[0]),
            int(vhi if vhi is not None else defaults[1]),
            float(angle if angle is not None else 180.0),
            None if room is None else float(room),
        )


@dataclass
class TrainConfig:
    """Settings of a training run (stored in the state and in ``out/train_config.json``).

    ``cache``: one scene cache folder, or several separated by commas (e.g. a 112 px and a 224 px
    cache); a stage reads the smallest cache whose size its resolution divides. ``stages``: see
    :class:`Stage` (tuples or dicts). ``nce_weight`` > 0 adds the correspondence InfoNCE loss on the
    hooked token layers listed in ``nce_layers`` (0 = encoder output, 1..3 = the decoder hooks).
    ``ema`` > 0 keeps an exponential moving average of the weights (decay per step), which is what
    is evaluated and exported. ``init_mimetic`` / ``init_pca`` choose the initialisation.
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
    stages: list[Any] = field(default_factory=lambda: [(0.0, 112, 32), (0.6, 224, 12)])
    seed: int = 0
    threads: int = 2
    log_every: int = 10
    ckpt_every: int = 100
    eval_every: int = 500
    eval_scenes: int = 14
    eval_views: int = 8  # views rendered per held-out scene (each uses 2 + k mod (eval_views - 1))
    model: dict[str, Any] = field(default_factory=dict)  # small_config() keyword arguments
    init: str | None = None  # start from these weights (a model folder) instead of random
    init_mimetic: bool = False
    init_pca: bool = False
    nce_weight: float = 0.0
    nce_layers: list[int] = field(default_factory=lambda: [0, 1])
    nce_temperature: float = 0.1
    nce_dim: int = 64
    ema: float = 0.0
    bf16: bool = (
        False  # bf16 autocast for the forward pass (the loss stays fp32); fast on AMX/AVX512-BF16 CPUs
    )
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time

    def stage(self, step: int) -> Stage:
        """The stage in force at ``step``."""
        frac = step / max(self.steps, 1)
        parsed = [Stage.parse(s, (self.min_views, self.max_views)) for s in self.stages]
        cur = parsed[0]
        for st in parsed:
            if frac >= st.start:
                cur = st
        return cur

    def stage_at(self, step: int) -> tuple[int, int]:
        """(resolution, images per step) at ``step``."""
        st = self.stage(step)
        return st.res, st.images


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
    model: Fast3R, images: list[torch.Tensor], image_ids: torch.Tensor, return_hooks: bool = False
) -> Any:
    """``model(images, image_ids)`` for views of one size, with the heads run once over all views.

    Same outputs as :meth:`Fast3R.forward` (the heads are per-image), but one head call for the N*B
    view-images instead of N calls: on the CPU the per-call overhead of the many small convolutions of
    the DPT heads (and their backward) otherwise dominates a training step.

    images : N tensors (B, 3, H, W) of one size; image_ids : (B, N). Returns N dicts of (B, ...) tensors,
    and with ``return_hooks`` also the 4 hooked token layers, each (B, N, T, C_layer).
    """
    n_views, bsz = len(images), images[0].shape[0]
    tokens = model.encode(torch.cat(images, dim=0)).split(bsz, dim=0)  # view-major
    hooks = model.fuse(tokens, image_ids)
    T = tokens[0].shape[1]
    # (B, N*T, C) -> (N*B, T, C), view-major like the published inference batching
    per_view = [h.reshape(bsz, n_views, T, -1).transpose(0, 1).reshape(n_views * bsz, T, -1) for h in hooks]
    out = model.heads(per_view, (images[0].shape[-2], images[0].shape[-1]))
    preds = [{k: v[i * bsz : (i + 1) * bsz] for k, v in out.items()} for i in range(n_views)]
    if return_hooks:
        return preds, [h.reshape(bsz, n_views, T, -1) for h in hooks]
    return preds


def train_step(
    model: Fast3R,
    optimizer: torch.optim.Optimizer,
    images: list[torch.Tensor],
    gts: list[dict[str, torch.Tensor]],
    image_ids: torch.Tensor,
    *,
    alpha: float = 0.2,
    clip: float | None = 1.0,
    nce: tuple[ProjectionHeads, torch.Tensor, list[int], float, float] | None = None,
    bf16: bool = False,
) -> dict[str, float]:
    """One optimisation step on one batch; returns the loss and diagnostics as floats.

    ``nce`` = (projection heads, matches (B, N, N, T) from :func:`patch_correspondences`, hooked layer
    indices, weight, temperature) adds the correspondence InfoNCE loss; the projection heads' parameters
    must be in ``optimizer`` too. ``bf16`` runs the forward pass under CPU bf16 autocast (weights and
    optimiser stay fp32; the losses are computed in fp32).
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        preds, hooks = forward_train(model, images, image_ids, return_hooks=True)
    details: dict[str, float] = {}
    loss = fast3r_loss(gts, preds, alpha=alpha, details=details)
    if nce is not None:
        heads, matches, layers, weight, temp = nce
        terms, accs = [], []
        for li, layer in enumerate(layers):
            term, acc = info_nce(heads(li, hooks[layer].float()), matches, temperature=temp)
            terms.append(term)
            accs.append(acc)
        nce_loss = torch.stack(terms).mean()
        loss = loss + weight * nce_loss
        details["nce"] = float(nce_loss.detach())
        details["nce_acc"] = float(np.nanmean(accs)) if not all(math.isnan(a) for a in accs) else float("nan")
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {float(loss)}")
    loss.backward()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip else float("inf"))
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


# ------------------------------------------------------------------------------------------------
# Training state on disk: safetensors (tensors) + JSON (everything else); never pickle
# ------------------------------------------------------------------------------------------------
def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for name, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"opt.{idx}.{name}"] = val.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = val
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, val in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = val
    for key, val in meta.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = val
    groups = meta["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


def _write_state(folder: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``state.safetensors`` + ``state.json`` into ``folder`` atomically (a sibling, then rename)."""
    from safetensors.torch import save_file

    from fast3r_core.atomic import atomic_dir, clean_stale

    # what a killed save left: its staging folder, or the previous state moved aside (put back)
    clean_stale(folder.parent, restore_to=folder)
    # error=None: an OSError (disk full) reaches the training loop as it is
    with atomic_dir(folder, error=None) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))


def load_train_state(out: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of the training state in run folder ``out``; data only.

    Raises CheckpointError when there is none, or when a legacy pickled ``checkpoint.pt`` holds
    anything but plain tensors and containers ("contains code, refused").
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(out) / STATE_DIR
    if (folder / "state.safetensors").is_file() and (folder / "state.json").is_file():
        try:
            tensors = load_file(str(folder / "state.safetensors"))
            meta = json.loads((folder / "state.json").read_text())
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"the training state in {folder} is damaged: {exc}") from exc
        if not isinstance(meta, dict) or "step" not in meta:
            raise CheckpointError(f"the training state in {folder} is damaged: no step in state.json")
        return tensors, meta
    legacy = Path(out) / LEGACY_CHECKPOINT
    if legacy.is_file():
        import pickle

        try:
            ck = torch.load(legacy, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
                raise CheckpointError(
                    f"{legacy} contains code, refused (a training state must be data only)"
                ) from exc
            raise CheckpointError(f"{legacy} is damaged or incomplete: {exc}") from exc
        except (RuntimeError, OSError, EOFError) as exc:
            raise CheckpointError(f"{legacy} is damaged or incomplete: {exc}") from exc
        tensors = {f"model.{k}": v for k, v in ck["model"].items()}
        opt_t, opt_meta = _flatten_optimizer_dict(ck["optimizer"])
        tensors.update(opt_t)
        tensors["torch_rng"] = ck["torch_rng"]
        meta = {
            "step": int(ck["step"]),
            "seconds": float(ck["seconds"]),
            "best": float(ck.get("best", -1.0)),
            "np_rng": ck["np_rng"],
            "optimizer": opt_meta,
        }
        return tensors, meta
    raise CheckpointError(f"cannot resume: no training state in {out}")


def _flatten_optimizer_dict(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    class _Wrap:
        def state_dict(self) -> dict[str, Any]:
            return sd

    return _flatten_optimizer(_Wrap())  # type: ignore[arg-type]


def _eval_set(n: int, size: int, views: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out scenes as (images (V, S, S, 3) uint8, c2w (V, 4, 4)), V = 2 + k mod (views - 1)."""
    out = []
    for k in range(n):
        s = render_sample(scene_seed(EVAL_SEED, k), views, aspect="square", long_side=size)
        v = max(2, min(views, 2 + k % (views - 1)))
        out.append((s.images[:v], s.cam_to_world[:v]))
    return out


def _evaluate(model: Fast3R, scenes: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    rows = [evaluate_arrays(model, im, c2w)[0] for im, c2w in scenes]
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


def _open_caches(spec: str, stages: list[Stage]) -> dict[int, SceneCache]:
    """The cache that each stage resolution reads (the smallest one whose size it divides)."""
    caches = sorted((SceneCache(p.strip()) for p in spec.split(",") if p.strip()), key=lambda c: c.size)
    if not caches:
        raise InputError("no scene cache given")
    out: dict[int, SceneCache] = {}
    for st in stages:
        if st.res % 16:
            raise InputError(f"stage resolution {st.res} must be a multiple of 16")
        fit = [c for c in caches if c.size % st.res == 0]
        if not fit:
            sizes = ", ".join(str(c.size) for c in caches)
            raise InputError(f"stage resolution {st.res} divides no cache size ({sizes})")
        out[st.res] = fit[0]
        if not 1 <= st.min_views <= st.max_views <= fit[0].views:
            raise InputError(
                f"views per sample {st.min_views}..{st.max_views} must lie in 1..{fit[0].views} (cache)"
            )
    return out


def _init_model(cfg: TrainConfig, caches: dict[int, SceneCache]) -> Fast3R:
    if cfg.init:
        from fast3r_core.weights import load_model

        return load_model(cfg.init, device="cpu")
    model = Fast3R(small_config(**cfg.model))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    if cfg.init_mimetic:
        from .init import mimetic_init

        log.info("mimetic attention initialisation of %d layers", mimetic_init(model, gen))
    if cfg.init_pca:
        from .init import pca_patch_embed_init

        cache = next(iter(caches.values()))
        n = min(len(cache), 200)
        imgs = np.asarray(cache.arrays["images"][:n, 0])
        pca_patch_embed_init(model.encoder.patch_embed.proj, imgs, np.random.default_rng(cfg.seed + 2))
    return model


def train(
    cfg: TrainConfig, resume: bool = False, on_log: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run (or resume) a training run; returns a summary dict (steps, seconds, last loss, best eval).

    Reproducible: with the same config and seed the same batches, image indices and initial weights
    are drawn (up to the non-determinism of multi-threaded CPU kernels). ``resume`` continues from
    ``out/state`` with its optimiser, EMA, schedule and RNG states.
    """
    import copy

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, cfg.threads))
    stages = [Stage.parse(s, (cfg.min_views, cfg.max_views)) for s in cfg.stages]
    if not stages or stages[0].start != 0.0:
        raise InputError("the first stage must start at 0")
    caches = _open_caches(cfg.cache, stages)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = _init_model(cfg, caches)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model: %.2f M parameters", n_params / 1e6)
    hook_widths = [model.config.encoder_args.embed_dim] + [model.config.decoder_args.embed_dim] * 3
    proj = (
        ProjectionHeads([hook_widths[i] for i in cfg.nce_layers], cfg.nce_dim) if cfg.nce_weight > 0 else None
    )
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "pos" in n]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if proj is not None:
        groups.append({"params": list(proj.parameters()), "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
    ema = copy.deepcopy(model).eval() if cfg.ema > 0 else None
    step, elapsed, best = 0, 0.0, -1.0
    if resume:
        tensors, meta = load_train_state(out)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        if ema is not None:
            ema_sd = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
            ema.load_state_dict(ema_sd if ema_sd else model.state_dict())
        if proj is not None:
            proj_sd = {k[5:]: v for k, v in tensors.items() if k.startswith("proj.")}
            if proj_sd:
                proj.load_state_dict(proj_sd)
        opt_sd = _unflatten_optimizer(tensors, meta["optimizer"])
        if len(opt_sd["param_groups"]) == len(optimizer.param_groups):
            optimizer.load_state_dict(opt_sd)
        else:
            log.warning("optimiser state does not match this run's parameter groups: starting it afresh")
        rng.bit_generator.state = meta["np_rng"]
        torch.set_rng_state(tensors["torch_rng"])
        step, elapsed, best = int(meta["step"]), float(meta["seconds"]), float(meta.get("best", -1.0))
        log.info("resumed from %s at step %d", out, step)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    # the resumed rows hold the CSV's text, the new ones numbers (the CSV writer and plot take both)
    rows: list[dict[str, Any]] = _read_csv(out / "log.csv", step)
    eval_rows: list[dict[str, Any]] = _read_csv(out / "eval.csv", step)
    eval_sets: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def eval_model() -> Fast3R:
        return ema if ema is not None else model

    def checkpoint() -> None:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        if ema is not None:
            tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
        if proj is not None:
            tensors.update({f"proj.{k}": v for k, v in proj.state_dict().items()})
        opt_t, opt_meta = _flatten_optimizer(optimizer)
        tensors.update(opt_t)
        tensors["torch_rng"] = torch.get_rng_state()
        meta = {
            "step": step,
            "seconds": elapsed,
            "best": best,
            "np_rng": rng.bit_generator.state,
            "optimizer": opt_meta,
            "config": asdict(cfg),
            "model_config": model.config.to_dict(),
        }
        _write_state(out / STATE_DIR, tensors, meta)
        _write_csv(out / "log.csv", LOG_FIELDS, rows)
        _write_csv(out / "eval.csv", ("step", "seconds", "res", *METRIC_KEYS), eval_rows)
        plot_curves(rows, eval_rows, out / "loss.png")
        export_model(eval_model(), out / "last", fp16=False)

    t_start = time.perf_counter() - elapsed
    model.train()
    while step < cfg.steps:
        st = cfg.stage(step)
        cache = caches[st.res]
        views = int(rng.integers(st.min_views, st.max_views + 1))
        bsz = max(1, round(st.images / views))
        batch = cache.batch(rng, bsz, views, st.res, max_angle=st.max_angle, room_share=st.room_share)
        ids = _image_ids(rng, bsz, views)
        for g in optimizer.param_groups:
            g["lr"] = lr_at(cfg, step)
        nce = None
        if proj is not None and batch.depth is not None and batch.K is not None and batch.c2w is not None:
            matches = patch_correspondences(batch.depth, batch.K, batch.c2w, model.patch_size)
            nce = (proj, matches, list(cfg.nce_layers), cfg.nce_weight, cfg.nce_temperature)
        stats = train_step(
            model,
            optimizer,
            batch.images,
            batch.gts,
            ids,
            alpha=cfg.alpha,
            clip=cfg.clip,
            nce=nce,
            bf16=cfg.bf16,
        )
        if ema is not None:
            with torch.no_grad():
                d = min(cfg.ema, (1.0 + step) / (10.0 + step))  # short memory early on
                torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - d)
        step += 1
        elapsed = time.perf_counter() - t_start
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {
                "step": step,
                "seconds": round(elapsed, 1),
                "lr": lr_at(cfg, step - 1),
                "res": st.res,
                "views": views,
                "batch": bsz,
                "angle": st.max_angle,
                **stats,
            }
            rows.append(row)
            log.info(
                "step %d/%d  %.0fs  res %d  %dx%d  loss %.4f  gerr %.3f  lerr %.3f  nce %.3f acc %.2f"
                "  |g| %.2f",
                *(step, cfg.steps, elapsed, st.res, bsz, views, stats["loss"]),
                *(stats["global_err"], stats["local_err"], stats.get("nce", float("nan"))),
                *(stats.get("nce_acc", float("nan")), stats["grad_norm"]),
            )
            if on_log is not None:
                on_log(row)
        do_eval = cfg.eval_scenes > 0 and (step % cfg.eval_every == 0 or step == cfg.steps)
        if do_eval:
            if st.res not in eval_sets:
                eval_sets[st.res] = _eval_set(cfg.eval_scenes, st.res, cfg.eval_views)
            m = _evaluate(eval_model(), eval_sets[st.res])
            model.train()
            eval_rows.append({"step": step, "seconds": round(elapsed, 1), "res": st.res, **m})
            log.info(
                "eval at step %d (%d px): RRA@15 %.3f RTA@15 %.3f mAA@30 %.3f RRA@30 %.3f",
                step,
                st.res,
                m["RRA@15"],
                m["RTA@15"],
                m["mAA@30"],
                m["RRA@30"],
            )
            # only models at the evaluation resolution compete for "best"
            if st.res == 224 and m["mAA@30"] > best:
                best = m["mAA@30"]
                export_model(eval_model(), out / "best", fp16=False)
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
