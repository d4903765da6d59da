"""Forward time, achieved FLOP/s and peak RSS of the published ViT-L config (random weights) on the CPU.

Every case (views x size x precision) runs in a fresh process, so its peak RSS is its own. Cases are
interleaved (fp32 and int8 of one size back to back, and ``--repeat`` rounds over all cases), each run
prints a 4096^2 fp32 matmul probe taken just before it, in wall GFLOP/s and in GFLOP per process-CPU
second. Figures per run:

* wall and process CPU time (whole predict call and per stage: encode / fuse / heads), and the
  kernel's share of it (``sys s``: page faults of fresh allocations);
* ``mall``: whether ``fast3r_core.allocator`` tuned glibc's allocator (``--malloc-tuning both`` runs
  each case both ways for an A/B);
* achieved GFLOP/s (model FLOPs counted by FlopCounterMode, bench/_probe.py ``model_gflop``) and its
  share of the probe, on both clocks: ``%peak wall`` = (FLOPs / wall) / probe wall GFLOP/s, and
  ``%peak cpu`` = (FLOPs / CPU s) / probe GFLOP per CPU s;
* ``x pub``: our time over the published code's time at equal machine speed = the published share of
  peak (its quiet-period time against the quiet probe of 330 GFLOP/s) / our share of peak (CPU clock);
* peak RSS and the app's memory estimate (``fast3r_core.forward_memory``) for the chunks the engine picked.

The summary keeps, per case, the run with the best CPU-clock share. Usage::

    python bench/inference.py                                   # all cases, fp32 + int8, 1 round
    python bench/inference.py --cases 8x224 4x512 --precisions fp32 int8 --repeat 2
    python bench/inference.py --cases 4x512 --precisions fp32 --malloc-tuning both
    python bench/inference.py --scale 64 96 128                 # largest 224 px run within 16 GiB
    python bench/inference.py --accuracy /tmp/f3r/eval_scenes  # int8 vs fp32 accuracy (demo, parity)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import matmul_probe, model_gflop, peak_rss_gib, write_json

CASES = ["2x224", "8x224", "32x224", "2x512", "4x512", "8x512"]
QUIET_PROBE = 330.0  # GFLOP/s of the probe on this machine type in quiet periods (the issue)
# the published code on this machine type (fp32, 2 threads, quiet periods), from the issue: s, GiB
PUBLISHED = {
    "2x224": (2.8, 3.0),
    "8x224": (11.3, 3.7),
    "16x224": (25.2, 4.5),
    "32x224": (63.0, 5.4),
    "2x512": (17.1, 3.8),
    "4x512": (24.4, 4.6),
    "8x512": (121.0, 6.0),  # "a slow spell": its share of peak understates the published code
}


def shape_of(case: str) -> tuple[int, int, int]:
    n, size = case.split("x")
    return (int(n), 384, 512) if size == "512" else (int(n), 224, 224)


def run_case(case: str, precision: str, threads: int) -> dict:
    """Child process: build the model, warm up on 2 views, run predict once; stage times, RSS."""
    import torch

    from fast3r_core.forward_memory import estimate_peak_memory
    from fast3r_core.inference import InferenceOptions, _plan, predict
    from fast3r_core.model import Fast3R, Fast3RConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = Fast3RConfig()
    model = Fast3R(cfg).eval()
    n, h, w = shape_of(case)
    images = [torch.rand(3, h, w) * 2 - 1 for _ in range(n)]
    opts = InferenceOptions(precision=precision, num_threads=threads)
    rss_weights = peak_rss_gib()
    # warm-up (oneDNN primitive caches, the int8 copy) on 2 small views, so as not to raise the peak
    predict(model, [torch.rand(3, 224, 224) * 2 - 1 for _ in range(2)], options=opts)
    marks: dict[str, list[float]] = {}

    def progress(ev) -> None:
        now = (time.perf_counter(), time.process_time())
        slot = marks.setdefault(ev.stage, [*now, *now])
        slot[2:] = now

    probe = matmul_probe()
    s0 = os.times().system
    t0, c0 = time.perf_counter(), time.process_time()
    predict(model, images, options=opts, progress=progress)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sys_s = os.times().system - s0  # kernel time (page faults of fresh allocations): part of cpu
    enc, head = _plan(model, [(h, w)] * n, torch.device("cpu"), None, opts)
    est = estimate_peak_memory(
        cfg, [(h, w)] * n, encoder_chunk=enc, head_chunk=head, int8=precision == "int8"
    )
    # a stage runs from its first progress event to the first event of the next stage
    order = ["encode", "fuse", "heads"]
    stage = {}
    for i, s in enumerate(order):
        start = marks[s]
        end = marks[order[i + 1]] if i + 1 < len(order) else [t0 + wall, c0 + cpu]
        stage[s] = {"wall_s": end[0] - start[0], "cpu_s": end[1] - start[1]}
    return {
        "case": case,
        "precision": precision,
        "views": n,
        "height": h,
        "width": w,
        "threads": threads,
        "wall_s": wall,
        "cpu_s": cpu,
        "sys_s": sys_s,
        "malloc_tuning": os.environ.get("FAST3R_MALLOC_TUNING", "1") != "0",
        "stages": stage,
        "peak_rss_gib": peak_rss_gib(),
        "rss_after_build_gib": rss_weights,
        "estimate_gib": est.total / 1024**3,
        "chunks": [enc, head],
        "probe": probe,
        "probe_after": matmul_probe(),
    }


def child(case: str, precision: str, threads: int, malloc_tuning: bool = True) -> dict:
    env = {**os.environ, "FAST3R_MALLOC_TUNING": "1" if malloc_tuning else "0"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, "--precision", precision, "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if out.returncode:
        raise RuntimeError(f"{case} {precision} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def figures(r: dict, gflop: float) -> dict:
    """Achieved GFLOP/s, shares of the probe and the ratio to the published code."""
    probe_wall = max(r["probe"]["gflops_wall"], r["probe_after"]["gflops_wall"])
    probe_cpu = max(r["probe"]["gflop_per_cpu_s"], r["probe_after"]["gflop_per_cpu_s"])
    share_wall = gflop / r["wall_s"] / probe_wall
    share_cpu = gflop / r["cpu_s"] / probe_cpu
    pub = PUBLISHED.get(r["case"])
    pub_share = gflop / pub[0] / QUIET_PROBE if pub else float("nan")
    return {
        "gflop": gflop,
        "gflops_wall": gflop / r["wall_s"],
        "probe_wall": probe_wall,
        "probe_cpu": probe_cpu,
        "share_wall": share_wall,
        "share_cpu": share_cpu,
        "published_share": pub_share,
        "ratio_to_published_cpu": pub_share / share_cpu,
        "ratio_to_published_wall": pub_share / share_wall,
    }


def print_row(r: dict) -> None:
    f = r["figures"]
    st = r["stages"]
    stages = "/".join(f"{st[s]['cpu_s']:.1f}" for s in ("encode", "fuse", "heads"))
    pub = PUBLISHED.get(r["case"], (float("nan"), float("nan")))
    print(
        f"{r['case']:>7} {r['precision']:>5} {'on' if r.get('malloc_tuning', True) else 'off':>4} "
        f"{r['wall_s']:7.1f} {r['cpu_s']:7.1f} {r.get('sys_s', float('nan')):5.1f} {stages:>16} "
        f"{f['gflop']:7.0f} {f['probe_wall']:6.0f} {f['probe_cpu']:6.0f} {f['share_wall'] * 100:6.0f} "
        f"{f['share_cpu'] * 100:6.0f} {f['published_share'] * 100:5.0f} {f['ratio_to_published_cpu']:6.2f} "
        f"{r['peak_rss_gib']:6.2f} {r['estimate_gib']:6.2f} {pub[1]:5.1f}",
        flush=True,
    )


HEADER = (
    f"{'case':>7} {'prec':>5} {'mall':>4} {'wall s':>7} {'cpu s':>7} {'sys s':>5} {'cpu enc/fus/hd':>16} "
    f"{'GFLOP':>7} "
    f"{'probeW':>6} {'probeC':>6} {'%pk W':>6} {'%pk C':>6} {'%pub':>5} {'x pub':>6} "
    f"{'RSS':>6} {'est':>6} {'pubRSS':>5}"
)


def scale(counts: list[int], threads: int) -> list[dict]:
    """Estimate for many 224 px view counts; run the given counts for real (fp32) and compare."""
    from fast3r_core.forward_memory import estimate_peak_memory
    from fast3r_core.model import Fast3RConfig
    from fast3r_core.model.decoder import MAX_VIEWS

    cfg = Fast3RConfig()
    limit = 16 * 1024**3
    n = 2
    while (
        n < MAX_VIEWS
        and estimate_peak_memory(cfg, [(224, 224)] * (n + 1), encoder_chunk=20, head_chunk=3).total <= limit
    ):
        n += 1
    est_n = estimate_peak_memory(cfg, [(224, 224)] * n, encoder_chunk=20, head_chunk=3).total / 1024**3
    why = "the model's image-index table caps a pass" if n == MAX_VIEWS else "the 16 GiB limit"
    print(f"largest 224 px one-pass view count: {n} ({why}; estimate {est_n:.2f} GiB, CPU chunks 20/3)")
    gflop_n = model_gflop(n, 224, 224)["total"]
    rows = []
    for c in counts:
        r = child(f"{c}x224", "fp32", threads)
        gflop = model_gflop(c, 224, 224)["total"]
        r["figures"] = figures(r, gflop)
        err = r["estimate_gib"] / r["peak_rss_gib"] - 1
        print(
            f"{c} views: wall {r['wall_s']:.0f} s, cpu {r['cpu_s']:.0f} s, peak RSS {r['peak_rss_gib']:.2f} "
            f"GiB, estimate {r['estimate_gib']:.2f} GiB ({err * 100:+.0f} %), "
            f"probe {r['figures']['probe_wall']:.0f} GFLOP/s",
            flush=True,
        )
        rows.append(r)
    largest = {"largest_views_estimated_16gib": n, "estimate_gib": est_n, "limited_by": why, "gflop": gflop_n}
    if rows:  # project its time from the largest run's rate (fusion attention dominates both)
        r = rows[-1]
        rate_wall, rate_cpu = r["figures"]["gflop"] / r["wall_s"], r["figures"]["gflop"] / r["cpu_s"]
        wall_h, cpu_h = gflop_n / rate_wall / 3600, gflop_n / rate_cpu / 3600
        largest |= {"projected_wall_h": wall_h, "projected_cpu_h": cpu_h}
        print(
            f"{n} views: {gflop_n / 1e3:.0f} TFLOP, projected {wall_h:.1f} h wall ({cpu_h:.1f} CPU h) at "
            f"the {r['views']}-view rate ({rate_wall:.0f} GFLOP/s)"
        )
    return [largest, *rows]


def accuracy(scenes: str, limit: int | None) -> dict:
    """Cost of the int8 mode: demo-model pose metrics on held-out synthetic scenes (int8 vs fp32, same
    runs through the real pipeline at 224 px) and the relative error of int8 on the parity cases."""
    import tempfile

    import numpy as np
    import torch

    import fast3r_core
    from fast3r_core.inference import InferenceOptions, predict
    from fast3r_core.metrics import pose_metrics
    from fast3r_core.pipeline import ReconstructOptions, reconstruct
    from fast3r_core.train.evaluate import find_scene_folders, load_scene_folder, views_for_scene

    torch.set_num_threads(2)
    repo = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repo))
    from tests.core.weights_by_rule import write_model_folder

    out: dict = {"parity": {}, "demo": {}}
    for name in ("model_small", "model_small_mixed"):
        case = repo / "tests" / "data" / "parity" / name
        model = fast3r_core.load_model(write_model_folder(case, Path(tempfile.mkdtemp())), device="cpu")
        data = np.load(case / "case.npz")
        n = len([k for k in data.files if k.startswith("input")])
        images = [torch.from_numpy(data[f"input{i}"]) for i in range(n)]
        for prec in ("fp32", "int8", "bf16"):
            preds = predict(
                model, images, image_ids=data["image_ids"], options=InferenceOptions(precision=prec)
            )
            errs = {}
            for key in ("pts3d_in_other_view", "conf", "pts3d_local", "conf_local"):
                ref = [data[f"view{v}.{key}"] for v in range(n)]
                errs[key] = max(
                    float(np.linalg.norm(p[key] - r) / np.linalg.norm(r))
                    for p, r in zip(preds, ref, strict=True)
                )
            out["parity"][f"{name}/{prec}"] = errs
            print(
                f"parity {name} {prec}: max relative L2 error per view "
                + ", ".join(f"{k} {v:.2e}" for k, v in errs.items())
            )
    model = fast3r_core.load_model("demo", device="cpu")
    folders = find_scene_folders(scenes)[:limit]
    rows: dict[str, list[dict]] = {"fp32": [], "int8": []}
    pts_err = []
    for k, folder in enumerate(folders):
        paths, gt_c2w, _k = load_scene_folder(folder)
        n = views_for_scene(k, len(paths))
        recs = {}
        for prec in ("fp32", "int8"):
            rec = reconstruct(
                [str(p) for p in paths[:n]], model, ReconstructOptions(size=224, precision=prec)
            )
            rows[prec].append(pose_metrics(rec.cam_to_world, gt_c2w[:n]))
            recs[prec] = rec
        a, b = (np.concatenate([p.ravel() for p in recs[q].pts3d]) for q in ("int8", "fp32"))
        pts_err.append(float(np.linalg.norm(a - b) / np.linalg.norm(b)))
    for prec, rs in rows.items():
        out["demo"][prec] = {m: float(np.mean([r[m] for r in rs])) for m in rs[0]}
        print(
            f"demo {prec} ({len(rs)} scenes): "
            + ", ".join(f"{m} {v:.3f}" for m, v in out["demo"][prec].items())
        )
    out["demo"]["int8_vs_fp32_pointmap_rel_err_median"] = float(np.median(pts_err))
    out["demo"]["int8_vs_fp32_pointmap_rel_err_max"] = float(np.max(pts_err))
    print(
        f"demo int8 vs fp32 global pointmaps: relative L2 error median {np.median(pts_err):.2e}, "
        f"max {np.max(pts_err):.2e}"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=CASES)
    ap.add_argument("--precisions", nargs="*", default=["fp32", "int8"])
    ap.add_argument("--repeat", type=int, default=1, help="rounds over all cases (best kept)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scale", nargs="*", type=int, help="run these 224 px view counts (memory check)")
    ap.add_argument("--accuracy", metavar="SCENES", help="int8 vs fp32 accuracy on these eval scenes")
    ap.add_argument("--limit", type=int, help="with --accuracy: use the first N scenes")
    ap.add_argument(
        "--malloc-tuning",
        choices=["on", "off", "both"],
        default="on",
        help="glibc allocator tuning of fast3r_core.allocator in the runs ('both': A/B, off first)",
    )
    ap.add_argument("--out", default="inference")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.precision, args.threads)))
        return
    if args.accuracy:
        print("wrote", write_json(f"{args.out}_int8_accuracy", accuracy(args.accuracy, args.limit)))
        return
    if args.scale is not None:
        print("wrote", write_json(f"{args.out}_scale", scale(args.scale, args.threads)))
        return
    gflop = {c: model_gflop(*shape_of(c)) for c in args.cases}
    print(HEADER)
    runs = []
    for rnd in range(args.repeat):
        for k, case in enumerate(args.cases):
            precs = args.precisions if (rnd + k) % 2 == 0 else args.precisions[::-1]  # alternate order
            tunings = {"on": [True], "off": [False], "both": [False, True]}[args.malloc_tuning]
            for prec, tuned in ((p, t) for p in precs for t in tunings):
                r = child(case, prec, args.threads, tuned)
                r["round"] = rnd
                r["figures"] = figures(r, gflop[case]["total"])
                r["gflop_by_op"] = gflop[case]
                runs.append(r)
                print_row(r)
    best = {}
    for r in runs:
        key = (r["case"], r["precision"], r["malloc_tuning"])
        if key not in best or r["figures"]["share_cpu"] > best[key]["figures"]["share_cpu"]:
            best[key] = r
    print("\nbest run per case (by CPU-clock share of the probe):")
    print(HEADER)
    for r in best.values():
        print_row(r)
    print("wrote", write_json(args.out, {"runs": runs, "best": list(best.values())}))


if __name__ == "__main__":
    main()
