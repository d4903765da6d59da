"""``fast3r reconstruct`` (photos or a video -> outputs in a folder) and ``fast3r add`` (more photos
-> an existing project).

Cheap checks run first (output folder writable, inputs exist, model loadable, results fit in memory),
then decoding, then the slow model load and the run. Large image sets run in passes that share anchor
views (``--max-views-per-pass``, ``--anchors``); ``add`` reconstructs new photos against anchor views of
a project and appends them to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fast3r_core.errors import InputError, LicenseNotAcceptedError, ModelNotAvailableError
from fast3r_core.export.formats import FORMATS
from fast3r_core.options import ReconstructOptions
from fast3r_core.progress import ProgressEvent

from .commands_project import describe_run
from .console import Console, Progress, fmt_bytes
from .exit_codes import EXIT_OK
from .file_destination import project_destination
from .output_folder import (
    OUTPUT_NAMES,
    RECONSTRUCT_FORMATS,
    OutputFolder,
    discard_on_failure,
    display_name,
    top_percent_of,
)

if TYPE_CHECKING:
    from fast3r_core.images.loading import LoadResult
    from fast3r_core.pipeline import PreparedViews
    from fast3r_core.result import Reconstruction

__all__ = ["cmd_add", "cmd_reconstruct", "export_outputs"]

log = logging.getLogger(__name__)

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_MAX_LISTED = 8


def _list_files(items: Sequence[tuple[str, str]]) -> str:
    """``a.jpg (reason), b.png (reason) and N more`` for one warning line."""
    shown = ", ".join(f"{name} ({reason})" for name, reason in items[:_MAX_LISTED])
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return shown + more


def _model_label(source: str) -> str:
    """The model name stored in the project: the registered name or the absolute path of a local model."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def _registered(source: str) -> bool:
    """``source`` names a registered model (its name, or its Hub repo id in any case)."""
    from fast3r_core.weights.registry import _lookup

    return _lookup(source) is not None


def _log_memory_estimate(args: argparse.Namespace) -> None:
    """Log the run's peak-memory estimate from the image headers, as the app shows it before a run.

    Only logged: the estimate is for the CPU's RAM and the run checks the memory again, exactly, once
    the images are decoded and the model is on its device.
    """
    from fast3r_core.preflight import estimate_memory

    try:
        check = estimate_memory(
            args.inputs,
            args.model,
            args.size,
            max_views=args.max_views,
            video_max_frames=args.video_max_frames,
            max_views_per_pass=args.max_views_per_pass,
            anchors=args.anchors,
            int8=args.precision == "int8",
        )
    except Exception:  # an estimate that cannot be made must not stop the run that would check anyway
        log.debug("no memory estimate", exc_info=True)
        return
    if check is not None:
        log.info("memory estimate (RAM): %s", check.describe())


def _precheck_model(source: str, accept_license: bool) -> None:
    """Fail fast (before images are decoded) on a model that cannot be loaded or downloaded.

    Raises ModelNotAvailableError for an unknown name or a missing bundled model, and
    LicenseNotAcceptedError for a model that needs a download whose licence was not accepted. Models
    that will be downloaded are not contacted here.
    """
    from fast3r_core import weights
    from fast3r_core.preflight import license_to_accept

    try:
        weights.resolve_model_dir(source)
        return
    except ModelNotAvailableError:
        info = weights.MODELS.get(source)
        if info is None:
            if _HUB_ID_RE.match(source):
                return  # any Hub repo: load_model downloads it
            raise
        if info.repo_id is None:
            raise
        if license_to_accept(source, accept_license) is not None:
            size = f", about {fmt_bytes(info.approx_size_bytes)}" if info.approx_size_bytes else ""
            raise LicenseNotAcceptedError(
                f"The model '{info.name}' must be downloaded first{size}. Its weights are under the "
                f"{info.license_name} ({info.license_url}). {info.license_summary} To accept the licence "
                "and download it, pass --accept-license (or run 'fast3r download "
                f"{info.name} --accept-license')."
            ) from None


def _run_options(
    args: argparse.Namespace, *, size: int, max_views: int | None = None, per_view_focal: bool = False
) -> ReconstructOptions:
    """The run's options from the arguments that reconstruct and add share (device, precision, threads,
    seed, video sampling, passes, intrinsics, masks, frames, exclusions) plus ``size`` and
    reconstruct's ``max_views`` / ``per_view_focal``. Paths are made absolute for the project's record."""
    intrinsics = args.intrinsics
    if intrinsics not in ("auto", "estimate"):
        intrinsics = os.path.abspath(intrinsics)
    return ReconstructOptions(
        size=size,
        device=args.device,
        precision=args.precision,
        num_threads=args.threads,
        seed=args.seed,
        max_views=max_views,
        video_fps=args.video_fps,
        video_max_frames=args.video_max_frames,
        per_view_focal=per_view_focal,
        max_views_per_pass=args.max_views_per_pass,
        anchors=args.anchors,
        intrinsics=intrinsics,
        masks=os.path.abspath(args.masks) if args.masks else None,
        frames=args.frames,
        exclude=tuple(args.exclude),
    )


