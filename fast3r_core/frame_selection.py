"""Choosing video frames: the sharpest frame of each time bin, without near-duplicates (issue 19).

Instead of sampling a video at a fixed rate (blurred frames included), the video is split into as many
equal time bins as frames are wanted; each bin gives its sharpest frame (variance of the Laplacian of
a downscaled grey frame, a standard focus measure: motion blur and defocus remove the high
frequencies it sums), and a chosen frame that hardly differs from the previous kept one (the camera
stood still) is dropped.

:func:`select_frames` is the pure selection on precomputed scores; :func:`iter_selected_frames`
streams a video once with OpenCV and yields each chosen frame as soon as its bin is complete, so that
only one candidate frame per bin (plus the previous kept thumbnail) is ever held in memory;
:func:`select_video_frames` collects them.

Frames are OpenCV's: ``(H, W, 3)`` uint8 BGR (or ``(H, W)`` grey); frame indices are 0-based positions
in the video's decoding order.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .progress import ProgressCallback, check_cancel, report

__all__ = [
    "DUPLICATE_MAX_DIFF",
    "SHARPNESS_MAX_SIDE",
    "THUMBNAIL_SIDE",
    "SelectedFrame",
    "frame_sharpness",
    "frame_thumbnail",
    "is_near_duplicate",
    "iter_selected_frames",
    "select_frames",
    "select_video_frames",
]

log = logging.getLogger(__name__)

#: Long side of the grey frame the sharpness is measured on: fast, and it scores the structure that
#: survives the model's own downscale (512 px), not sensor noise.
SHARPNESS_MAX_SIDE = 480
#: Long side of the thumbnails compared to find near-duplicates.
THUMBNAIL_SIDE = 64
#: Mean absolute difference (grey levels, 0-255) between two thumbnails below which the second frame
#: adds nothing: compression noise of a still camera stays well under it, a small pan does not.
DUPLICATE_MAX_DIFF = 3.0
#: Frames scored per bin at most (spread evenly over the bin); the others are only decoded.
DEFAULT_CANDIDATES_PER_BIN = 16

Frame = NDArray[np.uint8]


def _grey(frame: NDArray[np.generic]) -> NDArray[np.uint8]:
    f = np.asarray(frame)
    if f.ndim == 3 and f.shape[2] == 1:
        f = f[..., 0]
    if f.ndim == 3:
        f = cv2.cvtColor(f[..., :3], cv2.COLOR_BGR2GRAY)
    if f.ndim != 2 or f.dtype != np.uint8:
        raise InputError(f"expected a uint8 (H, W, 3) or (H, W) frame, got {f.dtype} {f.shape}")
    return f


def _downscale(grey: NDArray[np.uint8], max_side: int) -> NDArray[np.uint8]:
    h, w = grey.shape
    s = max_side / max(h, w)
    if s >= 1.0:
        return grey
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def frame_sharpness(frame: NDArray[np.generic], max_side: int = SHARPNESS_MAX_SIDE) -> float:
    """Variance of the Laplacian of the frame, greyed and downscaled (area) to ``max_side``.

    Parameters
    ----------
    frame : ndarray (H, W, 3) BGR or (H, W), uint8
        A decoded frame.
    max_side : int
        Long side it is measured at (frames of different sizes are only comparable at the same one).

    Returns
    -------
    float
        Larger is sharper (0 for a flat frame).
    """
    small = _downscale(_grey(frame), max_side)
    lap = cv2.Laplacian(small, cv2.CV_32F, ksize=3)
    return float(np.asarray(lap, dtype=np.float64).var())


def frame_thumbnail(frame: NDArray[np.generic], side: int = THUMBNAIL_SIDE) -> NDArray[np.float32]:
    """Grey thumbnail ``(h, w)`` float32 in 0..255, long side ``side``, for near-duplicate tests."""
    return np.asarray(_downscale(_grey(frame), side), dtype=np.float32)


def is_near_duplicate(
    a: NDArray[np.floating], b: NDArray[np.floating], max_diff: float = DUPLICATE_MAX_DIFF
) -> bool:
    """True when thumbnails ``a`` and ``b`` differ by less than ``max_diff`` grey levels on average."""
    if a.shape != b.shape:
        return False
    return float(np.mean(np.abs(a - b))) < max_diff


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")


def _bins(n: int, lo: float, hi: float, times: NDArray[np.float64]) -> NDArray[np.int64]:
    """Bin of each time over ``n`` equal bins of ``[lo, hi]`` (``hi`` in the last bin)."""
    if hi <= lo:
        return np.zeros(len(times), dtype=np.int64)
    b = np.floor((times - lo) / (hi - lo) * n).astype(np.int64)
    return np.clip(b, 0, n - 1)


def select_frames(
    times: Sequence[float] | NDArray[np.floating],
    sharpness: Sequence[float] | NDArray[np.floating],
    n_wanted: int,
    *,
    thumbnails: Sequence[NDArray[np.floating]] | None = None,
    max_diff: float = DUPLICATE_MAX_DIFF,
) -> list[int]:
    """Pick at most ``n_wanted`` frames: the sharpest of each of ``n_wanted`` equal time bins.

    Parameters
    ----------
    times : sequence of float, shape (N,)
        Time (seconds) or frame index of each candidate; any order.
    sharpness : sequence of float, shape (N,)
        Score of each candidate (:func:`frame_sharpness`); ties go to the earlier candidate.
    n_wanted : int
        Number of bins over ``[min(times), max(times)]`` (>= 1). Empty bins give nothing.
    thumbnails : sequence of ndarray, optional
        :func:`frame_thumbnail` of each candidate: a bin's pick that is a near-duplicate of the
        previous kept pick (:func:`is_near_duplicate`) is dropped.
    max_diff : float
        Near-duplicate threshold in grey levels.

    Returns
    -------
    list of int
        Positions into ``times`` of the chosen candidates, in time order.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    s = np.asarray(sharpness, dtype=np.float64).reshape(-1)
    if len(t) != len(s) or (thumbnails is not None and len(thumbnails) != len(t)):
        raise InputError("times, sharpness and thumbnails must have one entry per candidate")
    _check_count(n_wanted, "n_wanted")
    if len(t) == 0:
        return []
    order = np.argsort(t, kind="stable")
    bins = _bins(n_wanted, float(t.min()), float(t.max()), t)
    chosen: list[int] = []
    for b in range(n_wanted):
        members = order[bins[order] == b]
        if members.size == 0:
            continue
        scores = np.where(np.isfinite(s[members]), s[members], -np.inf)
        best = int(members[int(np.argmax(scores))])  # argmax: first of equal scores
        if (
            thumbnails is not None
            and chosen
            and is_near_duplicate(thumbnails[chosen[-1]], thumbnails[best], max_diff)
        ):
            continue
        chosen.append(best)
    return chosen


