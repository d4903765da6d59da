"""Cancel inside one long fusion call, and what the pieces cost: the published ViT-L fusion decoder.

The fusion decoder of the published config (24 blocks, width 1024, 16 heads; random weights) runs on
random encoder tokens of ``--views`` views of 512x384 (768 tokens each), as ``predict`` runs it:
under :func:`fast3r_core.cancel_points.cancel_points` with a cancel event. Skipping the encoder and
heads lets the largest fusion calls be measured (the other stages already check every block).

* **gaps**: the longest interval between two looks at the event over the first ``--gap-seconds`` of
  the fusion (wall, and process CPU seconds / threads = a quiet host's wall time), with the piece it
  fell in (attention queries, qkv / proj / MLP tokens);
* **cancels**: ``set()`` from a second thread ``--delays`` seconds into the fusion; the figure is the
  time until :class:`Cancelled` reaches the caller;
* **A/B** (``--ab TOKENS``): one fusion block over TOKENS tokens, one call per operator (no event)
  against the pieces (an event that is never set), alternating, best of ``--repeat``, CPU seconds.

Usage::

    python bench/cancel_fusion.py --views 153 --delays 3 20
    python bench/cancel_fusion.py --views 0 --ab 12288 24576 --repeat 3
"""

from __future__ import annotations

import argparse
import itertools
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _probe import matmul_probe, peak_rss_gib, write_json

TOKENS_PER_VIEW = (384 // 16) * (512 // 16)


class _RecordingEvent(threading.Event):
    """An event that records the wall and CPU time of every ``is_set()`` call (the check points)."""

    def __init__(self, stop_after: float) -> None:
        super().__init__()
        self.looks: list[tuple[float, float]] = []
        self._stop_after = stop_after
        self._t0 = time.perf_counter()

    def is_set(self) -> bool:
        now = time.perf_counter()
        self.looks.append((now, time.process_time()))
        return now - self._t0 > self._stop_after or super().is_set()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=153, help="views of 512x384 (0: A/B only)")
    ap.add_argument("--delays", type=float, nargs="*", default=[3.0, 20.0])
    ap.add_argument("--gap-seconds", type=float, default=60.0)
    ap.add_argument("--ab", type=int, nargs="*", default=[], help="token counts of the A/B")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="cancel_fusion")
    args = ap.parse_args()

    import torch

    from fast3r_core.cancel_points import cancel_points
    from fast3r_core.errors import Cancelled
    from fast3r_core.model import Fast3RConfig
    from fast3r_core.model.decoder import FusionDecoder
    from fast3r_core.model.layers import PIECE_FLOPS

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = Fast3RConfig()
    decoder = FusionDecoder(cfg.decoder_args, cfg.hooks).eval()
    probe = matmul_probe()
    print(f"probe: {probe['gflops_wall']:.0f} GFLOP/s wall, {probe['gflop_per_cpu_s']:.0f} per CPU s")
    print(f"pieces of {PIECE_FLOPS / 1e9:.0f} GFLOP")
    result: dict[str, object] = {"threads": args.threads, "probe": probe, "piece_gflop": PIECE_FLOPS / 1e9}

    if args.views:
        n = args.views
        c = cfg.encoder_args.embed_dim
        tokens = [torch.randn(1, TOKENS_PER_VIEW, c) for _ in range(n)]
        ids = torch.arange(n)[None]
        result.update(views=n, tokens=n * TOKENS_PER_VIEW)
        print(f"{n} views x 512x384 = {n * TOKENS_PER_VIEW} tokens")

        # -- gaps over the first seconds of the fusion ----------------------------------------------
        ev = _RecordingEvent(args.gap_seconds)
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            try:
                with cancel_points(decoder, ev):
                    decoder(tokens, ids)
            except Cancelled:
                pass
        looks = [(t0, c0), *ev.looks]
        gaps = [(b[0] - a[0], (b[1] - a[1]) / args.threads) for a, b in itertools.pairwise(looks)]
        worst_wall = max(g[0] for g in gaps)
        worst_cpu = max(g[1] for g in gaps)
        print(
            f"  first {time.perf_counter() - t0:.0f} s of the fusion: {len(ev.looks)} checks, "
            f"longest interval {worst_wall:.2f} s wall, {worst_cpu:.2f} s CPU per thread (quiet host's wall)"
        )
        result.update(checks=len(ev.looks), longest_interval_s=worst_wall, longest_interval_cpu_s=worst_cpu)

        # -- real cancels ------------------------------------------------------------------------------
        cancels = []
        for delay in args.delays:
            cancel = threading.Event()
            mark: dict[str, float] = {}

            def fire(cancel: threading.Event = cancel, mark: dict[str, float] = mark) -> None:
                mark["set"], mark["cpu"] = time.perf_counter(), time.process_time()
                cancel.set()

            timer = threading.Timer(delay, fire)
            timer.start()
            try:
                with torch.inference_mode(), cancel_points(decoder, cancel):
                    decoder(tokens, ids)
                print(f"  cancel {delay:.0f} s in: the fusion ended first")
                continue
            except Cancelled:
                wall = time.perf_counter() - mark["set"]
                cpu = (time.process_time() - mark["cpu"]) / args.threads
            cancels.append({"delay_s": delay, "latency_s": wall, "latency_cpu_s": cpu})
            print(
                f"  cancel {delay:.0f} s into the fusion: stopped after {wall:.3f} s wall, "
                f"{cpu:.3f} s CPU per thread"
            )
        result["cancels"] = cancels
        result["peak_rss_gib"] = peak_rss_gib()

    # -- A/B: one block, one call per operator vs pieces ---------------------------------------------
    ab = []
    blk = decoder.dec_blocks[0]
    scale = decoder.attn_scale()
    for t in args.ab:
        x = torch.randn(1, t, cfg.decoder_args.embed_dim)
        never = threading.Event()
        best = {"one call": float("inf"), "pieces": float("inf")}
        for r in range(args.repeat):
            order = ("one call", "pieces") if r % 2 == 0 else ("pieces", "one call")
            for variant in order:
                ev_ab = never if variant == "pieces" else None
                c0 = time.process_time()
                with torch.inference_mode(), cancel_points(decoder, ev_ab):
                    blk(x, scale=scale)
                best[variant] = min(best[variant], time.process_time() - c0)
        print(
            f"  one block over {t} tokens: one call {best['one call']:.2f} CPU s, "
            f"pieces {best['pieces']:.2f} CPU s ({best['pieces'] / best['one call'] - 1:+.1%})"
        )
        ab.append({"tokens": t, "one_call_cpu_s": best["one call"], "pieces_cpu_s": best["pieces"]})
    if ab:
        result["ab"] = ab
    print(f"wrote {write_json(args.out, result)}")


if __name__ == "__main__":
    main()
