"""Benchmark of exact point picking (issue 18): one click among every shown point, at full density.

``app.viewer.point_picking.pick_point_index`` projects all N points (float32, as the viewer holds
them) with the viewer's canvas matrix and takes the point under the cursor. Measured for N = 0.5, 2
and 5 million points spread in a box in front of a perspective camera (clicks at random canvas
positions), on the contiguous x/y/z columns the viewer keeps per selection, plus the one-off cost of
building those columns (the first click after a selection change; with a view/crop mask they are
gathered with an index array). Target: a click under ~100 ms at 2 M points.

Run: ``python bench/point_picking.py [--sizes 500000 2000000 5000000] [--clicks 20]``; writes
bench/results/point_picking.json. No OpenGL needed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.viewer.point_picking import as_columns, pick_point_index  # noqa: E402
from bench._probe import matmul_gflops, write_json  # noqa: E402


def _matrix() -> np.ndarray:
    """A GL-like row-vector projection to a 1280x800 canvas: eye at z = -6 looking along +z."""
    f, cx, cy, eye = 900.0, 640.0, 400.0, 6.0
    M = np.zeros((4, 4))
    M[0, 0] = M[1, 1] = f
    M[2, 0], M[2, 1], M[2, 2], M[2, 3] = cx, cy, 1.0, 1.0
    M[3, 0], M[3, 1], M[3, 2], M[3, 3] = cx * eye, cy * eye, -0.1, eye
    return M


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500_000, 2_000_000, 5_000_000])
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    M = _matrix()
    rows = []
    for n in args.sizes:
        xyz = rng.uniform([-3, -2, -2], [3, 2, 4], size=(n, 3)).astype(np.float32)
        clicks = rng.uniform([200, 100], [1080, 700], size=(args.clicks, 2))
        t = time.perf_counter()
        cols = as_columns(xyz)  # once per selection in the viewer (the first click after a change)
        columns_s = time.perf_counter() - t
        pick_point_index(cols, M, clicks[0])  # warm-up
        times, hits = [], 0
        for c in clicks:
            t = time.perf_counter()
            i, _ = pick_point_index(cols, M, c)
            times.append(time.perf_counter() - t)
            hits += i >= 0
        idx = np.flatnonzero(rng.random(n) < 0.9)  # a view/crop mask keeping 90 %
        t = time.perf_counter()
        as_columns(xyz[idx])
        masked_columns_s = time.perf_counter() - t
        row = {
            "points": n,
            "click_ms_median": round(1000 * statistics.median(times), 1),
            "click_ms_max": round(1000 * max(times), 1),
            "columns_ms": round(1000 * columns_s, 1),
            "masked_columns_ms": round(1000 * masked_columns_s, 1),
            "hits": hits,
            "clicks": len(clicks),
        }
        print(row)
        rows.append(row)
    out = {
        "host": platform.platform(),
        "matmul_gflops": round(matmul_gflops(), 1),
        "results": rows,
    }
    print("wrote", write_json("point_picking", out))


if __name__ == "__main__":
    main()
