"""One reconstruction run: inputs -> images -> Fast3R -> poses -> :class:`Reconstruction`.

The CLI and the GUI both call :func:`reconstruct`, so what works in one works in the other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fast3r_core.errors import InputError
from fast3r_core.geometry import intrinsics_model_to_original
from fast3r_core.images import PathInput, SkippedFile, ViewInput, load_inputs
from fast3r_core.poses import align_local_to_global, estimate_poses_detailed
from fast3r_core.progress import ProgressCallback, check_cancel, report
from fast3r_core.result import Reconstruction

if TYPE_CHECKING:
    from fast3r_core.model import Fast3R

__all__ = ["ReconstructOptions", "RunReport", "reconstruct"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconstructOptions:
    """Options of a run (JSON-able; stored in the project file).

    Attributes
    ----------
    size : 512 or 224, the model input size (long side at 512; square crop at 224).
    device : "auto", "cpu", "cuda", "cuda:N" or "mps" (informational here: the model is already placed).
    precision : "auto" | "fp32" | "bf16" | "fp16" (see ``InferenceOptions``).
    num_threads : CPU threads (None: all cores).
    seed : seed of the image-index draw; ``image_ids`` overrides it.
    max_views : keep at most this many images (evenly spaced over the sorted inputs).
    video_fps, video_max_frames : frame sampling of a video input.
    per_view_focal : estimate one focal per view (photos from different cameras).
    pnp_iterations, pnp_reproj_px : PnP-RANSAC settings (published: 100, 5 px).
    align_percentile : confidence percentile of the local->global alignment mask (published: 85).
    """

    size: int = 512
    device: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None
    seed: int = 0
    image_ids: tuple[int, ...] | None = None
    max_views: int | None = None
    video_fps: float = 1.0
    video_max_frames: int = 100
    per_view_focal: bool = False
    pnp_iterations: int = 100
    pnp_reproj_px: float = 5.0
    align_percentile: float = 85.0
    encoder_chunk: int | None = None
    head_chunk: int | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_ids"] = list(self.image_ids) if self.image_ids is not None else None
        return d


@dataclass
class RunReport:
    """What a run noticed besides its result: skipped inputs and views whose pose failed."""

    skipped: list[SkippedFile] = field(default_factory=list)
    failed_poses: list[int] = field(default_factory=list)
    ignored: int = 0


def _subsample(views: list[ViewInput], max_views: int | None) -> list[ViewInput]:
    if max_views is None or len(views) <= max_views:
        return views
    if max_views < 1:
        raise InputError(f"max_views must be at least 1, not {max_views}")
    keep = np.unique(np.linspace(0, len(views) - 1, max_views).round().astype(int))
    log.info("keeping %d of %d images (max_views)", len(keep), len(views))
    return [views[i] for i in keep]


def reconstruct(
    inputs: PathInput | Sequence[ViewInput],
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
    inputs : a folder, an image or video file, a list of image files, or already loaded ViewInputs.
    model : a loaded Fast3R (``fast3r_core.load_model``), on its device.
    options : run options (default :class:`ReconstructOptions`).
    progress : called with ProgressEvent for the stages images, encode, fuse, heads, poses.
    cancel : set it to stop the run between steps; raises :class:`Cancelled`, keeps nothing.
    run_report : filled with skipped files and failed poses when given.

    Returns
    -------
    Reconstruction with world = the global pointmap frame (about view 0's camera, OpenCV axes).
    """
    from fast3r_core.inference import InferenceOptions, predict

    opts = options or ReconstructOptions()
    rep = run_report if run_report is not None else RunReport()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    if isinstance(inputs, Sequence) and inputs and all(isinstance(v, ViewInput) for v in inputs):
        views = list(inputs)  # type: ignore[arg-type]
    else:
        loaded = load_inputs(
            inputs,  # type: ignore[arg-type]
            size=opts.size,
            fps=opts.video_fps,
            max_frames=opts.video_max_frames,
            progress=progress,
            cancel=cancel,
        )
        views = loaded.views
        rep.skipped.extend(loaded.skipped)
        rep.ignored += loaded.ignored
    views = _subsample(views, opts.max_views)
    timings["images"] = time.perf_counter() - t0
    check_cancel(cancel)

    t = time.perf_counter()
    inf = InferenceOptions(
        precision=opts.precision,
        num_threads=opts.num_threads,
        encoder_chunk=opts.encoder_chunk,
        head_chunk=opts.head_chunk,
        seed=opts.seed,
    )
    preds = predict(
        model, [v.image for v in views], opts.image_ids, options=inf, progress=progress, cancel=cancel
    )
    timings["model"] = time.perf_counter() - t
    check_cancel(cancel)

    t = time.perf_counter()
    pts = [p["pts3d_in_other_view"] for p in preds]
    conf = [p["conf"] for p in preds]
    report(progress, "poses", 0, len(views))
    est = estimate_poses_detailed(
        pts,
        conf,
        niter=opts.pnp_iterations,
        reproj_px=opts.pnp_reproj_px,
        per_view_focal=opts.per_view_focal,
        pts3d_local=[p["pts3d_local"] for p in preds] if opts.per_view_focal else None,
        conf_local=[p["conf_local"] for p in preds] if opts.per_view_focal else None,
        seed=opts.seed,
        progress=progress,
        cancel=cancel,
    )
    aligned = align_local_to_global([p["pts3d_local"] for p in preds], pts, conf, opts.align_percentile)
    report(progress, "poses", len(views), len(views))
    rep.failed_poses.extend(est.failed_views)
    timings["poses"] = time.perf_counter() - t

    k_orig = np.stack(
        [
            intrinsics_model_to_original(k, v.crop_box, v.resized_size, v.original_size)
            for k, v in zip(est.intrinsics, views, strict=True)
        ]
    )
    timings["total"] = time.perf_counter() - t0
    run_opts = opts.to_json()
    run_opts["device"] = str(next(model.parameters()).device)
    return Reconstruction(
        pts3d=tuple(pts),
        conf=tuple(conf),
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
        model_name=model_name if model_name is not None else getattr(model, "name", ""),
        options=run_opts,
        timings=timings,
        pose_ok=est.ok,
    )
