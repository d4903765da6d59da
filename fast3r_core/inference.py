"""Inference engine: run Fast3R over many views with chunking, progress, cancellation and memory checks.

Stages: encode (views in chunks, grouped by image size), fuse (one pass of the fusion decoder over the
tokens of all views), heads (views in chunks, grouped by size). Only the four decoder layers the heads
read are kept. On out-of-memory in the encoder or the heads, the cache is released and the views not yet
done go on in chunks half as large (the tokens and outputs already made are kept); fusion cannot be
split, so out-of-memory there is an :class:`InsufficientMemoryError` at once.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .allocator import release_free_memory, tune_allocator
from .cancel_points import cancel_points
from .errors import InputError, InsufficientMemoryError
from .forward_memory import MemoryEstimate, available_memory, estimate_peak_memory, plan_chunks
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
    "release_device_cache",
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
        "auto": bf16 autocast on CUDA GPUs of compute capability 8.0 and later (Ampere), fp16 on older
        ones (whose flash / memory-efficient attention kernels do not take bf16); fp16 on MPS; fp32 on
        the CPU.
        "int8": the fast CPU mode (CPU only): int8 dynamic quantisation of the transformer's linear
        layers, DPT heads in bf16 where the CPU has it (see :mod:`fast3r_core.quantize`).
    num_threads : CPU threads for torch during the run (None: all cores).
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

    ``device`` is the model's own device: on CUDA "auto" asks that GPU's compute capability (not the
    current device's, nor ``torch.cuda.is_bf16_supported``, which counts emulated bf16 as support).
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
        return torch.bfloat16 if cuda_has_native_bf16(device) else torch.float16
    if device.type == "mps":
        return torch.float16
    return None  # CPU: fp32 is the faithful default


def cuda_has_native_bf16(device: torch.device) -> bool:
    """Whether the CUDA GPU ``device`` (index None: the current one) computes bf16 natively (sm >= 8.0).

    Before Ampere (T4, V100, RTX 20xx) bf16 is emulated, and the flash and memory-efficient attention
    kernels refuse it: attention would fall back to the math kernel and its T x T score matrix.
    """
    major, _minor = torch.cuda.get_device_capability(device)
    return major >= 8


def device_context(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Make ``device`` the current CUDA device for the block (streams, events, pinned memory, dtype checks
    then concern it, not GPU 0); a no-op context elsewhere."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


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


def _groups(
    shapes: Sequence[tuple[int, int]], chunk: int, views: Sequence[int] | None = None
) -> list[list[int]]:
    """View indices (all, or ``views``) grouped by shape (first-seen order), each group split into chunks."""
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i in range(len(shapes)) if views is None else views:
        by_shape.setdefault(shapes[i], []).append(i)
    out: list[list[int]] = []
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


# What the GPU libraries say when they cannot allocate their workspace: a memory failure too, though
# PyTorch raises it as a plain RuntimeError without "out of memory" in it.
_OOM_MARKERS = (
    "out of memory",
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "cusolver_status_alloc_failed",
)


def _is_oom(exc: BaseException) -> bool:
    """An allocation failure: torch's OutOfMemoryError (CUDA, MPS), or cuBLAS / cuDNN unable to allocate."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return any(m in text for m in _OOM_MARKERS)


