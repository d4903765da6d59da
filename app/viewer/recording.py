"""Writing rendered frames to an animated GIF (imageio + Pillow) or an MP4 (imageio-ffmpeg or OpenCV).

MP4: imageio-ffmpeg (H.264) when it is installed, else OpenCV's ``VideoWriter`` with the ``mp4v``
codec (opencv-python-headless is a core dependency). Video frame sizes are rounded down to even
numbers (codecs need them).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from types import TracebackType

import numpy as np

from fast3r_core.atomic import atomic_path

__all__ = ["VIDEO_SUFFIXES", "FrameWriter", "even_size"]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".gif", ".mp4")


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) rounded down to even numbers, at least 2."""
    w, h = int(size[0]), int(size[1])
    return max(2, w - w % 2), max(2, h - h % 2)


class FrameWriter:
    """Collect RGB frames and write them to ``path`` (".gif" or ".mp4"), atomically, on close.

    Parameters
    ----------
    path : path-like
        Destination; the suffix picks the format.
    fps : float
        Frames per second.

    Use as a context manager; :meth:`add` takes (H, W, 3) or (H, W, 4) uint8 frames. On an exception
    inside the ``with`` block nothing is written.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in VIDEO_SUFFIXES:
            raise ValueError(f"unsupported animation format {self.suffix!r}: use one of {VIDEO_SUFFIXES}")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be (H, W, 3|4) uint8, got {frame.shape} {frame.dtype}")
        self.frames.append(np.ascontiguousarray(frame[..., :3]))

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.write()

    def write(self) -> Path:
        if not self.frames:
            raise ValueError("no frames to write")
        # A temporary file beside the destination with the same suffix (encoders pick the container
        # from it), renamed over the destination only when complete.
        with atomic_path(self.path, error=None, suffix=self.suffix) as tmp:
            if self.suffix == ".gif":
                self._write_gif(tmp)
            else:
                self._write_mp4(tmp)
        log.info("wrote %d frames to %s", len(self.frames), self.path)
        return self.path

    def _write_gif(self, tmp: Path) -> None:
        import imageio.v3 as iio

        duration_ms = 1000.0 / self.fps
        iio.imwrite(tmp, np.stack(self.frames), extension=".gif", duration=duration_ms, loop=0)

    def _write_mp4(self, tmp: Path) -> None:
        w, h = even_size((self.frames[0].shape[1], self.frames[0].shape[0]))
        frames = (f[:h, :w] for f in self.frames)
        if importlib.util.find_spec("imageio_ffmpeg") is not None:
            import imageio.v2 as iio2

            with iio2.get_writer(tmp, format="FFMPEG", mode="I", fps=self.fps, codec="libx264") as wr:
                for f in frames:
                    wr.append_data(f)
            return
        import cv2

        vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not vw.isOpened():
            raise OSError(f"OpenCV cannot write an MP4 video to {tmp}")
        try:
            for f in frames:
                vw.write(np.ascontiguousarray(f[..., ::-1]))
        finally:
            vw.release()
