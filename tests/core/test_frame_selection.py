"""Tests of fast3r_core.frame_selection: sharpness, binning, near-duplicates, streaming a video."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from fast3r_core.errors import Cancelled, InputError
from fast3r_core.frame_selection import (
    frame_sharpness,
    frame_thumbnail,
    is_near_duplicate,
    iter_selected_frames,
    select_frames,
    select_video_frames,
)
from fast3r_core.progress import ProgressEvent

W, H = 160, 120


def texture(seed: int = 0) -> np.ndarray:
    """A wide textured strip (BGR uint8) to pan over: blocks and edges at many scales."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (H // 4, 3 * W // 4, 3), dtype=np.uint8)
    img = cv2.resize(base, (3 * W, H), interpolation=cv2.INTER_NEAREST)
    cv2.circle(img, (W, H // 2), 30, (255, 255, 255), 3)
    return img


def write_clip(
    path: Path, n: int, *, blurred_every: int | None = 3, pan_px: int = 3, still: bool = False
) -> Path:
    """An MJPG clip of ``n`` frames panning over a texture; frame i is blurred when i % 3 == 1."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (W, H))
    assert writer.isOpened()
    strip = texture()
    for i in range(n):
        x = 0 if still else (i * pan_px) % (2 * W)
        frame = np.ascontiguousarray(strip[:, x : x + W])
        if blurred_every and i % blurred_every == 1:
            frame = cv2.GaussianBlur(frame, (0, 0), 3.0)
        writer.write(frame)
    writer.release()
    return path


def test_sharpness_ranks_blur() -> None:
    img = texture()[:, :W]
    s = frame_sharpness(img)
    assert s > 5 * frame_sharpness(cv2.GaussianBlur(img, (0, 0), 2.0))
    assert frame_sharpness(np.full((H, W), 128, np.uint8)) == 0.0
    big = cv2.resize(img, (4 * W, 4 * H), interpolation=cv2.INTER_CUBIC)
    assert frame_sharpness(big, max_side=W) == pytest.approx(s, rel=0.5)  # measured downscaled
    with pytest.raises(InputError):
        frame_sharpness(np.zeros((4, 4), np.float32))


def test_select_frames_bins_and_duplicates() -> None:
    times = np.arange(12, dtype=float)
    sharp = np.array([1, 5, 2, 9, 1, 1, 3, 3, 1, 0, 7, 2], dtype=float)
    assert select_frames(times, sharp, 4) == [1, 3, 6, 10]
    assert select_frames(times[::-1], sharp[::-1], 4) == [10, 8, 5, 1]  # positions, time order
    assert select_frames(times, sharp, 1) == [3]
    assert select_frames(times, sharp, 100) == list(range(12))  # more bins than frames
    assert select_frames([], [], 3) == []
    # a still camera: all thumbnails alike, only the first pick is kept
    same = [np.full((4, 4), 100.0, np.float32)] * 12
    assert select_frames(times, sharp, 4, thumbnails=same) == [1]
    moving = [np.full((4, 4), 10.0 * i, np.float32) for i in range(12)]
    assert select_frames(times, sharp, 4, thumbnails=moving) == [1, 3, 6, 10]
    with pytest.raises(InputError):
        select_frames(times, sharp[:3], 2)
    with pytest.raises(InputError):
        select_frames(times, sharp, 0)


def test_thumbnails_and_near_duplicates() -> None:
    img = texture()[:, :W]
    rng = np.random.default_rng(1)
    noisy = np.clip(img.astype(int) + rng.integers(-2, 3, img.shape), 0, 255).astype(np.uint8)
    panned = texture()[:, 12 : W + 12]
    a, b, c = frame_thumbnail(img), frame_thumbnail(noisy), frame_thumbnail(panned)
    assert a.shape == (48, 64) and a.dtype == np.float32
    assert is_near_duplicate(a, b) and not is_near_duplicate(a, c)
    assert not is_near_duplicate(a, a[:10])


def test_video_never_picks_a_blurred_frame(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", 60)
    events: list[ProgressEvent] = []
    frames = select_video_frames(clip, 10, progress=events.append)
    idx = [f.index for f in frames]
    assert len(idx) == 10 and idx == sorted(idx)
    assert all(i % 3 != 1 for i in idx), idx
    assert all(6 * b <= i < 6 * (b + 1) for b, i in enumerate(idx))  # one per time bin
    assert frames[0].image.shape == (H, W, 3) and frames[0].image.dtype == np.uint8
    assert frames[3].time_s == pytest.approx(idx[3] / 30.0)
    assert events and events[-1].done == events[-1].total == 60
    # fewer candidates per bin: still only sharp ones among those scored
    few = [f.index for f in iter_selected_frames(clip, 10, candidates_per_bin=2)]
    assert len(few) == 10 and all(i % 3 != 1 for i in few)


def test_video_still_camera_drops_duplicates(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "still.avi", 30, blurred_every=None, still=True)
    assert len(select_video_frames(clip, 5)) == 1
    assert len(select_video_frames(clip, 5, max_diff=0)) == 5


def test_video_errors_and_cancel(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such video"):
        select_video_frames(tmp_path / "none.avi", 3)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(InputError, match=r"junk\.avi"):
        select_video_frames(junk, 3)
    clip = write_clip(tmp_path / "clip.avi", 12)
    with pytest.raises(InputError):
        select_video_frames(clip, 0)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        select_video_frames(clip, 4, cancel=cancel)
