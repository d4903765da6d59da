"""COLMAP sparse-model export (Gaussian-splatting trainers, Nerfstudio's colmap parser, COLMAP itself).

Layout written::

    <folder>/images/<name>                      the photos (unless copy_images=False)
    <folder>/sparse/0/cameras.bin|txt           one PINHOLE camera per view
    <folder>/sparse/0/images.bin|txt            one image per view: world-to-camera pose + 2-D points
    <folder>/sparse/0/points3D.bin|txt          the kept points, each seen by its own view

Conventions. The world is the edited world (:mod:`fast3r_core.export.edited`: the user's edits, a
similarity, applied to points and poses alike, so every reprojection error is the same as without
them). COLMAP poses are world-to-camera (``cam_from_world``) with OpenCV camera axes (x right,
y down, z forward) and the rotation as a unit quaternion (qw, qx, qy, qz), Hamilton convention, qw >= 0
here. Intrinsics and 2-D points are in pixels of the original (upright) photo. COLMAP puts the
centre of the top-left pixel at (0.5, 0.5), whereas our intrinsics put it at (0, 0), so 0.5 is added
to cx, cy and to every 2-D point; projections are unchanged. No rigs.bin/frames.bin are written: COLMAP
(>= 3.12) and pycolmap then create one trivial rig per camera and one frame per image.

Binary files follow COLMAP's little-endian layout (reconstruction_io_binary.cc): counts are uint64;
camera_t, image_t, point2D_t are uint32; point3D_t is uint64; the PINHOLE model id is 1 with params
(fx, fy, cx, cy); image names are NUL-terminated.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from fast3r_core.atomic import atomic_write, ensure_dir
from fast3r_core.errors import ExportError, InputError
from fast3r_core.export._images import ImagePlan, place_images, plan_image_names
from fast3r_core.export._views import posed_views
from fast3r_core.export.edited import apply_edits
from fast3r_core.export.selection import ExportReport, PointSelection, require_points, select_points
from fast3r_core.geometry import rotmat_to_quat_wxyz

if TYPE_CHECKING:
    from fast3r_core.result import Reconstruction

__all__ = ["export_colmap"]

log = logging.getLogger(__name__)

PINHOLE_MODEL_ID = 1
COLMAP_PIXEL_OFFSET = 0.5
"""Added to our pixel coordinates (centre of top-left pixel at 0) to get COLMAP's (at 0.5)."""

_POINT2D_DTYPE = np.dtype([("x", "<f8"), ("y", "<f8"), ("point3D_id", "<u8")])
_POINT3D_DTYPE = np.dtype(
    [
        ("point3D_id", "<u8"),
        ("xyz", "<f8", (3,)),
        ("rgb", "u1", (3,)),
        ("error", "<f8"),
        ("track_length", "<u8"),
        ("image_id", "<u4"),
        ("point2D_idx", "<u4"),
    ]
)
"""One points3D.bin record when every track has exactly one element (59 bytes, packed)."""


@dataclass
class _ViewModel:
    """Everything written for one view (model index v -> COLMAP ids v + 1)."""

    view: int
    name: str
    width: int
    height: int
    params: np.ndarray  # fx, fy, cx, cy in COLMAP pixels
    qvec: np.ndarray  # w, x, y, z of R_w2c
    tvec: np.ndarray  # t_w2c
    points2d: np.ndarray  # (n,) _POINT2D_DTYPE


