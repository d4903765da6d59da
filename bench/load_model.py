"""Peak memory and time of loading a ViT-L sized checkpoint (``fast3r_core.load_model``, CPU, fp32).

Writes the published ViT-L 512 config and a ``model.safetensors`` of weights by rule (the rule of
tests/data/parity/README.md, seed 0, over the 712 keys of tests/data/fast3r-vitl512-keys.txt: 2.59 GB)
into a temporary folder, streaming one tensor at a time. Then each repeat loads it in a fresh process
and reports, from /proc/self/status: the resident set before the load (interpreter + torch + our
modules, after a meta-device build that makes torch import its lazy parts), the peak resident set
of the process (VmHWM: anonymous memory and mapped file pages alike) and the peak minus that
baseline, each against the checkpoint's size. The loaded model is checked
against the file (a few tensors compared bit for bit).

    python bench/load_model.py [--repeat 2] [--dir FOLDER] [--out load_model]

``--dir`` keeps the checkpoint in FOLDER (written once, reused by later runs) instead of a temp dir.
Results go to bench/results/<out>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import write_json

REPO = Path(__file__).resolve().parents[1]
KEYS = REPO / "tests" / "data" / "fast3r-vitl512-keys.txt"
GAIN = 0.8


def _keys() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the published checkpoint (aliases left out: the file does not hold them)."""
    out = {}
    for line in KEYS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or "alias-of" in line:
            continue
        name, rest = line.split(" ", 1)
        out[name] = tuple(int(x) for x in rest.split(")")[0].strip("(").split(",") if x.strip())
    return out


def _by_rule(key: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(zlib.crc32(key.encode()) + seed).standard_normal(shape)
    if key.endswith("weight") and len(shape) >= 2:
        x *= GAIN / math.sqrt(math.prod(shape[1:]))
    elif key.endswith("weight"):
        x = 1 + 0.1 * x
    else:
        x *= 0.02
    return x.astype(np.float32)


def write_checkpoint(folder: Path) -> Path:
    """config.json + model.safetensors (float32, little-endian), written tensor by tensor."""
    from fast3r_core.model import Fast3RConfig

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.safetensors"
    if weights.is_file() and (folder / "config.json").is_file():
        return weights
    Fast3RConfig().to_json(folder / "config.json")
    keys = _keys()
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for k, shape in keys.items():
        n = 4 * math.prod(shape)
        header[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = weights.with_suffix(".tmp")
    with tmp.open("wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for k, shape in keys.items():
            f.write(_by_rule(k, shape).astype("<f4").tobytes())
    tmp.replace(weights)
    return weights


_CHILD = r"""
import json, sys, time
from pathlib import Path

def status():
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) * 1024
    return out

import torch
import fast3r_core
from fast3r_core.model import Fast3R, Fast3RConfig
torch.set_num_threads(1)
imports = status()
# building modules makes torch import its lazy parts (~80 MB, once per process, whatever the model):
# a meta-device build costs no weight memory, so the baseline is "a process ready to build a model"
with torch.device("meta"):
    Fast3R(Fast3RConfig())
before = status()
t0 = time.perf_counter()
model = fast3r_core.load_model(sys.argv[1], device="cpu")
seconds = time.perf_counter() - t0
after = status()
from safetensors import safe_open
with safe_open(str(Path(sys.argv[1]) / "model.safetensors"), "pt") as f:
    sd = model.state_dict()
    same = all(
        torch.equal(sd[k], f.get_tensor(k))
        for k in ("encoder.patch_embed.proj.weight", "decoder.dec_blocks.23.mlp.fc2.weight",
                  "downstream_head_local.dpt.head.4.bias", "downstream_head.dpt.scratch.layer4_rn.weight")
    )
print(json.dumps({"imports": imports, "before": before, "after": after, "seconds": seconds, "same": same,
                  "params": sum(p.numel() for p in model.parameters())}))
"""


def measure(folder: Path) -> dict[str, float]:
    env_path = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path, "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--out", default="load_model")
    args = ap.parse_args()
    tmp = None
    folder = args.dir
    if folder is None:
        tmp = tempfile.mkdtemp(prefix="fast3r-load-bench-")
        folder = Path(tmp)
    try:
        weights = write_checkpoint(folder)
        size = weights.stat().st_size
        gib = 1024**3
        print(f"checkpoint {weights}: {size / 1e9:.3f} GB ({size / gib:.3f} GiB)")
        runs = []
        for i in range(args.repeat):
            r = measure(folder)
            base, peak = r["before"]["VmRSS"], r["after"]["VmHWM"]
            row = {
                "run": i,
                "seconds": round(r["seconds"], 2),
                "imports_only_gib": round(r["imports"]["VmRSS"] / gib, 3),
                "baseline_gib": round(base / gib, 3),
                "peak_gib": round(peak / gib, 3),
                "peak_minus_baseline_gib": round((peak - base) / gib, 3),
                "peak_over_checkpoint": round(peak / size, 3),
                "peak_minus_baseline_over_checkpoint": round((peak - base) / size, 3),
                "after_rss_anon_gib": round(r["after"]["RssAnon"] / gib, 3),
                "after_rss_file_gib": round(r["after"]["RssFile"] / gib, 3),
                "weights_equal_file": r["same"],
                "params": r["params"],
            }
            runs.append(row)
            print(
                f"run {i}: {row['seconds']:.1f} s, RSS before {row['baseline_gib']:.2f} GiB, peak "
                f"{row['peak_gib']:.2f} GiB = {row['peak_over_checkpoint']:.2f} x checkpoint; peak - "
                f"before {row['peak_minus_baseline_gib']:.2f} GiB = "
                f"{row['peak_minus_baseline_over_checkpoint']:.2f} x; weights equal file: {r['same']}"
            )
        path = write_json(args.out, {"checkpoint_bytes": size, "runs": runs})
        print(f"wrote {path}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
