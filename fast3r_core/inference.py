"""Inference engine: run Fast3R over many views with chunking, progress, cancellation and memory checks.

Stages: encode (views in chunks, grouped by image size), fuse (one pass of the fusion decoder over the
tokens of all views), heads (views in chunks, grouped by size). Only the four decoder layers the heads
read are kept. On CUDA an out-of-memory error releases the cache and retries once with smaller chunks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .cancel_points import cancel_points
from .errors import InputError, InsufficientMemoryError
from .host_memory import release_free_memory, tune_allocator
from .memory import MemoryEstimate, available_memory, estimate_peak_memory, plan_chunks
from .model.decoder import MAX_VIEWS
from .model.fast3r import DEFAULT_SEED, Fast3R, draw_image_ids
from .progress import ProgressCallback, check_cancel, report

__all__ = [
    "OUTPUT_KEYS",
    "PRECISIONS",
    "InferenceOptions",
    "autocast_dtype",
    "cpu_threads",
    "default_cpu_threads",
    "predict",
    "resolve_image_ids",
]

log = logging.getLogger(__name__)

OUTPUT_KEYS = ("pts3d_in_other_view", "conf", "pts3d_local", "conf_local")


@dataclass(frozen=True)
class InferenceOptions:
    """How to run the model.

    Attributes
    ----------
    precision : "auto" | "fp32" | "bf16" | "fp16" | "int8"
        "auto": bf16 autocast on CUDA when supported, else fp16; fp16 on MPS; fp32 on the CPU.
        "int8": the fast CPU mode (CPU only): int8 dynamic quantisation of the transformer's linear
        layers, DPT heads in bf16 where the CPU has it (see :mod:`fast3r_core.quantize`).
    num_threads : CPU threads for torch during the run (None: all cores; the GUI passes cores - 1).
    encoder_chunk, head_chunk : views per encoder / head chunk (None: planned from free memory).
    seed : seed of the image-index draw (same input and seed -> same output).
    check_memory : refuse a run whose estimate exceeds the free memory.
    """

    precision: str = "auto"
    num_threads: int | None = None
    encoder_chunk: int | None = None
    head_chunk: int | None = None
    seed: int = DEFAULT_SEED
    check_memory: bool = True


PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means no autocast (fp32 or int8).

    Raises InputError for an unknown precision, and for "int8" on anything but the CPU.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "int8" and device.type != "cpu":
        raise InputError(f"precision 'int8' is a CPU mode; on {device.type} use auto, bf16 or fp16")
    if precision in ("fp32", "int8"):
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None  # CPU: fp32 is the faithful default


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the block and restore it afterwards."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def resolve_image_ids(
    num_views: int, image_ids: Sequence[int] | torch.Tensor | None, seed: int, random_ids: bool = True
) -> torch.Tensor:
    """Validate an explicit image-index assignment or draw the default one; (N,) int64."""
    if image_ids is None:
        return draw_image_ids(num_views, seed=seed, random_ids=random_ids)
    ids = torch.as_tensor(image_ids, dtype=torch.int64).flatten()
    if ids.numel() != num_views:
        raise InputError(f"image_ids has {ids.numel()} entries for {num_views} views")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= MAX_VIEWS):
        raise InputError(f"image_ids must lie in 0..{MAX_VIEWS - 1}")
    if len(set(ids.tolist())) != num_views:
        raise InputError("image_ids must be distinct")
    return ids


def _check_images(images: Sequence[torch.Tensor], patch: int) -> list[tuple[int, int]]:
    if len(images) == 0:
        raise InputError("no images to reconstruct")
    if len(images) > MAX_VIEWS:
        raise InputError(f"{len(images)} views: Fast3R handles at most {MAX_VIEWS} views in one pass")
    shapes = []
    for i, im in enumerate(images):
        if not isinstance(im, torch.Tensor) or im.dim() != 3 or im.shape[0] != 3:
            shape = tuple(im.shape) if isinstance(im, torch.Tensor) else type(im).__name__
            raise InputError(f"image {i}: expected a (3, H, W) tensor, got {shape}")
        h, w = im.shape[1:]
        if h % patch or w % patch or h == 0 or w == 0:
            raise InputError(f"image {i}: size {h}x{w} is not a multiple of the patch size {patch}")
        shapes.append((int(h), int(w)))
    return shapes


def _groups(shapes: Sequence[tuple[int, int]], chunk: int) -> list[list[int]]:
    """View indices grouped by shape (first-seen order), each group split into chunks."""
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(shapes):
        by_shape.setdefault(s, []).append(i)
    out = []
    for idx in by_shape.values():
        out.extend(idx[k : k + chunk] for k in range(0, len(idx), chunk))
    return out


def _chunk_tokens(hook: torch.Tensor, chunk: list[int], offsets: list[int]) -> torch.Tensor:
    """Tokens of the views in ``chunk`` (same size) from a fused layer (1, sum T, C) -> (n, T, C).

    Consecutive views are a slice of the fused sequence, so the result is a view (no copy).
    """
    first, last = chunk[0], chunk[-1]
    if chunk == list(range(first, last + 1)):
        return hook[0, offsets[first] : offsets[last + 1]].view(len(chunk), -1, hook.shape[-1])
    return torch.cat([hook[:, offsets[i] : offsets[i + 1]] for i in chunk], dim=0)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def release_device_cache(device: torch.device) -> None:
    """Return the CUDA / MPS caching allocator's free blocks to the device (nothing to do on the CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def memory_estimate(
    model: Fast3R,
    shapes: Sequence[tuple[int, int]],
    device: torch.device,
    amp: torch.dtype | None,
    encoder_chunk: int | None = None,
    head_chunk: int | None = None,
    int8: bool = False,
) -> MemoryEstimate:
    """Peak-memory estimate of a run of ``model`` on views of these (H, W) shapes."""
    wbytes = next(model.parameters()).element_size()
    return estimate_peak_memory(
        model.config,
        shapes,
        bytes_per_el=2 if amp is not None else 4,
        weight_bytes_per_el=wbytes,
        encoder_chunk=encoder_chunk,
        head_chunk=head_chunk,
        int8=int8,
    )