def export_colmap(
    rec: Reconstruction,
    folder: str | os.PathLike[str],
    selection: PointSelection | None = None,
    *,
    binary: bool = True,
    text: bool = False,
    max_reproj_px: float = 2.0,
    copy_images: bool = True,
    images_dir: str | os.PathLike[str] | None = None,
    link_images: bool = False,
) -> ExportReport:
    """Export cameras, poses and points as a COLMAP sparse model (see the module docstring).

    Each kept point becomes a 3-D point observed once, by its own view, at its pixel mapped to the
    original photo. Observations must agree with the cameras: each point is reprojected with its
    view's camera (world-to-camera pose, original-resolution intrinsics) and dropped when it lands
    more than ``max_reproj_px`` from its pixel (or behind the camera). Global points generally do not
    lie exactly on their pixel's ray, because the pose comes from PnP on the whole pointmap.

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    folder : path-like
        Output folder; created when missing. Existing files of the same names are replaced.
    selection : PointSelection or None
        Which points (None: every global point). Its views also select the images; views whose pose
        estimation failed are left out.
    binary, text : bool
        Write the .bin files, the .txt files, or both (at least one).
    max_reproj_px : float
        Largest accepted reprojection error in original pixels.
    copy_images : bool
        Write copies of the photos into ``folder/images`` (photos with an EXIF rotation are re-encoded
        upright; non-JPEG/PNG photos are converted to JPEG). Only files that open as images of the
        recorded size are written; the others are listed in ``missing_images``. When False, the
        names refer to the photos in place, relative to ``images_dir``.
    images_dir : path-like or None
        Without ``copy_images``: the folder image names are relative to (default: the deepest folder
        holding all the photos). Ignored when copying.
    link_images : bool
        Hard-link the photos instead of copying them (when the file system allows). A linked image is
        the user's original: a tool that resizes ``images/`` in place would change it. Off by default.

    Returns
    -------
    ExportReport
        Points written and dropped (``dropped``, ``mean_reproj_px``), images, skipped views, missing
        images, ``sparse_dir`` and ``images_dir``.

    Raises
    ------
    EmptyExportError
        No point is selected in the views with a pose (nothing is written).
    ExportError
        The folder cannot be written; no view has a pose; an image is outside ``images_dir``.
    InputError
        Neither binary nor text, or an invalid selection option.
    """
    if not (binary or text):
        raise InputError("choose the binary format, the text format or both")
    if not max_reproj_px > 0:
        raise InputError(f"max_reproj_px must be positive, got {max_reproj_px}")
    folder = Path(folder)
    selection = selection or PointSelection()
    posed = posed_views(rec, selection.views)
    used_views = posed.views

    points = select_points(rec, selection.with_views(posed.mask))
    require_points(points, selection, folder, rec.edits)
    # Group the points by view (stable: each group keeps decreasing confidence).
    by_view = np.argsort(points.view, kind="stable")
    counts = np.bincount(points.view, minlength=rec.n_views)
    starts = np.concatenate([[0], np.cumsum(counts)])

    sparse = ensure_dir(folder / "sparse" / "0")
    plan: ImagePlan = plan_image_names(
        rec, used_views, copy_to=folder / "images" if copy_images else None, images_dir=images_dir
    )

    w2c = apply_edits(rec).world_to_cam  # the edited world, as the points
    cams = [_camera(rec, v, plan.names[v], w2c) for v in used_views]
    n_points = 0
    err_sum = 0.0
    dropped = 0
    # Written view by view: only one view's points are converted at a time (bounded memory);
    # the point count in each file's header is filled in at the end.
    with contextlib.ExitStack() as stack:
        bins = [stack.enter_context(atomic_write(sparse / n)) for n in _BIN_NAMES] if binary else None
        txts = [stack.enter_context(atomic_write(sparse / n, "w")) for n in _TXT_NAMES] if text else None
        if bins is not None:
            _write_cameras_bin(bins[0], cams)
            bins[1].write(struct.pack("<Q", len(cams)))
            bins[2].write(struct.pack("<Q", 0))  # placeholder
        if txts is not None:
            _write_cameras_txt(txts[0], cams)
            images_mark = _begin_images_txt(txts[1])
            points_mark = _begin_points3d_txt(txts[2])
        for vm in cams:
            v = vm.view
            idx = by_view[starts[v] : starts[v + 1]]
            xyz = points.xyz[idx].astype(np.float64)
            obs = rec.model_to_original_pixels(np.full(idx.size, v), points.pixel[idx])
            k = rec.intrinsics_original[v]
            cam = xyz @ w2c[v, :3, :3].T + w2c[v, :3, 3]
            with np.errstate(divide="ignore", invalid="ignore"):
                proj = cam[:, :2] / cam[:, 2:3] * np.array([k[0, 0], k[1, 1]]) + k[:2, 2]
            err = np.linalg.norm(proj - obs, axis=1)
            keep = (cam[:, 2] > 0) & np.isfinite(err) & (err <= max_reproj_px)
            n_keep = int(np.count_nonzero(keep))
            dropped += idx.size - n_keep
            ids = np.arange(n_points + 1, n_points + 1 + n_keep, dtype=np.uint64)
            n_points += n_keep
            err_sum += float(err[keep].sum())

            vm.points2d = np.empty(n_keep, dtype=_POINT2D_DTYPE)
            vm.points2d["x"] = obs[keep, 0] + COLMAP_PIXEL_OFFSET
            vm.points2d["y"] = obs[keep, 1] + COLMAP_PIXEL_OFFSET
            vm.points2d["point3D_id"] = ids

            p3d = np.empty(n_keep, dtype=_POINT3D_DTYPE)
            p3d["point3D_id"] = ids
            p3d["xyz"] = xyz[keep]
            p3d["rgb"] = points.rgb[idx[keep]]
            p3d["error"] = err[keep]
            p3d["track_length"] = 1
            p3d["image_id"] = v + 1
            p3d["point2D_idx"] = np.arange(n_keep, dtype=np.uint32)
            del xyz, obs, cam, proj, err, keep
            if bins is not None:
                _write_image_bin(bins[1], vm)
                bins[2].write(p3d.data.cast("B"))
            if txts is not None:
                _write_image_txt(txts[1], vm)
                _write_points3d_txt(txts[2], p3d)
            vm.points2d = vm.points2d[:0]  # written: let it go
        if bins is not None:
            bins[2].seek(0)
            bins[2].write(struct.pack("<Q", n_points))
        if txts is not None:
            _end_images_txt(txts[1], images_mark, len(cams), n_points)
            _end_points3d_txt(txts[2], points_mark, n_points)

    mean_err = err_sum / n_points if n_points else float("nan")
    if dropped:
        log.info("COLMAP export: dropped %d points reprojecting > %.2f px", dropped, max_reproj_px)

    missing = place_images(rec, plan, link=link_images)
    names: tuple[str, ...] = (_BIN_NAMES if binary else ()) + (_TXT_NAMES if text else ())
    report = ExportReport(
        "colmap",
        folder,
        files=tuple(sparse / n for n in names) + _placed_files(rec, plan, missing),
        n_points=int(n_points),
        n_cameras=len(cams),
        n_images=len(cams),
        dropped=int(dropped),
        mean_reproj_px=mean_err,
        skipped_views=posed.skipped,
        missing_images=tuple(missing),
        warnings=(f"{dropped} points reproject farther than {max_reproj_px:g} px: left out",)
        if dropped
        else (),
        sparse_dir=sparse,
        images_dir=plan.images_dir,
    )
    log.info(
        "COLMAP export to %s: %d images, %d points, mean reprojection %.3f px",
        folder,
        report.n_images,
        report.n_points,
        report.mean_reproj_px,
    )
    return report


