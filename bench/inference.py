"""Forward time and peak RSS of the published ViT-L config (random weights) on the CPU.

Each case runs in a fresh process so that its peak RSS is its own. Prints a table and writes
bench/results/inference.json. Usage:

    python bench/inference.py                     # all cases of the issue
    python bench/inference.py --cases 2x224 8x224 --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import matmul_gflops, peak_rss_gib, write_json

CASES = ["2x512", "4x512", "8x512", "2x224", "8x224", "16x224", "32x224"]
# the published code on this machine type (fp32, 2 threads), from the issue
PUBLISHED = {
    "2x224": (2.8, 3.0),
    "8x224": (11.3, 3.7),
    "16x224": (25.2, 4.5),
    "32x224": (63.0, 5.4),
    "2x512": (17.1, 3.8),
    "4x512": (24.4, 4.6),
    "8x512": (121.0, 6.0),
}


def shape_of(case: str) -> tuple[int, int, int]:
    n, size = case.split("x")
    return (int(n), 384, 512) if size == "512" else (int(n), 224, 224)


def run_case(case: str, threads: int) -> dict:
    """Child process: build the model, run predict once, report stage times and peak RSS."""
    import torch

    from fast3r_core.inference import InferenceOptions, predict
    from fast3r_core.memory import estimate_peak_memory
    from fast3r_core.model import Fast3R, Fast3RConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = Fast3RConfig()
    model = Fast3R(cfg).eval()
    n, h, w = shape_of(case)
    images = [torch.rand(3, h, w) * 2 - 1 for _ in range(n)]
    rss_weights = peak_rss_gib()
    marks: dict[str, float] = {}

    def progress(ev) -> None:
        marks.setdefault(f"{ev.stage}_start", time.perf_counter())
        if ev.done == ev.total:
            marks[f"{ev.stage}_end"] = time.perf_counter()

    gflops = matmul_gflops()
    t0, c0 = time.perf_counter(), time.process_time()
    predict(model, images, options=InferenceOptions(num_threads=threads), progress=progress)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    from fast3r_core.inference import _plan

    enc, head = _plan(model, [(h, w)] * n, torch.device("cpu"), None, InferenceOptions())
    est = estimate_peak_memory(cfg, [(h, w)] * n, encoder_chunk=enc, head_chunk=head)
    return {
        "case": case,
        "views": n,
        "height": h,
        "width": w,
        "threads": threads,
        "wall_s": wall,
        "cpu_s": cpu,
        "encoder_s": marks["encode_end"] - marks["encode_start"],
        "fusion_s": marks["fuse_end"] - marks["encode_end"],
        "heads_s": marks["heads_end"] - marks["fuse_end"],
        "peak_rss_gib": peak_rss_gib(),
        "rss_after_build_gib": rss_weights,
        "estimate_gib": est.total / 1024**3,
        "matmul_gflops": gflops,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=CASES)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.threads)))
        return
    rows = []
    hdr = (
        f"{'case':>7} {'wall s':>7} {'cpu s':>7} {'enc/fus/heads s':>18} {'RSS GiB':>8} {'est GiB':>8} "
        f"{'GFLOP/s':>8} {'published s / GiB':>18}"
    )
    print(hdr)
    for case in args.cases:
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--threads", str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        pub = PUBLISHED.get(case, (float("nan"), float("nan")))
        stages = f"{r['encoder_s']:.1f}/{r['fusion_s']:.1f}/{r['heads_s']:.1f}"
        print(
            f"{case:>7} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} {stages:>18} {r['peak_rss_gib']:8.2f} "
            f"{r['estimate_gib']:8.2f} {r['matmul_gflops']:8.0f} {pub[0]:>10.1f} / {pub[1]:.1f}",
            flush=True,
        )
    print("wrote", write_json("inference", rows))


if __name__ == "__main__":
    main()
