"""The project file (``.f3r``): :func:`save_project`, :func:`load_project`, checks of an untrusted file.

A project is a zip (stored, not deflated) of ``meta.json`` (format name and version, model name, run
options, timings, image paths, runs, the user's edits) and ``arrays.npz`` (every array of a
:class:`~fast3r_core.result.Reconstruction`). Reading one needs numpy and the standard library only,
no torch; every size is checked before anything is read or allocated, since project files are shared.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import os
import struct
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fast3r_core.atomic import atomic_path
from fast3r_core.edits import Edits, edits_from_json, edits_to_json
from fast3r_core.errors import EditsError, ProjectFileError
from fast3r_core.result import (
    _PER_VIEW_FIELDS,
    _STACKED_FIELDS,
    PROJECT_FORMAT_VERSION,
    Reconstruction,
    RunRecord,
    _is_int,
)

__all__ = [
    "PROJECT_FORMAT",
    "PROJECT_FORMAT_VERSION",
    "PROJECT_SUFFIX",
    "is_project_file",
    "load_project",
    "project_size",
    "save_project",
]

log = logging.getLogger(__name__)

PROJECT_FORMAT = "fast3r-project"
"""Value of the "format" field of a project's meta.json."""
PROJECT_SUFFIX = ".f3r"


def project_size(rec: Reconstruction) -> int:
    """The model input size (512 or 224) ``rec`` was made at: its options, else its view shapes.

    Photos added to a result must be prepared at this size (see ``fast3r_core.pipeline.add_views``).
    """
    size = rec.options.get("size")
    if size in (224, 512):
        return int(size)
    return 224 if max(max(rec.view_shape(v)) for v in range(rec.n_views)) <= 224 else 512


_META = "meta.json"
_ARRAYS = "arrays.npz"


def _app_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("fast3r-studio")
    except (ImportError, PackageNotFoundError):
        return "unknown"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _image_entry(image_path: str, project_dir: str) -> dict[str, str | None]:
    absolute = os.path.abspath(image_path)
    try:
        relative: str | None = Path(os.path.relpath(absolute, project_dir)).as_posix()
    except ValueError:  # another drive on Windows
        relative = None
    return {"relative": relative, "absolute": absolute}


def _resolve_image(entry: Mapping[str, Any], project_dir: str) -> str:
    """Prefer the path relative to the project (the folder may have moved), else the absolute one."""
    relative, absolute = entry.get("relative"), entry.get("absolute")
    candidate = os.path.normpath(os.path.join(project_dir, relative)) if relative else None
    if candidate is not None and os.path.exists(candidate):
        return candidate
    if absolute:
        return str(absolute)
    if candidate is not None:
        return candidate
    raise ProjectFileError("an image entry in meta.json has neither a relative nor an absolute path")


