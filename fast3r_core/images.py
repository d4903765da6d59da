"""Input discovery, decoding and the model's exact resize + centre crop (spec section 5).

Inputs are a folder (non-recursive, entries sorted by file name), a single file, a list of files
(or folders), or a video. Images are decoded with Pillow, oriented by their EXIF tag, converted to
8-bit RGB, resized and centre-cropped exactly as the published preprocessing does, and returned as
:class:`ViewInput` objects in input order. Unreadable images are skipped and reported, never fatal
on their own.

Conventions
-----------
* Sizes are ``(width, height)`` tuples, as in Pillow; array shapes are ``(H, W, ...)``.
* ``crop_box`` is ``(left, top, right, bottom)`` in pixels of the *resized* image (right/bottom
  exclusive). Pixel indices are pixel centres: model pixel ``(u, v)`` maps to
  ``((u + left + 0.5) * W0 / Wr - 0.5, (v + top + 0.5) * H0 / Hr - 0.5)`` in the original image, with
  ``(W0, H0)`` = ``original_size`` and ``(Wr, Hr)`` = ``resized_size`` (see
  ``geometry.model_pixels_to_original``).
* The model tensor is ``(3, H, W)`` float32 ``(rgb / 255 - 0.5) / 0.5`` in ``[-1, 1]``.

torch is imported lazily (only :attr:`ViewInput.image` needs it), OpenCV and platformdirs only for
videos.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

import numpy as np
from PIL import Image, UnidentifiedImageError

from .atomic import atomic_write
from .errors import InputError, NoImagesError
from .progress import SKIPPED_FILE_RECORD, ProgressCallback, check_cancel, report

if TYPE_CHECKING:
    import torch

__all__ = [
    "BASE_IMAGE_EXTENSIONS",
    "HEIF_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Discovery",
    "LoadResult",
    "PathInput",
    "ResizeCrop",
    "SkippedFile",
    "VideoFrame",
    "ViewInput",
    "default_frames_root",
    "discover_inputs",
    "extract_video_frames",
    "heif_supported",
    "image_extensions",
    "is_image_file",
    "is_video",
    "load_image",
    "load_images",
    "load_inputs",
    "load_video",
    "prune_frames_cache",
    "resize_crop_geometry",
]

logger = logging.getLogger(__name__)

#: A folder, a file, or a sequence of them.
PathInput: TypeAlias = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

BASE_IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
HEIF_EXTENSIONS: frozenset[str] = frozenset({".heic", ".heif"})
VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})

#: Images up to this many pixels (100 MP: every phone and DSLR photo) are decoded whole and resized
#: once, exactly as the published pipeline does. Beyond it a JPEG is decoded at a reduced DCT scale
#: (Pillow's draft mode) before the resize: close, but not the published pixels, and logged so.
#: Other formats are always decoded whole. (Pillow refuses images above 2 x ``Image.MAX_IMAGE_PIXELS``,
#: ~179 MP, as decompression bombs; such files are skipped with that reason.)
FULL_DECODE_MAX_PIXELS = 100_000_000
#: Draft-mode JPEG decoding keeps at least this many times the resize target per side, so that the
#: LANCZOS downscale still sees enough source pixels (measured: mean |diff| < 1 grey level).
DRAFT_OVERSAMPLE = 2
#: Bytes of full-resolution decodes that may be in memory at once over all decoding threads; a single
#: image larger than this is decoded alone. 12 MP photos take ~0.14 GB each, so up to 7 run at once.
DECODE_BUDGET_BYTES = 1 << 30
#: Above this many files, decode in a thread pool (Pillow releases the GIL while decoding/resizing).
PARALLEL_THRESHOLD = 4
#: Refuse resize targets above this many pixels (224 rule on a needle-thin image would explode).
_MAX_RESIZED_PIXELS = 64_000_000
#: Seek instead of grabbing frame by frame when the next sampled frame is this far ahead.
_SEEK_GAP = 48
_JPEG_QUALITY = 95
_MANIFEST = "frames.json"
_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> transposition that makes the stored pixels upright (EXIF 2.3, tag 274).
_ORIENTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_heif_lock = threading.Lock()
_heif_state: bool | None = None


class _ByteBudget:
    """A byte count that threads reserve before a large allocation and release after it.

    ``hold(n)`` waits until ``n`` more bytes fit under ``limit``; a request is always granted when
    nothing else is held, so an image larger than the whole budget is decoded alone, never refused.
    """

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.in_use = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        with self._cond:
            while self.in_use and self.in_use + nbytes > self.limit:
                self._cond.wait()
            self.in_use += nbytes
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= nbytes
                self._cond.notify_all()


_DECODE_BUDGET = _ByteBudget(DECODE_BUDGET_BYTES)


# ----------------------------------------------------------------------------------------------
# Public types
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ViewInput:
    """One preprocessed input view.

    Equality is identity (``eq=False``): the fields hold arrays.

    Attributes
    ----------
    rgb : np.ndarray
        ``(H, W, 3)`` uint8, read-only: the model-resolution image after resize and centre crop.
    path : Path
        Source image file (video frames are first written to JPEG files; this is that JPEG).
    original_size : tuple[int, int]
        ``(width, height)`` of the source image after EXIF orientation.
    resized_size : tuple[int, int]
        ``(width, height)`` after the resize, before the crop.
    crop_box : tuple[int, int, int, int]
        ``(left, top, right, bottom)`` in pixels of the resized image.
    name : str
        Display name: the file name, or ``"clip.mp4 #0123"`` for frame 123 of a video.
    """

    rgb: np.ndarray
    path: Path
    original_size: tuple[int, int]
    resized_size: tuple[int, int]
    crop_box: tuple[int, int, int, int]
    name: str

    @property
    def image(self) -> torch.Tensor:
        """``(3, H, W)`` float32 tensor in ``[-1, 1]``: ``(rgb / 255 - 0.5) / 0.5``.

        Computed on each access (not cached, to keep one copy of the pixels per view). The float32
        operation order matches the published ToTensor + Normalize(0.5, 0.5) bit for bit.
        """
        import torch

        t = torch.from_numpy(np.ascontiguousarray(self.rgb).copy()).permute(2, 0, 1).float() / 255.0
        return (t - 0.5) / 0.5

    @property
    def true_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the model image."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


class SkippedFile(NamedTuple):
    """An input file that was not used, with a reason meant for people."""

    path: Path
    reason: str


@dataclass(frozen=True)
class VideoFrame:
    """A frame sampled from a video: its frame number (0-based) and the JPEG it was written to."""

    # a dataclass, not a NamedTuple: a tuple's field named "index" would hide tuple.index

    index: int
    path: Path


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


@dataclass(frozen=True)
class ResizeCrop:
    """Geometry of the published resize + centre crop for one image size.

    Attributes
    ----------
    original_size : tuple[int, int]
        ``(width, height)`` of the (EXIF-oriented) input.
    resized_size : tuple[int, int]
        ``(width, height)`` after the resize.
    crop_box : tuple[int, int, int, int]
        ``(left, top, right, bottom)`` in resized pixels.
    shrink : bool
        True when the long side shrinks (LANCZOS), False when enlarged or equal (BICUBIC).
    """

    original_size: tuple[int, int]
    resized_size: tuple[int, int]
    crop_box: tuple[int, int, int, int]
    shrink: bool

    @property
    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` of the model image."""
        left, top, right, bottom = self.crop_box
        return right - left, bottom - top

    @property
    def resample(self) -> Image.Resampling:
        """Pillow filter of the published rule: LANCZOS when shrinking, else BICUBIC."""
        return Image.Resampling.LANCZOS if self.shrink else Image.Resampling.BICUBIC


