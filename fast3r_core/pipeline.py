"""One reconstruction run: inputs -> images -> Fast3R -> poses -> :class:`Reconstruction`.

The CLI and the GUI both call :func:`reconstruct`, so what works in one works in the other.

Large image sets: when the views do not fit in one forward pass (the memory estimate against the free
memory of the device), or when ``max_views_per_pass`` says so, :func:`reconstruct` runs several passes
that share anchor views and merges them (:mod:`fast3r_core.chunking`). :func:`add_views` adds photos
to an existing result the same way: the new views are predicted with anchor views of the result and
aligned into its frame.

Inputs (issue 19): :func:`prepare_views` leaves out the excluded views (``options.exclude``), keeps at
most ``max_views``, resolves each view's known intrinsics (``options.intrinsics``: a file, EXIF or
none; :mod:`fast3r_core.intrinsics`) and reads its mask (``options.masks``; :mod:`fast3r_core.masks`).
Known intrinsics, mapped into model pixels, fix the K of the pose estimation; masked pixels take no
part in it and are recorded in :attr:`Reconstruction.keep_masks`, so that no point set, statistic or
export holds them.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fast3r_core.chunking.anchors import image_descriptor, select_anchors
from fast3r_core.chunking.plan import MAX_AUTO_ANCHORS, ChunkPlan
from fast3r_core.edits import with_appended_points
from fast3r_core.errors import InputError, NoImagesError
from fast3r_core.geometry import intrinsics_model_to_original
from fast3r_core.images import PathInput, SkippedFile, ViewInput, load_inputs
from fast3r_core.intrinsics import KnownIntrinsics, resolve_intrinsics, to_model_pixels
from fast3r_core.masks import BoolMask, load_masks
from fast3r_core.options import ReconstructOptions
from fast3r_core.output_memory import RESULT_BYTES_PER_PIXEL, check_output_memory
from fast3r_core.poses import PoseEstimate, align_local_to_global, estimate_poses_detailed
from fast3r_core.progress import ProgressCallback, check_cancel, report
from fast3r_core.project_file import project_size
from fast3r_core.result import Reconstruction, RunRecord

if TYPE_CHECKING:
    import torch

    from fast3r_core.inference import InferenceOptions
    from fast3r_core.model import Fast3R

__all__ = [
    "PreparedViews",
    "ReconstructOptions",
    "RunReport",
    "add_views",
    "exclude_views",
    "prepare_views",
    "project_size",
    "reconstruct",
    "unmatched_names",
]

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a run noticed besides its result: skipped inputs and views whose pose failed."""

    skipped: list[SkippedFile] = field(default_factory=list)
    failed_poses: list[int] = field(default_factory=list)
    ignored: int = 0
    #: names of ``options.exclude`` that matched no input, ignored (``options.exclude_missing_ok``)
    unmatched_exclude: list[str] = field(default_factory=list)


def _subsample(views: list[ViewInput], max_views: int | None) -> list[ViewInput]:
    if max_views is None or len(views) <= max_views:
        return views
    if max_views < 1:
        raise InputError(f"max_views must be at least 1, not {max_views}")
    keep = np.unique(np.linspace(0, len(views) - 1, max_views).round().astype(int))
    log.info("keeping %d of %d images (max_views)", len(keep), len(views))
    return [views[i] for i in keep]


