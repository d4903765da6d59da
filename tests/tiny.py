"""Small, fast test inputs shared by tests/app, tests/gl and tests/core/test_cli.py: a tiny model and images.

The model is the parity ``model_small`` config with narrow DPT heads and 4 decoder blocks: a
reconstruction of a few 224-px views takes about a second on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["PARITY_CONFIG", "TINY_TRAIN_MODEL", "make_tiny_model", "quick_train_settings", "write_views"]

REPO = Path(__file__).resolve().parents[1]
PARITY_CONFIG = REPO / "tests" / "data" / "parity" / "model_small" / "config.json"

#: ``small_config(**TINY_TRAIN_MODEL)``: the smallest model the training tests step (a few ms a step).
TINY_TRAIN_MODEL = {
    "width": 32,
    "heads": 1,
    "enc_depth": 1,
    "dec_depth": 4,
    "dpt_layer_dims": (8, 8, 16, 16),
    "dpt_feature_dim": 8,
    "dpt_last_dim": 8,
}


def quick_train_settings(cache_folder: str | Path) -> dict[str, object]:
    """``TrainConfig`` keywords of a run of a few steps of the tiny model (a checkpoint every 2 steps,
    a log row every step, no evaluation), to be completed with ``out``, ``steps`` and ``stages``."""
    return {
        "cache": str(cache_folder),
        "warmup": 2,
        "log_every": 1,
        "ckpt_every": 2,
        "eval_every": 1000,
        "eval_scenes": 0,
        "threads": 1,
        "model": TINY_TRAIN_MODEL,
        "seed": 5,
    }


def make_tiny_model(root: Path) -> Path:
    """Save a small random-weight Fast3R (config.json + model.safetensors) in ``root/tiny``."""
    import torch

    from fast3r_core.model import Fast3R, Fast3RConfig
    from fast3r_core.weights import save_model

    root.mkdir(parents=True, exist_ok=True)
    cfg = json.loads(PARITY_CONFIG.read_text(encoding="utf-8"))
    cfg["head_args"].update(dpt_layer_dims=[16, 32, 64, 128], dpt_feature_dim=32, dpt_last_dim=16)
    cfg["decoder_args"]["depth"] = 4
    (root / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    torch.manual_seed(0)
    model = Fast3R(Fast3RConfig.from_json(root / "config.json"))
    return save_model(model, root / "tiny")


def write_views(folder: Path, n: int = 4, size: tuple[int, int] = (128, 96)) -> list[Path]:
    """``n`` PNGs cut from one textured picture with a horizontal shift (a camera panning)."""
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(0)
    big_w = w + 12 * n
    yy, xx = np.mgrid[0:h, 0:big_w]
    base = np.stack([xx * 255 // big_w, yy * 255 // h, (xx + yy) % 64 * 4], axis=-1)
    base = np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)
    paths = []
    for i in range(n):
        p = folder / f"view_{i:02d}.png"
        Image.fromarray(np.ascontiguousarray(base[:, 12 * i : 12 * i + w])).save(p)
        paths.append(p)
    return paths
