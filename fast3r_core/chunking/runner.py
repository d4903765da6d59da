"""Run Fast3R pass by pass over a :class:`~fast3r_core.chunking.plan.ChunkPlan` and merge the passes.

Every pass is one call of :func:`fast3r_core.inference.predict` on the anchors (view 0 first) plus the
pass's own views. Its outputs come back as numpy arrays on the CPU, and the device memory of the pass
is released before the next one, so the device's peak is the peak of one pass.

Merging (a new reconstruction), in two rounds:

1. each pass is aligned to the first pass by the similarity fitted on the anchors' pointmaps (the same
   pixels in both), and the aligned anchor pointmaps go into running confidence-weighted sums;
2. once all passes are in, every pass (the first included) is aligned again, to the anchors fused over
   all passes, and that similarity places its own views. The first pass's anchors carry errors of
   their own that every other pass would otherwise inherit; the fused ones average them out.

Only a fixed sample of anchor pixels (:data:`FIT_PIXELS` in all) is kept per pass for the second
round. Adding views to an existing result has a fixed target (its stored anchor pointmaps): one round.

Progress: the stages of each pass are the usual ``encode``, ``fuse``, ``heads`` with their per-pass
counts; the event carries the pass as numbers (``pass_index``, ``pass_count``) and its message names it
for people (``"pass 2/5"``, see :func:`pass_message`).
Cancel: checked before each pass and inside each pass by ``predict``; a cancelled run raises
:class:`~fast3r_core.errors.Cancelled` and returns nothing.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from fast3r_core.chunking.align import PointmapFusion, SimilarityFit, correspondence_weights, fit_similarity
from fast3r_core.chunking.plan import ChunkPlan, plan_passes
from fast3r_core.errors import AlignmentError, InputError
from fast3r_core.progress import ProgressCallback, ProgressEvent, check_cancel

if TYPE_CHECKING:
    import torch

    from fast3r_core.inference import InferenceOptions
    from fast3r_core.model import Fast3R

__all__ = ["PassesResult", "parse_pass_message", "pass_message", "plan_for_model", "predict_passes"]

log = logging.getLogger(__name__)

_PASS_RE = re.compile(r"\bpass (\d+)/(\d+)\b")


def pass_message(index: int, total: int) -> str:
    """The progress message of pass ``index`` (0-based) of ``total``: ``"pass 2/5"`` (1-based)."""
    return f"pass {index + 1}/{total}"


def parse_pass_message(message: str) -> tuple[int, int] | None:
    """(pass index 0-based, number of passes) from a progress message, or None when it names no pass."""
    m = _PASS_RE.search(message or "")
    if m is None:
        return None
    i, n = int(m.group(1)), int(m.group(2))
    return (i - 1, n) if 1 <= i <= n else None


@dataclass
class PassesResult:
    """What :func:`predict_passes` gives back.

    Attributes
    ----------
    preds : dict of view index -> prediction dict
        Like :func:`fast3r_core.inference.predict`'s dicts: ``pts3d_in_other_view`` (H, W, 3) float32
        now in the result's frame (OpenCV axes; the target's, or the frame of the anchors fused over
        the passes, which is about the first pass's), ``conf`` (H, W), ``pts3d_local`` (H, W, 3) in the
        view's own camera frame, ``conf_local`` (H, W). Every non-anchor view, and the anchors when
        they were fused.
    fits : one SimilarityFit per pass (pass frame -> the result's frame).
    reference_pass : the pass whose frame is the result's (its fit is the identity), if any.
    """

    preds: dict[int, dict[str, np.ndarray]]
    fits: list[SimilarityFit] = field(default_factory=list)

    reference_pass: int | None = 0

    def alignment_json(self) -> list[dict[str, Any]]:
        """Per pass: the similarity's scale, rotation angle, inliers and rmse ("reference" for the frame)."""
        out = [f.to_json() for f in self.fits]
        if self.reference_pass is not None and out:
            out[self.reference_pass] = {"reference": True}
        return out


def _pass_progress(progress: ProgressCallback | None, index: int, total: int) -> ProgressCallback | None:
    if progress is None:
        return None
    tag = pass_message(index, total)

    def cb(ev: ProgressEvent) -> None:
        msg = f"{tag}: {ev.message}" if ev.message else tag
        progress(replace(ev, message=msg, pass_index=index, pass_count=total))

    return cb


def _release(model: Fast3R) -> None:
    """Free what a pass left behind (Python garbage, the CUDA / MPS caching allocator's blocks)."""
    from fast3r_core.inference import release_device_cache

    gc.collect()
    release_device_cache(next(model.parameters()).device)


def predict_passes(
    model: Fast3R,
    images: Sequence[torch.Tensor] | Callable[[int], torch.Tensor],
    passes: Sequence[Sequence[int]],
    anchors: Sequence[int],
    *,
    target: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None,
    fuse_anchors: bool = True,
    image_ids: Sequence[int] | None = None,
    options: InferenceOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    predict_fn: Callable[..., list[dict[str, np.ndarray]]] | None = None,
    masks: Mapping[int, np.ndarray] | None = None,
) -> PassesResult:
    """Predict every view pass by pass and bring all passes into one frame.

    Parameters
    ----------
    model : a loaded Fast3R.
    images : the (3, H, W) float32 input tensors in [-1, 1], indexed by view; or a function returning
        the tensor of a view index (built on demand, so only one pass's tensors exist at a time).
    passes : view indices of each pass; each starts with the anchors in the order of ``anchors``.
    anchors : the anchor views (the first one, view 0 of a reconstruction, anchors each pass's frame).
    target : anchor view -> (pts (H, W, 3), conf (H, W)) in the frame to align to (adding views to an
        existing result: its stored pointmaps). None: the first pass's frame is the reference.
    fuse_anchors : return the anchors' confidence-weighted mean over the passes (a reconstruction);
        False: the anchors' predictions only serve the alignment (adding views).
    image_ids : optional image index of every view (explicit assignment); default: each pass draws its
        own with ``options.seed`` (the first view of a pass gets index 0).
    options : inference options of every pass.
    predict_fn : stands in for :func:`fast3r_core.inference.predict` (same signature), e.g. to check
        the merging with known pointmaps (bench/chunked.py).
    masks : view -> (H, W) bool keep-mask in model pixels (the user's masks): an anchor's masked
        pixels take no part in the fits between passes.

    Returns
    -------
    PassesResult
    """
    from fast3r_core.inference import InferenceOptions, predict

    run_pass = predict_fn or predict
    opts = options or InferenceOptions()
    anchors = list(anchors)
    if not passes:
        raise InputError("no passes to run")
    for k, p in enumerate(passes):
        if list(p[: len(anchors)]) != anchors:
            raise InputError(
                f"pass {k} must start with the anchor views {anchors}, got {list(p)[: len(anchors)]}"
            )
    get = images if callable(images) else (lambda i: images[i])
    m = len(anchors)
    n_passes = len(passes)
    fusion = PointmapFusion()
    out: dict[int, dict[str, np.ndarray]] = {}
    local_of_anchor: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    pixels: list[np.ndarray] = []  # per anchor: the pixels (flat indices) that every fit uses
    samples: list[tuple[np.ndarray, np.ndarray]] = []  # per pass: its anchors' sampled (pts, conf)
    own: list[list[int]] = []  # per pass: its own views (raw pointmaps in its frame, in ``out``)
    fits: list[SimilarityFit] = []
    ref: tuple[np.ndarray, np.ndarray] | None = None
    if target is not None:
        pixels = _anchor_pixels([target[v][1].shape for v in anchors], anchors, masks)
        ref = _sample([target[v] for v in anchors], pixels)
    for k, view_ids in enumerate(passes):
        check_cancel(cancel)
        ids = [image_ids[v] for v in view_ids] if image_ids is not None else None
        tensors = [get(v) for v in view_ids]
        preds = run_pass(
            model, tensors, ids, options=opts, progress=_pass_progress(progress, k, n_passes), cancel=cancel
        )
        del tensors
        check_cancel(cancel)
        maps = [(preds[j]["pts3d_in_other_view"], preds[j]["conf"]) for j in range(m)]
        if not pixels:
            pixels = _anchor_pixels([c.shape for _, c in maps], anchors, masks)
        sample = _sample(maps, pixels)
        if ref is None:  # the first pass is the provisional reference frame
            ref = sample
        fit = SimilarityFit.identity() if sample is ref else _fit(sample, ref, seed=k)
        log.info(
            "pass %d/%d: %d views, scale %.4g, rotation %.2f deg, %.0f %% inliers",
            k + 1,
            n_passes,
            len(view_ids),
            fit.scale,
            fit.rotation_deg(),
            100 * fit.inlier_fraction,
        )
        if target is not None:  # the final frame is known: place the pass's views now
            fits.append(fit)
            for j, v in enumerate(view_ids[m:], start=m):
                out[v] = {**preds[j], "pts3d_in_other_view": fit.apply(preds[j]["pts3d_in_other_view"])}
        else:
            samples.append(sample)
            own.append(list(view_ids[m:]))
            for j, v in enumerate(view_ids[m:], start=m):
                out[v] = preds[j]
            if fuse_anchors:
                for j, v in enumerate(anchors):
                    fusion.add(v, fit.apply(maps[j][0]), maps[j][1])
                    local_of_anchor.setdefault(v, (preds[j]["pts3d_local"], preds[j]["conf_local"]))
        del preds, maps
        if k + 1 < n_passes and hasattr(model, "parameters"):
            _release(model)
    if target is not None:
        return PassesResult(out, fits, None)

    # Second round: align every pass (the first included) to the anchors fused over all passes. The
    # first round aligned them to the first pass's anchors, whose own errors every other pass then
    # inherited; the fused anchors average those errors out.
    fused = [fusion.result(v) for v in anchors] if n_passes > 1 else []
    if fused:
        ref = _sample(fused, pixels)
        for k, sample in enumerate(samples):
            fit = _fit(sample, ref, seed=k)
            fits.append(fit)
            for v in own[k]:
                out[v]["pts3d_in_other_view"] = fit.apply(out[v]["pts3d_in_other_view"])
    else:
        fits.append(SimilarityFit.identity())
    if fuse_anchors:
        for j, v in enumerate(anchors):
            pts, conf = fused[j] if fused else fusion.result(v)
            local, conf_local = local_of_anchor[v]  # local pointmaps: the first pass's
            out[v] = {
                "pts3d_in_other_view": pts,
                "conf": conf,
                "pts3d_local": local,
                "conf_local": conf_local,
            }
    return PassesResult(out, fits, None)


#: Anchor pixels every fit uses (in total over the anchors): plenty for 7 unknowns, and the same
#: pixels in every pass so that only these samples of each pass have to be kept.
FIT_PIXELS = 60_000


def _anchor_pixels(
    shapes: Sequence[tuple[int, ...]],
    anchors: Sequence[int],
    masks: Mapping[int, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Flat pixel indices of each anchor used by the fits: all of its kept pixels (``masks``), or a
    fixed random subset of them."""
    per_anchor = max(1, FIT_PIXELS // max(1, len(shapes)))
    out = []
    for shape, v in zip(shapes, anchors, strict=True):
        n = int(np.prod(shape[:2]))
        mask = None if masks is None else masks.get(v)
        kept = np.arange(n) if mask is None else np.flatnonzero(np.asarray(mask, bool).reshape(-1))
        if kept.size <= per_anchor:
            out.append(kept)
        else:
            pick = np.random.default_rng(v).choice(kept.size, per_anchor, replace=False)
            out.append(np.sort(kept[pick]))
    return out


def _sample(
    maps: Sequence[tuple[np.ndarray, np.ndarray]], pixels: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The anchors' points (N, 3) and confidences (N,) at ``pixels``, concatenated over the anchors."""
    pts = np.concatenate([p.reshape(-1, 3)[i] for (p, _), i in zip(maps, pixels, strict=True)])
    conf = np.concatenate([c.reshape(-1)[i] for (_, c), i in zip(maps, pixels, strict=True)])
    return pts, conf


def _fit(src: tuple[np.ndarray, np.ndarray], dst: tuple[np.ndarray, np.ndarray], seed: int) -> SimilarityFit:
    """Similarity from a pass's anchor points to the reference's; ``seed`` is the pass index."""
    try:
        return fit_similarity(src[0], dst[0], correspondence_weights(src[1], dst[1]), seed=seed)
    except InputError as exc:  # too few usable correspondences: say what it means for the run
        raise AlignmentError(
            f"pass {seed + 1} cannot be aligned with the others: its anchor views have too few confident "
            f"points in common ({exc}). Use more anchor views or larger passes (--anchors, "
            "--max-views-per-pass; in the app: Model > Run Options)."
        ) from exc


def plan_for_model(
    model: Fast3R,
    view_shapes: Sequence[tuple[int, int]],
    *,
    max_views_per_pass: int | None,
    anchors: int | None,
    anchor_order: Sequence[int] | None = None,
    precision: str = "auto",
    available: int | None = None,
) -> ChunkPlan:
    """:func:`~fast3r_core.chunking.plan.plan_passes` with the model's config, device and precision.

    ``available`` defaults to the free memory of the model's device (measured now).
    """
    from fast3r_core.forward_memory import available_memory
    from fast3r_core.inference import autocast_dtype

    device = next(model.parameters()).device
    if available is None and max_views_per_pass is None:
        available = available_memory(device.type, device.index)
    amp = autocast_dtype(device, precision)
    if precision == "int8" and available is not None:
        from fast3r_core.forward_memory import int8_copy_bytes
        from fast3r_core.quantize import is_quantized

        if not is_quantized(model):  # the first int8 run makes an int8 copy of the linear weights
            available = max(0, available - int8_copy_bytes(model.config))
    return plan_passes(
        view_shapes,
        model.config,
        available=available,
        max_views_per_pass=max_views_per_pass,
        anchors=anchors,
        anchor_order=anchor_order,
        host_memory=device.type != "cuda",
        bytes_per_el=2 if amp is not None else 4,
        weight_bytes_per_el=next(model.parameters()).element_size(),
        device_type=device.type,
    )
