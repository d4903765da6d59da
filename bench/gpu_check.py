"""The three measurements to make on the first real GPU (docs/gpu.md), in one script.

1. ``memory``: peak device memory per stage (encode / fuse / heads) of real ``predict`` runs of the
   published ViT-L config at 512 x 384 (random weights unless ``--model``), beside the engine's estimate
   for the chunks it picked. The peaks are read at the stage boundaries the progress callback reports
   (the engine waits for the device there), with ``torch.cuda.max_memory_allocated`` (CUDA) or
   ``torch.mps.driver_allocated_memory`` (MPS, a high-water mark sampled at the boundaries only).
   Pass: every measured peak <= its estimate.
2. ``attention`` (CUDA): a ``torch.profiler`` trace of a fusion-sized forward; lists the attention
   kernels that ran (flash: ``flash`` in the name; memory-efficient: ``fmha``/``efficient``;
   math: ``bmm`` + ``softmax``) and the host synchronisations (``cudaStreamSynchronize``,
   ``cudaEventSynchronize``, ``cudaDeviceSynchronize``) of the run; writes a Chrome trace.
   Pass: flash (bf16/fp16) and no math-path softmax; one event wait per chunk.
3. ``accuracy``: bf16 and fp16 against fp32 on a sample scene (``resources/samples/room``, 8 views):
   relative error of the global points and of the confidence, and the camera-centre difference.
   Pass: relative point error below 2 % (the CPU bf16 run of the parity cases gives about 1 %).

Usage (on the GPU machine, from the repository root)::

    python bench/gpu_check.py                                  # all three, cuda, ViT-L random weights
    python bench/gpu_check.py --model fast3r-vitl-512 --accept-license   # the published weights
    python bench/gpu_check.py --device mps --checks memory accuracy
    python bench/gpu_check.py --checks memory --views 8 32 128

Results go to ``bench/results/gpu_check.json`` (and ``gpu_check_trace.json``); paste them into
bench/README.md. On a machine without the device the script says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _probe import RESULTS, write_json  # noqa: E402

from fast3r_core import inference  # noqa: E402
from fast3r_core.inference import (  # noqa: E402
    InferenceOptions,
    autocast_dtype,
    memory_estimate,
    predict,
    release_device_cache,
)
from fast3r_core.model import Fast3R, Fast3RConfig  # noqa: E402

GiB = 2**30
SHAPE = (384, 512)


def _device_ok(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available()
    if device.type == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return False


def _model(args: argparse.Namespace, device: torch.device) -> Fast3R:
    if args.model:
        from fast3r_core.weights import load_model

        return load_model(args.model, device, accept_license=args.accept_license)
    torch.manual_seed(0)
    with torch.device(device):
        return Fast3R(Fast3RConfig()).eval()


class _StagePeaks:
    """Progress callback that reads the device's peak at every stage boundary and starts a new one."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stage = ""
        self.peaks: dict[str, int] = {}
        self.base = self._allocated()
        self._reset()

    def _allocated(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.memory_allocated(self.device))
        return int(torch.mps.current_allocated_memory())

    def _reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def _peak(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return int(torch.mps.driver_allocated_memory())

    def __call__(self, ev: Any) -> None:
        if ev.stage not in ("encode", "fuse", "heads"):
            return
        if ev.stage != self.stage and ev.done == 0:  # a new stage starts: close the previous one
            if self.stage:
                self.peaks[self.stage] = self._peak() - self.base
            self.stage = ev.stage
            self._reset()

    def finish(self) -> None:
        if self.stage:
            self.peaks[self.stage] = self._peak() - self.base


def check_memory(args: argparse.Namespace, device: torch.device, model: Fast3R) -> list[dict[str, Any]]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for prec in args.precisions:
        amp = autocast_dtype(device, prec)
        for n in args.views:
            images = [torch.rand(3, *SHAPE, generator=g) * 2 - 1 for _ in range(n)]
            enc, head = inference._plan(model, [SHAPE] * n, device, amp, InferenceOptions(precision=prec))
            est = memory_estimate(model, [SHAPE] * n, device, amp, enc, head)
            cb = _StagePeaks(device)
            t0 = time.perf_counter()
            try:
                predict(model, images, options=InferenceOptions(precision=prec), progress=cb)
            except Exception as exc:  # report and go on: a refusal is a result too
                print(f"{prec} {n} views: {type(exc).__name__}: {exc}")
                rows.append({"precision": prec, "views": n, "error": str(exc)})
                continue
            cb.finish()
            seconds = time.perf_counter() - t0
            row: dict[str, Any] = {"precision": prec, "views": n, "encoder_chunk": enc, "head_chunk": head}
            cells = []
            for stage, key in (("encode", "encoder"), ("fuse", "fusion"), ("heads", "heads")):
                m, e = cb.peaks.get(stage, 0), getattr(est, key)
                row[key] = {"measured": m, "estimate": e, "ok": m <= e}
                cells.append(f"{key} {m / GiB:.2f}/{e / GiB:.2f}{'' if m <= e else ' OVER'}")
            row["seconds"] = seconds
            rows.append(row)
            print(
                f"memory {prec:5} {n:4} views, chunks {enc}/{head}: "
                + ", ".join(cells)
                + f" ({seconds:.1f} s)"
            )
            del images
            release_device_cache(device)
    return rows


def check_attention(args: argparse.Namespace, device: torch.device, model: Fast3R) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    if device.type != "cuda":
        print("attention: CUDA only (MPS has no kernel trace in torch.profiler)")
        return {"skipped": "not cuda"}
    out: dict[str, Any] = {}
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, *SHAPE, generator=g) * 2 - 1 for _ in range(args.trace_views)]
    for prec in args.precisions:
        predict(model, images[:2], options=InferenceOptions(precision=prec))  # warm-up (kernels, cuBLAS)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            predict(model, images, options=InferenceOptions(precision=prec, encoder_chunk=2, head_chunk=2))
        names: dict[str, int] = {}
        for evt in prof.key_averages():
            names[evt.key] = names.get(evt.key, 0) + evt.count
        kernels = {
            k: v
            for k, v in names.items()
            if any(s in k.lower() for s in ("flash", "fmha", "efficient", "attention"))
        }
        math_path = {k: v for k, v in names.items() if "softmax" in k.lower()}
        syncs = {k: v for k, v in names.items() if "synchronize" in k.lower()}
        trace = RESULTS / f"gpu_check_trace_{prec}.json"
        prof.export_chrome_trace(str(trace))
        out[prec] = {
            "attention_kernels": kernels,
            "softmax_ops": math_path,
            "syncs": syncs,
            "trace": str(trace),
        }
        print(f"attention {prec}: kernels {kernels or 'NONE fused'}; softmax {math_path}; syncs {syncs}")
    return out


