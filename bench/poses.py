"""Benchmark of fast3r_core.poses.estimate_poses on 8 synthetic views of 512x384.

Run:  python bench/poses.py [--repeats 5] [--views 8] [--baseline]

Pointmaps come from a known scene (smooth depth, 3-D noise ~0.3 % of depth, 5 % gross outliers with
low confidence), so the table also shows the accuracy against the ground truth. Times are process CPU
time (all threads; what the work costs) and wall time (what the user waits; it depends on the other
load on the machine). A 4096x4096 fp32 matmul probe (torch) is printed beside them because this host's
speed swings. Results go to bench/results/poses.json.

Reference (same machine, from the issue): the published code takes ~4.5 s for 8 views with a shared
focal and ~337 s with per-view focals ('individual').
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fast3r_core.geometry import se3_inverse
from fast3r_core.poses import estimate_poses_detailed

RESULTS = Path(__file__).resolve().parent / "results" / "poses.json"


def look_at_c2w(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Cam-to-world (OpenCV axes: y down, z forward) of a camera at ``centre`` looking at ``target``."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, -1.0, 0.0])
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    T[:3, 3] = centre
    return T


def synthetic_views(
    focals: np.ndarray,
    H: int = 384,
    W: int = 512,
    noise: float = 0.003,
    outliers: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global pointmaps (V,H,W,3) float32, confidences (V,H,W) float32, GT c2w (V,4,4) (world = cam 0)."""
    rng = np.random.default_rng(seed)
    V = len(focals)
    c2w = []
    for i in range(V):
        a = 2 * math.pi * i / V * 0.25
        centre = np.array([3 * math.sin(a), 0.3 * rng.standard_normal(), 3 - 3 * math.cos(a)])
        c2w.append(look_at_c2w(centre, np.array([0.0, 0.0, 3.0]) + 0.2 * rng.standard_normal(3)))
    gt = se3_inverse(c2w[0]) @ np.stack(c2w)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    pts, conf = [], []
    for i, f in enumerate(focals):
        depth = 3 + 0.5 * np.sin(u / 60 + i) * np.cos(v / 45) + 0.002 * (u - W / 2)
        cam = np.stack([(u - W / 2) / f * depth, (v - H / 2) / f * depth, depth], -1)
        cam += noise * depth[..., None] * rng.standard_normal(cam.shape)
        world = cam @ gt[i, :3, :3].T + gt[i, :3, 3]
        c = 1 + np.exp(rng.uniform(0, 3, (H, W)))
        bad = rng.random((H, W)) < outliers
        world[bad] += rng.normal(scale=1.0, size=(int(bad.sum()), 3))
        c[bad] = 1 + rng.uniform(0.01, 0.5, int(bad.sum()))
        pts.append(world.astype(np.float32))
        conf.append(c.astype(np.float32))
    return np.stack(pts), np.stack(conf), gt


def matmul_gflops() -> float | None:
    """fp32 4096x4096 matmul throughput (GFLOP/s) with torch, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    a = torch.randn(4096, 4096)
    b = torch.randn(4096, 4096)
    a @ b  # warm-up
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 4096**3 / best / 1e9


def timed(fn: Callable[[], object], repeats: int) -> tuple[object, list[float], list[float]]:
    out = fn()  # warm-up (caches, thread pool start-up)
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return out, cpu, wall


def max_rot_err_deg(c2w: np.ndarray, gt: np.ndarray) -> float:
    errs = []
    for a, b in zip(c2w, gt, strict=True):
        d = np.linalg.norm(a[:3, :3] - b[:3, :3])
        errs.append(math.degrees(2 * math.asin(min(1.0, d / (2 * math.sqrt(2))))))
    return max(errs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--baseline", action="store_true", help="also time RANSAC on all points (no subsample)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    gflops_before = matmul_gflops()
    S = 512
    shared_f = np.full(args.views, 0.85 * S)
    mixed_f = np.geomspace(0.6 * S, 1.4 * S, args.views)
    cases: list[tuple[str, np.ndarray, dict[str, object]]] = [
        ("shared focal (view 0, Weiszfeld)", shared_f, {}),
        ("per-view focal (scan + refine)", mixed_f, {"per_view_focal": True}),
    ]
    if args.baseline:
        cases.insert(1, ("shared focal, RANSAC on all points", shared_f, {"ransac_points": 10**9}))

    rows = []
    for name, focals, kwargs in cases:
        pts, conf, gt = synthetic_views(focals)

        def run(pts: np.ndarray = pts, conf: np.ndarray = conf, kwargs: dict[str, object] = kwargs) -> object:
            return estimate_poses_detailed(pts, conf, **kwargs)  # type: ignore[arg-type]

        est, cpu, wall = timed(run, args.repeats)
        focal_err = float(np.max(np.abs(est.focals / focals - 1)))  # type: ignore[attr-defined]
        rows.append(
            {
                "case": name,
                "views": args.views,
                "H": 384,
                "W": 512,
                "cpu_s_median": statistics.median(cpu),
                "cpu_s_min": min(cpu),
                "wall_s_median": statistics.median(wall),
                "wall_s_min": min(wall),
                "max_rot_err_deg": max_rot_err_deg(est.c2w, gt),  # type: ignore[attr-defined]
                "max_focal_rel_err": focal_err,
                "failed_views": est.failed_views,  # type: ignore[attr-defined]
            }
        )
    gflops_after = matmul_gflops()

    print(
        f"{'case':38s} {'cpu s (med/min)':>16s} {'wall s (med/min)':>17s} "
        f"{'rot err °':>10s} {'focal err':>10s}"
    )
    for r in rows:
        print(
            f"{r['case']:38s} {r['cpu_s_median']:7.3f}/{r['cpu_s_min']:<7.3f}  "
            f"{r['wall_s_median']:7.3f}/{r['wall_s_min']:<7.3f}  {r['max_rot_err_deg']:10.4f} "
            f"{r['max_focal_rel_err']:10.2e}"
        )
    for label, g in (("before", gflops_before), ("after", gflops_after)):
        print(f"matmul probe {label}: " + (f"{g:.1f} GFLOP/s (fp32 4096^2, torch)" if g else "torch missing"))
    print("published code, same machine (issue): 4.5 s shared focal, 337 s per-view focal")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "fast3r_core.poses.estimate_poses_detailed, synthetic 512x384 views",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "matmul_gflops_before": gflops_before,
        "matmul_gflops_after": gflops_after,
        "repeats": args.repeats,
        "results": rows,
    }
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
