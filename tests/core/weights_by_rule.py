"""Weights by rule for the parity model cases (tests/data/parity/README.md, "Weights by rule").

Every tensor is rebuilt from its key name, its shape and a seed, so any implementation gets the same
weights without shipping them. Shared by the weights tests and the model parity tests.
"""

from __future__ import annotations

import math
import shutil
import zlib
from pathlib import Path

import numpy as np

__all__ = ["GAIN", "read_keys", "weights_by_rule", "write_model_folder"]

GAIN = 0.8


def read_keys(keys_txt_path: str | Path) -> dict[str, tuple[int, ...]]:
    """Parse keys.txt (one line per key: ``name dim0 dim1 ...``) into ``{name: shape}``."""
    out: dict[str, tuple[int, ...]] = {}
    for line in Path(keys_txt_path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts:
            out[parts[0]] = tuple(int(d) for d in parts[1:])
    return out


def weights_by_rule(keys_txt_path: str | Path, seed: int) -> dict[str, np.ndarray]:
    """The float32 tensors of every key in keys.txt, built by the README's rule with ``seed``."""
    out: dict[str, np.ndarray] = {}
    for key, shape in read_keys(keys_txt_path).items():
        x = np.random.default_rng(zlib.crc32(key.encode()) + seed).standard_normal(shape)
        if key.endswith("weight") and len(shape) >= 2:
            x = x * GAIN / math.sqrt(math.prod(shape[1:]))
        elif key.endswith("weight") and len(shape) == 1:
            x = 1 + 0.1 * x
        else:
            x = 0.02 * x
        out[key] = x.astype(np.float32)
    return out


def write_model_folder(case_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``config.json`` (copied byte for byte) + ``model.safetensors`` of a parity case.

    The seed is ``weight_seed`` of the case's case.npz (0 if absent). Returns ``out_dir``.
    """
    from safetensors.numpy import save_file

    case_dir, out_dir = Path(case_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = 0
    case = case_dir / "case.npz"
    if case.is_file():
        with np.load(case) as data:
            if "weight_seed" in data:
                seed = int(data["weight_seed"])
    shutil.copyfile(case_dir / "config.json", out_dir / "config.json")
    save_file(weights_by_rule(case_dir / "keys.txt", seed), str(out_dir / "model.safetensors"))
    return out_dir