def _load_views(
    inputs: PathInput | Sequence[ViewInput],
    opts: ReconstructOptions,
    rep: RunReport,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> list[ViewInput]:
    """The input views, decoded (all of them: exclusions and ``max_views`` are :func:`prepare_views`')."""
    if isinstance(inputs, Sequence) and inputs and all(isinstance(v, ViewInput) for v in inputs):
        return [v for v in inputs if isinstance(v, ViewInput)]  # all of them; narrows the type
    loaded = load_inputs(
        inputs,  # type: ignore[arg-type]
        size=opts.size,
        fps=opts.video_fps,
        max_frames=opts.video_max_frames,
        frames=opts.frames,
        progress=progress,
        cancel=cancel,
    )
    rep.skipped.extend(loaded.skipped)
    rep.ignored += loaded.ignored
    return loaded.views


def _view_keys(v: ViewInput) -> tuple[str, ...]:
    """The names ``exclude`` may give a view by: display name, file name, file stem, or its path as
    given (the app uses the path when two inputs share a file name)."""
    return (v.name, v.path.name, v.path.stem, os.fspath(v.path))


def unmatched_names(views: Sequence[ViewInput], names: Sequence[str]) -> list[str]:
    """The names of ``names`` that match none of ``views`` (see :func:`exclude_views`)."""
    known = {k for v in views for k in _view_keys(v)}
    return [n for n in names if n not in known]


def exclude_views(
    views: Sequence[ViewInput], names: Sequence[str], *, missing_ok: bool = False
) -> list[ViewInput]:
    """``views`` without those named in ``names`` (display name, file name, stem or path of each view).

    ``missing_ok``: a name that matches no view is ignored (see :func:`unmatched_names`).

    Raises
    ------
    InputError
        A name matches no view (the message lists close names; not with ``missing_ok``), or every
        view is excluded.
    """
    if not names:
        return list(views)
    known = {k for v in views for k in _view_keys(v)}
    unknown = unmatched_names(views, names)
    if unknown and missing_ok:
        log.warning("exclude: ignored %d name(s) that match no input: %s", len(unknown), ", ".join(unknown))
    elif unknown:
        close = sorted({c for n in unknown for c in difflib.get_close_matches(n, known, n=3, cutoff=0.6)})
        hint = f" (close names: {', '.join(close)})" if close else ""
        raise InputError(
            f"exclude: no input is named {', '.join(repr(n) for n in unknown[:5])}{hint}; give a file "
            "name or stem of an input"
        )
    drop = set(names)
    kept = [v for v in views if not drop.intersection(_view_keys(v))]
    if not kept:
        raise NoImagesError(f"every input is excluded ({len(views)} of {len(views)})")
    log.info("leaving out %d excluded view(s)", len(views) - len(kept))
    return kept


@dataclass
class PreparedViews:
    """Views ready for a run (:func:`prepare_views`); :func:`reconstruct` and :func:`add_views` take it.

    Attributes
    ----------
    views : list of ViewInput
        The views of the run, in input order (exclusions and ``max_views`` applied).
    known : list of KnownIntrinsics or None
        Per view, its known intrinsics in pixels of the original (upright) photo, or None (estimated).
    masks : list of ndarray (H, W) bool or None
        Per view, its keep-mask in model pixels (True = keep), or None (every pixel kept).
    """

    views: list[ViewInput]
    known: list[KnownIntrinsics | None]
    masks: list[BoolMask | None]

    @property
    def keep_masks(self) -> tuple[np.ndarray, ...] | None:
        """The masks as :attr:`Reconstruction.keep_masks`: None when no view has one, else one per view."""
        if all(m is None for m in self.masks):
            return None
        return tuple(
            np.ones(v.true_shape, bool) if m is None else m
            for v, m in zip(self.views, self.masks, strict=True)
        )


def prepare_views(views: Sequence[ViewInput], opts: ReconstructOptions) -> PreparedViews:
    """Apply ``opts.exclude`` and ``opts.max_views`` to loaded views, resolve their intrinsics
    (``opts.intrinsics``) and read their masks (``opts.masks``).

    Cheap next to the run (headers and mask files only), so the CLI calls it before loading the model:
    a bad intrinsics file or mask fails fast.

    Raises
    ------
    InputError
        An excluded name matches no view; :class:`~fast3r_core.errors.IntrinsicsError` for an
        intrinsics file that cannot be read or fits no photo; :class:`~fast3r_core.errors.MaskError`
        for a masks folder that does not exist, or a mask that cannot be read or has the wrong size
        (the messages name the file).
    """
    kept = _subsample(exclude_views(views, opts.exclude, missing_ok=opts.exclude_missing_ok), opts.max_views)
    known = resolve_intrinsics(
        opts.intrinsics,
        [v.path for v in kept],
        sizes=[v.original_size for v in kept],
        names=[v.name for v in kept],
    )
    n_known = sum(k is not None for k in known)
    if n_known:
        log.info("known intrinsics for %d of %d views", n_known, len(kept))
    masks: list[BoolMask | None] = [None] * len(kept)
    if opts.masks is not None:
        masks = load_masks(opts.masks, [v.path for v in kept], kept)
    return PreparedViews(kept, known, masks)


def _prepared(
    inputs: PathInput | Sequence[ViewInput] | PreparedViews,
    opts: ReconstructOptions,
    rep: RunReport,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> PreparedViews:
    if isinstance(inputs, PreparedViews):
        return inputs
    views = _load_views(inputs, opts, rep, progress, cancel)
    if opts.exclude_missing_ok:
        rep.unmatched_exclude.extend(unmatched_names(views, opts.exclude))
    return prepare_views(views, opts)


def _inference_options(opts: ReconstructOptions) -> InferenceOptions:
    from fast3r_core.inference import InferenceOptions

    return InferenceOptions(
        precision=opts.precision,
        num_threads=opts.num_threads,
        encoder_chunk=opts.encoder_chunk,
        head_chunk=opts.head_chunk,
        seed=opts.seed,
    )


def _plan_reconstruction(model: Fast3R, views: list[ViewInput], opts: ReconstructOptions) -> ChunkPlan:
    """Single pass or passes for ``views`` (anchors chosen only when the run is chunked)."""
    from fast3r_core.chunking.runner import plan_for_model
    from fast3r_core.forward_memory import available_memory

    shapes = [v.true_shape for v in views]
    device = next(model.parameters()).device
    kwargs: dict[str, Any] = {
        "max_views_per_pass": opts.max_views_per_pass,
        "anchors": opts.anchors,
        "precision": opts.precision,
        "available": (
            available_memory(device.type, device.index) if opts.max_views_per_pass is None else None
        ),
    }
    plan = plan_for_model(model, shapes, **kwargs)
    if plan.single or opts.anchor_method == "even":
        return plan
    count = min(len(views), max(opts.anchors or 0, MAX_AUTO_ANCHORS))
    order = select_anchors([v.rgb for v in views], len(views), count, "coverage")
    return plan_for_model(model, shapes, anchor_order=order, **kwargs)


def _poses(
    preds: Sequence[dict[str, np.ndarray]],
    prep: PreparedViews,
    opts: ReconstructOptions,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    focal: float | None = None,
) -> tuple[PoseEstimate, list[np.ndarray], np.ndarray]:
    """Poses, local pointmaps moved to world, and intrinsics in original pixels of ``prep.views``.

    Known intrinsics (``prep.known``) fix those views' K; masked pixels (``prep.masks``) take no part
    in PnP, the focal estimate or the local->global alignment. The original-pixel intrinsics of a
    known view are the given ones, exactly (not mapped to model pixels and back).
    """
    views = prep.views
    pts = [p["pts3d_in_other_view"] for p in preds]
    conf = [p["conf"] for p in preds]
    report(progress, "poses", 0, len(views))
    est = estimate_poses_detailed(
        pts,
        conf,
        focal,
        known_intrinsics=[
            None if k is None else to_model_pixels(k, v) for k, v in zip(prep.known, views, strict=True)
        ],
        masks=prep.masks,
        niter=opts.pnp_iterations,
        reproj_px=opts.pnp_reproj_px,
        per_view_focal=opts.per_view_focal,
        pts3d_local=[p["pts3d_local"] for p in preds] if opts.per_view_focal else None,
        conf_local=[p["conf_local"] for p in preds] if opts.per_view_focal else None,
        seed=opts.seed,
        progress=progress,
        cancel=cancel,
    )
    # masked pixels: NaN global points are left out of the alignment's correspondences
    targets = [
        p if m is None else np.where(m[..., None], p, np.float32(np.nan))
        for p, m in zip(pts, prep.masks, strict=True)
    ]
    aligned = align_local_to_global([p["pts3d_local"] for p in preds], targets, conf, opts.align_percentile)
    report(progress, "poses", len(views), len(views))
    k_orig = np.stack(
        [
            intrinsics_model_to_original(k, v.crop_box, v.resized_size, v.original_size)
            if known is None
            else known.scaled_to(v.original_size, v.name).matrix
            for k, v, known in zip(est.intrinsics, views, prep.known, strict=True)
        ]
    )
    return est, aligned, k_orig


def _architecture(model: Fast3R) -> str:
    """The model's depths and widths for the run record (``fast3r info``); "" for stand-ins."""
    config = getattr(model, "config", None)
    return config.describe() if config is not None and hasattr(config, "describe") else ""


def _run_record(plan: ChunkPlan, **kwargs: Any) -> RunRecord:
    """The run's record: ``kwargs`` (views, kind, model, ...) and how ``plan`` split it into passes."""
    return RunRecord(
        passes=plan.n_passes,
        views_per_pass=list(plan.views_per_pass),
        max_views_per_pass=plan.max_views_per_pass,
        anchors=[int(a) for a in plan.anchors],
        automatic=plan.automatic,
        budget_bytes=plan.budget,
        estimate_bytes=plan.need,
        **kwargs,
    )


def reconstruct(
    inputs: PathInput | Sequence[ViewInput] | PreparedViews,
    model: Fast3R,
    options: ReconstructOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    model_name: str | None = None,
    run_report: RunReport | None = None,
) -> Reconstruction:
    """Run the whole pipeline and return the result.

    Parameters
    ----------
    inputs : a folder, an image or video file, a list of image files, already loaded ViewInputs, or
        :class:`PreparedViews` (whose exclusions, intrinsics and masks are then used as they are).
    model : a loaded Fast3R (``fast3r_core.load_model``), on its device.
    options : run options (default :class:`ReconstructOptions`).
    progress : called with ProgressEvent for the stages images, encode, fuse, heads, poses; in a
        chunked run the encode / fuse / heads events of each pass carry ``"pass i/P"`` in their message.
    cancel : set it to stop the run between steps; raises :class:`Cancelled`, keeps nothing.
    run_report : filled with skipped files and failed poses when given.

    Returns
    -------
    Reconstruction with world = the global pointmap frame (about view 0's camera, OpenCV axes). Its
    ``runs`` holds one entry with the chunking: passes, views per pass, anchors, alignment quality;
    ``intrinsics_known`` marks the views whose intrinsics were given, ``keep_masks`` holds the masks.
    """
    from fast3r_core.chunking.runner import predict_passes
    from fast3r_core.inference import predict

    opts = options or ReconstructOptions()
    rep = run_report if run_report is not None else RunReport()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prep = _prepared(inputs, opts, rep, progress, cancel)
    views = prep.views
    timings["images"] = time.perf_counter() - t0
    check_cancel(cancel)
    check_output_memory([v.true_shape for v in views])  # the result must fit, not only the passes

    t = time.perf_counter()
    plan = _plan_reconstruction(model, views, opts)
    inf = _inference_options(opts)
    alignment: list[dict[str, Any]] = []
    if plan.single:
        preds = predict(
            model, [v.image for v in views], opts.image_ids, options=inf, progress=progress, cancel=cancel
        )
    else:
        log.info("%d views in %s", len(views), plan.describe())
        res = predict_passes(
            model,
            lambda i: views[i].image,
            plan.passes,
            plan.anchors,
            image_ids=opts.image_ids,
            options=inf,
            progress=progress,
            cancel=cancel,
            masks={i: m for i, m in enumerate(prep.masks) if m is not None},  # masked pixels: no fit
        )
        preds = [res.preds[i] for i in range(len(views))]
        alignment = res.alignment_json()
        del res
    timings["model"] = time.perf_counter() - t
    check_cancel(cancel)

    t = time.perf_counter()
    est, aligned, k_orig = _poses(preds, prep, opts, progress, cancel)
    rep.failed_poses.extend(est.failed_views)
    timings["poses"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    run_opts = opts.to_json()
    run_opts["device"] = str(next(model.parameters()).device)
    name = model_name if model_name is not None else getattr(model, "name", "")
    run = _run_record(
        plan,
        views=list(range(len(views))),
        kind="reconstruct",
        model=name,
        architecture=_architecture(model),
        alignment=alignment,
    )
    return Reconstruction(
        pts3d=tuple(p["pts3d_in_other_view"] for p in preds),
        conf=tuple(p["conf"] for p in preds),
        pts3d_local=tuple(aligned),
        conf_local=tuple(p["conf_local"] for p in preds),
        colors=tuple(v.rgb for v in views),
        cam_to_world=est.c2w,
        intrinsics=est.intrinsics,
        intrinsics_original=k_orig,
        original_sizes=np.array([v.original_size for v in views], dtype=np.int64),
        resized_sizes=np.array([v.resized_size for v in views], dtype=np.int64),
        crop_boxes=np.array([v.crop_box for v in views], dtype=np.int64),
        image_paths=tuple(str(Path(v.path)) for v in views),
        model_name=name,
        options=run_opts,
        timings=timings,
        pose_ok=est.ok,
        runs=(run,),
        pose_inlier_share=_inlier_share(est),
        intrinsics_known=np.asarray(est.intrinsics_known, dtype=bool),
        keep_masks=prep.keep_masks,
    )


def _inlier_share(est: Any) -> np.ndarray:
    """(V,) float32: the share of each view's confident points that fit its pose (NaN if it failed)."""
    share = est.n_inliers / np.maximum(est.n_points, 1)
    return np.where(est.ok & (est.n_points > 0), share, np.nan).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Adding views to an existing result
# --------------------------------------------------------------------------------------------------


def _rgb_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(3, H, W) float32 in [-1, 1] from a stored (H, W, 3) uint8 model-resolution image (as ViewInput)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(rgb).copy()).permute(2, 0, 1).float() / 255.0
    return (t - 0.5) / 0.5


def anchors_near_new_views(base: Reconstruction, new_rgb: Sequence[np.ndarray], count: int) -> list[int]:
    """Anchor views of ``base`` for adding ``new_rgb``: view 0, then the base views most like the new.

    Round-robin over the new views, each taking its nearest base view (image descriptor distance) not
    yet chosen, so that the new views share content with at least one anchor in their pass.
    """
    count = max(1, min(count, base.n_views))
    base_d = np.stack([image_descriptor(c) for c in base.colors])
    new_d = np.stack([image_descriptor(c) for c in new_rgb])
    dist = np.linalg.norm(new_d[:, None, :] - base_d[None, :, :], axis=-1)  # (new, base)
    ranked = [list(np.argsort(row, kind="stable")) for row in dist]
    chosen = [0]
    pos = [0] * len(ranked)
    while len(chosen) < count:
        progressed = False
        for k, row in enumerate(ranked):
            while pos[k] < len(row) and int(row[pos[k]]) in chosen:
                pos[k] += 1
            if pos[k] < len(row) and len(chosen) < count:
                chosen.append(int(row[pos[k]]))
                progressed = True
        if not progressed:
            break
    return chosen


def _plan_addition(
    model: Fast3R, base: Reconstruction, views: list[ViewInput], opts: ReconstructOptions
) -> tuple[ChunkPlan, list[int]]:
    """Passes of (anchors of ``base`` + new views) and the base views used as anchors.

    In the plan, indices 0..M-1 are the anchors (base views ``anchor_ids``), M.. the new views.
    """
    from fast3r_core.chunking.anchors import even_anchors
    from fast3r_core.chunking.plan import (
        ChunkPlan,
        auto_anchor_count,
        estimate_pass_bytes,
        passes_with_anchors,
        resolve_pass_size,
    )
    from fast3r_core.forward_memory import available_memory
    from fast3r_core.inference import autocast_dtype

    device = next(model.parameters()).device
    amp = autocast_dtype(device, opts.precision)
    m_max = min(base.n_views, opts.anchors or MAX_AUTO_ANCHORS)
    largest_base = max((base.view_shape(v) for v in range(base.n_views)), key=lambda s: s[0] * s[1])
    shapes = [v.true_shape for v in views] + [largest_base] * m_max
    largest = max(shapes, key=lambda s: s[0] * s[1])
    per_pass, budget = resolve_pass_size(
        shapes,
        model.config,
        available=available_memory(device.type, device.index) if opts.max_views_per_pass is None else None,
        max_views_per_pass=opts.max_views_per_pass,
        upper=len(shapes),
        host_memory=device.type != "cuda",
        bytes_per_el=2 if amp is not None else 4,
        weight_bytes_per_el=next(model.parameters()).element_size(),
        device_type=device.type,
    )
    per_pass = max(2, min(per_pass, len(shapes)))  # below 2: one small pass; the model's check decides
    if opts.anchors is not None:
        m = opts.anchors
    else:  # the alignment is the whole point here: up to 4 anchors even in a small pass ...
        m = max(auto_anchor_count(per_pass, base.n_views + 1), min(4, base.n_views))
        if len(views) + m > per_pass:  # ... but several passes keep at least half of each for new views
            m = min(m, max(1, per_pass // 2))
    m = max(1, min(m, base.n_views, per_pass - 1))
    if opts.anchor_method == "even":
        anchor_ids = even_anchors(base.n_views, m)
    else:
        anchor_ids = anchors_near_new_views(base, [v.rgb for v in views], m)
    m = len(anchor_ids)
    passes = passes_with_anchors(list(range(m)), list(range(m, m + len(views))), per_pass)
    plan = ChunkPlan(
        n_views=m + len(views),
        max_views_per_pass=per_pass,
        anchors=tuple(range(m)),
        passes=passes,
        budget=budget,
        need=estimate_pass_bytes(
            model.config, largest, max(len(p) for p in passes), 2 if amp is not None else 4, device.type
        ),
        automatic=opts.max_views_per_pass is None,
    )
    return plan, anchor_ids


def add_views(
    base: Reconstruction,
    inputs: PathInput | Sequence[ViewInput] | PreparedViews,
    model: Fast3R,
    options: ReconstructOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    model_name: str | None = None,
    run_report: RunReport | None = None,
) -> Reconstruction:
    """Add photos to an existing result: predict only the new views, with anchor views of ``base``.

    Each pass holds M anchor views of ``base`` (view 0 first, then the base views most like the new
    photos) and some new views. The anchors' images are rebuilt from the stored model-resolution
    colours (the original photos may have moved); the pass is aligned into ``base``'s frame by the robust
    similarity fitted between its anchor pointmaps and ``base``'s stored ones. The new views' poses are
    estimated with ``base``'s focal (unless per-view focals are asked for or were used, or view 0's
    intrinsics were known: then each new view without known intrinsics gets its own focal); known
    intrinsics and masks of the new views come from ``options`` as in :func:`reconstruct`. Existing
    views keep everything they had.

    Parameters
    ----------
    base : the existing result (e.g. from :func:`fast3r_core.project_file.load_project`).
    inputs : the new photos (folder, files, video, loaded ViewInputs at ``base``'s size, or
        :class:`PreparedViews`).
    options : run options; ``size`` must be ``base``'s (default: ``base``'s size and otherwise defaults).
    model_name : recorded in the new run entry.

    Returns
    -------
    A new Reconstruction: ``base``'s views, then the new ones (input order); ``runs`` gains an entry
    ``{"kind": "add", "views": [...new indices], "anchors": [...base indices], "passes": ..., ...}``.

    Raises
    ------
    InputError
        ``options.size`` differs from the size ``base`` was made at (the stored anchor images exist
        only at that size, and the pointmaps would not correspond): refused rather than resampled.
    NoImagesError
        No usable new photo (every one unreadable, or already in ``base``).
    Cancelled
    """
    from fast3r_core.chunking.runner import predict_passes

    size = project_size(base)
    opts = options or ReconstructOptions(size=size)
    if opts.size != size:
        raise InputError(
            f"The project was made at {size} px; photos can only be added at the same size "
            f"(not {opts.size} px). Choose {size} px, or reconstruct all the photos again at {opts.size} px."
        )
    rep = run_report if run_report is not None else RunReport()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prep = _prepared(inputs, opts, rep, progress, cancel)
    in_base = {os.path.normcase(os.path.abspath(p)) for p in base.image_paths}
    fresh = []
    for i, v in enumerate(prep.views):
        if os.path.normcase(os.path.abspath(v.path)) in in_base:
            rep.skipped.append(SkippedFile(Path(v.path), "already in the project"))
        else:
            fresh.append(i)
    if not fresh:
        raise NoImagesError("Every given photo is already in the project: nothing to add")
    prep = PreparedViews(
        [prep.views[i] for i in fresh], [prep.known[i] for i in fresh], [prep.masks[i] for i in fresh]
    )
    views = prep.views
    timings["images"] = time.perf_counter() - t0
    check_cancel(cancel)
    base_shapes = [base.view_shape(v) for v in range(base.n_views)]
    check_output_memory(  # the grown result must fit; the base's arrays are already in memory
        base_shapes + [v.true_shape for v in views], resident=RESULT_BYTES_PER_PIXEL * base.n_pixels
    )

    t = time.perf_counter()
    plan, anchor_ids = _plan_addition(model, base, views, opts)
    m = len(anchor_ids)
    log.info(
        "adding %d views to %d in %d pass(es) with anchors %s",
        len(views),
        base.n_views,
        plan.n_passes,
        anchor_ids,
    )

    def image(i: int) -> torch.Tensor:
        return _rgb_tensor(base.colors[anchor_ids[i]]) if i < m else views[i - m].image

    target = {i: (_masked_points(base, a), base.conf[a]) for i, a in enumerate(anchor_ids)}
    res = predict_passes(
        model,
        image,
        plan.passes,
        plan.anchors,
        target=target,
        fuse_anchors=False,
        options=_inference_options(opts),
        progress=progress,
        cancel=cancel,
    )
    preds = [res.preds[m + j] for j in range(len(views))]
    timings["model"] = time.perf_counter() - t
    check_cancel(cancel)

    t = time.perf_counter()
    # view 0's known K tells nothing about another camera's focal: the new views estimate their own
    per_view = (
        opts.per_view_focal
        or bool(base.options.get("per_view_focal", False))
        or bool(base.intrinsics_known[0])
    )
    focal = None if per_view else float(base.intrinsics[0, 0, 0])
    est, aligned, k_orig = _poses(
        preds, prep, replace(opts, per_view_focal=per_view), progress, cancel, focal
    )
    n0 = base.n_views
    rep.failed_poses.extend(n0 + v for v in est.failed_views)
    timings["poses"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    run_opts = opts.to_json()
    run_opts["device"] = str(next(model.parameters()).device)
    run = replace(
        _run_record(
            plan,
            views=list(range(n0, n0 + len(views))),
            kind="add",
            model=model_name if model_name is not None else getattr(model, "name", ""),
            architecture=_architecture(model),
            alignment=res.alignment_json(),
            options=run_opts,
            timings=dict(timings),
        ),
        anchors=[int(a) for a in anchor_ids],  # the existing views the new ones were aligned to
    )
    runs = list(base.runs)
    if runs[-1].timings is None and base.timings:
        runs[-1] = replace(runs[-1], timings=dict(base.timings))  # keep the earlier run's figures
    return Reconstruction(
        pts3d=(*base.pts3d, *(p["pts3d_in_other_view"] for p in preds)),
        conf=(*base.conf, *(p["conf"] for p in preds)),
        pts3d_local=(*base.pts3d_local, *aligned),
        conf_local=(*base.conf_local, *(p["conf_local"] for p in preds)),
        colors=(*base.colors, *(v.rgb for v in views)),
        cam_to_world=np.concatenate([base.cam_to_world, est.c2w]),
        intrinsics=np.concatenate([base.intrinsics, est.intrinsics]),
        intrinsics_original=np.concatenate([base.intrinsics_original, k_orig]),
        original_sizes=np.concatenate(
            [base.original_sizes, np.array([v.original_size for v in views], dtype=np.int64)]
        ),
        resized_sizes=np.concatenate(
            [base.resized_sizes, np.array([v.resized_size for v in views], dtype=np.int64)]
        ),
        crop_boxes=np.concatenate([base.crop_boxes, np.array([v.crop_box for v in views], dtype=np.int64)]),
        image_paths=(*base.image_paths, *(str(Path(v.path)) for v in views)),
        model_name=base.model_name,
        options=base.options,
        timings=timings,
        pose_ok=np.concatenate([base.pose_ok, est.ok]),
        runs=(*runs, run),
        pose_inlier_share=np.concatenate([base.pose_inlier_share, _inlier_share(est)]),
        # the new views come after the old: the old points keep their ids, and a "keep" selection
        # (made before the new points existed) keeps the new ones too
        edits=with_appended_points(
            base.edits, base.n_pixels, base.n_pixels + sum(int(p["conf"].size) for p in preds)
        ),
        intrinsics_known=np.concatenate(
            [base.intrinsics_known, np.asarray(est.intrinsics_known, dtype=bool)]
        ),
        keep_masks=_joined_masks(base, prep),
    )


def _masked_points(rec: Reconstruction, v: int) -> np.ndarray:
    """View ``v``'s global pointmap with NaN at its masked pixels (left out of an alignment)."""
    if rec.keep_masks is None:
        return rec.pts3d[v]
    return np.where(rec.keep_masks[v][..., None], rec.pts3d[v], np.float32(np.nan))


def _joined_masks(base: Reconstruction, prep: PreparedViews) -> tuple[np.ndarray, ...] | None:
    """``base``'s keep-masks followed by the new views' (None when neither has any)."""
    new = prep.keep_masks
    if base.keep_masks is None and new is None:
        return None
    old = base.keep_masks or tuple(np.ones(base.view_shape(v), bool) for v in range(base.n_views))
    return (*old, *(new or (np.ones(v.true_shape, bool) for v in prep.views)))
