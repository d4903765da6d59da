"""``fast3r export`` (a project file -> one export format) and ``fast3r info`` (describe a project)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fast3r_core.export.formats import FORMATS
from fast3r_core.progress import ProgressEvent

from .console import Console, Progress
from .exit_codes import EXIT_OK
from .file_destination import check_file_destination
from .output_folder import OutputFolder, discard_on_failure, top_percent_of

if TYPE_CHECKING:
    from fast3r_core.result import RunRecord

__all__ = ["cmd_export", "cmd_info", "describe_run"]


def cmd_export(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    """``fast3r export``: a project file -> one export format."""
    from fast3r_core.export import PointSelection
    from fast3r_core.project_file import load_project

    rec = load_project(args.project)
    fmt = FORMATS[args.format]
    dest = Path(args.out)
    if not fmt.is_folder and dest.is_dir():
        dest = dest / fmt.default_name
    staged: OutputFolder | None = None
    target = dest
    if fmt.is_folder:
        # the whole export appears at once (staging folder, then renames), or not at all
        if dest.suffix.lower() == ".json":  # nerfstudio's transforms.json named by the user
            staged = OutputFolder(dest.parent, overwrite=args.overwrite)
            target = staged.staging / dest.name
        else:
            staged = OutputFolder(dest, overwrite=args.overwrite)
            target = staged.staging
    else:
        from fast3r_core.atomic import clean_stale

        clean_stale(dest.parent)
        check_file_destination(dest, args.format, args.overwrite)
    if staged is not None:
        staged.refuse_inputs_inside(p for p in rec.image_paths if os.path.exists(p))
    selection = PointSelection(top_percent=top_percent_of(args.conf_percentile))
    options: dict[str, Any] = {"link_images": args.link_images} if fmt.copies_images else {}
    progress(ProgressEvent("export", 0, 1, args.format))
    if staged is not None:
        with discard_on_failure(staged):
            report = fmt.export(rec, target, selection, **options)
            staged.commit()
        output = dest
        if args.format == "nerfstudio" and dest.suffix.lower() != ".json":
            output = dest / report.path.name
    else:
        report = fmt.export(rec, target, selection, **options)
        output = dest
    progress(ProgressEvent("export", 1, 1, args.format))
    progress.close()

    summary: dict[str, Any] = {"command": "export", "format": args.format, "output": dest.resolve()}
    if args.format in ("ply", "glb"):
        summary["points_written"] = report.n_points
    elif args.format == "colmap":
        summary["points_written"] = report.n_points
        summary["colmap_mean_reprojection_error_px"] = float(report.mean_reproj_px)
        summary["missing_images"] = list(report.missing_images)
    elif args.format == "nerfstudio":
        summary["output"] = output.resolve()
    elif args.format == "cameras":
        summary["cameras"] = report.n_cameras
    for warning in report.warnings:
        console.warning(warning)
    if console.json_mode:
        console.json(summary)
        return EXIT_OK
    detail = ""
    if "points_written" in summary:
        detail = f" ({summary['points_written']} points)"
    elif "cameras" in summary:
        detail = f" ({summary['cameras']} cameras)"
    console.out(f"Wrote {summary['output']}{detail}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace, console: Console, progress: Progress) -> int:
    """``fast3r info``: views, sizes, points, model, options, timings, edits, per-view confidence."""
    import numpy as np

    from fast3r_core.edits import describe
    from fast3r_core.export.edited import edits_summary_json
    from fast3r_core.project_file import load_project

    rec = load_project(args.project)
    stats = rec.per_view_stats()
    finite = sum(
        int(np.count_nonzero(np.isfinite(p).all(axis=-1) & np.isfinite(c)))
        for p, c in zip(rec.pts3d, rec.conf, strict=True)
    )
    sizes: dict[str, int] = {}
    model_sizes: dict[str, int] = {}
    for v in range(rec.n_views):
        w, h = (int(x) for x in rec.original_sizes[v])
        sizes[f"{w}x{h}"] = sizes.get(f"{w}x{h}", 0) + 1
        mh, mw = rec.view_shape(v)
        model_sizes[f"{mw}x{mh}"] = model_sizes.get(f"{mw}x{mh}", 0) + 1
    views: list[dict[str, Any]] = [
        {
            "index": s.view,
            "image": rec.image_paths[s.view],
            "original_size": [int(x) for x in rec.original_sizes[s.view]],
            "model_size": [rec.view_shape(s.view)[1], rec.view_shape(s.view)[0]],
            "mean_confidence": s.mean_conf,
            "pose_ok": s.pose_ok,
            "intrinsics_source": "known" if rec.intrinsics_known[s.view] else "estimated",
            "masked_pixels": rec.n_masked(s.view),
        }
        for s in stats
    ]
    kept = None  # finite points the crop box and the deleted selections leave (global point map)
    if rec.edits.filters_points:
        from fast3r_core.export.edited import apply_edits

        edited = apply_edits(rec, rec.global_points).points
        kept = len(edited) if edited is not None else None
    if console.json_mode:
        console.json(
            {
                "command": "info",
                "project": Path(args.project).resolve(),
                "model": rec.model_name,
                "architecture": rec.runs[0].architecture or None,
                "views": rec.n_views,
                "image_sizes": sizes,
                "model_sizes": model_sizes,
                "points": rec.n_pixels,
                "finite_points": finite,
                "points_after_edits": kept if kept is not None else finite,
                "failed_poses": [s.view for s in stats if not s.pose_ok],
                "options": rec.options,
                "timings": rec.timings,
                "runs": [r.to_json(complete=True) for r in rec.runs],
                "view_runs": rec.view_runs.tolist(),
                "edits": {"description": describe(rec.edits), **edits_summary_json(rec.edits)},
                "per_view": views,
            }
        )
        return EXIT_OK

    def counted(d: dict[str, int]) -> str:
        return ", ".join(f"{k} (x{n})" if n > 1 else k for k, n in d.items())

    console.out(f"Project      {Path(args.project).resolve()}")
    arch = rec.runs[0].architecture
    console.out(f"Model        {rec.model_name}" + (f" ({arch})" if arch else ""))
    console.out(f"Views        {rec.n_views} ({sum(not s.pose_ok for s in stats)} failed poses)")
    console.out(f"Image sizes  {counted(sizes)}")
    console.out(f"Model sizes  {counted(model_sizes)}")
    after = f", {kept} after the crop and deletions" if kept is not None else ""
    console.out(f"Points       {rec.n_pixels} ({finite} finite{after})")
    n_known = int(rec.intrinsics_known.sum())
    console.out(f"Intrinsics   {n_known} known, {rec.n_views - n_known} estimated")
    masked = [item["masked_pixels"] for item in views]
    if any(masked):
        console.out(f"Masks        {sum(masked)} pixels masked in {sum(m > 0 for m in masked)} view(s)")
    excluded = rec.options.get("exclude") or []
    if excluded:
        console.out(f"Excluded     {', '.join(str(x) for x in excluded)}")
    opts = ", ".join(f"{k}={v}" for k, v in sorted(rec.options.items()) if v is not None)
    console.out(f"Options      {opts}")
    tim = ", ".join(f"{k} {v:.2f} s" for k, v in rec.timings.items())
    console.out(f"Timings      {tim}")
    for i, run in enumerate(rec.runs):
        console.out(f"{'Runs' if i == 0 else '':<12} {describe_run(i, run)}")
    for i, line in enumerate(describe(rec.edits) or ["none (the model's world)"]):
        console.out(f"{'Edits' if i == 0 else '':<12} {line}")
    console.out("Per view (mean confidence, pose, intrinsics, masked pixels):")
    for item in views:
        pose = "ok" if item["pose_ok"] else "FAILED"
        console.out(
            f"  {item['index']:>4}  {item['mean_confidence']:9.3f}  {pose:<6}  "
            f"{item['intrinsics_source']:<9}  {item['masked_pixels']:>8}  {Path(item['image']).name}"
        )
    return EXIT_OK


def describe_run(index: int, run: RunRecord) -> str:
    """``run 1 (add): views 8-10, 1 pass of 7 views, anchors 0, 3, 5, 6, model demo``."""
    views = run.views
    span = (
        f"{views[0]}-{views[-1]}" if len(views) > 1 and views == list(range(views[0], views[-1] + 1)) else ""
    )
    text = f"run {index} ({run.kind}): {len(views)} view(s)"
    text += f" {span}" if span else ""
    passes = run.passes
    if passes > 1 or run.anchors:
        largest = max(run.views_per_pass, default=len(views))
        text += f", {passes} pass{'es' if passes != 1 else ''} of up to {largest} views"
        text += f", anchors {', '.join(str(a) for a in run.anchors)}"
    if run.model:
        text += f", model {run.model}"
    return text
