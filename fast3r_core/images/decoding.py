"""Decoding one image and the model's exact resize + centre crop (spec section 5).

An image is decoded with Pillow, oriented by its EXIF tag, converted to 8-bit RGB, resized and
centre-cropped exactly as the published preprocessing does, and returned as a :class:`ViewInput`.
Full-resolution decodes share a byte budget (:data:`DECODE_BUDGET_BYTES`) over all decoding threads.

Conventions
-----------
* Sizes are ``(width, height)`` tuples, as in Pillow; array shapes are ``(H, W, ...)``.
* ``crop_box`` is ``(left, top, right, bottom)`` in pixels of the *resized* image (right/bottom
  exclusive). Pixel indices are pixel centres: model pixel ``(u, v)`` maps to
  ``((u + left + 0.5) * W0 / Wr - 0.5, (v + top + 0.5) * H0 / Hr - 0.5)`` in the original image, with
  ``(W0, H0)`` = ``original_size`` and ``(Wr, Hr)`` = ``resized_size`` (see
  ``geometry.model_pixels_to_original``).
* The model tensor is ``(3, H, W)`` float32 ``(rgb / 255 - 0.5) / 0.5`` in ``[-1, 1]``.

torch is imported lazily (only :attr:`ViewInput.image` needs it).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from fast3r_core.errors import InputError

from .discovery import HEIF_EXTENSIONS, heif_supported

if TYPE_CHECKING:
    import torch

__all__ = [
    "DECODE_BUDGET_BYTES",
    "DRAFT_OVERSAMPLE",
    "FULL_DECODE_MAX_PIXELS",
    "ResizeCrop",
    "ViewInput",
    "load_image",
    "resize_crop_geometry",
]

logger = logging.getLogger(__name__)

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
#: Refuse resize targets above this many pixels (224 rule on a needle-thin image would explode).
_MAX_RESIZED_PIXELS = 64_000_000
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
