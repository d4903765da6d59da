"""Peak memory of the outputs of a large run: the result, its confidence ordering and every export.

A stand-in for the model produces the per-view pointmaps (random finite points, confidences > 1,
colours) of N square 224 px views, exactly the arrays ``pipeline.reconstruct`` hands to
:class:`~fast3r_core.result.Reconstruction`; then the CLI's export step writes every format
(nerfstudio, ply, glb, cameras, colmap, project) into a folder, as ``fast3r reconstruct`` does. The
network itself is not run (its memory is the inference plan's business, see bench/inference.py);
what is measured here is everything that comes after it.

Each case runs in a fresh interpreter; a thread samples the resident set size every 10 ms and keeps
the peak of each stage. Also printed: :func:`fast3r_core.output_memory.estimate_output_memory` for the
same run, i.e. what the pre-run check counts.

Run: ``python bench/outputs.py [--views 500 2000] [--size 224]`` (writes bench/results/outputs.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GB = 1e9


class _Sampler:
    """Peak RSS per stage label, sampled by a background thread."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.stage = "start"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(0.01)

    def sample(self) -> None:
        rss = self._proc.memory_info().rss
        if rss > self.peaks.get(self.stage, 0):
            self.peaks[self.stage] = rss

    def set(self, stage: str) -> None:
        self.sample()
        self.stage = stage
        self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def _case(n_views: int, size: int, out_root: Path) -> dict[str, Any]:
    import numpy as np

    from fast3r_core.cli.commands_reconstruct import export_outputs
    from fast3r_core.cli.output_folder import DEFAULT_CONF_PERCENTILE, WRITE_ORDER, top_percent_of
    from fast3r_core.output_memory import estimate_output_memory
    from tests.core.recon_factory import stand_in_reconstruction

    sampler = _Sampler()
    sampler.set("model outputs (stand-in)")
    h = w = size
    rng = np.random.default_rng(0)
    preds = []
    for _ in range(n_views):
        base = rng.standard_normal((h, w, 3), dtype=np.float32)
        preds.append(
            {
                "pts3d": base,
                "conf": 1.0 + rng.random((h, w), dtype=np.float32) * 10,
                "pts3d_local": base + np.float32(0.01),
                "conf_local": 1.0 + rng.random((h, w), dtype=np.float32) * 10,
                "colors": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            }
        )
    sampler.set("result")
    maps = ("pts3d", "conf", "pts3d_local", "conf_local", "colors")
    rec = stand_in_reconstruction({key: [p[key] for p in preds] for key in maps})
    del preds
    formats = list(WRITE_ORDER)
    top = top_percent_of(DEFAULT_CONF_PERCENTILE)
    est = estimate_output_memory([(h, w)] * n_views, formats, top_percent=top)
    times: dict[str, float] = {}
    folder = out_root / "out"
    folder.mkdir()
    sampler.set("confidence ordering")
    _ = rec.global_points
    for fmt in formats:
        sampler.set(f"export {fmt}")
        t = time.perf_counter()
        export_outputs(rec, folder, [fmt], top, lambda ev: None)
        times[fmt] = time.perf_counter() - t
    sampler.stop()
    import resource

    return {
        "views": n_views,
        "size": size,
        "points": rec.n_pixels,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB,
        "stage_peak_rss_gb": {k: v / GB for k, v in sampler.peaks.items()},
        "export_seconds": times,
        "estimate_gb": {"total": est.total / GB, **{k: v / GB for k, v in est.parts.items()}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)  # internal: run one case here
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "outputs.json")
    args = parser.parse_args()
    if args.case is not None:
        with tempfile.TemporaryDirectory(prefix="fast3r-bench-outputs-") as tmp:
            print(json.dumps(_case(args.case, args.size, Path(tmp))))
        return
    results = []
    for n in args.views:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        done = subprocess.run(
            [sys.executable, __file__, "--case", str(n), "--size", str(args.size)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(r)
        head = f"{n} views x {args.size} px = {r['points'] / 1e6:.1f} M points"
        print(f"{head}: peak RSS {r['peak_rss_gb']:.2f} GB")
        for stage, gb in r["stage_peak_rss_gb"].items():
            print(f"  {stage:<28} {gb:6.2f} GB")
        est = r["estimate_gb"]
        print("  estimate: " + ", ".join(f"{k} {v:.2f}" for k, v in est.items()) + " GB")
    args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
