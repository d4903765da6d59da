"""Held-out evaluation of a small model (the bundled demo model by default) for its model card.

Renders (once, into --scenes-dir) held-out synthetic scenes of 16 views for each look ("train": the
training renderer's look; "unseen": textures, palettes, light and camera paths that training never uses)
and each kind (objects orbit, room inside-out), from seed streams that neither training nor checkpoint
selection uses; then runs the real pipeline (224 px) on the first 2, 4, 8 and 16 views of every scene
and prints the pose metrics (spec 9.1), the focal error and the confidence quality (top-50 % vs the rest),
split by look, kind and view count. Also prints the model's 8-view time and its file size.

    python bench/demo_eval.py [--model demo] [--scenes 25] [--json results/demo_eval.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from fast3r_core.train.data import scene_seed
from fast3r_core.train.evaluate import METRIC_KEYS, QUALITY_KEYS, evaluate_scenes
from fast3r_core.train.synthetic import render_sample, save_scene_folder

#: Seed streams of the final evaluation (training uses 0..999 and 7; selection uses 1_000_001).
SEEDS = {("train", "objects"): 2_000_001, ("train", "room"): 2_000_002}
SEEDS |= {("unseen", "objects"): 2_000_003, ("unseen", "room"): 2_000_004}
VIEW_COUNTS = (2, 4, 8, 16)


def make_sets(root: Path, n: int) -> dict[tuple[str, str], list[Path]]:
    out = {}
    for (look, kind), seed in SEEDS.items():
        folders = []
        for i in range(n):
            f = root / f"{look}_{kind}" / f"scene_{i:03d}"
            if not (f / "gt.npz").is_file():
                s = render_sample(scene_seed(seed, i), 16, long_side=224, kind=kind, look=look)
                save_scene_folder(s, f, with_depth=True)
            folders.append(f)
        out[(look, kind)] = folders
    return out


def model_time(model: object, views: int = 8, repeats: int = 3) -> float:
    import torch

    from fast3r_core.inference import InferenceOptions, predict

    imgs = [torch.rand(3, 224, 224) * 2 - 1 for _ in range(views)]
    opts = InferenceOptions(precision="fp32", seed=0, check_memory=False)
    predict(model, imgs, options=opts)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(model, imgs, options=opts)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--scenes", type=int, default=25, help="scenes per look and kind (25)")
    ap.add_argument("--scenes-dir", default="/tmp/fast3r_demo_eval")
    ap.add_argument("--views", type=int, nargs="*", default=list(VIEW_COUNTS))
    ap.add_argument("--json", default=None, help="write all rows and tables here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from fast3r_core.weights import load_model, resolve_model_dir

    model = load_model(args.model, device="cpu")
    sets = make_sets(Path(args.scenes_dir), args.scenes)
    rows = []
    for (look, kind), folders in sets.items():
        for v in args.views:
            rep = evaluate_scenes(model, folders, size=224, num_views=v)
            for r in rep.per_scene:
                rows.append({"look": look, "kind": kind, **r})
            m = rep.metrics
            print(
                f"{look:6s} {kind:7s} {v:2d} views: RRA@15 {m['RRA@15']:.3f} RTA@15 {m['RTA@15']:.3f} "
                f"mAA@30 {m['mAA@30']:.3f} focal err {m.get('focal_err', float('nan')):.3f} "
                f"conf ratio {m.get('conf_ratio', float('nan')):.2f}",
                flush=True,
            )
    keys = (*METRIC_KEYS, *QUALITY_KEYS)

    def mean(sel: list[dict]) -> dict[str, float]:
        return {k: float(np.nanmean([r[k] for r in sel])) for k in keys}

    tables = {}
    for look in ("train", "unseen"):
        sel = [r for r in rows if r["look"] == look]
        tables[look] = {
            "all": mean(sel),
            **{f"{v} views": mean([r for r in sel if r["views"] == v]) for v in args.views},
            **{kind: mean([r for r in sel if r["kind"] == kind]) for kind in ("objects", "room")},
        }
    print("\n| look | split | RRA@15 | RTA@15 | mAA@30 | focal err | conf top/rest |")
    print("|---|---|---|---|---|---|---|")
    for look, t in tables.items():
        for split, m in t.items():
            print(
                f"| {look} | {split} | {m['RRA@15']:.3f} | {m['RTA@15']:.3f} | {m['mAA@30']:.3f} | "
                f"{m['focal_err']:.3f} | {m['conf_ratio']:.2f} |"
            )
    secs = model_time(model)
    size = sum(f.stat().st_size for f in resolve_model_dir(args.model).glob("*.safetensors"))
    print(f"\n8 views at 224 px: {secs:.2f} s model time; weights file {size / 1e6:.1f} MB")
    if args.json:
        doc = {"rows": rows, "tables": tables, "seconds_8_views": secs}
        Path(args.json).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
