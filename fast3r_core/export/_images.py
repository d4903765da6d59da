"""Put the source photos beside an export (COLMAP, Nerfstudio) under names the export refers to.

Trainers (Gaussian splatting, Nerfstudio) open ``<folder>/images/<name>`` and expect its pixels to be
the ones the cameras describe: the photo as the user sees it, that is after its EXIF orientation,
because our intrinsics are in pixels of that upright image. Most readers (PIL without
``exif_transpose``, OpenCV with some flags, COLMAP) ignore the EXIF orientation, so a rotated photo is
written re-encoded upright; an upright JPEG/PNG is copied as it is.

A project file is untrusted input: its image paths are data and may point anywhere (``~/.ssh/id_rsa``,
``../../secret``). Only a file that opens as an image of the size the reconstruction recorded for its
view is ever written into an export; anything else is left out and reported, never copied "as is".
Copies are real copies by default, so that a tool that edits the exported images (resizing them, as
Gaussian-splatting scripts do) never edits the user's originals; hard links only on request
(``link=True``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fast3r_core.atomic import atomic_copy, atomic_path, ensure_dir
from fast3r_core.errors import ExportError

if TYPE_CHECKING:
    from fast3r_core.result import Reconstruction

__all__ = ["ImagePlan", "place_images", "plan_image_names"]

log = logging.getLogger(__name__)

_PASSTHROUGH = {".jpg", ".jpeg", ".png"}
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImagePlan:
    """Where each exported view's image is, relative to an images folder.

    Attributes
    ----------
    images_dir : Path
        The folder the names are relative to.
    names : dict of int to str
        View index -> file name relative to ``images_dir`` (forward slashes).
    copy : bool
        Whether the images are to be written into ``images_dir`` (else they are referenced in place).
    """

    images_dir: Path
    names: dict[int, str]
    copy: bool


def _safe_name(name: str) -> str:
    # COLMAP's text format splits on spaces: keep names free of whitespace.
    return re.sub(r"\s+", "_", name)


def plan_image_names(
    rec: Reconstruction,
    views: Sequence[int],
    *,
    copy_to: str | os.PathLike[str] | None,
    images_dir: str | os.PathLike[str] | None = None,
) -> ImagePlan:
    """Choose the image name of each view.

    Parameters
    ----------
    rec : Reconstruction
        Provides the source paths.
    views : sequence of int
        Views to export.
    copy_to : path-like or None
        Folder the images will be written into (names are unique, whitespace-free base names; photos
        in formats other than JPEG/PNG get ".jpg"). None: reference the sources in place.
    images_dir : path-like or None
        Only without ``copy_to``: the folder names are relative to; default the deepest folder that
        holds every source.

    Raises
    ------
    ExportError
        Without ``copy_to``: a source is not inside ``images_dir``.
    """
    if copy_to is not None:
        names: dict[int, str] = {}
        taken: set[str] = set()
        for v in views:
            src_path = Path(rec.image_paths[v])
            ext = src_path.suffix.lower() if src_path.suffix.lower() in _PASSTHROUGH else ".jpg"
            stem = _safe_name(src_path.stem) or f"view_{v:03d}"
            name = f"{stem}{ext}"
            if name.lower() in taken:  # same base name from two folders (or the same photo twice)
                name = f"{stem}_{v:03d}{ext}"
            taken.add(name.lower())
            names[v] = name
        return ImagePlan(Path(copy_to), names, True)

    sources = [os.path.abspath(rec.image_paths[v]) for v in views]
    if images_dir is None:
        try:
            root = os.path.commonpath([os.path.dirname(s) for s in sources]) if sources else "."
        except ValueError as exc:  # different drives
            raise ExportError(f"The images are on different drives; copy them instead ({exc})") from exc
    else:
        root = os.path.abspath(images_dir)
    names = {}
    for v, src in zip(views, sources, strict=True):
        rel = os.path.relpath(src, root)
        if rel.startswith(os.pardir + os.sep) or rel == os.pardir or os.path.isabs(rel):
            raise ExportError(f"The image {src!r} is not inside the images folder {root!r}")
        names[v] = Path(rel).as_posix()
    return ImagePlan(Path(root), names, False)


def place_images(
    rec: Reconstruction, plan: ImagePlan, *, link: bool = False, jpeg_quality: int = 95
) -> list[str]:
    """Write the planned images into ``plan.images_dir`` (no-op when ``plan.copy`` is False).

    A source is written only when it opens as an image (Pillow) whose upright size is the original
    size recorded for its view; other files are never copied (see the module docstring).

    Parameters
    ----------
    rec : Reconstruction
        Provides the source paths and the original (upright) sizes.
    plan : ImagePlan
        From :func:`plan_image_names`.
    link : bool
        Hard-link upright JPEG/PNG sources instead of copying them (falls back to a copy when the file
        system refuses). A hard link shares the file: editing the exported image edits the original.
    jpeg_quality : int
        Quality of re-encoded (rotated or converted) images.

    Returns
    -------
    list of str
        Source paths that were not written: missing, not an image, or not the recorded size (one
        warning lists them).

    Raises
    ------
    ExportError
        The images folder or a file in it cannot be written.
    """
    missing: list[str] = []
    if not plan.copy:
        for v in plan.names:
            if not os.path.isfile(rec.image_paths[v]):
                missing.append(rec.image_paths[v])
        _warn_missing(missing)
        return missing
    from PIL import Image, ImageOps, UnidentifiedImageError  # Pillow only where images are written

    ensure_dir(plan.images_dir)
    for v, name in plan.names.items():
        src = Path(rec.image_paths[v])
        dest = plan.images_dir / name
        if not src.is_file():
            log.debug("source image %s of view %d is missing; not copied", src, v)
            missing.append(str(src))
            continue
        expected = (int(rec.original_sizes[v, 0]), int(rec.original_sizes[v, 1]))
        try:
            im = Image.open(src)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            # Never copied as is: a project may point at any file (a key, a password store).
            log.debug("%s of view %d is not an image (%s); not copied", src, v, exc)
            missing.append(str(src))
            continue
        with im:
            try:
                orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
                upright = im.size if orientation in (None, 1, 2, 3, 4) else im.size[::-1]
            except (OSError, ValueError, SyntaxError) as exc:
                log.debug("cannot read the metadata of %s (%s); not copied", src, exc)
                missing.append(str(src))
                continue
            if tuple(upright) != expected:
                log.debug(
                    "%s is %dx%d upright, view %d was %dx%d: not its photo; not copied",
                    src, *upright, v, *expected,
                )  # fmt: skip
                missing.append(str(src))
                continue
            if orientation in (None, 1) and src.suffix.lower() in _PASSTHROUGH:
                atomic_copy(src, dest, link=link)
                continue
            try:
                out = ImageOps.exif_transpose(im)
            except (OSError, ValueError, SyntaxError) as exc:
                log.debug("cannot decode %s (%s); not copied", src, exc)
                missing.append(str(src))
                continue
        with atomic_path(dest) as tmp:
            if dest.suffix.lower() in (".jpg", ".jpeg"):
                out.convert("RGB").save(tmp, format="JPEG", quality=jpeg_quality)
            else:
                out.save(tmp, format="PNG")
    _warn_missing(missing)
    return missing


def _warn_missing(missing: list[str]) -> None:
    """One warning naming the images an export could not include."""
    if not missing:
        return
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    log.warning(
        "%d image(s) not found, not images, or not the photos of their views; not in the export: %s",
        len(missing),
        shown,
    )