def _placed_files(rec: Reconstruction, plan: ImagePlan, missing: list[str]) -> tuple[Path, ...]:
    """The images an export wrote into its images folder (none when they are referenced in place)."""
    if not plan.copy:
        return ()
    gone = set(missing)
    return tuple(plan.images_dir / n for v, n in plan.names.items() if str(rec.image_paths[v]) not in gone)


_BIN_NAMES = ("cameras.bin", "images.bin", "points3D.bin")
_TXT_NAMES = ("cameras.txt", "images.txt", "points3D.txt")
_MARK_WIDTH = 48
"""Characters reserved in a text file's header for the counts known only at the end."""


def _camera(rec: Reconstruction, v: int, name: str, w2c: np.ndarray) -> _ViewModel:
    """View ``v``'s camera and pose (its 2-D points are filled in later)."""
    k = rec.intrinsics_original[v]
    return _ViewModel(
        view=v,
        name=name,
        width=int(rec.original_sizes[v, 0]),
        height=int(rec.original_sizes[v, 1]),
        params=np.array([k[0, 0], k[1, 1], k[0, 2] + COLMAP_PIXEL_OFFSET, k[1, 2] + COLMAP_PIXEL_OFFSET]),
        qvec=rotmat_to_quat_wxyz(w2c[v, :3, :3]),
        tvec=w2c[v, :3, 3].copy(),
        points2d=np.empty(0, dtype=_POINT2D_DTYPE),
    )


