"""Chunked reconstruction: pose accuracy and peak memory of one pass vs passes that share anchor views.

Three parts, each configuration in a fresh process (its peak RSS is its own):

1. ``accuracy``: the bundled demo model on rendered scenes with known poses (fast3r_core.train.synthetic,
   224 px, 48 views each): the real pipeline in one pass vs 16 views per pass (4 anchors, chosen by
   coverage or evenly). Pose metrics (RRA@15, RTA@15, mAA@30 over all view pairs) and peak RSS.
2. ``memory``: the demo model at 512x384 on 48 views: one pass vs 16 views per pass vs the automatic
   plan under a simulated small device (``available_memory`` reports a fixed number of bytes). Peak RSS
   above the RSS after loading the model and the images, against the plan's estimate and budget.
3. ``oracle``: no model. Each "pass" returns the ground-truth pointmaps of its views in a frame of its
   own (random scale, 1-3 degree rotation, small shift), with a rigid error per view and pass (0.5 deg,
   0.5 % of the depth), pixel noise (1 % of the depth) and 10 % gross outliers (depth -40 % to +60 %)
   at low confidence, like a
   good model would. One pass vs 16 per pass through the same merging code (predict_passes) and the same
   pose estimation: whatever chunking loses shows up here, independent of the demo model's weakness.

Usage::

    python bench/chunked.py                  # all parts, writes bench/results/chunked.json
    python bench/chunked.py --parts oracle   # one part
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import RESULTS as _RESULTS
from _probe import peak_rss_gib, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_VIEWS = 48
ACCURACY_SCENES = [("objects", 1), ("room", 2), ("objects", 3)]
ORACLE_SCENES = 6
#: oracle configurations: (max views per pass, anchors)
ORACLE_CONFIGS = {
    "single pass": (0, 1),
    "16 per pass, 4 anchors": (16, 4),
    "16 per pass, 8 anchors": (16, 8),
}
SCENE_SEED = 2_000_003  # a stream the training and the evaluation sets do not use
ACCURACY_CONFIGS = {
    "single pass": {"max_views_per_pass": 0},
    "16 per pass, 4 anchors (coverage)": {"max_views_per_pass": 16, "anchors": 4},
    "16 per pass, 4 anchors (even)": {"max_views_per_pass": 16, "anchors": 4, "anchor_method": "even"},
}
SIMULATED_FREE = int(1.1 * 1024**3)  # the "small device" of the memory part: 1.1 GiB free
MEMORY_CONFIGS = {
    "single pass": {"max_views_per_pass": 0},
    "16 per pass, 4 anchors": {"max_views_per_pass": 16, "anchors": 4},
    "automatic, 1.1 GiB free": {"simulate_free": SIMULATED_FREE},
}


def rss_now_gib() -> float:
    """Current resident set size in GiB (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 1024**3


def render_scenes(root: Path, size: int, aspect: str, scenes: list[tuple[str, int]]) -> list[Path]:
    from fast3r_core.train.synthetic import render_sample, save_scene_folder

    out = []
    for kind, k in scenes:
        folder = root / f"{kind}_{k}_{size}"
        if not (folder / "gt.npz").is_file():
            sample = render_sample(SCENE_SEED + k, N_VIEWS, aspect=aspect, long_side=size, kind=kind)
            save_scene_folder(sample, folder, with_depth=False)
        out.append(folder)
    return out


# ------------------------------------------------------------------------------------------------
# children: one configuration each
# ------------------------------------------------------------------------------------------------
def child_accuracy(config: str, folders: list[str], threads: int) -> dict:
    import torch

    from fast3r_core import load_model
    from fast3r_core.metrics import pose_metrics
    from fast3r_core.pipeline import ReconstructOptions, reconstruct
    from fast3r_core.train.synthetic import load_scene_folder

    torch.set_num_threads(threads)
    model = load_model("demo", "cpu")
    rows = []
    for folder in folders:
        paths, gt, _ = load_scene_folder(folder)
        opts = ReconstructOptions(size=224, precision="fp32", **ACCURACY_CONFIGS[config])
        t = time.perf_counter()
        rec = reconstruct([str(p) for p in paths], model, opts)
        m = pose_metrics(rec.cam_to_world, gt)
        run = rec.runs[0]
        rows.append(
            {
                "scene": Path(folder).name,
                "seconds": time.perf_counter() - t,
                "passes": run.passes,
                "views_per_pass": run.views_per_pass,
                "anchors": run.anchors,
                "alignment": run.alignment,
                **{k: m[k] for k in ("RRA@5", "RRA@15", "RTA@15", "mAA@30")},
            }
        )
    return {"config": config, "scenes": rows, "peak_rss_gib": peak_rss_gib()}


def child_memory(config: str, folder: str, threads: int) -> dict:
    import torch

    import fast3r_core.forward_memory
    from fast3r_core import load_model
    from fast3r_core.images import load_inputs
    from fast3r_core.metrics import pose_metrics
    from fast3r_core.pipeline import ReconstructOptions, reconstruct
    from fast3r_core.train.synthetic import load_scene_folder

    torch.set_num_threads(threads)
    kwargs = dict(MEMORY_CONFIGS[config])
    simulated = kwargs.pop("simulate_free", None)
    model = load_model("demo", "cpu")
    paths, gt, _ = load_scene_folder(folder)
    views = load_inputs([str(p) for p in paths], size=512).views
    baseline = rss_now_gib()
    if simulated is not None:  # a small device: the plan sees this much free memory
        fast3r_core.forward_memory.available_memory = lambda *a, **k: simulated
    t = time.perf_counter()
    rec = reconstruct(views, model, ReconstructOptions(size=512, precision="fp32", **kwargs))
    seconds = time.perf_counter() - t
    run = rec.runs[0]
    peak = peak_rss_gib()
    m = pose_metrics(rec.cam_to_world, gt)
    return {
        "config": config,
        "views": rec.n_views,
        "view_shape": list(rec.view_shape(0)),
        "passes": run.passes,
        "views_per_pass": run.views_per_pass,
        "anchors": run.anchors,
        "budget_gib": run.budget_bytes / 1024**3 if run.budget_bytes else None,
        "estimate_gib": run.estimate_bytes / 1024**3,
        "baseline_rss_gib": baseline,
        "peak_rss_gib": peak,
        "peak_above_baseline_gib": peak - baseline,
        "seconds": seconds,
        **{k: m[k] for k in ("RRA@15", "RTA@15", "mAA@30")},
    }


# ------------------------------------------------------------------------------------------------
# oracle: ground truth + realistic errors in place of the model
# ------------------------------------------------------------------------------------------------
class OraclePredictor:
    """``predict`` stand-in: ground-truth pointmaps of a scene with the errors described at the top."""

    def __init__(self, sample, seed: int) -> None:
        self.sample = sample
        w2c0 = np.linalg.inv(sample.cam_to_world[0])
        self.gt = sample.pts3d.astype(np.float64) @ w2c0[:3, :3].T + w2c0[:3, 3]
        self.depth = sample.depth.astype(np.float64)
        # camera centres in view 0's frame
        self.centres = (w2c0[:3, :3] @ sample.cam_to_world[:, :3, 3].T).T + w2c0[:3, 3]
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def __call__(self, model, images, image_ids=None, *, options=None, progress=None, cancel=None):
        from scipy.spatial.transform import Rotation

        views = [int(t) for t in images]  # the "images" are view indices here
        rng = self.rng
        self.calls += 1
        # the pass's frame: about view 0's camera, with a scale of its own
        s = rng.uniform(0.5, 2.0)
        R = Rotation.from_rotvec(np.radians(rng.uniform(1, 3)) * _unit(rng)).as_matrix()
        t = rng.normal(scale=0.02, size=3)
        scene = float(np.median(self.depth[self.sample.valid]))
        out = []
        for v in views:
            valid = self.sample.valid[v]
            # a rigid error of this view in this pass, then pixel noise and gross outliers
            Rv = Rotation.from_rotvec(np.radians(0.5) * _unit(rng)).as_matrix()
            tv = rng.normal(scale=0.005 * scene, size=3)
            pts = self.gt[v] @ Rv.T + tv
            pts = (
                pts + rng.normal(size=pts.shape) * (0.01 * np.maximum(self.depth[v], 0.1 * scene))[..., None]
            )
            conf = np.where(valid, 1.0 + np.exp(rng.normal(1.5, 0.5, valid.shape)), 1.0)
            # gross outliers: a depth 40 % too short to 60 % too long on the pixel's ray
            bad = rng.random(valid.shape) < 0.10
            centre = self.centres[v]
            factor = rng.uniform(0.6, 1.6, size=(int(bad.sum()), 1))
            pts[bad] = centre + (pts[bad] - centre) * factor
            conf[bad] = 1.0 + np.exp(rng.normal(0.0, 0.5, int(bad.sum())))
            pts = s * pts @ R.T + t
            out.append(
                {
                    "pts3d_in_other_view": pts.astype(np.float32),
                    "conf": conf.astype(np.float32),
                    "pts3d_local": pts.astype(np.float32),
                    "conf_local": conf.astype(np.float32),
                }
            )
        return out


def _unit(rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=3)
    return a / np.linalg.norm(a)


def _rel_3d_error(pts: list[np.ndarray], gt: np.ndarray, valid: np.ndarray) -> float:
    """Median distance to the ground truth after the best similarity, relative to the median depth."""
    from fast3r_core.chunking import fit_similarity

    x = np.concatenate([gt[v][valid[v]] for v in range(len(pts))])
    y = np.concatenate([pts[v][valid[v]] for v in range(len(pts))]).astype(np.float64)
    fit = fit_similarity(x, y, hypotheses=0)
    res = np.linalg.norm(fit.scale * x @ fit.rotation.T + fit.translation - y, axis=1) / fit.scale
    return float(np.median(res) / np.median(np.linalg.norm(x, axis=1)))


def child_oracle(threads: int) -> dict:
    from fast3r_core.chunking import plan_passes, predict_passes, select_anchors
    from fast3r_core.metrics import pose_metrics
    from fast3r_core.poses import estimate_poses_detailed
    from fast3r_core.train.synthetic import render_sample

    rows = []
    for k in range(ORACLE_SCENES):
        kind = "objects" if k % 2 == 0 else "room"
        sample = render_sample(SCENE_SEED + 100 + k, N_VIEWS, aspect="square", long_side=224, kind=kind)
        row: dict = {"scene": f"{kind}_{k}"}
        for name, (per_pass, n_anchors) in ORACLE_CONFIGS.items():
            oracle = OraclePredictor(sample, seed=k)
            shapes = [(224, 224)] * N_VIEWS
            order = select_anchors(list(sample.images), N_VIEWS, 8, "coverage")
            plan = plan_passes(shapes, max_views_per_pass=per_pass, anchors=n_anchors, anchor_order=order)
            if plan.single:
                preds = oracle(None, list(range(N_VIEWS)))
                fits = []
            else:
                res = predict_passes(
                    None,
                    list(range(N_VIEWS)),
                    plan.passes,
                    plan.anchors,
                    predict_fn=oracle,  # type: ignore[arg-type]
                )
                preds = [res.preds[v] for v in range(N_VIEWS)]
                fits = res.alignment_json()[1:]
            pts = [p["pts3d_in_other_view"] for p in preds]
            est = estimate_poses_detailed(pts, [p["conf"] for p in preds], max_workers=threads)
            m = pose_metrics(est.c2w, sample.cam_to_world)
            row[name] = {
                "passes": plan.n_passes,
                "RRA@5": m["RRA@5"],
                "RTA@5": m["RTA@5"],
                "RRA@15": m["RRA@15"],
                "RTA@15": m["RTA@15"],
                "mAA@30": m["mAA@30"],
                "median_3d_error_rel": _rel_3d_error(pts, sample.pts3d.astype(np.float64), sample.valid),
                "inlier_fraction_min": min((f["inlier_fraction"] for f in fits), default=None),
            }
        rows.append(row)
    return {"scenes": rows, "peak_rss_gib": peak_rss_gib()}


# ------------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------------
def _spawn(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["accuracy", "memory", "oracle"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--scenes-dir", type=Path, default=Path(tempfile.gettempdir()) / "fast3r_bench_chunked"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "accuracy":
            result = child_accuracy(rest[0], rest[1:], args.threads)
        elif kind == "memory":
            result = child_memory(rest[0], rest[1], args.threads)
        else:
            result = child_oracle(args.threads)
        print(json.dumps(result))
        return

    # parts run separately update one results file
    previous = _RESULTS / "chunked.json"
    results: dict = json.loads(previous.read_text()) if previous.is_file() else {}
    results.update({"views": N_VIEWS, "threads": args.threads})
    results.setdefault("dates", {})
    for part in args.parts:
        results["dates"][part] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if "accuracy" in args.parts:
        folders = [str(f) for f in render_scenes(args.scenes_dir, 224, "square", ACCURACY_SCENES)]
        print(f"\n## accuracy: demo model, 224 px, {len(folders)} scenes x {N_VIEWS} views")
        print(
            "| configuration | passes (views per pass) | RRA@15 | RTA@15 | mAA@30 | s / scene "
            "| peak RSS GiB |"
        )
        print("|---|---|---|---|---|---|---|")
        results["accuracy"] = []
        for config in ACCURACY_CONFIGS:
            r = _spawn(["accuracy", config, *folders, "--threads", str(args.threads)])
            results["accuracy"].append(r)
            sc = r["scenes"]
            vpp = sc[0]["views_per_pass"]
            print(
                f"| {config} | {sc[0]['passes']} ({', '.join(map(str, vpp))}) | {_mean(sc, 'RRA@15'):.3f} | "
                f"{_mean(sc, 'RTA@15'):.3f} | {_mean(sc, 'mAA@30'):.3f} | {_mean(sc, 'seconds'):.1f} | "
                f"{r['peak_rss_gib']:.2f} |"
            )
    if "memory" in args.parts:
        folder = str(render_scenes(args.scenes_dir, 512, "landscape", [("objects", 4)])[0])
        print(f"\n## memory: demo model, 512x384, {N_VIEWS} views")
        print(
            "| configuration | passes (views per pass) | estimate GiB | budget GiB | RSS before GiB | "
            "peak RSS GiB | peak above before GiB | s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        results["memory"] = []
        for config in MEMORY_CONFIGS:
            r = _spawn(["memory", config, folder, "--threads", str(args.threads)])
            results["memory"].append(r)
            budget = f"{r['budget_gib']:.2f}" if r["budget_gib"] is not None else "-"
            vpp = r["views_per_pass"]
            shown = ", ".join(map(str, vpp)) if len(vpp) <= 6 else f"{vpp[0]} ... {vpp[-1]}"
            print(
                f"| {config} | {r['passes']} ({shown}) | {r['estimate_gib']:.2f} | {budget} | "
                f"{r['baseline_rss_gib']:.2f} | {r['peak_rss_gib']:.2f} | "
                f"{r['peak_above_baseline_gib']:.2f} | "
                f"{r['seconds']:.0f} |"
            )
    if "oracle" in args.parts:
        r = _spawn(["oracle", "--threads", str(args.threads)])
        results["oracle"] = r
        print(f"\n## oracle: ground truth + realistic errors, {ORACLE_SCENES} scenes x {N_VIEWS} views")
        print("| configuration | RRA@5 | RTA@5 | RRA@15 | RTA@15 | mAA@30 | median 3-D error / depth |")
        print("|---|---|---|---|---|---|---|")
        for name in ORACLE_CONFIGS:
            rows = [s[name] for s in r["scenes"]]
            print(
                f"| {name} ({rows[0]['passes']} passes) | {_mean(rows, 'RRA@5'):.3f} | "
                f"{_mean(rows, 'RTA@5'):.3f} | "
                f"{_mean(rows, 'RRA@15'):.3f} | {_mean(rows, 'RTA@15'):.3f} | {_mean(rows, 'mAA@30'):.3f} | "
                f"{_mean(rows, 'median_3d_error_rel'):.4f} |"
            )
    path = write_json("chunked", results)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
