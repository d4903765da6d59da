"""The GPU memory plan against an emulated GPU run, on a CPU-only machine.

For the published ViT-L config at 512 x 384 and 8 / 32 / 128 views, per stage (encode, fuse, heads):
the engine's estimate (``fast3r_core.forward_memory.estimate_peak_memory``) beside the peak of live device
bytes of an emulated run: the model on the ``meta`` device (shapes and dtypes, no memory, no compute),
CUDA / MPS autocast applied through a TorchFunctionMode with PyTorch's cast lists, the attention
kernels emulated (CUDA: flash, no score matrix; MPS: materialised scores in query blocks), bytes summed
by a TorchDispatchMode (``tests/gpu_emulation.py``). Chunks are the ones the engine plans for the
given free memory. Then the pass planner's choice for ``--pass-free`` GiB free on CUDA in fp16, with
the emulated fusion peak of that pass.

Weights are not in the stage figures (they are resident before the run); the float32 outputs copied to
the host are a separate term (not on the GPU on CUDA). What this cannot see: the allocator's
fragmentation and cuBLAS / cuDNN workspaces (hence the 10 % planning margin), and whether a real GPU
picks the flash kernel (docs/gpu.md: the first-GPU checks). Usage::

    python bench/gpu_plan.py                   # all cases (~1-3 min on a quiet 2-core host)
    python bench/gpu_plan.py --views 8 32 --free 16
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from _probe import write_json  # noqa: E402

from fast3r_core.chunking.plan import BUDGET_FRACTION, resolve_pass_size  # noqa: E402
from fast3r_core.forward_memory import estimate_peak_memory, plan_chunks  # noqa: E402
from fast3r_core.model import Fast3R, Fast3RConfig  # noqa: E402
from tests.gpu_emulation import emulated_stage_peaks  # noqa: E402

GiB = 2**30
CASES = (("cuda", "bf16"), ("cuda", "fp16"), ("cuda", "fp32"), ("mps", "fp16"))
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--free", type=float, default=24.0, help="GiB free on the device for the chunk plan")
    ap.add_argument("--pass-free", type=float, default=10.0, help="GiB free for the pass-planner case")
    ap.add_argument("--out", default="gpu_plan")
    args = ap.parse_args()

    cfg = Fast3RConfig()
    with torch.device("meta"):
        model = Fast3R(cfg).eval()
    shape = (384, 512)
    rows = []
    print(
        f"ViT-L 512 x 384; chunks planned for {args.free:g} GiB free x {BUDGET_FRACTION}; "
        "GiB, estimate / emulated"
    )
    print(
        f"{'device':6} {'prec':5} {'views':>5} {'enc/head':>8}  {'encode':>17}  {'fuse':>17}  {'heads':>17}  "
        f"{'max scores':>10}  {'s':>5}"
    )
    for n in args.views:
        for device, prec in CASES:
            dtype = DTYPES[prec]
            bpe = 2 if dtype is not None else 4
            shapes = [shape] * n
            enc, head = plan_chunks(
                cfg, shapes, int(args.free * GiB * BUDGET_FRACTION), bytes_per_el=bpe, device_type=device
            )
            t0 = time.perf_counter()
            peaks = emulated_stage_peaks(
                model, shapes, encoder_chunk=enc, head_chunk=head, device_type=device, dtype=dtype
            )
            seconds = time.perf_counter() - t0
            est = estimate_peak_memory(
                cfg, shapes, bytes_per_el=bpe, encoder_chunk=enc, head_chunk=head, device_type=device
            )
            cells = []
            row = {"device": device, "precision": prec, "views": n, "encoder_chunk": enc, "head_chunk": head}
            for stage in ("encoder", "fusion", "heads"):
                e, m = getattr(est, stage), peaks[stage]
                cells.append(f"{e / GiB:6.2f} / {m / GiB:5.2f} {e / m:4.2f}")
                row[stage] = {"estimate": e, "emulated": m, "ratio": round(e / m, 3)}
            row["max_scores"] = peaks["max_scores"]
            row["outputs_host"] = est.outputs
            rows.append(row)
            print(
                f"{device:6} {prec:5} {n:5} {enc:>4}/{head:<3}  "
                + "  ".join(cells)
                + f"  {peaks['max_scores'] / GiB:10.2f}  {seconds:5.1f}",
                flush=True,
            )

    # the pass planner: how many views per pass with --pass-free GiB free on CUDA in fp16
    many = [shape] * 1000
    per_pass, budget = resolve_pass_size(
        many,
        cfg,
        available=int(args.pass_free * GiB),
        max_views_per_pass=None,
        upper=len(many),
        host_memory=False,
        bytes_per_el=2,
        device_type="cuda",
    )
    assert budget is not None
    peaks = emulated_stage_peaks(model, [shape] * per_pass, encoder_chunk=1, head_chunk=1, fusion_only=True)
    est = estimate_peak_memory(
        cfg, [shape] * per_pass, bytes_per_el=2, encoder_chunk=1, head_chunk=1, device_type="cuda"
    )
    print(
        f"\npass planner, {args.pass_free:g} GiB free on CUDA, fp16, 512 x 384: {per_pass} views per pass "
        f"(budget {budget / GiB:.2f} GiB); fusion estimate {est.fusion / GiB:.2f} GiB, "
        f"emulated {peaks['fusion'] / GiB:.2f} GiB"
    )
    write_json(
        args.out,
        {
            "cases": rows,
            "pass_planner": {
                "free_gib": args.pass_free,
                "views_per_pass": per_pass,
                "budget": budget,
                "fusion_estimate": est.fusion,
                "fusion_emulated": peaks["fusion"],
            },
        },
    )


if __name__ == "__main__":
    main()