# -- binary writers ---------------------------------------------------------------------------------


def _write_cameras_bin(f: IO[bytes], views: list[_ViewModel]) -> None:
    f.write(struct.pack("<Q", len(views)))
    for vm in views:
        f.write(struct.pack("<IiQQ", vm.view + 1, PINHOLE_MODEL_ID, vm.width, vm.height))
        f.write(struct.pack("<4d", *vm.params))


def _write_image_bin(f: IO[bytes], vm: _ViewModel) -> None:
    f.write(struct.pack("<I4d3dI", vm.view + 1, *vm.qvec, *vm.tvec, vm.view + 1))
    try:
        name = vm.name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ExportError(f"Image name {vm.name!r} cannot be encoded") from exc
    f.write(name + b"\0")
    f.write(struct.pack("<Q", vm.points2d.size))
    f.write(vm.points2d.data.cast("B"))


# -- text writers -----------------------------------------------------------------------------------


def _write_cameras_txt(f: IO[str], views: list[_ViewModel]) -> None:
    f.write("# Camera list with one line of data per camera:\n")
    f.write("#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
    f.write(f"# Number of cameras: {len(views)}\n")
    for vm in views:
        params = " ".join(repr(float(p)) for p in vm.params)
        f.write(f"{vm.view + 1} PINHOLE {vm.width} {vm.height} {params}\n")


def _mark(f: IO[str]) -> int:
    """Reserve a header line to be filled by :func:`_fill`; returns its position."""
    pos = f.tell()
    f.write("#" + " " * (_MARK_WIDTH - 1) + "\n")
    return pos


def _fill(f: IO[str], pos: int, text: str) -> None:
    end = f.tell()
    f.seek(pos)
    f.write(text[:_MARK_WIDTH].ljust(_MARK_WIDTH))
    f.seek(end)


def _begin_images_txt(f: IO[str]) -> int:
    f.write("# Image list with two lines of data per image:\n")
    f.write("#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n")
    f.write("#   POINTS2D[] as (X, Y, POINT3D_ID)\n")
    return _mark(f)


def _end_images_txt(f: IO[str], pos: int, n_images: int, n_obs: int) -> None:
    mean = n_obs / max(n_images, 1)
    _fill(f, pos, f"# Number of images: {n_images}, mean observations per image: {mean:.6g}")


def _write_image_txt(f: IO[str], vm: _ViewModel) -> None:
    pose = " ".join(repr(float(x)) for x in (*vm.qvec, *vm.tvec))
    f.write(f"{vm.view + 1} {pose} {vm.view + 1} {vm.name}\n")
    p = vm.points2d
    if p.size:
        cols = np.column_stack([p["x"], p["y"], p["point3D_id"].astype(np.float64)])
        # One line for the whole image: triples separated by spaces.
        np.savetxt(f, cols, fmt="%.17g %.17g %d", newline=" ")
    f.write("\n")


def _begin_points3d_txt(f: IO[str]) -> int:
    f.write("# 3D point list with one line of data per point:\n")
    f.write("#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n")
    return _mark(f)


def _end_points3d_txt(f: IO[str], pos: int, n_points: int) -> None:
    _fill(f, pos, f"# Number of points: {n_points}, mean track length: {1.0 if n_points else 0.0}")


def _write_points3d_txt(f: IO[str], p: np.ndarray) -> None:
    if not p.size:
        return
    cols = np.column_stack(
        [
            p["point3D_id"].astype(np.float64),
            p["xyz"],
            p["rgb"].astype(np.float64),
            p["error"],
            p["image_id"].astype(np.float64),
            p["point2D_idx"].astype(np.float64),
        ]
    )
    np.savetxt(f, cols, fmt="%d %.17g %.17g %.17g %d %d %d %.17g %d %d")
