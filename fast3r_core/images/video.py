"""Video input: frames taken with OpenCV, written as JPEG files, and their cache folder.

Frames are either sampled evenly (``"uniform"``) or chosen as the sharpest of each time bin without
near-duplicates (``"sharp"``, :mod:`fast3r_core.frame_selection`); either way a frame's file keeps its
number in the video (``frame_000123.jpg``). The frames of a video are written once into a folder named
after the file, the sampling parameters and the method (a ``frames.json`` manifest records them) and
reused while the file is unchanged; the default cache folder is pruned by size and age. OpenCV and
platformdirs are imported only when used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fast3r_core.atomic import atomic_write
from fast3r_core.errors import InputError
from fast3r_core.options import FRAME_METHODS
from fast3r_core.progress import ProgressCallback, check_cancel, report

__all__ = [
    "FRAMES_CACHE_MAX_BYTES",
    "FRAMES_MAX_AGE_DAYS",
    "VideoFrame",
    "default_frames_root",
    "extract_video_frames",
    "prune_frames_cache",
]

logger = logging.getLogger(__name__)

#: Seek instead of grabbing frame by frame when the next sampled frame is this far ahead.
_SEEK_GAP = 48
_JPEG_QUALITY = 95
_MANIFEST = "frames.json"


@dataclass(frozen=True)
class VideoFrame:
    """A frame sampled from a video: its frame number (0-based) and the JPEG it was written to."""

    # a dataclass, not a NamedTuple: a tuple's field named "index" would hide tuple.index

    index: int
    path: Path


#: Sampled video frames kept in the default cache folder: the least recently used folders beyond this
#: size, and any unused for :data:`FRAMES_MAX_AGE_DAYS`, are removed after each extraction.
FRAMES_CACHE_MAX_BYTES = 2 * 1024**3
FRAMES_MAX_AGE_DAYS = 30


def default_frames_root() -> Path:
    """Default folder for sampled video frames: ``$FAST3R_CACHE_DIR/video-frames`` when that variable
    is set (like the models), else ``<user cache>/fast3r-studio/video-frames``."""
    root = os.environ.get("FAST3R_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "video-frames"
    import platformdirs

    return Path(platformdirs.user_cache_dir("fast3r-studio")) / "video-frames"


def prune_frames_cache(
    root: str | os.PathLike[str] | None = None,
    *,
    keep: Path | None = None,
    max_bytes: int = FRAMES_CACHE_MAX_BYTES,
    max_age_days: float = FRAMES_MAX_AGE_DAYS,
) -> list[Path]:
    """Remove old frame folders from the video-frames cache; return the removed folders.

    Only folders this program made are considered (a ``frames.json`` manifest, or nothing but
    ``frame_*.jpg`` files: an interrupted extraction). A folder's age is its manifest's modification
    time (touched on every reuse). ``keep`` (the folder just used) is never removed.
    """
    import shutil
    import time

    base = Path(root) if root is not None else default_frames_root()
    try:
        entries = [e for e in base.iterdir() if e.is_dir() and not e.is_symlink()]
    except OSError:
        return []
    folders: list[tuple[float, int, Path]] = []
    for d in entries:
        try:
            names = [f.name for f in d.iterdir()]
            ours = _MANIFEST in names or all(n.startswith("frame_") and n.endswith(".jpg") for n in names)
            if not ours or (keep is not None and d.resolve() == keep.resolve()):
                continue
            stamp = (d / _MANIFEST).stat().st_mtime if _MANIFEST in names else d.stat().st_mtime
            size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        except OSError:
            continue
        folders.append((stamp, size, d))
    folders.sort()  # oldest first
    total = sum(size for _, size, _ in folders)
    now = time.time()
    removed: list[Path] = []
    for stamp, size, d in folders:
        if total <= max_bytes and now - stamp <= max_age_days * 86400:
            continue
        shutil.rmtree(d, ignore_errors=True)
        total -= size
        removed.append(d)
        logger.info("removed cached video frames %s", d)
    return removed


def _video_key(path: Path, fps: float, max_frames: int, method: str = "uniform") -> str:
    st = path.stat()
    text = f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{fps!r}|{max_frames}|q{_JPEG_QUALITY}"
    if method != "uniform":  # uniform keeps the keys (and cached folders) of before the method existed
        text += f"|{method}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _video_folder_name(path: Path, fps: float, max_frames: int, method: str = "uniform") -> str:
    return f"{path.stem[:40]}-{_video_key(path, fps, max_frames, method)}"


def _sample_frame_indices(n_frames: int, native_fps: float, fps: float, max_frames: int) -> list[int]:
    """Frame numbers to keep: every ``native_fps / fps`` frames from 0, spread evenly if too many."""
    step = max(1.0, native_fps / fps)
    count = max(1, math.floor((n_frames - 1) / step) + 1)
    if count <= max_frames:
        indices = [round(i * step) for i in range(count)]
    else:
        indices = np.rint(np.linspace(0, n_frames - 1, max_frames)).astype(int).tolist()
    return sorted({min(i, n_frames - 1) for i in indices})


def _read_manifest(folder: Path, key: str) -> list[VideoFrame] | None:
    try:
        data = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        frames = [VideoFrame(int(i), folder / str(n)) for i, n in data["frames"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return frames if frames and all(f.path.is_file() for f in frames) else None


def _write_manifest(folder: Path, key: str, source: Path, frames: list[VideoFrame]) -> None:
    data = {"key": key, "source": str(source), "frames": [[f.index, f.path.name] for f in frames]}
    with atomic_write(folder / _MANIFEST, "w", error=None) as f:
        f.write(json.dumps(data))


def extract_video_frames(
    path: str | os.PathLike[str],
    *,
    fps: float = 1.0,
    max_frames: int = 100,
    frames_dir: str | os.PathLike[str] | None = None,
    method: str = "uniform",
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[VideoFrame]:
    """Take frames from a video with OpenCV and write them as JPEG (quality 95).

    ``"uniform"``: frames ``0, k, 2k, ...`` with ``k = video_fps / fps`` (at least 1) are kept; if
    there would be more than ``max_frames``, ``max_frames`` frames spread evenly over the whole video
    are kept instead. ``"sharp"``: the video is split into as many equal time bins as ``"uniform"``
    would keep frames, and the sharpest frame of each bin is kept unless it nearly duplicates the
    previous one (:func:`fast3r_core.frame_selection.iter_selected_frames`; the video is read once,
    streamed). A folder that already holds the frames of the same file (path, mtime, size),
    parameters and method (``frames.json`` manifest) is reused without decoding.

    Parameters
    ----------
    path : str or PathLike
        Video file.
    fps : float
        Frames to keep per second of video (> 0).
    max_frames : int
        Upper bound on the number of frames (>= 1).
    frames_dir : str or PathLike, optional
        Folder to write ``frame_NNNNNN.jpg`` into (``NNNNNN``: the frame's number in the video);
        default a per-video folder under :func:`default_frames_root`.
    method : {"uniform", "sharp"}
        How frames are chosen (see above).
    progress, cancel
        ``"video"`` progress events (frames written / frames planned); cancellation token.

    Returns
    -------
    list[VideoFrame]
        Frame numbers (0-based, in the video) and JPEG paths, in video order.

    Raises
    ------
    InputError
        Missing file, invalid options, or a file OpenCV cannot decode / that yields no frame.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"No such video file: {p}")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InputError(f"Invalid frame rate {fps!r}: expected a positive number")
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise InputError(f"Invalid maximum frame count {max_frames!r}: expected an integer >= 1")
    if method not in FRAME_METHODS:
        raise InputError(f"Invalid frame method {method!r}: expected one of {', '.join(FRAME_METHODS)}")
    key = _video_key(p, fps, max_frames, method)
    folder = Path(frames_dir) if frames_dir is not None else default_frames_root() / f"{p.stem[:40]}-{key}"
    in_cache = folder.parent.resolve() == default_frames_root().resolve()
    cached = _read_manifest(folder, key)
    if cached is not None:
        logger.info("Reusing %d frames of %s from %s", len(cached), p, folder)
        try:
            os.utime(folder / _MANIFEST)  # recently used: kept by prune_frames_cache
        except OSError:
            pass
        report(progress, "video", len(cached), len(cached))
        return cached

    import cv2

    not_video = f"{p} is not a video OpenCV can decode"
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise InputError(not_video)
        native_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (math.isfinite(native_fps) and native_fps > 0):
            logger.warning("%s reports no frame rate; assuming 30 fps", p)
            native_fps = 30.0
        n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if n_frames <= 0:
            # Some containers do not store a frame count: count by decoding once.
            while cap.grab():
                n_frames += 1
                check_cancel(cancel)
            cap.release()
            cap = cv2.VideoCapture(str(p))
            if n_frames <= 0 or not cap.isOpened():
                raise InputError(f"{not_video} (no frame could be read)")
        wanted = _sample_frame_indices(n_frames, native_fps, fps, max_frames)
        folder.mkdir(parents=True, exist_ok=True)
        if method == "sharp":
            cap.release()  # iter_selected_frames opens its own and reads the video once
            frames = _write_sharp_frames(p, len(wanted), folder, progress, cancel)
        else:
            logger.info(
                "Sampling %d of %d frames (%.3g fps video) from %s", len(wanted), n_frames, native_fps, p
            )
            frames = _write_uniform_frames(cap, wanted, folder, p, progress, cancel)
    finally:
        cap.release()
    if not frames:
        raise InputError(f"{not_video} (no frame could be read)")
    _write_manifest(folder, key, p, frames)
    if in_cache:
        prune_frames_cache(folder.parent, keep=folder)
    return frames