def export_outputs(
    rec: Reconstruction,
    folder: Path,
    formats: Sequence[str],
    top_percent: float,
    progress: Callable[[ProgressEvent], None],
    *,
    link_images: bool = False,
) -> tuple[dict[str, Path], dict[str, int], float | None]:
    """Write ``formats`` into ``folder``: (output paths, points written per format, COLMAP error)."""
    from fast3r_core.export import PointSelection
    from fast3r_core.project_file import save_project

    selection = PointSelection(top_percent=top_percent)
    paths: dict[str, Path] = {}
    counts: dict[str, int] = {}
    reproj: float | None = None
    for i, fmt in enumerate(formats):
        progress(ProgressEvent("export", i, len(formats), fmt))
        dest = folder / OUTPUT_NAMES[fmt]
        paths[fmt] = dest
        if fmt == "project":
            save_project(rec, dest)
            continue
        spec = FORMATS[fmt]
        options: dict[str, Any] = {"link_images": link_images} if spec.copies_images else {}
        if fmt == "nerfstudio":
            # points.ply beside transforms.json; the "ply" output (written after) has the same points
            # plus those of views without a pose, which nerfstudio leaves out.
            options["ply_file_path"] = OUTPUT_NAMES["ply"]
        report = spec.export(rec, dest, selection, **options)
        if spec.takes_selection:
            counts[fmt] = report.n_points
        if fmt == "colmap":
            reproj = float(report.mean_reproj_px)
    progress(ProgressEvent("export", len(formats), len(formats)))
    return paths, counts, reproj


