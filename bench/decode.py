"""Time and peak memory of preprocessing many camera photos (``fast3r_core.images.load_inputs``).

Writes ``--n`` JPEGs of 4000x3000 (12 MP, quality 92, every third one with EXIF orientation 6 as a
phone writes them) into a temporary folder, then loads the folder at 512 and 224 px in fresh processes:
serial (``max_workers=1``) and parallel (the default thread pool), all exact (full decode + one
resize, what the published pipeline does). For comparison, the earlier shortcut (JPEG draft mode for
every photo, i.e. ``FULL_DECODE_MAX_PIXELS = 0``) runs once per size in parallel. Each run reports
wall and process CPU seconds and the peak RSS over the process's RSS before the load (VmHWM - VmRSS,
/proc/self/status).

    python bench/decode.py [--n 100] [--out decode]

Results go to bench/results/<out>.json. The matmul probe is printed before and after (shared host).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import matmul_probe, write_json

REPO = Path(__file__).resolve().parents[1]


def write_photos(folder: Path, n: int) -> None:
    """``n`` distinct 12 MP JPEGs with camera-like detail (noise over smooth gradients)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = 3000, 4000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 255, yy / h * 255, 128 + 90 * np.sin(xx / 37) * np.cos(yy / 23)], -1)
    noise = rng.normal(0, 18, (h, w, 3)).astype(np.float32)
    for i in range(n):
        shift = (i * 97) % 400
        a = np.clip(np.roll(base, shift, axis=1) + np.roll(noise, i * 13, axis=0), 0, 255).astype(np.uint8)
        exif = Image.Exif()
        if i % 3 == 0:
            exif[0x0112] = 6
        Image.fromarray(a).save(folder / f"IMG_{i:04d}.jpg", quality=92, exif=exif)


_CHILD = r"""
import json, logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.ERROR)

def status():
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out

from fast3r_core import images
folder, size, workers, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if mode == "draft":
    images.FULL_DECODE_MAX_PIXELS = 0  # the earlier behaviour: every large JPEG in draft mode
before = status()
t, c = time.perf_counter(), time.process_time()
res = images.load_inputs(folder, size, max_workers=workers if workers > 0 else None)
wall, cpu = time.perf_counter() - t, time.process_time() - c
after = status()
print(json.dumps({"wall": wall, "cpu": cpu, "views": len(res.views), "before": before["VmRSS"],
                  "peak": after["VmHWM"], "shape": list(res.views[0].rgb.shape)}))
"""


def run(folder: Path, size: int, workers: int, mode: str) -> dict[str, float]:
    env = {"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), str(size), str(workers), mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _probe_text(p: dict[str, float]) -> str:
    return f"{p['gflops_wall']:.0f} GFLOP/s wall, {p['gflop_per_cpu_s']:.0f} GFLOP per CPU s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--out", default="decode")
    args = ap.parse_args()
    probe0 = matmul_probe()
    print("probe before:", _probe_text(probe0))
    tmp = Path(tempfile.mkdtemp(prefix="fast3r-decode-bench-"))
    try:
        t = time.perf_counter()
        write_photos(tmp, args.n)
        mb = sum(p.stat().st_size for p in tmp.iterdir()) / 1e6
        print(f"wrote {args.n} JPEGs of 4000x3000 ({mb:.0f} MB) in {time.perf_counter() - t:.0f} s")
        cpus = os.cpu_count() or 1
        rows = []
        plan = [(512, 1, "exact"), (512, 0, "exact"), (512, 0, "draft")]
        plan += [(224, 1, "exact"), (224, 0, "exact"), (224, 0, "draft")]
        for size, workers, mode in plan:
            r = run(tmp, size, workers, mode)
            row = {
                "size": size,
                "workers": workers if workers else min(8, cpus),
                "mode": mode,
                "photos": r["views"],
                "model_shape": r["shape"],
                "wall_s": round(r["wall"], 2),
                "cpu_s": round(r["cpu"], 2),
                "ms_per_photo_wall": round(1000 * r["wall"] / r["views"], 1),
                "peak_rss_gib": round(r["peak"] / 1024**3, 3),
                "peak_over_before_mib": round((r["peak"] - r["before"]) / 1024**2, 1),
            }
            rows.append(row)
            print(
                f"{size} px, {row['workers']} worker(s), {mode:5s}: {row['wall_s']:6.1f} s wall "
                f"({row['ms_per_photo_wall']:.0f} ms/photo), {row['cpu_s']:6.1f} s CPU, peak RSS "
                f"{row['peak_rss_gib']:.2f} GiB (+{row['peak_over_before_mib']:.0f} MiB over the start)"
            )
        probe1 = matmul_probe()
        print("probe after:", _probe_text(probe1))
        path = write_json(
            args.out, {"n": args.n, "cpus": cpus, "probe_before": probe0, "probe_after": probe1, "runs": rows}
        )
        print(f"wrote {path}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
