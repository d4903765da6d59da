"""Benchmark of the exporters and the project file on a synthetic ~5-million-point reconstruction.

Measures: building the confidence-ordered point set, PLY binary export (MB/s; target >= 200), COLMAP
binary export of ~1 million points (s; target < 3), project save/load (uncompressed and compressed),
and a 4096x4096 fp32 matmul (GFLOP/s) because this host's speed varies from run to run.

Run: ``python bench/exports.py`` (writes bench/results/exports.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fast3r_core.export import PointSelection, export_colmap, export_ply  # noqa: E402
from fast3r_core.project_file import load_project, save_project  # noqa: E402
from tests.core.recon_factory import make_synthetic_reconstruction  # noqa: E402


def _times(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def matmul_gflops(repeat: int = 3) -> float:
    """Best fp32 GFLOP/s of a 4096x4096 matmul with torch (CPU)."""
    import torch

    a = torch.randn(4096, 4096)
    b = torch.randn(4096, 4096)
    a @ b  # warm-up
    best = min(_times(lambda: a @ b, repeat))
    return 2 * 4096**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, default=19, help="512x512 views (19 -> 4.98 M points)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "exports.json")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "host": {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
    }
    results["matmul_4096_fp32_gflops"] = round(matmul_gflops(), 1)
    print(f"matmul 4096 fp32: {results['matmul_4096_fp32_gflops']} GFLOP/s")

    rec = make_synthetic_reconstruction(original_sizes=[(1024, 1024)] * args.views, long_side=512, seed=0)
    n = rec.n_pixels
    results["n_points"] = n
    t = time.perf_counter()
    points = rec.global_points
    results["point_set_build_s"] = round(time.perf_counter() - t, 3)
    print(f"point set of {n:,} points built in {results['point_set_build_s']} s")
    t = time.perf_counter()
    for p in np.linspace(1, 100, 200):
        points.count_top_percent(float(p))
        points.count_above(float(1 + p))
    results["threshold_query_us"] = round((time.perf_counter() - t) / 400 * 1e6, 2)

    with tempfile.TemporaryDirectory(prefix="fast3r-bench-") as tmp:
        tmpdir = Path(tmp)
        results["tmp_dir"] = str(tmpdir)

        ply = tmpdir / "all.ply"
        ply_times = _times(lambda: export_ply(rec, ply), args.repeat)
        size_mb = ply.stat().st_size / 1e6
        results["ply_binary"] = {
            "points": n,
            "mb": round(size_mb, 1),
            "seconds_median": round(statistics.median(ply_times), 3),
            "mb_per_s_median": round(size_mb / statistics.median(ply_times), 1),
            "mb_per_s_best": round(size_mb / min(ply_times), 1),
        }
        print(f"PLY binary: {results['ply_binary']}")

        top = 100.0 * 1_000_000 / n
        reports = []
        top_sel = PointSelection(top_percent=top)
        colmap_times = _times(
            lambda: reports.append(export_colmap(rec, tmpdir / "colmap", top_sel, copy_images=False)),
            args.repeat,
        )
        results["colmap_binary"] = {
            "points": reports[-1].n_points,
            "dropped": reports[-1].dropped,
            "mean_reproj_px": reports[-1].mean_reproj_px,
            "seconds_median": round(statistics.median(colmap_times), 3),
            "seconds_best": round(min(colmap_times), 3),
        }
        print(f"COLMAP binary: {results['colmap_binary']}")

        proj = tmpdir / "p.f3r"
        save_t = _times(lambda: save_project(rec, proj), 1)[0]
        proj_mb = proj.stat().st_size / 1e6
        load_t = _times(lambda: load_project(proj), 1)[0]
        results["project_uncompressed"] = {
            "mb": round(proj_mb, 1),
            "save_s": round(save_t, 3),
            "load_s": round(load_t, 3),
        }
        print(f"project (stored): {results['project_uncompressed']}")

        # compression on 4 views only: it is slow
        small = make_synthetic_reconstruction(original_sizes=[(1024, 1024)] * 4, long_side=512, seed=0)
        stored, deflated = tmpdir / "s.f3r", tmpdir / "d.f3r"
        s_save = _times(lambda: save_project(small, stored), 1)[0]
        d_save = _times(lambda: save_project(small, deflated, compress=True), 1)[0]
        d_load = _times(lambda: load_project(deflated), 1)[0]
        s_load = _times(lambda: load_project(stored), 1)[0]
        results["project_compression_4_views"] = {
            "stored_mb": round(stored.stat().st_size / 1e6, 2),
            "deflated_mb": round(deflated.stat().st_size / 1e6, 2),
            "stored_save_s": round(s_save, 3),
            "deflated_save_s": round(d_save, 3),
            "stored_load_s": round(s_load, 3),
            "deflated_load_s": round(d_load, 3),
        }
        print(f"project compression (4 views): {results['project_compression_4_views']}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
