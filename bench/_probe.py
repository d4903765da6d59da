"""Shared bench helpers: a matmul throughput probe and peak-RSS reading (the host's speed swings)."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_gflops(n: int = 4096, reps: int = 3) -> float:
    """Best-of-``reps`` fp32 n x n matmul throughput in GFLOP/s with torch's current thread count."""
    import torch

    a = torch.randn(n, n)
    b = torch.randn(n, n)
    out = torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def matmul_probe(n: int = 4096, reps: int = 3) -> dict[str, float]:
    """The matmul probe in both clocks: best wall GFLOP/s and best GFLOP per process-CPU second.

    The CPU-second figure is the one to compare with a run's process CPU time: on a shared host the
    wall figure also drops when other jobs take our cores, the CPU figure mostly does not.
    """
    import torch

    a = torch.randn(n, n)
    b = torch.randn(n, n)
    out = torch.mm(a, b)  # written in place below: page faults of a fresh output are not matmul time
    wall = cpu = float("inf")
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        torch.mm(a, b, out=out)
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    flop = 2 * n**3
    return {"gflops_wall": flop / wall / 1e9, "gflop_per_cpu_s": flop / cpu / 1e9}


def model_gflop(views: int, height: int, width: int) -> dict[str, float]:
    """FLOPs of one forward pass of the published ViT-L config, counted by torch's FlopCounterMode.

    The model runs on the meta device (no memory, no compute), so the count is exact for the ops
    that torch counts: matmuls/linears (2*M*K*N), attention (4*T^2*C per layer, as bmm), convolutions
    (2 * output elements * kernel volume * input channels). Elementwise ops are not counted. The same
    count is used for every precision (FLOPs of the model, not of the implementation).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fast3r_core.model import Fast3R, Fast3RConfig

    with torch.device("meta"):
        model = Fast3R(Fast3RConfig()).eval()
    images = [torch.empty(1, 3, height, width, device="meta") for _ in range(views)]
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(images, torch.arange(views))
    per_op = {str(k).split(".")[-1]: v / 1e9 for k, v in counter.get_flop_counts()["Global"].items()}
    return {"total": counter.get_total_flops() / 1e9, **per_op}


def peak_rss_gib() -> float:
    """Peak resident set size of this process in GiB (Linux reports KiB, macOS bytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024**3 if sys.platform == "darwin" else 1024**2)


def write_json(name: str, data: object) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1))
    return path
