"""Known camera intrinsics: from a file the user gives, from EXIF, or none (the model's estimate).

Sources, in order of trust (issue 19):

1. a file (``--intrinsics FILE``): JSON, or a COLMAP sparse model (``cameras.txt``/``cameras.bin`` with
   ``images.txt``/``images.bin`` beside it), see :func:`read_intrinsics_file`;
2. EXIF (:func:`exif_intrinsics`): ``FocalLengthIn35mmFilm`` over the image diagonal, else
   ``FocalLength`` with the focal-plane resolution;
3. the estimate from the pointmaps (:mod:`fast3r_core.poses`), marked ``None`` here.

:func:`resolve_intrinsics` applies that order to a list of photos; :func:`to_model_pixels` maps a known
matrix into the pixels of the model input (after the loader's resize + centre crop).

Conventions. Intrinsics are in pixels of the *original photo after its EXIF rotation* (upright, the
``original_size`` of :class:`~fast3r_core.images.ViewInput`), OpenCV convention: the centre of the
top-left pixel is at ``(0, 0)``, ``u`` = column, ``v`` = row, so the image centre is
``((W - 1) / 2, (H - 1) / 2)``. JSON files use that convention too (OpenCV's ``calibrateCamera``
output); COLMAP puts the top-left pixel centre at ``(0.5, 0.5)``, so 0.5 is subtracted from its
``cx, cy`` on import (the inverse of :mod:`fast3r_core.export.colmap`). Distortion is not modelled:
COLMAP models with distortion parameters are read with their pinhole part and a logged warning.

Hostile files: sizes are bounded (:data:`MAX_FILE_BYTES`, counts and name lengths are checked against
the bytes left), and every problem raises :class:`~fast3r_core.errors.IntrinsicsError` naming the file
and the line or record.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal, Protocol, TypeAlias

import numpy as np
from numpy.typing import ArrayLike
from PIL import ExifTags, Image, UnidentifiedImageError

from .errors import InputError, IntrinsicsError
from .geometry import Float64Array

__all__ = [
    "COLMAP_MODELS",
    "MAX_FILE_BYTES",
    "CropGeometry",
    "ExifCamera",
    "IntrinsicsMode",
    "IntrinsicsSource",
    "KnownIntrinsics",
    "exif_camera",
    "exif_intrinsics",
    "intrinsics_source",
    "read_colmap_intrinsics",
    "read_intrinsics_file",
    "read_json_intrinsics",
    "resolve_intrinsics",
    "to_model_pixels",
]

log = logging.getLogger(__name__)

IntrinsicsSource: TypeAlias = Literal["file", "exif", "estimated"]
#: ``"auto"`` (file-less: EXIF where a whole camera has it, else the estimate), ``"estimate"`` (ignore
#: EXIF), or the path of an intrinsics file.
IntrinsicsMode: TypeAlias = str | os.PathLike[str]

#: Largest intrinsics file read (JSON, COLMAP text or binary). A COLMAP ``images.bin`` holds every 2-D
#: observation, which are skipped without being read, so this bounds the seek range, not memory.
MAX_FILE_BYTES = 1 << 30
#: JSON and COLMAP text files are read whole: they hold a few lines per photo.
MAX_TEXT_BYTES = 64 << 20
#: Longest data line of a COLMAP text file (a camera, or an image's pose and name). Its 2-D points
#: line can be far longer; it is skipped without being held.
_MAX_LINE_BYTES = 64 << 10
_MAX_NAME_BYTES = 4096
_MAX_RECORDS = 10_000_000

# COLMAP camera models in id order, with their parameter counts (COLMAP's documented model list,
# sensor/models.h). The single-focal ones store (f, cx, cy, ...), the others (fx, fy, cx, cy, ...).
_COLMAP_NAMES = (
    "SIMPLE_PINHOLE PINHOLE SIMPLE_RADIAL RADIAL OPENCV OPENCV_FISHEYE FULL_OPENCV FOV "
    "SIMPLE_RADIAL_FISHEYE RADIAL_FISHEYE THIN_PRISM_FISHEYE RAD_TAN_THIN_PRISM_FISHEYE"
).split()
_COLMAP_N_PARAMS = (3, 4, 4, 5, 8, 8, 12, 5, 4, 5, 12, 16)
_SINGLE_FOCAL = frozenset(
    {"SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"}
)
#: COLMAP camera models: id -> (name, number of params, index of fx, fy, cx, cy in the params; fy is
#: fx's index for the single-focal models).
COLMAP_MODELS: dict[int, tuple[str, int, tuple[int, int, int, int]]] = {
    mid: (name, n, (0, 0, 1, 2) if name in _SINGLE_FOCAL else (0, 1, 2, 3))
    for mid, (name, n) in enumerate(zip(_COLMAP_NAMES, _COLMAP_N_PARAMS, strict=True))
}
_COLMAP_BY_NAME = {name: mid for mid, (name, _, _) in COLMAP_MODELS.items()}
_PINHOLE_MODELS = frozenset({"SIMPLE_PINHOLE", "PINHOLE"})
# Fisheye projections are far from a pinhole: their focal would be wrong for PnP, refused.
_FISHEYE_MODELS = frozenset({name for name, _, _ in COLMAP_MODELS.values() if "FISHEYE" in name} | {"FOV"})
_COLMAP_PIXEL_OFFSET = 0.5  # COLMAP's top-left pixel centre is at (0.5, 0.5), ours at (0, 0)

# EXIF tags (EXIF 2.3): IFD0 and the Exif sub-IFD.
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_ORIENTATION = 0x0112
_TAG_FOCAL = 0x920A
_TAG_FOCAL_35 = 0xA405
_TAG_FPLANE_XRES = 0xA20E
_TAG_FPLANE_UNIT = 0xA210
#: FocalPlaneResolutionUnit -> millimetres per unit (2 inch, 3 cm; 4 mm and 5 µm occur in the wild).
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}
_DIAGONAL_35MM = math.hypot(36.0, 24.0)
#: EXIF focals implying a field of view outside ~1-170 degrees are nonsense (a 0 or a unit slip).
_FOCAL_DIAGONAL_RANGE = (0.04, 60.0)


# ------------------------------------------------------------------------------------------- types


@dataclass(frozen=True)
class KnownIntrinsics:
    """Pinhole intrinsics of one photo in pixels of the original photo after EXIF rotation.

    Attributes
    ----------
    fx, fy : float
        Focal lengths in pixels (> 0).
    cx, cy : float
        Principal point, OpenCV convention (top-left pixel centre at ``(0, 0)``).
    source : {"file", "exif", "estimated"}
        Where they come from ("estimated": filled in after the run from the pose estimate, for reports).
    camera : str
        Key of the camera they belong to (photos with the same key share intrinsics): the COLMAP
        camera id, the JSON entry, or make/model/focal/size from EXIF.
    size : tuple[int, int] or None
        ``(width, height)`` of the photo they refer to (upright), when known.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    source: IntrinsicsSource
    camera: str = ""
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        raw = (self.fx, self.fy, self.cx, self.cy)
        try:  # numpy scalars welcome: stored as Python floats
            values = tuple(float(v) for v in raw)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InputError(f"intrinsics must be finite numbers, got {raw}") from exc
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"intrinsics must be finite numbers, got {raw}")
        for name, v in zip(("fx", "fy", "cx", "cy"), values, strict=True):
            object.__setattr__(self, name, v)
        if not (self.fx > 0 and self.fy > 0):
            raise InputError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")

    @property
    def matrix(self) -> Float64Array:
        """``(3, 3)`` float64 ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (original-photo pixels)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64)

    def scaled_to(self, size: tuple[int, int], where: str) -> KnownIntrinsics:
        """The same camera for a photo of ``size`` ``(width, height)``: scaled when :attr:`size` differs
        by the same factor on both axes (a downscaled copy); an error when the aspect differs, or when
        the result is implausible for that photo (see :meth:`check_plausible`)."""
        return self._scaled_to(size, where).check_plausible(where)

    def check_plausible(self, where: str) -> KnownIntrinsics:
        """``self`` when it can be a camera of a photo of :attr:`size`: focal lengths of a field of view
        of about 1-170 degrees (the range EXIF focals are held to), a principal point no farther from
        the photo than its own size. Else an :class:`IntrinsicsError` (a unit slip, a typo)."""
        if self.size is None:
            return self
        w, h = self.size
        diag = math.hypot(w, h)
        lo, hi = _FOCAL_DIAGONAL_RANGE
        for name, f in (("fx", self.fx), ("fy", self.fy)):
            if not lo * diag < f < hi * diag:
                raise IntrinsicsError(
                    f"{where}: {name} = {f:.6g} px is implausible for a {w}x{h} photo (a field of view "
                    f"outside 1-170 degrees: between {lo * diag:.0f} and {hi * diag:.0f} px is expected)"
                )
        for name, c, n in (("cx", self.cx, w), ("cy", self.cy, h)):
            if not -n <= c <= 2 * n:
                raise IntrinsicsError(
                    f"{where}: {name} = {c:.6g} px lies far outside the {w}x{h} photo (its centre is "
                    f"near {(n - 1) / 2:.0f})"
                )
        return self

    def _scaled_to(self, size: tuple[int, int], where: str) -> KnownIntrinsics:
        if self.size is None or tuple(self.size) == tuple(size):
            return replace(self, size=(int(size[0]), int(size[1])))
        (w0, h0), (w1, h1) = self.size, size
        sx, sy = w1 / w0, h1 / h0
        if abs(sx / sy - 1.0) > 0.01:
            raise IntrinsicsError(
                f"{where}: the intrinsics are for a {w0}x{h0} image but the photo is {w1}x{h1} "
                "(different aspect: a crop or a rotation, which cannot be mapped)"
            )
        # pixel centres: u1 + 0.5 = (u0 + 0.5) * s
        return replace(
            self,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            size=(int(w1), int(h1)),
        )


class CropGeometry(Protocol):
    """The loader's resize + crop of one image: :class:`~fast3r_core.images.ResizeCrop` or a
    :class:`~fast3r_core.images.ViewInput` (both have these attributes)."""

    @property
    def original_size(self) -> tuple[int, int]: ...
    @property
    def resized_size(self) -> tuple[int, int]: ...
    @property
    def crop_box(self) -> tuple[int, int, int, int]: ...


def intrinsics_source(k: KnownIntrinsics | None) -> IntrinsicsSource:
    """``k.source``, or ``"estimated"`` for ``None`` (the pose estimate supplies that view's focal)."""
    return "estimated" if k is None else k.source


def to_model_pixels(K: KnownIntrinsics | ArrayLike, geometry: CropGeometry) -> Float64Array:
    """Intrinsics in pixels of the model input, given the loader's resize + centre crop.

    The inverse of :func:`fast3r_core.geometry.intrinsics_model_to_original`: with
    ``s = resized / original`` per axis and pixel centres at integers,
    ``fx_m = fx * sx``, ``cx_m = (cx + 0.5) * sx - 0.5 - left`` (likewise ``y`` with ``top``).

    Parameters
    ----------
    K : KnownIntrinsics or array_like of shape (3, 3)
        Intrinsics in original-photo pixels (upright). A :class:`KnownIntrinsics` whose ``size``
        differs from ``geometry.original_size`` is scaled first (same aspect) or refused.
    geometry : ResizeCrop or ViewInput
        ``original_size``, ``resized_size`` ``(width, height)`` and ``crop_box``
        ``(left, top, right, bottom)`` in resized pixels.

    Returns
    -------
    ndarray, shape (3, 3), float64
        Model-input intrinsics (``u`` = column, ``v`` = row of the cropped model image).
    """
    if isinstance(K, KnownIntrinsics):
        K = K.scaled_to(geometry.original_size, K.camera or "intrinsics").matrix
    k = np.asarray(K, dtype=np.float64)
    if k.shape != (3, 3) or not np.isfinite(k).all():
        raise InputError(f"intrinsics must be a finite (3, 3) matrix, got shape {k.shape}")
    (w0, h0), (wr, hr) = geometry.original_size, geometry.resized_size
    if min(w0, h0, wr, hr) <= 0:
        raise InputError(f"invalid image sizes: original {w0}x{h0}, resized {wr}x{hr}")
    sx, sy = wr / w0, hr / h0
    left, top = float(geometry.crop_box[0]), float(geometry.crop_box[1])
    out = k.copy()
    out[0, :] = k[0, :] * sx
    out[1, :] = k[1, :] * sy
    out[0, 2] = (k[0, 2] + 0.5) * sx - 0.5 - left
    out[1, 2] = (k[1, 2] + 0.5) * sy - 0.5 - top
    return out


# -------------------------------------------------------------------------------------------- EXIF


@dataclass(frozen=True)
class ExifCamera:
    """What EXIF says about the camera of one photo.

    Attributes
    ----------
    make, model : str
        ``Make`` and ``Model`` (stripped; "" when absent).
    size : tuple[int, int]
        ``(width, height)`` after the EXIF rotation.
    focal_px : float or None
        Focal in pixels of the upright photo, or None when EXIF does not give it.
    focal_mm : float or None
        ``FocalLength`` (or the 35 mm equivalent when only that exists), to tell zooms apart.
    """

    make: str
    model: str
    size: tuple[int, int]
    focal_px: float | None
    focal_mm: float | None

    @property
    def body(self) -> tuple[str, str, tuple[int, int]]:
        """The camera body: make, model and the sensor's (long, short) side, whatever the rotation."""
        return self.make, self.model, (max(self.size), min(self.size))

    @property
    def key(self) -> str:
        """Camera key of its intrinsics: make, model, focal and upright size."""
        name = " ".join(p for p in (self.make, self.model) if p) or "unknown camera"
        focal = f" {self.focal_mm:g}mm" if self.focal_mm is not None else ""
        return f"{name}{focal} {self.size[0]}x{self.size[1]}"


def _rational(value: Any) -> float | None:
    """An EXIF number (int, float, IFDRational, or a (num, den) pair) as a finite float, else None."""
    try:
        if isinstance(value, tuple) and len(value) == 2:
            f = float(value[0]) / float(value[1])
        else:
            f = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip("\0 \t\r\n") if value is not None else ""


def exif_camera(path: str | os.PathLike[str]) -> ExifCamera:
    """Read a photo's header (not its pixels) and compute its EXIF focal in pixels.

    ``FocalLengthIn35mmFilm`` ``f35`` is a 35 mm-equivalent over the diagonal:
    ``f_px = f35 * sqrt(W² + H²) / sqrt(36² + 24²)`` with ``W, H`` the upright size. Without it,
    ``FocalLength`` (mm) times ``FocalPlaneXResolution`` (pixels per ``FocalPlaneResolutionUnit``)
    when both are present. Values implying an absurd field of view are ignored (logged).

    Raises
    ------
    InputError
        If the file cannot be opened as an image. A broken EXIF block only means "no focal".
    """
    p = Path(path)
    if p.suffix.lower() in (".heic", ".heif"):
        from .images.discovery import heif_supported  # registers pillow-heif's opener when installed

        heif_supported()
    try:
        with Image.open(p) as im:
            raw_w, raw_h = im.size
            try:
                exif = im.getexif()
                sub = exif.get_ifd(ExifTags.IFD.Exif)
            except Exception as exc:  # broken EXIF: the photo is still usable, just without a focal
                log.debug("%s: unreadable EXIF (%s)", p, exc)
                return ExifCamera("", "", (raw_w, raw_h), None, None)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{p}: cannot read the image header ({exc})") from exc
    orientation = exif.get(_TAG_ORIENTATION, 1)
    size = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
    make, model = _text(exif.get(_TAG_MAKE)), _text(exif.get(_TAG_MODEL))
    f35 = _rational(sub.get(_TAG_FOCAL_35))
    f_mm = _rational(sub.get(_TAG_FOCAL))
    diag = math.hypot(*size)
    focal_px: float | None = None
    if f35 is not None:
        focal_px = f35 * diag / _DIAGONAL_35MM
    elif f_mm is not None:
        xres = _rational(sub.get(_TAG_FPLANE_XRES))
        unit = sub.get(_TAG_FPLANE_UNIT, 2)  # EXIF's default unit is the inch
        if xres is not None and unit in _UNIT_MM:
            focal_px = f_mm * xres / _UNIT_MM[unit]
    if focal_px is not None and not (
        _FOCAL_DIAGONAL_RANGE[0] * diag < focal_px < _FOCAL_DIAGONAL_RANGE[1] * diag
    ):
        log.warning("%s: EXIF focal of %.4g px is implausible for a %dx%d photo; ignored", p, focal_px, *size)
        focal_px = None
    return ExifCamera(make, model, size, focal_px, f_mm if f_mm is not None else f35)


def exif_intrinsics(path: str | os.PathLike[str]) -> KnownIntrinsics | None:
    """Intrinsics of a photo from its EXIF (principal point at the image centre), or None.

    See :func:`exif_camera` for the focal; ``fx = fy``, ``(cx, cy) = ((W - 1) / 2, (H - 1) / 2)``.
    """
    cam = exif_camera(path)
    return _from_exif(cam)


def _from_exif(cam: ExifCamera) -> KnownIntrinsics | None:
    if cam.focal_px is None:
        return None
    w, h = cam.size
    return KnownIntrinsics(
        cam.focal_px, cam.focal_px, (w - 1) / 2.0, (h - 1) / 2.0, "exif", cam.key, cam.size
    )


# -------------------------------------------------------------------------------------- JSON files


_JSON_KEYS = ("fx", "fy", "cx", "cy")


def _json_entry(obj: Any, where: str, camera: str) -> KnownIntrinsics:
    if not isinstance(obj, Mapping):
        raise IntrinsicsError(f"{where}: expected an object with fx, fy, cx, cy, got {type(obj).__name__}")
    missing = [k for k in _JSON_KEYS if k not in obj]
    if missing:
        raise IntrinsicsError(f"{where}: missing {', '.join(missing)} (needs fx, fy, cx, cy in pixels)")
    vals: list[float] = []
    for k in _JSON_KEYS:
        v = obj[k]
        try:  # float() of a huge JSON integer overflows
            fv = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        except OverflowError:
            fv = math.nan
        if not math.isfinite(fv):
            raise IntrinsicsError(f"{where}: {k} must be a finite number, got {str(v)[:40]}")
        vals.append(fv)
    size: tuple[int, int] | None = None
    if "width" in obj or "height" in obj:
        w, h = obj.get("width"), obj.get("height")
        if not all(isinstance(x, int) and not isinstance(x, bool) and 0 < x < 1 << 20 for x in (w, h)):
            raise IntrinsicsError(f"{where}: width and height must both be positive integers")
        size = (int(w), int(h))  # type: ignore[arg-type]  # checked just above
    if not (vals[0] > 0 and vals[1] > 0):
        raise IntrinsicsError(f"{where}: fx and fy must be positive")
    fx, fy, cx, cy = vals
    return KnownIntrinsics(fx, fy, cx, cy, source="file", camera=camera, size=size)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise IntrinsicsError(f"{path}: {size} bytes is too large for an intrinsics file")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IntrinsicsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise IntrinsicsError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_json_intrinsics(path: str | os.PathLike[str]) -> dict[str | None, KnownIntrinsics]:
    """Read a JSON intrinsics file (pixels of the original upright photo, OpenCV convention).

    Accepted forms:

    * one object ``{"fx": .., "fy": .., "cx": .., "cy": ..}`` for every photo;
    * a list of such objects each with a ``"name"`` (the image file name);
    * an object mapping image names to such objects.

    Each entry may add ``"width"`` and ``"height"``: the image size it was calibrated at (then a photo
    of another size with the same aspect gets scaled intrinsics).

    Returns
    -------
    dict
        Image name -> intrinsics; the key ``None`` holds the one entry that applies to all photos.

    Raises
    ------
    IntrinsicsError
        Unreadable or invalid JSON; the message names the file and the line or entry.
    """
    p = Path(path)
    text = _read_text(p)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntrinsicsError(f"{p}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise IntrinsicsError(f"{p}: JSON nested too deeply") from exc
    out: dict[str | None, KnownIntrinsics] = {}
    if isinstance(data, Mapping) and any(k in data for k in _JSON_KEYS):
        out[None] = _json_entry(data, str(p), p.name)
    elif isinstance(data, Mapping):
        for name, entry in data.items():
            out[str(name)] = _json_entry(entry, f"{p}, entry {name!r}", str(name))
    elif isinstance(data, list):
        for i, entry in enumerate(data):
            where = f"{p}, item {i}"
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if not isinstance(name, str) or not name:
                raise IntrinsicsError(f'{where}: each item of a list needs a "name" (the image file name)')
            if name in out:
                raise IntrinsicsError(f"{where}: image {name!r} is listed twice")
            out[name] = _json_entry(entry, where, name)
    else:
        raise IntrinsicsError(f"{p}: expected a JSON object or list, got {type(data).__name__}")
    if not out:
        raise IntrinsicsError(f"{p}: no intrinsics in the file")
    return out


# ------------------------------------------------------------------------------------ COLMAP files


@dataclass(frozen=True)
class _ColmapCamera:
    model: str
    width: int
    height: int
    params: tuple[float, ...]
    where: str  # file and line or record, for messages


def _colmap_known(cam: _ColmapCamera, camera_id: int) -> KnownIntrinsics:
    where = cam.where
    if cam.model in _FISHEYE_MODELS:
        raise IntrinsicsError(
            f"{where}: camera {camera_id} is a {cam.model} camera; only pinhole-like "
            "models are supported (undistort the photos first)"
        )
    _, n, (ifx, ify, icx, icy) = COLMAP_MODELS[_COLMAP_BY_NAME[cam.model]]
    if len(cam.params) != n:
        raise IntrinsicsError(
            f"{where}: camera {camera_id} ({cam.model}) has {len(cam.params)} params, expects {n}"
        )
    if cam.model not in _PINHOLE_MODELS and any(cam.params[4 if ify != ifx else 3 :]):
        log.warning("%s: camera %d is %s; its distortion is ignored", where, camera_id, cam.model)
    p = cam.params
    if not all(math.isfinite(x) for x in p) or p[ifx] <= 0 or p[ify] <= 0:
        raise IntrinsicsError(f"{where}: camera {camera_id} has invalid params {p}")
    if not (0 < cam.width < 1 << 20 and 0 < cam.height < 1 << 20):
        raise IntrinsicsError(f"{where}: camera {camera_id} has invalid size {cam.width}x{cam.height}")
    return KnownIntrinsics(
        p[ifx],
        p[ify],
        p[icx] - _COLMAP_PIXEL_OFFSET,
        p[icy] - _COLMAP_PIXEL_OFFSET,
        source="file",
        camera=f"colmap camera {camera_id}",
        size=(cam.width, cam.height),
    )


class _TextLines:
    """Numbered lines (1-based) of a COLMAP text file read as a stream: a data line is bounded
    (:data:`_MAX_LINE_BYTES`), a skipped line is consumed in chunks whatever its length."""

    def __init__(self, f: IO[bytes], path: Path) -> None:
        self.f, self.path, self.number = f, path, 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        while True:
            raw = self.f.readline(_MAX_LINE_BYTES + 1)
            if not raw:
                return
            self.number += 1
            if len(raw) > _MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise IntrinsicsError(
                    f"{self.path}, line {self.number}: line longer than {_MAX_LINE_BYTES} bytes"
                )
            try:
                yield self.number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise IntrinsicsError(f"{self.path}, line {self.number}: not UTF-8 text") from exc

    def records(self, min_fields: int, layout: str, maxsplit: int = -1) -> Iterator[tuple[str, list[str]]]:
        """Data lines (neither blank nor comments) split on white space, with "file, line N" for messages."""
        for i, line in self:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{self.path}, line {i}"
            fields = line.split(maxsplit=maxsplit)
            if len(fields) < min_fields:
                raise IntrinsicsError(f"{where}: expected {layout}")
            yield where, fields

    def skip_line(self) -> None:
        """Consume the next line, however long."""
        self.number += 1
        while True:
            chunk = self.f.readline(1 << 20)
            if not chunk or chunk.endswith(b"\n"):
                return


def _read_cameras_txt(path: Path) -> dict[int, _ColmapCamera]:
    cams: dict[int, _ColmapCamera] = {}
    fh, _ = _open_binary(path)  # the same size bound; lines are decoded one by one
    with fh:
        for where, f in _TextLines(fh, path).records(4, "CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]"):
            if f[1] not in _COLMAP_BY_NAME:
                raise IntrinsicsError(f"{where}: unknown camera model {f[1][:40]!r}")
            try:
                cid, w, h = int(f[0]), int(f[2]), int(f[3])
                params = tuple(float(x) for x in f[4:])
            except ValueError as exc:
                raise IntrinsicsError(f"{where}: {exc}") from exc
            if cid in cams:
                raise IntrinsicsError(f"{where}: camera {cid} defined twice")
            cams[cid] = _ColmapCamera(f[1], w, h, params, where)
    return cams


def _read_images_txt(path: Path) -> dict[str, int]:
    """Image name -> camera id. Each image takes two lines; the second (2-D points) is skipped."""
    names: dict[str, int] = {}
    fh, _ = _open_binary(path)
    with fh:
        lines = _TextLines(fh, path)
        for where, f in lines.records(10, "IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME", maxsplit=9):
            try:
                int(f[0])
                [float(x) for x in f[1:8]]
                cid = int(f[8])
            except ValueError as exc:
                raise IntrinsicsError(f"{where}: {exc}") from exc
            names[f[9].strip()] = cid
            lines.skip_line()  # the POINTS2D line, as COLMAP reads it (may be empty)
    return names


class _Binary:
    """Bounds-checked little-endian reads from a COLMAP binary file."""

    def __init__(self, f: IO[bytes], path: Path, size: int) -> None:
        self.f, self.path, self.size = f, path, size

    def left(self) -> int:
        return self.size - self.f.tell()

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        n = struct.calcsize(fmt)
        data = self.f.read(n)
        if len(data) != n:
            raise IntrinsicsError(f"{self.path}: truncated at byte {self.f.tell()} ({what})")
        return struct.unpack(fmt, data)

    def count(self, record_bytes: int, what: str) -> int:
        (n,) = self.unpack("<Q", f"number of {what}")
        if n > _MAX_RECORDS or n * record_bytes > self.left():
            raise IntrinsicsError(f"{self.path}: claims {n} {what}, more than the file can hold")
        return int(n)

    def name(self, record: int) -> str:
        start = self.f.tell()
        chunk = self.f.read(min(_MAX_NAME_BYTES + 1, self.left()))
        end = chunk.find(b"\0")
        if end < 0:
            raise IntrinsicsError(
                f"{self.path}: image record {record}: name not terminated within {_MAX_NAME_BYTES} bytes"
            )
        self.f.seek(start + end + 1)
        try:
            return chunk[:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IntrinsicsError(f"{self.path}: image record {record}: name is not UTF-8") from exc


def _open_binary(path: Path) -> tuple[IO[bytes], int]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise IntrinsicsError(f"{path}: {size} bytes is too large")
        return path.open("rb"), size
    except OSError as exc:
        raise IntrinsicsError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _read_cameras_bin(path: Path) -> dict[int, _ColmapCamera]:
    f, size = _open_binary(path)
    with f:
        b = _Binary(f, path, size)
        cams: dict[int, _ColmapCamera] = {}
        for r in range(b.count(24 + 8 * 3, "cameras")):
            cid, mid, w, h = b.unpack("<IiQQ", f"camera record {r}")
            if mid not in COLMAP_MODELS:
                raise IntrinsicsError(f"{path}: camera record {r}: unknown camera model id {mid}")
            name, n, _ = COLMAP_MODELS[mid]
            params = b.unpack(f"<{n}d", f"camera record {r} params")
            if cid in cams:
                raise IntrinsicsError(f"{path}: camera record {r}: camera {cid} defined twice")
            cams[cid] = _ColmapCamera(
                name, int(w), int(h), tuple(float(x) for x in params), f"{path}, camera record {r}"
            )
    return cams


def _read_images_bin(path: Path) -> dict[str, int]:
    f, size = _open_binary(path)
    with f:
        b = _Binary(f, path, size)
        names: dict[str, int] = {}
        for r in range(b.count(4 + 56 + 4 + 1 + 8, "images")):
            fields = b.unpack("<I7dI", f"image record {r}")
            name = b.name(r)
            (n_pts,) = b.unpack("<Q", f"image record {r} point count")
            if n_pts * 24 > b.left():
                raise IntrinsicsError(f"{path}: image record {r}: claims {n_pts} points, past the end")
            f.seek(n_pts * 24, os.SEEK_CUR)  # x, y (float64), point3D_id (uint64): not needed
            names[name] = int(fields[8])
    return names


def read_colmap_intrinsics(path: str | os.PathLike[str]) -> dict[str | None, KnownIntrinsics]:
    """Read a COLMAP sparse model's cameras (and which image uses which).

    Parameters
    ----------
    path : path-like
        ``cameras.txt`` or ``cameras.bin`` (``images.txt``/``images.bin`` of the same format beside
        it, when present, say which image uses which camera), or a folder holding them (``sparse/0``;
        binary preferred when both exist).

    Returns
    -------
    dict
        Image name (as in the images file) -> intrinsics in original-photo pixels, OpenCV convention
        (``cx, cy`` moved by -0.5 from COLMAP's); without an images file, a single camera is returned
        under the key ``None`` (all photos).

    Raises
    ------
    IntrinsicsError
        Missing, truncated or invalid files; several cameras and no images file; a fisheye model.
    """
    p = Path(path)
    if p.is_dir():
        ext = ".bin" if (p / "cameras.bin").is_file() else ".txt"
        cameras = p / f"cameras{ext}"
    else:
        cameras, ext = p, p.suffix.lower()
    if not cameras.is_file():
        raise IntrinsicsError(f"{p}: no COLMAP cameras.bin or cameras.txt there")
    images = cameras.with_name(f"images{ext}")
    binary = ext == ".bin"
    cams = _read_cameras_bin(cameras) if binary else _read_cameras_txt(cameras)
    if not cams:
        raise IntrinsicsError(f"{cameras}: no camera in the file")
    known = {cid: _colmap_known(c, cid) for cid, c in cams.items()}
    if not images.is_file():
        if len(known) != 1:
            raise IntrinsicsError(
                f"{cameras}: {len(known)} cameras but no {images.name} beside it "
                "to say which image uses which"
            )
        return {None: next(iter(known.values()))}
    uses = _read_images_bin(images) if binary else _read_images_txt(images)
    out: dict[str | None, KnownIntrinsics] = {}
    for name, cid in uses.items():
        if cid not in known:
            raise IntrinsicsError(f"{images}: image {name!r} uses camera {cid}, which {cameras.name} lacks")
        out[name] = known[cid]
    if not out:
        raise IntrinsicsError(f"{images}: no image in the file")
    return out


def read_intrinsics_file(path: str | os.PathLike[str]) -> dict[str | None, KnownIntrinsics]:
    """Read any intrinsics file: JSON (``.json``) or COLMAP (``cameras.*``, ``images.*`` or their folder).

    Returns image name -> intrinsics, with ``None`` for an entry that applies to every photo; see
    :func:`read_json_intrinsics` and :func:`read_colmap_intrinsics`.
    """
    p = Path(path)
    if not p.exists():
        raise IntrinsicsError(f"{p}: no such intrinsics file")
    if p.is_dir():
        return read_colmap_intrinsics(p)
    ext = p.suffix.lower()
    if ext in (".bin", ".txt"):
        if p.stem in ("images", "points3D"):
            p = p.with_name(f"cameras{ext}")
        return read_colmap_intrinsics(p)
    return read_json_intrinsics(p)


# ----------------------------------------------------------------------------------------- resolve


def _lookup(
    table: Mapping[str | None, KnownIntrinsics], path: Path, name: str | None
) -> KnownIntrinsics | None:
    """The file's entry of one photo: by display name, file name, relative name ending, or stem."""
    for key in (name, path.name):
        if key is not None and key in table:
            return table[key]
    # COLMAP names may carry a folder ("images/a.jpg", "cam0/a.jpg"): match a unique name ending.
    ends = [k for k in table if k is not None and (k.replace("\\", "/").rsplit("/", 1)[-1] == path.name)]
    if len(ends) == 1:
        return table[ends[0]]
    stems = [k for k in table if k is not None and Path(k.replace("\\", "/")).stem == path.stem]
    if len(stems) == 1:
        return table[stems[0]]
    return table.get(None)


def resolve_intrinsics(
    mode: IntrinsicsMode,
    paths: Sequence[str | os.PathLike[str]],
    *,
    sizes: Sequence[tuple[int, int]] | None = None,
    names: Sequence[str] | None = None,
) -> list[KnownIntrinsics | None]:
    """Intrinsics of each photo by the trust order file > EXIF > estimate.

    Parameters
    ----------
    mode : "auto", "estimate", or a path
        ``"estimate"``: every photo is estimated (EXIF ignored). ``"auto"``: EXIF where *every* photo of
        the same camera body (make, model, sensor size) has an EXIF focal, else the estimate for that
        whole camera (mixing known and estimated focals of one camera would be inconsistent). A path:
        the file's intrinsics (:func:`read_intrinsics_file`) for the photos it lists, ``"auto"`` for
        the others (logged).
    paths : sequence of path-like
        The photo files (for EXIF and for matching names in the file).
    sizes : sequence of (width, height), optional
        Upright size of each photo (``ViewInput.original_size``); read from the headers when omitted.
        File intrinsics given for another size of the same aspect are scaled to it.
    names : sequence of str, optional
        Display names, also matched against the file's image names (besides the file name).

    Returns
    -------
    list of KnownIntrinsics or None
        One per photo, in order, in pixels of that upright photo; ``None`` = estimate it.

    Raises
    ------
    IntrinsicsError
        The file cannot be read, does not fit a photo's size, or names no given photo at all.
    InputError
        A photo's header cannot be read (``auto`` mode, or sizes omitted).
    """
    ps = [Path(x) for x in paths]
    if (sizes is not None and len(sizes) != len(ps)) or (names is not None and len(names) != len(ps)):
        raise InputError("sizes and names must have one entry per photo")
    mode_s = os.fspath(mode)
    if mode_s == "estimate":
        return [None] * len(ps)
    result: list[KnownIntrinsics | None] = [None] * len(ps)
    rest = list(range(len(ps)))
    if mode_s != "auto":
        table = read_intrinsics_file(mode_s)
        rest = []
        used: set[int] = set()  # id() of the file's entries some photo took
        for i, p in enumerate(ps):
            k = _lookup(table, p, names[i] if names else None)
            if k is None:
                rest.append(i)
                continue
            used.add(id(k))
            size = sizes[i] if sizes is not None else _upright_size(p)
            result[i] = k.scaled_to(size, f"{mode_s} for {p.name}")
        if len(rest) == len(ps):
            raise IntrinsicsError(f"{mode_s}: none of the {len(ps)} photos is listed in the file")
        unused = [name for name, k in table.items() if name is not None and id(k) not in used]
        if unused:  # a typo in a name silently falls back to EXIF or the estimate: say so
            more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
            log.warning(
                "%s lists %s that match no photo of this run: %s%s",
                mode_s,
                "an image" if len(unused) == 1 else f"{len(unused)} images",
                ", ".join(repr(k) for k in unused[:5]),
                more,
            )
        if rest:
            log.info("%d photos are not in %s: EXIF or the estimate for them", len(rest), mode_s)
    cams = {i: _exif_or_none(ps[i], sizes[i] if sizes is not None else (0, 0)) for i in rest}
    bodies: dict[tuple[str, str, tuple[int, int]], list[int]] = {}
    for i, cam in cams.items():
        bodies.setdefault(cam.body, []).append(i)
    for body, members in bodies.items():
        found = [_from_exif(cams[i]) for i in members]
        if all(k is not None for k in found):
            for i, k in zip(members, found, strict=True):
                result[i] = k
        elif any(k is not None for k in found):
            log.info(
                "%s: %d of %d photos lack an EXIF focal; estimating this camera's focal instead",
                " ".join(body[:2]) or "unknown camera",
                sum(k is None for k in found),
                len(found),
            )
    return result


def _exif_or_none(path: Path, size: tuple[int, int]) -> ExifCamera:
    """The photo's EXIF camera; an unreadable header means no EXIF (the loader reports the file)."""
    try:
        return exif_camera(path)
    except InputError as exc:
        log.debug("no EXIF for %s: %s", path, exc)
        return ExifCamera("", "", (int(size[0]), int(size[1])), None, None)


def _upright_size(path: Path) -> tuple[int, int]:
    return exif_camera(path).size