def cmd_reconstruct(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    """``fast3r reconstruct``: inputs -> model -> every requested output in ``--out``."""
    t_start = time.perf_counter()
    top_percent = top_percent_of(args.conf_percentile)
    # fail fast: before images and model
    out = OutputFolder(args.out, overwrite=args.overwrite, replace_all=True)
    with discard_on_failure(out):
        from fast3r_core import images, pipeline, weights

        options = _run_options(
            args, size=args.size, max_views=args.max_views, per_view_focal=args.per_view_focal
        )
        # Cheap checks first (paths exist, model loadable), then decoding, then the slow model load.
        out.refuse_inputs_inside(images.discover_inputs(args.inputs).files)
        _precheck_model(args.model, args.accept_license)
        _log_memory_estimate(args)
        t = time.perf_counter()
        loaded, prepared = load_prepared(args.inputs, options, progress)
        t_images = time.perf_counter() - t
        # the result and the exports must fit too: refuse now rather than run out of memory at the end
        from fast3r_core.output_memory import check_output_memory

        check_output_memory([v.true_shape for v in prepared.views], args.formats, top_percent=top_percent)
        skipped = [(str(s.path), s.reason) for s in loaded.skipped]
        if skipped:
            progress.close()
            console.warning(
                f"skipped {len(skipped)} file(s) that could not be used: "
                + _list_files([(Path(p).name, r) for p, r in skipped])
            )

        t = time.perf_counter()
        model = weights.load_model(
            args.model, args.device, accept_license=args.accept_license, progress=progress
        )
        t_model = time.perf_counter() - t

        report = pipeline.RunReport(skipped=list(loaded.skipped), ignored=loaded.ignored)
        rec = pipeline.reconstruct(
            prepared,
            model,
            options,
            progress,
            None,
            model_name=_model_label(args.model),
            run_report=report,
        )
        del model
        timings = {
            "load_images": t_images,
            "load_model": t_model,
            "inference": float(rec.timings.get("model", math.nan)),
            "poses": float(rec.timings.get("poses", math.nan)),
        }
        rec = dataclasses.replace(rec, timings={**rec.timings, "images": t_images, "load_model": t_model})
        failed = sorted(int(v) for v in report.failed_poses)
        if failed:
            progress.close()
            names = [Path(rec.image_paths[v]).name for v in failed]
            console.warning(
                f"pose estimation failed for {len(failed)} view(s): {', '.join(names[:_MAX_LISTED])}; "
                "they are left out of the COLMAP and Nerfstudio exports"
            )

        t = time.perf_counter()
        paths, counts, reproj = export_outputs(
            rec, out.staging, args.formats, top_percent, progress, link_images=args.link_images
        )
        out.commit()
        timings["export"] = time.perf_counter() - t
    progress.close()
    timings["total"] = time.perf_counter() - t_start

    final = {fmt: out.out / p.name for fmt, p in paths.items()}
    if "nerfstudio" in final and "ply" not in final:
        final["nerfstudio_points"] = out.out / OUTPUT_NAMES["ply"]
    if console.json_mode:
        console.json(
            {
                "command": "reconstruct",
                "status": "ok",
                "model": rec.model_name,
                "architecture": rec.runs[0].architecture or None,
                "views": rec.n_views,
                "images": [os.path.abspath(p) for p in rec.image_paths],
                "image_size": args.size,
                "conf_percentile": args.conf_percentile,
                "points_total": rec.n_pixels,
                "points_written": counts,
                "skipped": [{"path": p, "reason": r} for p, r in skipped],
                "failed_poses": failed,
                "runs": [r.to_json(complete=True) for r in rec.runs],
                "colmap_mean_reprojection_error_px": reproj,
                "timings": timings,
                "out_dir": out.out,
                "outputs": final,
            }
        )
        return EXIT_OK
    extra = []
    if skipped:
        extra.append(f"{len(skipped)} file(s) skipped")
    if failed:
        extra.append(f"{len(failed)} pose(s) failed")
    note = f" ({', '.join(extra)})" if extra else ""
    console.out(
        f"Reconstructed {rec.n_views} view(s) with {rec.model_name} in {timings['total']:.1f} s{note}."
    )
    if rec.chunking_summary():
        console.out(f"  ({rec.chunking_summary()})")
    console.out(f"Wrote into {out.out}:")
    for fmt in (f for f in RECONSTRUCT_FORMATS if f in args.formats):
        name = display_name(fmt)
        detail = ""
        if fmt in counts:
            detail = f"{counts[fmt]} points"
        if fmt == "colmap" and reproj is not None and math.isfinite(reproj):
            detail += f", mean reprojection error {reproj:.2f} px"
        if fmt == "cameras":
            detail = f"{rec.n_views} cameras"
        console.out(f"  {name:<16} {detail}".rstrip())
    return EXIT_OK


def load_prepared(
    inputs: Sequence[str], options: ReconstructOptions, progress: Progress
) -> tuple[LoadResult, PreparedViews]:
    """Decode the inputs, then apply exclusions, intrinsics and masks (``pipeline.prepare_views``):
    a bad file fails here, before the (slow) model load."""
    from fast3r_core import images, pipeline

    loaded = images.load_inputs(
        inputs,
        size=options.size,
        fps=options.video_fps,
        max_frames=options.video_max_frames,
        frames=options.frames,
        progress=progress,
    )
    return loaded, pipeline.prepare_views(loaded.views, options)


def cmd_add(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    """``fast3r add``: a project + new photos -> the project with the new views appended."""
    from fast3r_core import images, pipeline, weights
    from fast3r_core.project_file import load_project, save_project

    t_start = time.perf_counter()
    base = load_project(args.project)
    dest = project_destination(args.project, args.out, args.overwrite)
    from fast3r_core.atomic import clean_stale

    clean_stale(dest.parent)
    try:  # fail now, not after the whole run: the result is written there at the end
        fd, probe = tempfile.mkstemp(prefix=".fast3r-write-test-", dir=dest.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"Cannot write into {str(dest.parent)!r}: {exc.strerror or exc}") from exc
    if dest.exists() and not os.access(dest, os.W_OK):
        raise InputError(f"Cannot write {str(dest)!r}: it is read-only")
    model_source = args.model or base.model_name
    if not model_source:
        raise InputError("the project does not name its model: pass --model")
    if not args.model and not _registered(model_source):
        # the project file is not trusted to pick a local path to load or a repository to download
        raise InputError(
            f"the project was made with {model_source!r}, which is not a registered model "
            f"({', '.join(weights.MODELS)}): a project file does not choose a model to load or download. "
            f"Pass --model {model_source} if you trust it, or another model"
        )
    try:
        _precheck_model(model_source, args.accept_license)
    except ModelNotAvailableError as exc:
        if args.model:
            raise
        raise ModelNotAvailableError(f"The project's model is not available ({exc}); pass --model") from exc
    size = pipeline.project_size(base)
    options = _run_options(args, size=size)
    images.discover_inputs(args.inputs)
    report = pipeline.RunReport()
    loaded, prepared = load_prepared(args.inputs, options, progress)
    report.skipped.extend(loaded.skipped)
    model = weights.load_model(
        model_source, args.device, accept_license=args.accept_license, progress=progress
    )
    rec = pipeline.add_views(
        base,
        prepared,
        model,
        options,
        progress,
        None,
        model_name=_model_label(model_source),
        run_report=report,
    )
    del model
    save_project(rec, dest)
    progress.close()
    skipped = [(str(s.path), s.reason) for s in report.skipped]
    if skipped:
        console.warning(
            f"skipped {len(skipped)} file(s): " + _list_files([(Path(p).name, r) for p, r in skipped])
        )
    failed = sorted(int(v) for v in report.failed_poses)
    run = rec.runs[-1]
    if console.json_mode:
        console.json(
            {
                "command": "add",
                "status": "ok",
                "project": dest.resolve(),
                "views": rec.n_views,
                "added": run.views,
                "anchors": run.anchors,
                "passes": run.passes,
                "alignment": run.alignment,
                "skipped": [{"path": p, "reason": r} for p, r in skipped],
                "failed_poses": failed,
                "seconds": time.perf_counter() - t_start,
            }
        )
        return EXIT_OK
    note = f" ({len(failed)} pose(s) failed)" if failed else ""
    seconds = time.perf_counter() - t_start
    console.out(
        f"Added {len(run.views)} view(s) to {base.n_views} in {seconds:.1f} s{note}: "
        f"{describe_run(len(rec.runs) - 1, run)}."
    )
    console.out(f"Wrote {dest.resolve()}")
    return EXIT_OK
