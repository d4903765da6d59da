"""How fast a cancel takes effect: the published ViT-L 512 config (random weights) on the CPU.

Two measurements in one process (2 threads, fp32, ``--views`` views of 512x384):

* **gaps**: one whole run with an event that records every time the engine looks at it; the longest
  interval between two looks, per stage, is the worst-case delay of a cancel in that stage. It is
  given in wall seconds and in process CPU seconds divided by the thread count: on a shared host the
  wall figure grows with the other jobs' load, the CPU figure is what a quiet host would take;
* **cancels**: runs cancelled for real, ``--delay`` seconds after the start of the encode, fuse and
  heads stages (a second thread sets the event, as the GUI and the CLI's Ctrl-C do); the figure is the
  time from ``set()`` to :class:`Cancelled` reaching the caller.

A 4096^2 fp32 matmul probe is printed beside the figures (the host's speed swings). Usage::

    python bench/cancel.py                  # 4 views, delay 0.7 s
    python bench/cancel.py --views 8 --delay 1.3
"""

from __future__ import annotations

import argparse
import itertools
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import matmul_probe, write_json


class _RecordingEvent(threading.Event):
    """An event that records the time of every ``is_set()`` call (the engine's check points)."""

    def __init__(self) -> None:
        super().__init__()
        self.looks: list[float] = []
        self.cpu: list[float] = []

    def is_set(self) -> bool:
        self.looks.append(time.perf_counter())
        self.cpu.append(time.process_time())
        return super().is_set()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--delay", type=float, default=0.7, help="seconds into a stage before the cancel")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="cancel")
    args = ap.parse_args()

    import torch

    from fast3r_core.errors import Cancelled
    from fast3r_core.inference import InferenceOptions, predict
    from fast3r_core.model import Fast3R, Fast3RConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Fast3R(Fast3RConfig()).eval()
    images = [torch.rand(3, 384, 512) * 2 - 1 for _ in range(args.views)]
    opts = InferenceOptions(precision="fp32", num_threads=args.threads)
    predict(model, [torch.rand(3, 224, 224) * 2 - 1 for _ in range(2)], options=opts)  # warm-up
    probe = matmul_probe()
    print(f"probe: {probe['gflops_wall']:.0f} GFLOP/s wall, {probe['gflop_per_cpu_s']:.0f} per CPU s")

    # -- gaps between check points in a whole run --------------------------------------------------
    ev = _RecordingEvent()
    stages: list[tuple[float, str]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    predict(
        model,
        images,
        options=opts,
        cancel=ev,
        progress=lambda e: stages.append((time.perf_counter(), e.stage)),
    )
    wall = time.perf_counter() - t0

    def stage_at(t: float) -> str:
        name = "encode"
        for ts, s in stages:
            if ts <= t:
                name = s
        return name

    gaps: dict[str, float] = {}
    gaps_cpu: dict[str, float] = {}
    looks = [t0, *ev.looks]
    cpus = [c0, *ev.cpu]
    for (a, b), (ca, cb) in zip(itertools.pairwise(looks), itertools.pairwise(cpus), strict=True):
        s = stage_at(b)
        gaps[s] = max(gaps.get(s, 0.0), b - a)
        gaps_cpu[s] = max(gaps_cpu.get(s, 0.0), (cb - ca) / args.threads)
    print(f"{args.views} x 512x384: whole run {wall:.1f} s, {len(ev.looks)} check points")
    for s, g in gaps.items():
        print(
            f"  longest interval between checks in {s}: {g:.2f} s wall, "
            f"{gaps_cpu[s]:.2f} s of CPU per thread (a quiet host's wall time)"
        )

    # -- real cancels --------------------------------------------------------------------------------
    cancels: dict[str, float] = {}
    cancels_cpu: dict[str, float] = {}
    for target in ("encode", "fuse", "heads"):
        cancel = threading.Event()
        mark: dict[str, float] = {}

        def progress(e, target=target, cancel=cancel, mark=mark) -> None:
            if e.stage == target and "armed" not in mark:
                mark["armed"] = 1.0

                def fire() -> None:
                    mark["set"] = time.perf_counter()
                    mark["set_cpu"] = time.process_time()
                    cancel.set()

                threading.Timer(args.delay, fire).start()

        try:
            predict(model, images, options=opts, cancel=cancel, progress=progress)
            print(f"  {target}: the run ended before the cancel")
            continue
        except Cancelled:
            latency = time.perf_counter() - mark["set"]
            latency_cpu = (time.process_time() - mark["set_cpu"]) / args.threads
        cancels[target] = latency
        cancels_cpu[target] = latency_cpu
        print(
            f"  cancel {args.delay:.1f} s into {target}: stopped after {latency:.2f} s wall, "
            f"{latency_cpu:.2f} s of CPU per thread"
        )
    path = write_json(
        args.out,
        {
            "views": args.views,
            "size": [384, 512],
            "threads": args.threads,
            "probe": probe,
            "whole_run_s": wall,
            "longest_interval_between_checks_s": gaps,
            "longest_interval_between_checks_cpu_per_thread_s": gaps_cpu,
            "cancel_latency_s": cancels,
            "cancel_latency_cpu_per_thread_s": cancels_cpu,
            "delay_s": args.delay,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
