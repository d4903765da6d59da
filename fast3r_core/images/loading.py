"""Loading all inputs as model views: discovery, video sampling and parallel decoding, in input order.

Unreadable images are skipped and reported (:class:`LoadResult`), never fatal on their own.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from fast3r_core.errors import InputError, NoImagesError
from fast3r_core.progress import SKIPPED_FILE_RECORD, ProgressCallback, check_cancel, report

from .decoding import ViewInput, _check_size, load_image
from .discovery import (
    Discovery,
    PathInput,
    SkippedFile,
    _as_path_list,
    discover_inputs,
    heif_supported,
    image_extensions,
    is_video,
)
from .video import _video_folder_name, default_frames_root, extract_video_frames

__all__ = ["PARALLEL_THRESHOLD", "LoadResult", "load_images", "load_inputs", "load_video"]

logger = logging.getLogger(__name__)


#: Above this many files, decode in a thread pool (Pillow releases the GIL while decoding/resizing).
PARALLEL_THRESHOLD = 4


def _load_many(
    items: list[tuple[Path, str]],
    size: int,
    *,
    square_ok: bool,
    max_workers: int | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> tuple[list[ViewInput | None], list[SkippedFile]]:
    """Decode ``items`` (path, display name), in parallel when many; results keep input order."""
    total = len(items)
    results: list[ViewInput | None] = [None] * total
    errors: dict[int, str] = {}
    report(progress, "images", 0, total)
    heif_supported()  # register the HEIF opener once, before worker threads open files
    workers = max_workers if max_workers is not None else min(8, os.cpu_count() or 1)
    if total > PARALLEL_THRESHOLD and workers > 1:
        pool = ThreadPoolExecutor(max_workers=min(workers, total), thread_name_prefix="fast3r-decode")
        try:
            check_cancel(cancel)
            futures: dict[Future[ViewInput], int] = {
                pool.submit(load_image, path, size, square_ok=square_ok, name=label): i
                for i, (path, label) in enumerate(items)
            }
            for done, fut in enumerate(as_completed(futures), start=1):
                check_cancel(cancel)
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except InputError as exc:
                    errors[i] = str(exc)
                report(progress, "images", done, total)
        finally:
            # On cancel or error, drop queued work; running decodes finish on their own.
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        for i, (path, label) in enumerate(items):
            check_cancel(cancel)
            try:
                results[i] = load_image(path, size, square_ok=square_ok, name=label)
            except InputError as exc:
                errors[i] = str(exc)
            report(progress, "images", i + 1, total)
    skipped: list[SkippedFile] = []
    for i in sorted(errors):
        path = items[i][0]
        reason = errors[i].removeprefix(f"{path}: ")
        logger.warning("Skipping unreadable image %s: %s", path, reason, extra={SKIPPED_FILE_RECORD: True})
        skipped.append(SkippedFile(path, reason))
    return results, skipped


@dataclass(frozen=True)
class LoadResult:
    """Result of :func:`load_inputs`.

    Attributes
    ----------
    views : list[ViewInput]
        Usable views in input order (at least one).
    skipped : list[SkippedFile]
        Unreadable or unsupported files, with the reason; for the CLI/GUI to list.
    ignored : int
        Number of files inside folders ignored silently (non-image extensions).
    """

    views: list[ViewInput]
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: int = 0


def load_inputs(
    paths: PathInput,
    size: int = 512,
    *,
    square_ok: bool = False,
    fps: float = 1.0,
    max_frames: int = 100,
    frames: str = "uniform",
    frames_root: str | os.PathLike[str] | None = None,
    max_workers: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> LoadResult:
    """Discover, decode and preprocess all inputs; report what was skipped.

    Parameters
    ----------
    paths : str, PathLike or sequence of them
        A folder, an image file, a video file, or a list of them (see :func:`discover_inputs`).
        Videos given explicitly are sampled with :func:`extract_video_frames`.
    size : int
        Model resolution: 512 (default) or 224 (see :func:`resize_crop_geometry`).
    square_ok : bool
        Keep square images square (sizes other than 224).
    fps, max_frames : float, int
        Video sampling: about ``fps`` frames per second of video, at most ``max_frames`` per video.
    frames : {"uniform", "sharp"}
        How video frames are chosen: evenly spaced, or the sharpest of each time bin
        (:func:`extract_video_frames`).
    frames_root : str or PathLike, optional
        Folder under which each video gets its own frames folder; default
        :func:`default_frames_root`.
    max_workers : int, optional
        Decoding threads (default min(8, CPU count)); 1 disables parallel decoding.
    progress : callable, optional
        Receives ``"video"`` events (frames written) and ``"images"`` events (files decoded).
    cancel : threading.Event, optional
        Checked between files and frames; raises :class:`~fast3r_core.errors.Cancelled`.

    Returns
    -------
    LoadResult
        Views in input order, skipped files with reasons, count of ignored folder entries.

    Raises
    ------
    InputError
        A path does not exist, a size/option is invalid, or a video cannot be decoded.
    NoImagesError
        Nothing usable is left; the message names the input.
    Cancelled
        ``cancel`` was set.
    """
    _check_size(size)
    given = _as_path_list(paths)
    if not given:
        raise NoImagesError("No input given: choose a folder, image files or a video")
    found = discover_inputs(given)
    items: list[tuple[Path, str]] = []
    for f in found.files:
        if is_video(f):
            root = Path(frames_root) if frames_root is not None else default_frames_root()
            taken = extract_video_frames(
                f,
                fps=fps,
                max_frames=max_frames,
                frames_dir=root / _video_folder_name(f, fps, max_frames, frames),
                method=frames,
                progress=progress,
                cancel=cancel,
            )
            items.extend((fr.path, f"{f.name} #{fr.index:04d}") for fr in taken)
        else:
            items.append((f, f.name))
    results, unreadable = _load_many(
        items, size, square_ok=square_ok, max_workers=max_workers, progress=progress, cancel=cancel
    )
    views = [v for v in results if v is not None]
    skipped = found.skipped + unreadable
    if not views:
        raise NoImagesError(_no_images_message(given, found, skipped))
    if skipped or found.ignored:
        logger.info(
            "Loaded %d views; skipped %d unreadable/unsupported files; ignored %d other files",
            len(views),
            len(skipped),
            len(found.ignored),
        )
    return LoadResult(views, skipped, len(found.ignored))


def _no_images_message(given: list[Path], found: Discovery, skipped: list[SkippedFile]) -> str:
    where = str(given[0]) if len(given) == 1 else f"{len(given)} inputs ({given[0]}, ...)"
    exts = ", ".join(sorted(image_extensions()))
    parts = [f"No usable image in {where}."]
    if skipped:
        listed = "; ".join(f"{s.path.name}: {s.reason}" for s in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        parts.append(f"{len(skipped)} file(s) could not be used ({listed}{more}).")
    if found.ignored:
        videos = sum(1 for p in found.ignored if is_video(p))
        parts.append(f"{len(found.ignored)} other file(s) ignored.")
        if videos:
            parts.append("Videos inside a folder are not loaded: open the video itself.")
    parts.append(f"Supported image types: {exts}.")
    return " ".join(parts)


def load_images(paths: PathInput, size: int = 512) -> list[ViewInput]:
    """Load a folder, a file, or a list of files as model inputs (skipped files are only logged).

    Parameters
    ----------
    paths : str, PathLike or sequence of them
        See :func:`load_inputs` (videos are sampled at 1 fps, at most 100 frames).
    size : int
        512 (default) or 224.

    Returns
    -------
    list[ViewInput]
        In input order (folder contents sorted by file name).

    Raises
    ------
    InputError, NoImagesError
        As :func:`load_inputs`. Use :func:`load_inputs` to get the list of skipped files.
    """
    return load_inputs(paths, size).views


def load_video(
    path: str | os.PathLike[str],
    size: int = 512,
    fps: float = 1.0,
    max_frames: int = 100,
    frames_dir: str | os.PathLike[str] | None = None,
    *,
    square_ok: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[ViewInput]:
    """Sample a video (see :func:`extract_video_frames`) and load its frames as views.

    Returns
    -------
    list[ViewInput]
        One view per sampled frame, named ``"<video file name> #<frame number, 4 digits>"``; ``path``
        is the written JPEG.

    Raises
    ------
    InputError
        As :func:`extract_video_frames`; also if no written frame can be decoded.
    """
    _check_size(size)
    p = Path(path)
    frames = extract_video_frames(
        p, fps=fps, max_frames=max_frames, frames_dir=frames_dir, progress=progress, cancel=cancel
    )
    items = [(fr.path, f"{p.name} #{fr.index:04d}") for fr in frames]
    results, _ = _load_many(
        items, size, square_ok=square_ok, max_workers=None, progress=progress, cancel=cancel
    )
    views = [v for v in results if v is not None]
    if not views:
        raise InputError(f"{p}: no sampled frame could be decoded")
    return views