def _oom_reason(exc: BaseException) -> str:
    """First line of an allocation failure, for the log and the user's message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def release_device_cache(device: torch.device | str) -> None:
    """Return the CUDA / MPS caching allocator's free blocks to the device (nothing to do on the CPU).

    Call it where no traceback holds the tensors of a failed attempt (not inside an ``except`` block).
    """
    device = torch.device(device)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


class _ChunkSync:
    """Waits at a chunk boundary until the device has run the kernels queued so far.

    CUDA and MPS only queue kernels: without a wait, encode and fuse would "finish" at once, progress
    would jump and a Cancel would wait for the whole queue. One event is recorded after each chunk and
    waited for, so progress reports work done and the cancel check comes at most a chunk late. On the
    CPU it does nothing.
    """

    def __init__(self, device: torch.device) -> None:
        self.device_type = device.type

    def wait(self) -> None:
        event: torch.cuda.Event | torch.mps.event.Event
        if self.device_type == "cuda":
            event = torch.cuda.Event()
        elif self.device_type == "mps":
            event = torch.mps.event.Event()
        else:
            return
        event.record()
        event.synchronize()


def _pinned(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``batch`` in page-locked memory when it is on the host and goes to CUDA (the copy is then
    asynchronous); images already on the GPU are left alone (pin_memory would raise)."""
    if device.type == "cuda" and batch.device.type == "cpu":
        return batch.pin_memory()
    return batch