def save_project(rec: Reconstruction, path: str | os.PathLike[str], *, compress: bool = False) -> Path:
    """Write ``rec`` to a project file (``.f3r``), atomically.

    The file is a zip (stored, not deflated) holding ``meta.json`` (format name and version, model
    name, options, timings, image paths relative to the project file and absolute, runs, creation time,
    app version, the user's edits) and ``arrays.npz`` (every array of ``rec``; per-view maps as
    ``<field>_<view:04d>``).

    Parameters
    ----------
    rec : Reconstruction
        What to save.
    path : path-like
        Destination; ".f3r" is the usual suffix (not enforced).
    compress : bool
        Deflate the arrays. Pointmaps are float32 noise to a compressor: it saves little space and
        costs much time, so the default is off (see bench/exports.py for numbers).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ProjectFileError
        The destination cannot be written, or ``rec.options`` is not JSON-able.
    """
    dest = Path(path)
    project_dir = os.path.dirname(os.path.abspath(dest))
    meta = {
        "format": PROJECT_FORMAT,
        "version": PROJECT_FORMAT_VERSION,
        "app_version": _app_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model_name": rec.model_name,
        "n_views": rec.n_views,
        "view_shapes": [list(rec.view_shape(v)) for v in range(rec.n_views)],
        "images": [_image_entry(p, project_dir) for p in rec.image_paths],
        "options": rec.options,
        "timings": rec.timings,
        "runs": [r.to_json() for r in rec.runs],
        "edits": edits_to_json(rec.edits),  # format 2: the user's edits (fast3r_core.edits._json)
    }
    try:
        meta_bytes = json.dumps(meta, indent=1, default=_json_default, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProjectFileError(f"Cannot save the project: the run options are not JSON-able ({exc})") from exc

    arrays: dict[str, np.ndarray] = {}
    for name, _, _ in _PER_VIEW_FIELDS:
        for v, a in enumerate(getattr(rec, name)):
            arrays[f"{name}_{v:04d}"] = a
    for name, _, _ in _STACKED_FIELDS:
        arrays[name] = getattr(rec, name)
    arrays["pose_inlier_share"] = rec.pose_inlier_share
    arrays.update(_input_arrays(rec))

    savez = np.savez_compressed if compress else np.savez
    with (
        atomic_path(dest, error=ProjectFileError, fsync=True) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf,
    ):
        zf.writestr(_META, meta_bytes)
        # Stream the npz into the (stored) zip member: no second copy of the arrays in memory.
        with zf.open(_ARRAYS, "w", force_zip64=True) as member:
            # numpy's stubs let **kwds also fill the allow_pickle: bool keyword; these keys are array names
            savez(member, **arrays)  # type: ignore[arg-type]
    log.info("saved project %s (%d views)", dest, rec.n_views)
    return dest


class _FileWindow(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes of ``f`` starting at ``start``.

    Lets np.load read the stored arrays.npz member in place, without copying it into memory first.
    """

    def __init__(self, f: io.BufferedReader, start: int, length: int) -> None:
        super().__init__()
        self._f, self._start, self._length, self._pos = f, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._length - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(view[:n])
        self._pos += got or 0
        return got or 0


def _stored_member_offset(f: io.BufferedReader, info: zipfile.ZipInfo) -> int:
    """Byte offset of a member's data: after its local header (whose extra field may differ)."""
    f.seek(info.header_offset)
    header = f.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ProjectFileError("the project file is corrupt (bad zip member header)")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


# -- reading an untrusted project -------------------------------------------------------------------
# A project file is something people download and share: every size is checked before anything is
# read or allocated, and only the members this format uses are opened.

_MAX_META_BYTES = 64 * 1024**2
"""Largest meta.json accepted (about 300 bytes a view: a million views fit)."""
_MAX_VIEWS = 1_000_000
_MAX_SIDE = 8192
"""Largest height or width of a view at model resolution (the model uses 224 or 512)."""
_MAX_TEXT = 65536
"""Longest string accepted in meta.json (paths, names)."""
_NPY_HEADER_MAX = 65536 + 16
"""Largest .npy header (format 2.0/3.0 allow up to 4 GiB; numpy writes < 200 bytes)."""


def _meta_error(src: Path, field_name: str, problem: str) -> ProjectFileError:
    return ProjectFileError(
        f"{str(src)!r}: the project is inconsistent or corrupt (meta.json: {field_name} {problem})"
    )


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_text(src: Path, name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise _meta_error(src, name, f"must be a string, got {type(value).__name__}")
    if len(value) > _MAX_TEXT:
        raise _meta_error(src, name, f"is too long ({len(value)} characters)")


def _check_index_list(src: Path, name: str, value: Any, n_views: int) -> None:
    if not isinstance(value, list) or not all(_is_int(x) and 0 <= x < n_views for x in value):
        raise _meta_error(src, name, f"must be a list of view indices below {n_views}")


def _validate_meta(meta: Any, src: Path) -> tuple[int, list[tuple[int, int]] | None]:
    """Check every field of a parsed meta.json (types, ranges, lengths); return (n_views, view shapes).

    Raises
    ------
    ProjectFileError
        Naming the first field that is wrong.
    """
    if not isinstance(meta, dict) or meta.get("format") != PROJECT_FORMAT:
        raise ProjectFileError(f"{str(src)!r} is not a Fast3R Studio project (unknown format)")
    version = meta.get("version")
    if not _is_int(version) or version < 1:
        raise ProjectFileError(f"{str(src)!r}: invalid project format version {version!r}")
    if version > PROJECT_FORMAT_VERSION:
        raise ProjectFileError(
            f"{str(src)!r} was saved by a newer Fast3R Studio (project format {version}, "
            f"app {str(meta.get('app_version', '?'))[:40]}); this app reads format {PROJECT_FORMAT_VERSION}. "
            "Update the app to open it."
        )
    n_views = meta.get("n_views")
    if not _is_int(n_views) or not 1 <= n_views <= _MAX_VIEWS:
        raise _meta_error(src, "n_views", f"must be an integer in 1..{_MAX_VIEWS}, got {str(n_views)[:40]}")
    _check_text(src, "model_name", meta.get("model_name"))
    for key in ("app_version", "created"):
        if key in meta:
            _check_text(src, key, meta[key], optional=True)

    shapes: list[tuple[int, int]] | None = None
    if "view_shapes" in meta:
        raw = meta["view_shapes"]
        if not isinstance(raw, list) or len(raw) != n_views:
            raise _meta_error(src, "view_shapes", f"must be a list of {n_views} [height, width] pairs")
        shapes = []
        for i, hw in enumerate(raw):
            if not (
                isinstance(hw, list) and len(hw) == 2 and all(_is_int(x) and 1 <= x <= _MAX_SIDE for x in hw)
            ):
                raise _meta_error(src, f"view_shapes[{i}]", f"must be [height, width] within 1..{_MAX_SIDE}")
            shapes.append((hw[0], hw[1]))

    images = meta.get("images")
    if not isinstance(images, list) or len(images) != n_views:
        got = f"{len(images)} entries" if isinstance(images, list) else type(images).__name__
        raise _meta_error(src, "images", f"must be a list of {n_views} entries (one per view), got {got}")
    for i, entry in enumerate(images):
        if not isinstance(entry, dict):
            raise _meta_error(src, f"images[{i}]", "must be an object with 'relative' and 'absolute' paths")
        for key in ("relative", "absolute"):
            _check_text(src, f"images[{i}].{key}", entry.get(key), optional=True)
        if not entry.get("relative") and not entry.get("absolute"):
            raise _meta_error(src, f"images[{i}]", "has neither a relative nor an absolute path")

    if not isinstance(meta.get("options", {}), dict):
        raise _meta_error(src, "options", "must be an object")
    timings = meta.get("timings", {})
    if not isinstance(timings, dict) or not all(_is_number(v) for v in timings.values()):
        raise _meta_error(src, "timings", "must be an object of numbers (seconds per stage)")
    runs = meta.get("runs", [])
    if not isinstance(runs, list) or len(runs) > n_views + 1:
        raise _meta_error(src, "runs", "must be a list of at most one run per view")
    for i, run in enumerate(runs):
        name = f"runs[{i}]"
        if not isinstance(run, dict):
            raise _meta_error(src, name, "must be an object")
        _check_index_list(src, f"{name}.views", run.get("views"), n_views)
        if "anchors" in run:
            _check_index_list(src, f"{name}.anchors", run["anchors"], n_views)
        for key in ("passes", "max_views_per_pass"):
            if key in run and not (_is_int(run[key]) and 0 <= run[key] <= _MAX_VIEWS):
                raise _meta_error(src, f"{name}.{key}", "must be a non-negative integer")
        if "views_per_pass" in run and not (
            isinstance(run["views_per_pass"], list)
            and all(_is_int(x) and 0 <= x <= _MAX_VIEWS for x in run["views_per_pass"])
        ):
            raise _meta_error(src, f"{name}.views_per_pass", "must be a list of non-negative integers")
        for key in ("kind", "model"):
            if key in run:
                _check_text(src, f"{name}.{key}", run[key], optional=True)
        for key in ("options", "timings"):
            if key in run and not isinstance(run[key], dict):
                raise _meta_error(src, f"{name}.{key}", "must be an object")
        if "alignment" in run and not isinstance(run["alignment"], list):
            raise _meta_error(src, f"{name}.alignment", "must be a list")
    return n_views, shapes


def _read_edits(meta: Mapping[str, Any], src: Path, n_points: int) -> Edits:
    """The user's edits of a project: ``Edits()`` for a format-1 file (none stored), else validated.

    Parameters
    ----------
    n_points : int
        The reconstruction's model pixels over all views: every stored point id must be below it.

    Raises
    ------
    ProjectFileError
        Naming the field that is wrong (``meta.json: edits.transform.rotation is not a rotation``).
    """
    if "edits" not in meta:
        return Edits()
    try:
        return edits_from_json(meta["edits"], n_points=n_points)
    except EditsError as exc:
        raise ProjectFileError(
            f"{str(src)!r}: the project is inconsistent or corrupt (meta.json: {str(exc)[:300]})"
        ) from None


def _read_meta(src: Path, zf: zipfile.ZipFile) -> Any:
    """meta.json, parsed, after checking its declared size (a zip bomb is refused unread)."""
    info = zf.getinfo(_META)
    if info.file_size > _MAX_META_BYTES:
        raise ProjectFileError(
            f"{str(src)!r}: meta.json declares {info.file_size} bytes, more than a project needs "
            f"({_MAX_META_BYTES}); refused"
        )
    try:
        with zf.open(info) as f:
            raw = f.read(_MAX_META_BYTES + 1)
        # ValueError: bad JSON, or an integer of thousands of digits; RecursionError: deep nesting
        return json.loads(raw.decode("utf-8"))
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, RecursionError, OSError) as exc:
        raise ProjectFileError(f"{str(src)!r}: meta.json is corrupt ({str(exc)[:200]})") from exc


def _expected_arrays(
    n_views: int, shapes: Sequence[tuple[int, int]]
) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Member name -> (shape, dtype) of every array a project of these views holds."""
    out: dict[str, tuple[tuple[int, ...], Any]] = {}
    for name, dtype, channels in _PER_VIEW_FIELDS:
        for v, (h, w) in enumerate(shapes):
            out[f"{name}_{v:04d}"] = ((h, w, channels) if channels else (h, w), dtype)
    for name, dtype, trailing in _STACKED_FIELDS:
        out[name] = ((n_views, *trailing), dtype)
    return out


def _npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the start of a .npy stream, reading at most its header."""
    fmt = np.lib.format
    major, _minor = fmt.read_magic(f)
    if major == 1:
        return fmt.read_array_header_1_0(f, max_header_size=_NPY_HEADER_MAX)
    if major in (2, 3):
        return fmt.read_array_header_2_0(f, max_header_size=_NPY_HEADER_MAX)
    raise ValueError(f"unsupported .npy version {major}")


def _read_member_array(npz: zipfile.ZipFile, key: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """One array of the inner npz, after checking its declared sizes, shape and dtype."""
    want = np.dtype(dtype)
    try:
        info = npz.getinfo(f"{key}.npy")
    except KeyError:
        raise ValueError(f"array {key} is missing") from None
    limit = int(np.prod(shape, dtype=np.int64)) * 8 + _NPY_HEADER_MAX  # 8: the widest dtype accepted
    if info.file_size > limit:
        raise ValueError(f"array {key} declares {info.file_size} bytes, expected at most {limit}")
    with npz.open(info) as f:
        got_shape, fortran, got_dtype = _npy_header(f)
        if tuple(got_shape) != tuple(shape):
            raise ValueError(f"array {key} has shape {tuple(got_shape)}, expected {tuple(shape)}")
        if got_dtype.kind != want.kind or got_dtype.itemsize > 8 or got_dtype.hasobject:
            raise ValueError(f"array {key} has dtype {got_dtype}, expected {want}")
        if want == np.uint8 and got_dtype != want:  # bytes (colours, packed bits): a cast would wrap
            raise ValueError(f"array {key} has dtype {got_dtype}, expected {want}")
        count = int(np.prod(shape, dtype=np.int64))
        data = f.read(count * got_dtype.itemsize)
        if len(data) != count * got_dtype.itemsize:
            raise ValueError(f"array {key} is truncated")
        if f.read(1):
            raise ValueError(f"array {key} holds more data than its shape")
    a = np.frombuffer(data, dtype=got_dtype)
    a = a.reshape(shape[::-1]).transpose() if fortran else a.reshape(shape)
    return np.array(a, dtype=want)  # writable, native byte order, the format's dtype


def _read_arrays(
    path: Path, zf: zipfile.ZipFile, n_views: int, shapes: Sequence[tuple[int, int]] | None
) -> dict[str, np.ndarray]:
    """The arrays of a project: only the members the format uses, each checked before it is read.

    ``shapes`` (from meta.json) give every member's exact shape; without them (very old files)
    they are taken from the (bounded) pts3d headers.
    """
    info = zf.getinfo(_ARRAYS)
    with contextlib.ExitStack() as stack:
        if info.compress_type == zipfile.ZIP_STORED:
            f = stack.enter_context(open(path, "rb"))
            start = _stored_member_offset(f, info)
            outer: Any = _FileWindow(f, start, info.file_size)
        else:
            outer = stack.enter_context(zf.open(info))  # seekable; decompressed as it is read
        npz = stack.enter_context(zipfile.ZipFile(outer))
        if shapes is None:
            shapes = []
            for v in range(n_views):
                with npz.open(f"pts3d_{v:04d}.npy") as fv:
                    shp = tuple(_npy_header(fv)[0])
                if len(shp) != 3 or shp[2] != 3 or not all(1 <= x <= _MAX_SIDE for x in shp[:2]):
                    raise ValueError(f"array pts3d_{v:04d} has shape {shp}")
                shapes.append((int(shp[0]), int(shp[1])))
        expected = _expected_arrays(n_views, shapes)
        members = set(npz.namelist())
        for name, dtype, trailing in _OPTIONAL_STACKED_FIELDS:  # absent in files of older versions
            if f"{name}.npy" in members:
                expected[name] = ((n_views, *trailing), dtype)
        if f"{_KEEP_MASKS}.npy" in members:
            expected[_KEEP_MASKS] = ((-(-sum(h * w for h, w in shapes) // 8),), np.uint8)
        total = sum(int(np.prod(s, dtype=np.int64)) * 8 + _NPY_HEADER_MAX for s, _ in expected.values())
        if info.file_size > total + 64 * 1024 * (len(expected) + 1):
            raise ValueError(f"arrays.npz declares {info.file_size} bytes, more than its arrays need")
        # the inner zip checks each array's CRC-32 as it is read, so corruption is still detected
        return {key: _read_member_array(npz, key, shape, dtype) for key, (shape, dtype) in expected.items()}


# stacked (V, ...) arrays added after format 1.0: read when present, validated like the others
_OPTIONAL_STACKED_FIELDS: tuple[tuple[str, Any, tuple[int, ...]], ...] = (
    ("pose_inlier_share", np.float32, ()),
    ("intrinsics_known", np.bool_, ()),
)

# -- issue 19's inputs (format 2): which views had known intrinsics, and the keep-masks ---------------
_KEEP_MASKS = "keep_masks_packed"
"""Member of every view's keep-mask, row-major, views one after the other, bit-packed (np.packbits,
big-endian bit order) into one uint8 array of ceil(total pixels / 8) bytes; absent when no view has a
mask. Its size follows from the view shapes, so it is bounded like every other member."""


def _input_arrays(rec: Reconstruction) -> dict[str, np.ndarray]:
    """The arrays of ``intrinsics_known`` and ``keep_masks`` as a project stores them."""
    out = {"intrinsics_known": rec.intrinsics_known}
    if rec.keep_masks is not None:
        out[_KEEP_MASKS] = np.packbits(np.concatenate([m.reshape(-1) for m in rec.keep_masks]))
    return out


def _keep_masks(packed: np.ndarray, shapes: Sequence[tuple[int, int]]) -> tuple[np.ndarray, ...]:
    """Per-view (H, W) bool keep-masks from the packed member (its length was checked on reading)."""
    sizes = [h * w for h, w in shapes]
    flat = np.unpackbits(packed, count=sum(sizes)).astype(bool)
    ends = np.cumsum(sizes)
    return tuple(flat[e - n : e].reshape(hw) for e, n, hw in zip(ends.tolist(), sizes, shapes, strict=True))


_CAMERA_FIELDS = ("cam_to_world", "intrinsics", "intrinsics_original")


def _check_cameras_finite(src: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse NaN/inf cameras: no export could write them (JSON has no NaN, COLMAP needs a pose)."""
    for name in _CAMERA_FIELDS:
        a = arrays[name]
        bad = np.flatnonzero(~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1))
        if bad.size:
            views = ", ".join(str(int(v)) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
            raise ProjectFileError(
                f"{str(src)!r}: the project is inconsistent or corrupt ({name} of view(s) {views} "
                "is not finite)"
            )


#: Tolerance of a stored rotation (float32 after a round of edits): |R^T R - I| and |det R - 1|.
_ROTATION_TOL = 1e-3
#: Largest focal length or principal point, in pixels, a project may hold: far beyond any lens (a
#: 10 000 px image at a 0.1 degree field of view), small enough for every export to write.
_MAX_PIXELS = 1e7


def _check_cameras_valid(src: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse cameras no export could write: a cam-to-world that is not a rigid transform (a rotation,
    det +1, and a last row 0 0 0 1), or intrinsics with a focal length that is not positive, a last
    row other than 0 0 1, or values beyond :data:`_MAX_PIXELS`."""

    def refuse(what: str, views: np.ndarray) -> None:
        shown = ", ".join(str(int(v)) for v in views[:8]) + (" ..." if views.size > 8 else "")
        raise ProjectFileError(
            f"{str(src)!r}: the project is inconsistent or corrupt ({what} of view(s) {shown})"
        )

    c2w = arrays["cam_to_world"].astype(np.float64)
    r = c2w[:, :3, :3]
    gram = np.abs(np.einsum("vji,vjk->vik", r, r) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(r)
    last = np.abs(c2w[:, 3, :] - [0.0, 0.0, 0.0, 1.0]).max(axis=1)
    bad = np.flatnonzero((gram > _ROTATION_TOL) | (np.abs(det - 1.0) > _ROTATION_TOL) | (last > 0))
    if bad.size:
        refuse("cam_to_world is not a rotation and a translation", bad)
    for name in ("intrinsics", "intrinsics_original"):
        k = arrays[name].astype(np.float64)
        bad = np.flatnonzero(
            ~(k[:, 0, 0] > 0)
            | ~(k[:, 1, 1] > 0)
            | (np.abs(k[:, 2, :] - [0.0, 0.0, 1.0]).max(axis=1) > 0)
            | (np.abs(k[:, :2, :]).max(axis=(1, 2)) > _MAX_PIXELS)
        )
        if bad.size:
            refuse(f"{name} is not a pinhole camera with positive focal lengths", bad)


def is_project_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a regular file (not a link) that is a Fast3R Studio project: a zip whose
    meta.json names the project format. Reads only the zip's directory and meta.json (bounded)."""
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    try:
        with zipfile.ZipFile(p) as zf:
            meta = _read_meta(p, zf)
    except (zipfile.BadZipFile, KeyError, OSError, ProjectFileError):
        return False
    return isinstance(meta, dict) and meta.get("format") == PROJECT_FORMAT


def load_project(path: str | os.PathLike[str]) -> Reconstruction:
    """Read a project file written by :func:`save_project` (no model or torch needed).

    Image paths come back absolute: the path relative to the project file when that file exists
    (the project and its photos moved together), else the absolute path stored at save time.

    Raises
    ------
    ProjectFileError
        The file is missing, is not a zip or not a Fast3R project, misses a member, is corrupt, or was
        written by a newer version of the app (major format version above ours).
    """
    src = Path(path)
    if not src.is_file():
        raise ProjectFileError(f"The project file {str(src)!r} does not exist")
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ProjectFileError(f"{str(src)!r} is not a Fast3R Studio project (not a zip file)") from exc
    with zf:
        names = set(zf.namelist())
        missing = [m for m in (_META, _ARRAYS) if m not in names]
        if missing:
            raise ProjectFileError(
                f"{str(src)!r} is not a complete Fast3R Studio project (missing {', '.join(missing)})"
            )
        meta = _read_meta(src, zf)
        n_views, shapes = _validate_meta(meta, src)
        version = meta["version"]
        try:
            arrays = _read_arrays(src, zf, n_views, shapes)
        except ProjectFileError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
            raise ProjectFileError(f"{str(src)!r}: the arrays are corrupt ({exc})") from exc
    _check_cameras_finite(src, arrays)
    _check_cameras_valid(src, arrays)

    try:
        project_dir = os.path.dirname(os.path.abspath(src))
        kwargs: dict[str, Any] = {
            name: tuple(arrays[f"{name}_{v:04d}"] for v in range(n_views)) for name, _, _ in _PER_VIEW_FIELDS
        }
        kwargs.update({name: arrays[name] for name, _, _ in _STACKED_FIELDS})
        if "pose_inlier_share" in arrays:  # absent before it was recorded: the default (all NaN)
            kwargs["pose_inlier_share"] = arrays["pose_inlier_share"]
        if "intrinsics_known" in arrays:  # format 1: every view estimated (the default)
            kwargs["intrinsics_known"] = arrays["intrinsics_known"]
        if _KEEP_MASKS in arrays:  # none saved: every pixel kept (the default)
            kwargs["keep_masks"] = _keep_masks(
                arrays[_KEEP_MASKS], [kwargs["pts3d"][v].shape[:2] for v in range(n_views)]
            )
        rec = Reconstruction(
            **kwargs,
            image_paths=tuple(_resolve_image(e, project_dir) for e in meta["images"]),
            model_name=meta["model_name"],
            options=meta.get("options", {}),
            timings=meta.get("timings", {}),
            runs=tuple(RunRecord.from_json(r) for r in meta.get("runs", ())),  # validated above
            format_version=version,
            edits=_read_edits(meta, src, sum(a.shape[0] * a.shape[1] for a in kwargs["conf"])),
        )
    except ProjectFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectFileError(f"{str(src)!r}: the project is inconsistent or corrupt ({exc})") from exc
    log.info("loaded project %s (%d views)", src, rec.n_views)
    return rec
