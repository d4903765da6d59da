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
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def peak_rss_gib() -> float:
    """Peak resident set size of this process in GiB (Linux reports KiB, macOS bytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024**3 if sys.platform == "darwin" else 1024**2)


def write_json(name: str, data: object) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1))
    return path
