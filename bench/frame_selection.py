"""Benchmark of fast3r_core.frame_selection on a 1-minute 1080p clip: time and peak RSS.

Run:  python bench/frame_selection.py [--clip FILE] [--seconds 60] [--wanted 60] [--candidates 16]

Without ``--clip`` a synthetic clip (30 fps, 1920x1080, mp4v, a pan over a texture with every third
frame blurred) is written to a temporary folder first, by a child process, so that the measured
process's peak RSS is the selection's alone. Prints wall and process CPU time, frames decoded per
second, peak RSS, and how many chosen frames were blurred ones; results go to
bench/results/frame_selection.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fast3r_core.frame_selection import iter_selected_frames

RESULTS = Path(__file__).resolve().parent / "results" / "frame_selection.json"
FPS = 30.0
SIZE = (1920, 1080)


def write_clip(path: Path, seconds: float) -> None:
    """A pan over a random-block texture; frame i is Gaussian-blurred (sigma 4) when i % 3 == 1."""
    w, h = SIZE
    rng = np.random.default_rng(0)
    strip = cv2.resize(
        rng.integers(0, 256, (h // 24, w // 8, 3), dtype=np.uint8), (3 * w, h), interpolation=0
    )
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write mp4v here")
    for i in range(int(seconds * FPS)):
        x = (i * 4) % (2 * w)
        frame = np.ascontiguousarray(strip[:, x : x + w])
        if i % 3 == 1:
            frame = cv2.GaussianBlur(frame, (0, 0), 4.0)
        writer.write(frame)
    writer.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--wanted", type=int, default=60)
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--write-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.write_only:
        write_clip(args.write_only, args.seconds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip
        if clip is None:
            clip = Path(tmp) / "clip_1080p.mp4"
            t = time.perf_counter()
            cmd = [sys.executable, __file__, "--write-only", str(clip), "--seconds", str(args.seconds)]
            subprocess.run(cmd, check=True)
            print(
                f"wrote {clip.stat().st_size / 1e6:.0f} MB synthetic clip in {time.perf_counter() - t:.1f} s"
            )
        cap = cv2.VideoCapture(str(clip))
        n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        c, w = time.process_time(), time.perf_counter()
        chosen = [
            f.index for f in iter_selected_frames(clip, args.wanted, candidates_per_bin=args.candidates)
        ]
        cpu, wall = time.process_time() - c, time.perf_counter() - w
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    blurred = sum(1 for i in chosen if i % 3 == 1) if args.clip is None else None
    row = {
        "clip": "synthetic 1920x1080 30 fps mp4v" if args.clip is None else str(args.clip),
        "frames": n_frames,
        "wanted": args.wanted,
        "candidates_per_bin": args.candidates,
        "chosen": len(chosen),
        "chosen_blurred": blurred,
        "wall_s": wall,
        "cpu_s": cpu,
        "frames_per_s": n_frames / wall,
        "peak_rss_mib": peak,
        "rss_before_mib": rss0,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(json.dumps(row, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