def check_accuracy(args: argparse.Namespace, device: torch.device, model: Fast3R) -> dict[str, Any]:
    from fast3r_core.images import load_images
    from fast3r_core.poses import estimate_poses

    views = load_images(ROOT / "resources" / "samples" / "room", size=512)
    images = [v.image for v in views]
    ref = predict(model, images, options=InferenceOptions(precision="fp32"))
    ref_c2w, _ = estimate_poses([p["pts3d_in_other_view"] for p in ref], [p["conf"] for p in ref])
    out: dict[str, Any] = {}
    for prec in ("bf16", "fp16"):
        preds = predict(model, images, options=InferenceOptions(precision=prec))
        pts = np.concatenate([p["pts3d_in_other_view"].ravel() for p in preds])
        pts_ref = np.concatenate([p["pts3d_in_other_view"].ravel() for p in ref])
        conf = np.concatenate([p["conf"].ravel() for p in preds])
        conf_ref = np.concatenate([p["conf"].ravel() for p in ref])
        c2w, _ = estimate_poses([p["pts3d_in_other_view"] for p in preds], [p["conf"] for p in preds])
        centres = np.linalg.norm(c2w[:, :3, 3] - ref_c2w[:, :3, 3], axis=1)
        scale = float(np.linalg.norm(ref_c2w[:, :3, 3], axis=1).max() or 1.0)
        row = {
            "points_rel_error": float(np.linalg.norm(pts - pts_ref) / np.linalg.norm(pts_ref)),
            "conf_rel_error": float(np.linalg.norm(conf - conf_ref) / np.linalg.norm(conf_ref)),
            "camera_centre_error_rel": float(centres.max() / scale),
            "finite": bool(np.isfinite(pts).all()),
        }
        out[prec] = row
        print(f"accuracy {prec} vs fp32: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--checks", nargs="+", default=["memory", "attention", "accuracy"])
    ap.add_argument("--views", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--precisions", nargs="+", default=["auto", "fp32"])
    ap.add_argument("--trace-views", type=int, default=8)
    ap.add_argument("--model", default="", help="registered name / folder; default: random ViT-L weights")
    ap.add_argument("--accept-license", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    if not _device_ok(device):
        print(f"no {device.type} device here: run this on the GPU machine")
        return 2
    model = _model(args, device)
    info = {"device": str(device), "torch": torch.__version__, "model": args.model or "random ViT-L"}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["capability"] = list(torch.cuda.get_device_capability(device))
    print(info)
    results: dict[str, Any] = {"info": info}
    if "memory" in args.checks:
        results["memory"] = check_memory(args, device, model)
    if "attention" in args.checks:
        results["attention"] = check_attention(args, device, model)
    if "accuracy" in args.checks:
        results["accuracy"] = check_accuracy(args, device, model)
    print(f"written {write_json('gpu_check', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