def _write_uniform_frames(
    cap: Any,
    wanted: list[int],
    folder: Path,
    source: Path,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> list[VideoFrame]:
    """Decode the frames numbered ``wanted`` (increasing) from the open ``cap`` and write them."""
    import cv2

    frames: list[VideoFrame] = []
    report(progress, "video", 0, len(wanted))
    position = 0  # number of the frame the next grab() returns
    for target in wanted:
        check_cancel(cancel)
        if target - position > _SEEK_GAP:
            # Long jumps: seek (OpenCV/FFmpeg decodes from the previous key frame).
            cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            position = target
        ok = True
        while position < target and ok:
            ok = cap.grab()
            position += 1
        if not ok or not cap.grab():
            break  # the container announced more frames than it has
        position += 1
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            break
        frames.append(_write_frame(frame, target, folder, source))
        report(progress, "video", len(frames), len(wanted))
    return frames


def _write_frame(frame: np.ndarray, index: int, folder: Path, source: Path) -> VideoFrame:
    """Write one BGR frame as ``folder/frame_<index:06d>.jpg``."""
    import cv2

    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise InputError(f"Could not encode frame {index} of {source} as JPEG")
    out = folder / f"frame_{index:06d}.jpg"
    out.write_bytes(buf.tobytes())  # write_bytes: non-ASCII paths work on every platform
    return VideoFrame(index, out)


def _write_sharp_frames(
    path: Path,
    n_wanted: int,
    folder: Path,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> list[VideoFrame]:
    """The sharpest frame of each of ``n_wanted`` time bins, written as each bin completes."""
    from fast3r_core.frame_selection import iter_selected_frames

    return [
        _write_frame(f.image, f.index, folder, path)
        for f in iter_selected_frames(path, n_wanted, progress=progress, cancel=cancel)
    ]