def _plan(
    model: Fast3R,
    shapes: list[tuple[int, int]],
    device: torch.device,
    amp: torch.dtype | None,
    opts: InferenceOptions,
) -> tuple[int, int]:
    n = len(shapes)
    free = available_memory(device.type, device.index)
    bpe = 2 if amp is not None else 4
    wbytes = next(model.parameters()).element_size()
    enc, head = plan_chunks(model.config, shapes, free, bytes_per_el=bpe, weight_bytes_per_el=wbytes)
    if device.type == "cpu":
        # On the CPU large chunks bring no speed (a few thousand token rows already fill the GEMMs)
        # but cost memory: ~4k tokens per encoder chunk, ~200k pixels per head chunk.
        max_tok = max((h // model.patch_size) * (w // model.patch_size) for h, w in shapes)
        max_px = max(h * w for h, w in shapes)
        enc = min(enc, max(1, 4096 // max_tok))
        head = min(head, max(1, 200_000 // max_px))
    enc = opts.encoder_chunk or enc
    head = opts.head_chunk or head
    if opts.check_memory:
        est = estimate_peak_memory(
            model.config,
            shapes,
            bytes_per_el=bpe,
            weight_bytes_per_el=wbytes,
            encoder_chunk=enc,
            head_chunk=head,
        )
        need = est.total - est.weights  # the weights are already resident
        from .quantize import is_quantized

        if opts.precision == "int8" and not is_quantized(model):  # made on the first int8 run
            q8 = estimate_peak_memory(model.config, shapes, weight_bytes_per_el=wbytes, int8=True)
            need += q8.weights - est.weights
        if need > free:
            size = max(max(s) for s in shapes)
            hint = "use 224 px instead of 512 px, or fewer views" if size > 224 else "use fewer views"
            raise InsufficientMemoryError(
                f"{n} views at {size} px need {est.describe()}, but only {free / 2**30:.1f} GiB is free "
                f"on {device.type}: {hint}"
            )
    return max(1, min(enc, n)), max(1, min(head, n))


@torch.inference_mode()
def _run(
    model: Fast3R,
    images: Sequence[torch.Tensor],
    shapes: list[tuple[int, int]],
    ids: torch.Tensor,
    device: torch.device,
    amp: torch.dtype | None,
    enc_chunk: int,
    head_chunk: int,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> list[dict[str, np.ndarray]]:
    n = len(images)
    autocast = (
        torch.autocast(device_type=device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    )
    pin = device.type == "cuda"
    # record_function ranges name the stages in torch.profiler traces (bench/profile_ops.py); ~us each
    stage = torch.profiler.record_function
    # cancel checks inside the encoder, fusion and head passes, and fusion progress per block
    with autocast, cancel_points(model, cancel, progress):
        tokens: list[torch.Tensor | None] = [None] * n
        done = 0
        report(progress, "encode", 0, n)
        for chunk in _groups(shapes, enc_chunk):
            check_cancel(cancel)
            with stage("encode"):
                batch = torch.stack([images[i] for i in chunk])
                if pin:
                    batch = batch.pin_memory()  # page-locked: the copy below is asynchronous
                out = model.encode(batch.to(device, non_blocking=True))
                for j, i in enumerate(chunk):
                    tokens[i] = out[j : j + 1]
            done += len(chunk)
            report(progress, "encode", done, n)
        release_free_memory()
        check_cancel(cancel)
        report(progress, "fuse", 0, 1)
        with stage("fuse"):
            hooks = model.fuse(tokens, ids[None].to(device))  # type: ignore[arg-type]
        del tokens
        release_free_memory()  # the encoder's and fusion's freed blocks: keeps the heads' peak down
        report(progress, "fuse", 1, 1)
        counts = [(h // model.patch_size) * (w // model.patch_size) for h, w in shapes]
        offsets = np.concatenate([[0], np.cumsum(counts)]).tolist()
        results: list[dict[str, np.ndarray] | None] = [None] * n
        done = 0
        report(progress, "heads", 0, n)
        for chunk in _groups(shapes, head_chunk):
            check_cancel(cancel)
            with stage("heads"):
                per_hook = [_chunk_tokens(hk, chunk, offsets) for hk in hooks]
                out = model.heads(per_hook, shapes[chunk[0]])
                host = {k: out[k].to("cpu", torch.float32).numpy() for k in OUTPUT_KEYS}  # one sync/chunk
                for j, i in enumerate(chunk):
                    results[i] = {k: np.ascontiguousarray(host[k][j]) for k in OUTPUT_KEYS}
            done += len(chunk)
            report(progress, "heads", done, n)
    release_free_memory()
    return results  # type: ignore[return-value]


def predict(
    model: Fast3R,
    images: Sequence[torch.Tensor],
    image_ids: Sequence[int] | torch.Tensor | None = None,
    *,
    options: InferenceOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[dict[str, np.ndarray]]:
    """Run Fast3R on all views in one pass.

    Parameters
    ----------
    model : a loaded :class:`Fast3R` (eval mode) on its device.
    images : N float32 tensors (3, H, W) normalised to [-1, 1] (``ViewInput.image``); sizes may differ.
    image_ids : optional (N,) image indices for the image-index embedding; default: view 0 gets 0 and
        the others distinct indices in 1..999 drawn with ``options.seed``.

    Returns
    -------
    N dicts of float32 numpy arrays: ``pts3d_in_other_view`` (H, W, 3) in the common frame (about view
    0's OpenCV camera frame), ``conf`` (H, W) > 1, ``pts3d_local`` (H, W, 3) in the view's own OpenCV
    camera frame, ``conf_local`` (H, W).

    Raises
    ------
    InputError, InsufficientMemoryError, Cancelled
    """
    opts = options or InferenceOptions()
    shapes = _check_images(images, model.patch_size)
    ids = resolve_image_ids(
        len(images), image_ids, opts.seed, model.config.decoder_args.random_image_idx_embedding
    )
    device = next(model.parameters()).device
    amp = autocast_dtype(device, opts.precision)
    if model.training:
        model.eval()
    enc_chunk, head_chunk = _plan(model, shapes, device, amp, opts)
    if device.type == "cpu":
        tune_allocator()  # reuse freed activation blocks instead of page-faulting new ones
    if opts.precision == "int8":
        from .quantize import quantized_model

        model = quantized_model(model)  # built on the first int8 run of this model, then cached
    log.info(
        "predict: %d views, device %s, autocast %s, chunks enc %d / heads %d",
        len(images),
        device,
        amp,
        enc_chunk,
        head_chunk,
    )
    # On out-of-memory: release the cache and retry once with chunks 4x smaller (unless already 1/1).
    attempts = [(enc_chunk, head_chunk)]
    if (enc_chunk, head_chunk) != (1, 1):
        attempts.append((max(1, math.ceil(enc_chunk / 4)), max(1, math.ceil(head_chunk / 4))))
    with cpu_threads(opts.num_threads if device.type == "cpu" else None):
        for k, (enc, head) in enumerate(attempts):
            if k:
                log.warning(
                    "out of memory with chunks %d/%d; retrying with %d/%d", *attempts[k - 1], enc, head
                )
            try:
                return _run(model, images, shapes, ids, device, amp, enc, head, progress, cancel)
            except (RuntimeError, torch.OutOfMemoryError) as exc:
                if not _is_oom(exc):
                    raise
                release_device_cache(device)
                if k == len(attempts) - 1:
                    raise InsufficientMemoryError(_oom_message(len(images), shapes, device)) from exc
    raise AssertionError("unreachable: the last attempt returns or raises")


def _oom_message(n: int, shapes: Sequence[tuple[int, int]], device: torch.device) -> str:
    size = max(max(s) for s in shapes)
    hint = "try 224 px instead of 512 px, or fewer views" if size > 224 else "try fewer views"
    return (
        f"Out of memory on {device.type} with {n} views at {size} px, even with the smallest chunks: {hint}"
    )


def default_cpu_threads(leave_free: int = 0) -> int:
    """All cores (the CLI and the API) or all but ``leave_free`` (the GUI keeps one for its event loop)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, n - leave_free)