def _autocast(device: torch.device, amp: torch.dtype | None) -> contextlib.AbstractContextManager[object]:
    """Autocast to ``amp`` on the device (None: none). The weight-cast cache is off: it would hold a
    low-precision copy of every weight for the whole run (1.2 GiB for ViT-L) to save one cast per
    layer and chunk, which costs little."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp, cache_enabled=False)


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
        device_type=device.type,
    )


def _plan(
    model: Fast3R,
    shapes: list[tuple[int, int]],
    device: torch.device,
    amp: torch.dtype | None,
    opts: InferenceOptions,
) -> tuple[int, int]:
    from .chunking.plan import BUDGET_FRACTION  # the pass planner's margin (fragmentation, workspaces)

    n = len(shapes)
    free = available_memory(device.type, device.index)
    budget = int(free * BUDGET_FRACTION)
    bpe = 2 if amp is not None else 4
    wbytes = next(model.parameters()).element_size()
    enc, head = plan_chunks(
        model.config, shapes, budget, bytes_per_el=bpe, weight_bytes_per_el=wbytes, device_type=device.type
    )
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
            device_type=device.type,
        )
        need = est.total - est.weights  # the weights are already resident
        from .quantize import is_quantized

        if opts.precision == "int8" and not is_quantized(model):  # made on the first int8 run
            q8 = estimate_peak_memory(model.config, shapes, weight_bytes_per_el=wbytes, int8=True)
            need += q8.weights - est.weights
        if need > budget:
            size = max(max(s) for s in shapes)
            hint = "use 224 px instead of 512 px, or fewer views" if size > 224 else "use fewer views"
            raise InsufficientMemoryError(
                f"{n} views at {size} px need {est.describe()}, but only {free / 2**30:.1f} GiB is free "
                f"on {device.type} ({BUDGET_FRACTION:.0%} of it is planned for): {hint}"
            )
    return max(1, min(enc, n)), max(1, min(head, n))


def _in_chunks(
    name: str,
    shapes: Sequence[tuple[int, int]],
    chunk: int,
    step: Callable[[list[int]], None],
    device: torch.device,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> None:
    """Run ``step`` on every view, in chunks of up to ``chunk`` views of one shape, with progress.

    After each chunk the device's queue is waited for (:class:`_ChunkSync`), so progress and cancel
    are honest. On out-of-memory the views already done are kept and the rest go on in chunks half as
    large; the cache is released *after* the ``except`` block, when the traceback no longer holds the
    failed attempt's tensors. A chunk of one view that does not fit raises InsufficientMemoryError.
    """
    n = len(shapes)
    todo = list(range(n))
    sync = _ChunkSync(device)
    report(progress, name, 0, n)
    while todo:
        reason = ""
        for views in _groups(shapes, chunk, todo):
            check_cancel(cancel)
            try:
                step(views)
            except (RuntimeError, torch.OutOfMemoryError) as exc:
                if not _is_oom(exc):
                    raise
                reason = _oom_reason(exc)
                break
            sync.wait()
            done = set(views)
            todo = [i for i in todo if i not in done]
            report(progress, name, n - len(todo), n)
        if not reason:
            return
        gc.collect()  # any cycle through the failed attempt's frames
        release_device_cache(device)
        if chunk == 1:
            raise InsufficientMemoryError(_oom_message(n, shapes, device, name, reason))
        log.warning(
            "%s: out of memory with chunks of %d views (%s); the %d views left go on in chunks of %d",
            name,
            chunk,
            reason,
            len(todo),
            max(1, chunk // 2),
        )
        chunk = max(1, chunk // 2)


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
    # record_function ranges name the stages in torch.profiler traces (bench/profile_ops.py); ~us each
    stage = torch.profiler.record_function
    # cancel checks inside the encoder, fusion and head passes, and fusion progress per block
    with _autocast(device, amp), cancel_points(model, cancel, progress):
        tokens: list[torch.Tensor | None] = [None] * n

        def encode(chunk: list[int]) -> None:
            with stage("encode"):
                batch = _pinned(torch.stack([images[i] for i in chunk]), device)
                out = model.encode(batch.to(device, non_blocking=True))
                for j, i in enumerate(chunk):
                    tokens[i] = out[j : j + 1]

        _in_chunks("encode", shapes, enc_chunk, encode, device, progress, cancel)
        release_free_memory()
        check_cancel(cancel)
        report(progress, "fuse", 0, 1)
        reason = ""
        try:
            with stage("fuse"):
                hooks = model.fuse(tokens, ids[None].to(device))  # type: ignore[arg-type]
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            if not _is_oom(exc):
                raise
            reason = _oom_reason(exc)  # smaller chunks cannot help: fusion takes all tokens at once
        tokens.clear()
        if reason:
            gc.collect()
            release_device_cache(device)
            raise InsufficientMemoryError(_oom_message(n, shapes, device, "fuse", reason))
        _ChunkSync(device).wait()
        release_free_memory()  # the encoder's and fusion's freed blocks: keeps the heads' peak down
        report(progress, "fuse", 1, 1)
        counts = [(h // model.patch_size) * (w // model.patch_size) for h, w in shapes]
        offsets = np.concatenate([[0], np.cumsum(counts)]).tolist()
        results: list[dict[str, np.ndarray] | None] = [None] * n

        def heads(chunk: list[int]) -> None:
            with stage("heads"):
                per_hook = [_chunk_tokens(hk, chunk, offsets) for hk in hooks]
                out = model.heads(per_hook, shapes[chunk[0]])
                host = {k: out[k].to("cpu", torch.float32).numpy() for k in OUTPUT_KEYS}  # one sync/chunk
                for j, i in enumerate(chunk):
                    results[i] = {k: np.ascontiguousarray(host[k][j]) for k in OUTPUT_KEYS}

        _in_chunks("heads", shapes, head_chunk, heads, device, progress, cancel)
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
    # each stage retries its own out-of-memory with smaller chunks (_in_chunks); nothing is re-run
    with device_context(device), cpu_threads(opts.num_threads if device.type == "cpu" else None):
        return _run(model, images, shapes, ids, device, amp, enc_chunk, head_chunk, progress, cancel)


def _oom_message(
    n: int, shapes: Sequence[tuple[int, int]], device: torch.device, stage: str, reason: str
) -> str:
    size = max(max(s) for s in shapes)
    hint = "try 224 px instead of 512 px, or fewer views" if size > 224 else "try fewer views"
    where = (
        "in the fusion decoder, which takes the tokens of all views at once"
        if stage == "fuse"
        else f"in the {stage} stage, even one view at a time"
    )
    return f"Out of memory on {device.type} with {n} views at {size} px {where}: {hint}. ({reason})"


def default_cpu_threads(leave_free: int = 0) -> int:
    """All usable cores, or all but ``leave_free`` (at least 1); the app's runs choose with
    ``app.worker.gui_run_threads``."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, n - leave_free)