@dataclass(frozen=True, eq=False)
class SelectedFrame:
    """A frame chosen from a video.

    Attributes
    ----------
    index : int
        0-based frame number in the video (for file names such as ``frame_000123.jpg``).
    time_s : float
        ``index / fps`` in seconds.
    sharpness : float
        Its :func:`frame_sharpness`.
    image : ndarray (H, W, 3), uint8, BGR
        The decoded frame as OpenCV returns it (``cv2.imencode`` writes it as it is).
    """

    index: int
    time_s: float
    sharpness: float
    image: Frame


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InputError(f"{path} is not a video OpenCV can decode")
    return cap


def _frame_count(path: Path, cancel: threading.Event | None) -> int:
    """Frames in the video: the container's count, or counted by decoding once when it has none."""
    cap = _open(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if n <= 0:
            while cap.grab():
                n += 1
                if n % 256 == 0:
                    check_cancel(cancel)
    finally:
        cap.release()
    return n


def iter_selected_frames(
    path: str | os.PathLike[str],
    n_wanted: int,
    *,
    candidates_per_bin: int = DEFAULT_CANDIDATES_PER_BIN,
    max_diff: float = DUPLICATE_MAX_DIFF,
    max_side: int = SHARPNESS_MAX_SIDE,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[SelectedFrame]:
    """Read a video once and yield the sharpest frame of each of ``n_wanted`` equal time bins.

    Every frame is decoded (``grab``) once, in order; at most ``candidates_per_bin`` frames per bin,
    spread evenly, are converted (``retrieve``) and scored. A bin's pick is yielded when the bin ends,
    unless it is a near-duplicate of the previous yielded frame (a still camera). Memory: one candidate
    frame and two thumbnails, whatever the length of the video.

    Parameters
    ----------
    path : path-like
        The video.
    n_wanted : int
        Number of bins, hence the most frames yielded (>= 1); see ``--video-fps`` and ``--max-views``.
    candidates_per_bin : int
        Frames scored per bin at most (>= 1).
    max_diff : float
        Near-duplicate threshold (:func:`is_near_duplicate`); 0 keeps every bin's pick.
    max_side : int
        Long side the sharpness is measured at.
    progress, cancel
        ``"video"`` progress events (frames read / frames in the video) and cancellation.

    Yields
    ------
    SelectedFrame
        In video order.

    Raises
    ------
    InputError
        When an option is invalid, or the video is missing, unreadable or has no frame.
    """
    p = Path(path)
    _check_count(n_wanted, "n_wanted")
    _check_count(candidates_per_bin, "candidates_per_bin")
    if not p.is_file():
        raise InputError(f"No such video file: {p}")
    n_frames = _frame_count(p, cancel)
    if n_frames <= 0:
        raise InputError(f"{p} is not a video OpenCV can decode (no frame could be read)")
    n_bins = min(n_wanted, n_frames)
    cap = _open(p)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (math.isfinite(fps) and fps > 0):
            fps = 30.0  # as the fixed-rate sampler assumes
        log.info("Choosing up to %d of %d frames of %s (sharpest per bin)", n_bins, n_frames, p)
        report(progress, "video", 0, n_frames)
        best: SelectedFrame | None = None
        last_thumb: NDArray[np.float32] | None = None
        current = 0
        index = 0
        yielded = 0

        def finish(pick: SelectedFrame | None) -> SelectedFrame | None:
            nonlocal last_thumb
            if pick is None:
                return None
            thumb = frame_thumbnail(pick.image)
            if last_thumb is not None and max_diff > 0 and is_near_duplicate(last_thumb, thumb, max_diff):
                log.debug("frame %d: near-duplicate of the previous chosen frame, dropped", pick.index)
                return None
            last_thumb = thumb
            return pick

        while cap.grab():
            b = min(n_bins - 1, index * n_bins // n_frames)
            if b != current:
                done = finish(best)
                if done is not None:
                    yielded += 1
                    yield done
                best, current = None, b
                report(progress, "video", index, n_frames)
                check_cancel(cancel)
            start = -(-current * n_frames // n_bins)  # first frame of the bin: ceil(b * N / n)
            end = -(-(current + 1) * n_frames // n_bins)
            stride = max(1, (end - start) // candidates_per_bin)
            if (index - start) % stride == 0:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    img = np.asarray(frame, dtype=np.uint8)
                    score = frame_sharpness(img, max_side)
                    if best is None or score > best.sharpness:
                        best = SelectedFrame(index, index / fps, score, img)
            index += 1
        done = finish(best)
        if done is not None:
            yielded += 1
            yield done
        report(progress, "video", n_frames, n_frames)
    finally:
        cap.release()
    if yielded == 0:
        raise InputError(f"{p} is not a video OpenCV can decode (no frame could be read)")


def select_video_frames(
    path: str | os.PathLike[str],
    n_wanted: int,
    *,
    candidates_per_bin: int = DEFAULT_CANDIDATES_PER_BIN,
    max_diff: float = DUPLICATE_MAX_DIFF,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[SelectedFrame]:
    """All of :func:`iter_selected_frames` in a list (holds the chosen frames in memory; to write them
    to files as they come, iterate instead)."""
    return list(
        iter_selected_frames(
            path,
            n_wanted,
            candidates_per_bin=candidates_per_bin,
            max_diff=max_diff,
            progress=progress,
            cancel=cancel,
        )
    )
