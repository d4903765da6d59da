"""Per-image masks: which pixels to reconstruct (``--masks DIR``), and how mask sources combine.

A mask is an image file beside nothing else: for the photo ``IMG_0001.jpg`` the folder holds
``IMG_0001.jpg.png`` (COLMAP's convention) or ``IMG_0001.png`` (Nerfstudio's). Pixel value 0 means
*ignore*, anything else *keep*; for a colour mask a pixel is kept when any colour channel is non-zero
(alpha is not looked at). The mask must have the photo's upright size (after the photo's EXIF rotation);
it goes through the same resize + centre crop as the photo (:class:`~fast3r_core.images.ResizeCrop`),
with nearest-neighbour sampling, so a model pixel is kept iff the original pixel nearest to its centre
is.

Arrays returned here are ``(H, W)`` ``bool`` in pixels of the model input (``u`` = column, ``v`` = row),
True = keep; ``None`` stands for "no mask" (keep everything).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MaskError
from .intrinsics import CropGeometry

__all__ = [
    "MASK_EXTENSION",
    "BoolMask",
    "combine_masks",
    "find_mask",
    "load_mask",
    "load_masks",
]

#: A keep-mask: (H, W) bool, True = keep.
BoolMask = NDArray[np.bool_]
MASK_EXTENSION = ".png"
#: Masks larger than this many pixels are refused (a decompression bomb is no mask of a photo).
_MAX_MASK_PIXELS = 400_000_000

log = logging.getLogger(__name__)


def find_mask(folder: str | os.PathLike[str], image: str | os.PathLike[str]) -> Path | None:
    """The mask file of ``image`` in ``folder``: ``NAME.png`` first, then ``STEM.png``; None if neither.

    ``image`` may be a path or a file name; only its name is used.
    """
    name = Path(image).name
    for candidate in (f"{name}{MASK_EXTENSION}", f"{Path(name).stem}{MASK_EXTENSION}"):
        p = Path(folder) / candidate
        if p.is_file():
            return p
    return None


def _keep_pixels(img: Image.Image) -> NDArray[np.uint8]:
    """``(H, W)`` uint8, 255 = keep, 0 = ignore, from any Pillow mode (0 = ignore, else keep)."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGB")  # palette index 0 need not be black
    arr = np.asarray(img)
    if arr.ndim == 3:
        channels = 1 if img.mode in ("LA", "La") else min(3, arr.shape[2])
        keep = np.any(arr[..., :channels] != 0, axis=2)
    else:
        keep = arr != 0
    return np.where(keep, np.uint8(255), np.uint8(0))


def load_mask(path: str | os.PathLike[str], geometry: CropGeometry) -> BoolMask:
    """Read one mask and bring it into model pixels with the photo's resize + centre crop.

    Parameters
    ----------
    path : path-like
        The mask image (any format Pillow reads; PNG by convention).
    geometry : ResizeCrop or ViewInput
        The photo's ``original_size`` (upright ``(width, height)``; the mask must have it),
        ``resized_size`` and ``crop_box``.

    Returns
    -------
    ndarray, shape (H, W), bool
        True = keep, in pixels of the model input (``geometry``'s crop size).

    Raises
    ------
    MaskError
        The file cannot be read, or its size is not the photo's (the message names the file and both
        sizes).
    """
    p = Path(path)
    want = tuple(int(x) for x in geometry.original_size)
    try:
        with Image.open(p) as im:
            if im.width * im.height > _MAX_MASK_PIXELS:
                raise MaskError(f"{p}: mask of {im.width}x{im.height} pixels is too large")
            im.load()
            img = ImageOps.exif_transpose(im)  # a copy, upright (masks rarely carry a rotation)
    except MaskError:
        raise
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as exc:
        raise MaskError(f"{p}: cannot read the mask ({exc})") from exc
    if img.size != want:
        hint = ""
        if img.size == want[::-1]:
            hint = " (it looks rotated: save the mask upright, as the photo is displayed)"
        raise MaskError(
            f"{p}: the mask is {img.size[0]}x{img.size[1]} but its photo is {want[0]}x{want[1]}{hint}"
        )
    keep = Image.fromarray(_keep_pixels(img))  # uint8 (H, W): mode "L"
    rw, rh = (int(x) for x in geometry.resized_size)
    if keep.size != (rw, rh):
        keep = keep.resize((rw, rh), Image.Resampling.NEAREST)
    left, top, right, bottom = (int(x) for x in geometry.crop_box)
    out = np.asarray(keep.crop((left, top, right, bottom))) != 0
    return out


def load_masks(
    folder: str | os.PathLike[str],
    images: Sequence[str | os.PathLike[str]],
    geometries: Sequence[CropGeometry],
    *,
    require_all: bool = False,
) -> list[BoolMask | None]:
    """The mask of each image from ``folder`` (see :func:`find_mask`), in model pixels.

    Parameters
    ----------
    folder : path-like
        The masks folder.
    images : sequence of path-like
        The photos (their file names pick the masks).
    geometries : sequence of ResizeCrop or ViewInput
        Each photo's resize + crop (``ViewInput`` objects work as they are).
    require_all : bool
        Raise when a photo has no mask; otherwise it gets ``None`` (everything kept), logged.

    Returns
    -------
    list of ndarray (H, W) bool or None
        One per image, True = keep.

    Raises
    ------
    MaskError
        The folder does not exist; a mask cannot be read or has the wrong size; with ``require_all``,
        a photo without a mask.
    """
    d = Path(folder)
    if not d.is_dir():
        raise MaskError(f"{d}: the masks folder does not exist")
    if len(images) != len(geometries):
        raise MaskError(f"{len(images)} images but {len(geometries)} geometries")
    out: list[BoolMask | None] = []
    missing: list[str] = []
    for image, geometry in zip(images, geometries, strict=True):
        mask_path = find_mask(d, image)
        if mask_path is None:
            missing.append(Path(image).name)
            out.append(None)
        else:
            out.append(load_mask(mask_path, geometry))
    if missing:
        listed = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        if require_all:
            raise MaskError(
                f"{d}: no mask for {len(missing)} photos ({listed}); expected NAME.png or STEM.png"
            )
        log.info("%s: no mask for %d photos (%s): all their pixels are kept", d, len(missing), listed)
    return out


def combine_masks(
    user: BoolMask | None = None, sky: BoolMask | None = None, *others: BoolMask | None
) -> BoolMask | None:
    """Pixels kept by every source: ``user AND NOT sky`` (AND any further keep-masks).

    Parameters
    ----------
    user : ndarray (H, W) bool or None
        Keep-mask from the user's files (True = keep).
    sky : ndarray (H, W) bool or None
        Sky mask as :func:`fast3r_core.sky.sky_mask` returns it (True = sky, to drop).
    *others : ndarray (H, W) bool or None
        More keep-masks (True = keep).

    Returns
    -------
    ndarray (H, W) bool or None
        The combined keep-mask (a new array), or None when no source is given.
    """
    keeps = [m for m in (user, *others) if m is not None]
    if sky is not None:
        keeps.append(~np.asarray(sky, dtype=bool))
    if not keeps:
        return None
    shapes = {np.shape(m) for m in keeps}
    if len(shapes) != 1:
        raise MaskError(f"masks of one view differ in shape: {sorted(shapes)}")
    out = np.array(keeps[0], dtype=bool, copy=True)
    for m in keeps[1:]:
        out &= np.asarray(m, dtype=bool)
    return out