# ----------------------------------------------------------------------------------------------
# Formats and discovery
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Geometry, decoding, one image
# ----------------------------------------------------------------------------------------------


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise InputError(f"Invalid image size {size!r}: expected an integer >= 16 (512 or 224)")


def resize_crop_geometry(width: int, height: int, size: int = 512, *, square_ok: bool = False) -> ResizeCrop:
    """Compute the published resize + centre crop (spec section 5) for an input of that size.

    Parameters
    ----------
    width, height : int
        Size of the EXIF-oriented input image in pixels.
    size : int
        224: the short side goes to ~224 and a centred square is cut. Any other value (512 for the
        released model): the long side goes to ``size``, then both sides are cropped to the largest
        multiple of 16 around the centre; an exactly square resized image is cropped to 4:3
        (``size`` x ``3/4 size``) unless ``square_ok``.
    square_ok : bool
        Keep square images square at sizes other than 224.

    Returns
    -------
    ResizeCrop

    Raises
    ------
    InputError
        If the size is invalid or the image is so elongated that the result is degenerate
        (under 16 px on a side) or the resize would be huge.
    """
    _check_size(size)
    if width < 1 or height < 1:
        raise InputError(f"Invalid image dimensions {width}x{height}")
    # Python float arithmetic and round() (half to even) exactly as the published code.
    long_side = round(size * max(width / height, height / width)) if size == 224 else int(size)
    s = max(width, height)
    new_w = round(width * long_side / s)
    new_h = round(height * long_side / s)
    if new_w * new_h > _MAX_RESIZED_PIXELS:
        raise InputError(f"Image of {width}x{height} is too elongated to resize for size {size}")
    cx, cy = new_w // 2, new_h // 2
    if size == 224:
        half_w = half_h = min(cx, cy)
    else:
        half_w = 8 * ((2 * cx) // 16)
        half_h = 8 * ((2 * cy) // 16)
        if not square_ok and new_w == new_h:
            half_h = 3 * half_w // 4  # half_w is a multiple of 8, so this is exact
    if half_w < 8 or half_h < 8:
        raise InputError(f"Image of {width}x{height} is too small or too elongated for size {size}")
    box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    return ResizeCrop((width, height), (new_w, new_h), box, shrink=s > long_side)


def _exif_orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception as exc:  # a broken EXIF block must not make a readable image unusable
        logger.debug("Ignoring unreadable EXIF in %s: %s", getattr(img, "filename", "?"), exc)
        return 1
    return value if value in _ORIENTATION_TRANSPOSE else 1


def _to_rgb8(img: Image.Image, path: Path) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB with ``convert("RGB")``, as the published loader does.

    That is Pillow's own rule for every mode: alpha is dropped (not composited), CMYK uses Pillow's
    conversion, and 16/32-bit integer or float pixels are clipped to 0..255 (a 16-bit image whose
    values exceed 255 mostly turns white: it is logged, since it is the published behaviour).
    """
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        high = img.getextrema()[1]
        if isinstance(high, (int, float)) and high > 255:
            logger.warning(
                "%s: %s pixels above 255 (max %s) are clipped to 255 by the RGB conversion, as in the "
                "published loader; save the image as 8-bit to keep its contrast",
                path,
                img.mode,
                high,
            )
    return img.convert("RGB")


def _full_decode_bytes(mode: str, width: int, height: int) -> int:
    """Bytes a full decode of that image holds at its peak: the decoded pixels (Pillow stores 1, 2 or
    4 bytes per pixel) plus an upright 8-bit RGB copy (4 bytes per pixel) and a transposed one."""
    if mode in ("1", "L", "P"):
        decoded = 1
    elif mode.startswith("I;16"):
        decoded = 2
    else:
        decoded = 4
    return width * height * (decoded + 8)


def _decode(
    path: Path, size: int, *, square_ok: bool = False, draft: bool = True
) -> tuple[np.ndarray, ResizeCrop]:
    """Open ``path``, orient it upright, convert to RGB, resize once and centre-crop (spec section 5).

    Returns the model image ``(H, W, 3)`` uint8 and its geometry. Images up to
    :data:`FULL_DECODE_MAX_PIXELS` are decoded whole, holding their bytes of the shared decode budget
    (:data:`DECODE_BUDGET_BYTES`) until the resize is done. A larger JPEG (with ``draft``) is decoded
    at a reduced DCT scale (never below ``DRAFT_OVERSAMPLE`` x the resize target) and logged as
    approximate. Exceptions from Pillow propagate (the caller turns them into a skip reason).
    """
    if path.suffix.lower() in HEIF_EXTENSIONS:
        heif_supported()
    with Image.open(path) as im:
        orientation = _exif_orientation(im)
        raw_w, raw_h = im.size
        # Header size, before any draft: orientations 5-8 swap width and height.
        width, height = (raw_h, raw_w) if orientation >= 5 else (raw_w, raw_h)
        geometry = resize_crop_geometry(width, height, size, square_ok=square_ok)
        need = _full_decode_bytes(im.mode, raw_w, raw_h)
        # MPO: camera JPEGs with extra pictures
        if draft and raw_w * raw_h > FULL_DECODE_MAX_PIXELS and im.format in ("JPEG", "MPO"):
            scale = geometry.resized_size[0] / width  # same factor for both axes
            request = (
                max(1, math.ceil(DRAFT_OVERSAMPLE * raw_w * scale)),
                max(1, math.ceil(DRAFT_OVERSAMPLE * raw_h * scale)),
            )
            if request[0] < raw_w and request[1] < raw_h and im.draft("RGB", request) is not None:
                logger.warning(
                    "%s: %.0f MP is above the %.0f MP full-decode bound: decoded at %dx%d (JPEG draft "
                    "mode), so its pixels are approximate (not exactly the published preprocessing)",
                    path,
                    raw_w * raw_h / 1e6,
                    FULL_DECODE_MAX_PIXELS / 1e6,
                    *im.size,
                )
                need = _full_decode_bytes(im.mode, *im.size)
        with _DECODE_BUDGET.hold(need):
            im.load()
            out: Image.Image = im
            if orientation != 1:
                out = out.transpose(_ORIENTATION_TRANSPOSE[orientation])
            out = _to_rgb8(out, path)
            if out.size != geometry.resized_size:
                out = out.resize(geometry.resized_size, geometry.resample)
            rgb = np.array(out.crop(geometry.crop_box), dtype=np.uint8)
    return rgb, geometry


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not a readable image (unknown format or corrupt file)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large to decode safely ({exc})"
    if isinstance(exc, InputError):
        return str(exc)
    text = str(exc)
    if "truncated" in text.lower():
        return "truncated image file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"corrupt or unsupported image ({type(exc).__name__}: {text})"


def load_image(
    path: str | os.PathLike[str],
    size: int = 512,
    *,
    square_ok: bool = False,
    name: str | None = None,
    draft: bool = True,
) -> ViewInput:
    """Decode one image file and apply the published resize + centre crop.

    Parameters
    ----------
    path : str or PathLike
        Image file (any format Pillow reads; HEIC/HEIF with pillow-heif).
    size : int
        512 (default), 224, or another long side (see :func:`resize_crop_geometry`).
    square_ok : bool
        Keep square images square (sizes other than 224).
    name : str, optional
        Display name; defaults to the file name.
    draft : bool
        Let JPEGs above :data:`FULL_DECODE_MAX_PIXELS` decode at a reduced scale (2x the resize target
        or more; approximate, logged). False decodes every image whole, as the published code does;
        images up to the bound are always decoded whole.

    Returns
    -------
    ViewInput

    Raises
    ------
    InputError
        If the file does not exist or cannot be decoded (the message says why).
    """
    p = Path(path)
    _check_size(size)
    if not p.exists():
        raise InputError(f"No such file: {p}")
    try:
        rgb, geometry = _decode(p, size, square_ok=square_ok, draft=draft)
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from exc
    except Exception as exc:  # decoders raise many types on bad data; all mean "unreadable file"
        raise InputError(f"{p}: {_describe_error(exc)}") from exc
    rgb.setflags(write=False)
    return ViewInput(
        rgb=rgb,
        path=p,
        original_size=geometry.original_size,
        resized_size=geometry.resized_size,
        crop_box=geometry.crop_box,
        name=name if name is not None else p.name,
    )


# ----------------------------------------------------------------------------------------------
# Many images
# ----------------------------------------------------------------------------------------------


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


def load_inputs(
    paths: PathInput,
    size: int = 512,
    *,
    square_ok: bool = False,
    fps: float = 1.0,
    max_frames: int = 100,
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
            frames = extract_video_frames(
                f,
                fps=fps,
                max_frames=max_frames,
                frames_dir=root / _video_folder_name(f, fps, max_frames),
                progress=progress,
                cancel=cancel,
            )
            items.extend((fr.path, f"{f.name} #{fr.index:04d}") for fr in frames)
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


# ----------------------------------------------------------------------------------------------
# Video
# ----------------------------------------------------------------------------------------------


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


def _video_key(path: Path, fps: float, max_frames: int) -> str:
    st = path.stat()
    text = f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{fps!r}|{max_frames}|q{_JPEG_QUALITY}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _video_folder_name(path: Path, fps: float, max_frames: int) -> str:
    return f"{path.stem[:40]}-{_video_key(path, fps, max_frames)}"


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
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[VideoFrame]:
    """Sample frames evenly from a video with OpenCV and write them as JPEG (quality 95).

    Frames ``0, k, 2k, ...`` with ``k = video_fps / fps`` (at least 1) are kept; if there would be
    more than ``max_frames``, ``max_frames`` frames spread evenly over the whole video are kept
    instead. A folder that already holds the frames of the same file (path, mtime, size) and
    parameters (``frames.json`` manifest) is reused without decoding.

    Parameters
    ----------
    path : str or PathLike
        Video file.
    fps : float
        Frames to keep per second of video (> 0).
    max_frames : int
        Upper bound on the number of frames (>= 1).
    frames_dir : str or PathLike, optional
        Folder to write ``frame_NNNNNN.jpg`` into; default a per-video folder under
        :func:`default_frames_root`.
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
    key = _video_key(p, fps, max_frames)
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
    frames: list[VideoFrame] = []
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
        logger.info("Sampling %d of %d frames (%.3g fps video) from %s", len(wanted), n_frames, native_fps, p)
        folder.mkdir(parents=True, exist_ok=True)
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
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
            if not ok:
                raise InputError(f"Could not encode frame {target} of {p} as JPEG")
            out = folder / f"frame_{target:06d}.jpg"
            out.write_bytes(buf.tobytes())  # write_bytes: non-ASCII paths work on every platform
            frames.append(VideoFrame(target, out))
            report(progress, "video", len(frames), len(wanted))
    finally:
        cap.release()
    if not frames:
        raise InputError(f"{not_video} (no frame could be read)")
    _write_manifest(folder, key, p, frames)
    if in_cache:
        prune_frames_cache(folder.parent, keep=folder)
    return frames


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
