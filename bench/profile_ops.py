"""torch.profiler breakdown of one Fast3R forward pass (published ViT-L config, random weights, CPU).

For each case, runs ``predict`` once to warm up, then once under ``torch.profiler`` and prints, per
stage (encode / fuse / heads: record_function ranges of the engine) and overall, the top operators by
self CPU time and the share of time in operator classes: matmul, conv, attention (SDPA), copy,
RoPE-like elementwise (mul/add/flip/cat), norm, activation, other. Writes bench/results/profile.json.
Named profile_ops.py, not profile.py: with bench/ first on sys.path that name would shadow the
standard library module "profile", which cProfile (imported by torch._dynamo) needs.

Usage::

    python bench/profile_ops.py                          # 8x224 and 4x512, fp32, 2 threads
    python bench/profile_ops.py --cases 8x224 --precision int8 --top 15
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import matmul_gflops, write_json

# operator name fragments -> class; the first matching class wins (order matters)
CLASSES: list[tuple[str, tuple[str, ...]]] = [
    ("attention", ("scaled_dot_product", "flash_attention", "_efficient_attention", "softmax", "bmm")),
    ("matmul", ("addmm", "aten::mm", "matmul", "linear", "quantized::", "_int_mm", "int8")),
    ("conv", ("conv", "mkldnn_convolution", "upsample", "_conv_depthwise")),
    ("copy", ("copy_", "contiguous", "clone", "aten::cat", "aten::flip", "aten::stack", "to_copy", "empty")),
    ("rope/elementwise", ("aten::mul", "aten::add", "aten::sub", "addcmul", "aten::neg")),
    ("norm", ("layer_norm", "native_layer_norm")),
    ("activation", ("gelu", "relu", "exp", "expm1")),
]


STAGES = ("encode", "fuse", "heads")


def classify(name: str) -> str:
    low = name.lower()
    for cls, keys in CLASSES:
        if any(k.lower() in low for k in keys):
            return cls
    return "other"


def profile_case(case: str, threads: int, precision: str, top: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from fast3r_core.inference import InferenceOptions, predict
    from fast3r_core.model import Fast3R, Fast3RConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Fast3R(Fast3RConfig()).eval()
    n, size = case.split("x")
    h, w = (384, 512) if size == "512" else (224, 224)
    images = [torch.rand(3, h, w) * 2 - 1 for _ in range(int(n))]
    opts = InferenceOptions(precision=precision, num_threads=threads)
    predict(model, images, options=opts)  # warm-up: oneDNN primitives, RoPE tables, int8 cache
    probe = matmul_gflops()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        with record_function("forward"):
            t0 = time.perf_counter()
            predict(model, images, options=opts)
            wall = time.perf_counter() - t0
    # self CPU time per op (us), attributed to the engine's stage (record_function ranges in
    # fast3r_core.inference._run: "encode", "fuse", "heads") by walking up the event tree
    per_stage: dict[str, dict[str, list[float]]] = {}
    for ev in prof.events():
        if ev.self_cpu_time_total <= 0 or ev.name in STAGES:
            continue
        stage, parent = "other", ev.cpu_parent
        while parent is not None:
            if parent.name in STAGES:
                stage = parent.name
                break
            parent = parent.cpu_parent
        for key in (stage, "all"):
            slot = per_stage.setdefault(key, {}).setdefault(ev.name, [0.0, 0])
            slot[0] += ev.self_cpu_time_total
            slot[1] += 1
    report = {}
    for stage, ops in per_stage.items():
        rows = sorted(((k, v[0], int(v[1])) for k, v in ops.items()), key=lambda r: -r[1])
        total = sum(r[1] for r in rows)
        shares: dict[str, float] = {}
        for name, t, _c in rows:
            cls = classify(name)
            shares[cls] = shares.get(cls, 0.0) + t / total
        report[stage] = {
            "self_cpu_s": total / 1e6,
            "shares": dict(sorted(shares.items(), key=lambda kv: -kv[1])),
            "top_ops": [
                {"op": name, "self_s": t / 1e6, "share": t / total, "calls": c} for name, t, c in rows[:top]
            ],
        }
    return {
        "case": case,
        "precision": precision,
        "threads": threads,
        "wall_s": wall,
        "matmul_gflops": probe,
        "stages": report,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=["8x224", "4x512"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--out", default="profile")
    ap.add_argument("--per-stage-ops", action="store_true", help="also list the top ops of each stage")
    args = ap.parse_args()
    results = []
    for case in args.cases:
        r = profile_case(case, args.threads, args.precision, args.top)
        results.append(r)
        print(
            f"\n== {case} {args.precision}: wall {r['wall_s']:.1f} s, probe {r['matmul_gflops']:.0f} GFLOP/s"
        )
        for stage in ("all", *STAGES):
            st = r["stages"].get(stage)
            if st is None:
                continue
            print(
                f"-- {stage}: self-CPU {st['self_cpu_s']:.1f} s; "
                + ", ".join(f"{k} {v * 100:.1f} %" for k, v in st["shares"].items())
            )
            if stage == "all" or args.per_stage_ops:
                print(f"   {'op':<46} {'self s':>8} {'share':>7} {'calls':>7}")
                for op in st["top_ops"]:
                    name, share = op["op"][:46], op["share"] * 100
                    print(f"   {name:<46} {op['self_s']:8.2f} {share:6.1f}% {op['calls']:7d}")
    print("wrote", write_json(args.out, results))


if __name__ == "__main__":
    main()
