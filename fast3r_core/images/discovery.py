"""Which files are inputs: image and video extensions, and the listing of folders and files.

Nothing is opened here; :func:`discover_inputs` only looks at names. A folder is listed
non-recursively, its entries sorted by file name; files given explicitly with an unknown extension are
reported as :class:`SkippedFile`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeAlias

from fast3r_core.errors import InputError
from fast3r_core.progress import SKIPPED_FILE_RECORD

__all__ = [
    "BASE_IMAGE_EXTENSIONS",
    "HEIF_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Discovery",
    "PathInput",
    "SkippedFile",
    "discover_inputs",
    "heif_supported",
    "image_extensions",
    "is_image_file",
    "is_video",
]

logger = logging.getLogger(__name__)

#: A folder, a file, or a sequence of them.
PathInput: TypeAlias = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

BASE_IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
HEIF_EXTENSIONS: frozenset[str] = frozenset({".heic", ".heif"})
VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})

_heif_lock = threading.Lock()
_heif_state: bool | None = None


class SkippedFile(NamedTuple):
    """An input file that was not used, with a reason meant for people."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover_inputs` found.

    Attributes
    ----------
    files : list[Path]
        Image and video files to load, in input order (folder contents sorted by file name).
    skipped : list[SkippedFile]
        Files given explicitly whose extension is neither an image nor a video format.
    ignored : list[Path]
        Files inside given folders that were ignored silently (other extensions, hidden files,
        videos inside folders).
    """

    files: list[Path]
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def heif_supported() -> bool:
    """Return True if HEIC/HEIF can be decoded, registering pillow-heif's opener on first call."""
    global _heif_state
    with _heif_lock:
        if _heif_state is None:
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
                _heif_state = True
            except Exception as exc:  # missing or broken optional dependency: just no HEIC
                logger.debug("HEIC/HEIF support unavailable: %s", exc)
                _heif_state = False
        return _heif_state


def image_extensions() -> frozenset[str]:
    """Lower-case image extensions (with dot) accepted now; HEIC/HEIF only with pillow-heif."""
    return BASE_IMAGE_EXTENSIONS | HEIF_EXTENSIONS if heif_supported() else BASE_IMAGE_EXTENSIONS


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` has an accepted image extension (case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in image_extensions()


def is_video(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` has a video extension (.mp4 .mov .avi .mkv .webm .m4v, case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _as_path_list(paths: PathInput) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def discover_inputs(paths: PathInput) -> Discovery:
    """List the image and video files designated by ``paths`` without opening them.

    Parameters
    ----------
    paths : str, PathLike or sequence of them
        A folder (its files, non-recursive, sorted by file name as Python sorts strings), a file,
        or a list mixing both. Inside folders, only image files count; other files (including
        videos and hidden files) are ignored silently and listed in ``ignored``. Explicit files
        with an unknown extension are reported in ``skipped``.

    Returns
    -------
    Discovery

    Raises
    ------
    InputError
        If a path does not exist or is neither a file nor a folder.
    """
    exts = image_extensions()
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    ignored: list[Path] = []
    for p in _as_path_list(paths):
        if p.is_dir():
            try:
                entries = sorted(os.listdir(p))
            except OSError as exc:
                raise InputError(f"Cannot read the folder {p}: {exc.strerror or exc}") from exc
            for entry in entries:
                child = p / entry
                if not child.is_file():
                    continue  # non-recursive: sub-folders are not looked into
                # Hidden files include macOS "._IMG.jpg" resource forks, which are not images.
                if entry.startswith(".") or child.suffix.lower() not in exts:
                    ignored.append(child)
                else:
                    files.append(child)
        elif p.is_file():
            if p.suffix.lower() in exts or is_video(p):
                files.append(p)
            else:
                reason = f"unsupported file type {p.suffix or '(no extension)'}"
                if p.suffix.lower() in HEIF_EXTENSIONS:
                    reason = "HEIC/HEIF needs the optional package pillow-heif"
                logger.warning("Skipping %s: %s", p, reason, extra={SKIPPED_FILE_RECORD: True})
                skipped.append(SkippedFile(p, reason))
        elif not p.exists():
            raise InputError(f"No such file or folder: {p}")
        else:
            raise InputError(f"Not a file or folder: {p}")
    return Discovery(files, skipped, ignored)
