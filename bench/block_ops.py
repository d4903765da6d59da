"""Per-operator CPU time of one transformer block of the published ViT-L config, against the matmul probe.

Builds one block (C = 1024, 16 heads, MLP 4C; random weights), runs each of its operators alone on
inputs of the given token count (best of ``--repeat``, process CPU time) and prints its time and, for
the ones with FLOPs (qkv, SDPA, proj, fc1, fc2, the whole block), its share of the matmul probe in GFLOP
per CPU second. This is how the gap between a stage's share and the GEMMs' share is located.

Usage::

    python bench/block_ops.py                          # fusion block of 32 x 224 views: 1 x 6272 tokens
    python bench/block_ops.py --batch 8 --grid 14 14   # encoder block (RoPE) of 8 views at 224 px
    python bench/block_ops.py --tokens 3072            # fusion block of 4 x 512x384 views

Writes bench/results/block_ops.json (one entry per invocation, keyed by the shape).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import RESULTS, matmul_probe


def cpu_time(fn: Callable[[], object], repeat: int) -> float:
    """Best process-CPU seconds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        c = time.process_time()
        fn()
        best = min(best, time.process_time() - c)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=6272, help="tokens per sample (fusion block, no RoPE)")
    ap.add_argument("--grid", type=int, nargs=2, metavar=("H", "W"), help="token grid: encoder block, RoPE")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fast3r_core.allocator import tune_allocator
    from fast3r_core.model.layers import Block, RoPE2D

    tune_allocator()  # as a CPU forward pass does (FAST3R_MALLOC_TUNING=0: off)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    C, heads = 1024, 16
    rope = RoPE2D(100.0) if args.grid else None
    grid = tuple(args.grid) if args.grid else None
    T = args.grid[0] * args.grid[1] if args.grid else args.tokens
    B, M = args.batch, args.batch * T
    blk = Block(C, heads, rope=rope).eval()
    a, mlp = blk.attn, blk.mlp
    x = torch.randn(B, T, C)
    with torch.inference_mode():
        h = blk.norm1(x)
        qkv = a.qkv(h).view(B, T, 3, heads, C // heads)
        if rope is not None:
            q, k = (t.transpose(1, 2) for t in rope(qkv[:, :, :2], *grid).unbind(2))
        else:
            q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)
        v = qkv[:, :, 2].transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, C)
        hid = mlp.fc1(h)
        ops: dict[str, tuple[Callable[[], object], float]] = {
            "layernorm": (lambda: blk.norm1(x), 0.0),
            "qkv": (lambda: a.qkv(h), 2 * M * C * 3 * C),
            "sdpa": (lambda: F.scaled_dot_product_attention(q, k, v), 4 * B * T * T * C),
            "proj": (lambda: a.proj(o), 2 * M * C * C),
            "fc1": (lambda: mlp.fc1(h), 2 * M * C * 4 * C),
            "gelu": (lambda: F.gelu(hid), 0.0),
            "fc2": (lambda: mlp.fc2(hid), 2 * M * 4 * C * C),
            "block": (lambda: blk(x, grid=grid), 24 * M * C * C + 4 * B * T * T * C),
        }
        if rope is not None:
            ops["rope"] = (lambda: rope(qkv[:, :, :2], *grid), 0.0)
        probe = matmul_probe()["gflop_per_cpu_s"]
        rows = {}
        for name, (fn, flop) in ops.items():
            fn()  # warm-up
            t = cpu_time(fn, args.repeat)
            share = flop / t / 1e9 / probe if flop else None
            rows[name] = {"cpu_s": t, "gflop": flop / 1e9, "share_of_probe": share}
            tail = f"  {share * 100:5.1f} % of the probe" if share else ""
            print(f"{name:>10} {t * 1e3:9.1f} ms CPU{tail}")
        probe_after = matmul_probe()["gflop_per_cpu_s"]
    print(f"probe {probe:.1f} GFLOP per CPU s before, {probe_after:.1f} after")
    key = f"{B}x{T}" + ("_rope" if rope is not None else "")
    path = RESULTS / "block_ops.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    probes = [probe, probe_after]
    data[key] = {"batch": B, "tokens": T, "rope": rope is not None, "probe": probes, "ops": rows}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
