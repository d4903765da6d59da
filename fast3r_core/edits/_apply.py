"""Applying edits on the way out: points, cameras, which points are kept, point ids."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fast3r_core.errors import EditsError

from ._model import Edits, Float64Array, IdArray, rotation_array


def point_ids(view: ArrayLike, pixel: ArrayLike, view_shapes: Sequence[tuple[int, int]]) -> IdArray:
    """Stable ids of points: ``offset(view) + row * width + column`` (pixel ids over all views).

    Parameters
    ----------
    view : array_like, (N,) integer
        View index of each point (``PointSet.view``).
    pixel : array_like, (N, 2) integer
        ``(u, v)`` = (column, row) in model pixels (``PointSet.pixel``).
    view_shapes : sequence of (H, W)
        Model-resolution shape of every view, in view order (``Reconstruction.view_shape(v)``);
        ``offset(v)`` is the number of pixels of the views before ``v``.

    Returns
    -------
    np.ndarray, (N,) int64
        The same id for the same pixel in the global and the local point sets.
    """
    v = np.asarray(view, dtype=np.int64).reshape(-1)
    px = np.asarray(pixel, dtype=np.int64).reshape(-1, 2)
    shapes = np.asarray(view_shapes, dtype=np.int64).reshape(-1, 2)
    if px.shape[0] != v.shape[0]:
        raise EditsError(f"point_ids needs as many pixels as views, got {px.shape} and {v.shape}")
    sizes = shapes[:, 0] * shapes[:, 1]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    if v.size and (v.min() < 0 or v.max() >= len(shapes)):
        raise EditsError(f"view index out of range 0..{len(shapes) - 1}")
    ids: IdArray = offsets[v] + px[:, 1] * shapes[v, 1] + px[:, 0]
    return ids


def _as_points(xyz: ArrayLike, name: str) -> NDArray[np.floating]:
    pts = np.asarray(xyz)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise EditsError(f"{name} must be (N, 3) points, got shape {pts.shape}")
    if not np.issubdtype(pts.dtype, np.floating):
        pts = pts.astype(np.float64)
    return pts


def apply_to_points(e: Edits, xyz: ArrayLike) -> NDArray[np.floating]:
    """Model-world points to the edited world: ``s * R @ (x - origin)``.

    Parameters
    ----------
    xyz : array_like, (N, 3) float32 or float64
        Model world (OpenCV axes, world = camera of view 0).

    Returns
    -------
    np.ndarray, (N, 3), same float dtype as the input (float64 for integer input)
        Edited world. When the transform is the identity the input array itself is returned (no copy):
        do not write into the result.
    """
    pts = _as_points(xyz, "xyz")
    if not e.has_transform:
        return pts
    M = e.similarity_matrix().astype(pts.dtype)
    out: NDArray[np.floating] = pts @ M[:3, :3].T
    out += M[:3, 3]
    return out


def apply_inverse_to_points(e: Edits, xyz_edited: ArrayLike) -> NDArray[np.floating]:
    """Edited-world points (N, 3) back to the model world: ``origin + R^T @ x / s``; dtype as the input."""
    pts = _as_points(xyz_edited, "xyz_edited")
    if not e.has_transform:
        return pts
    A = (rotation_array(e.rotation).T / e.scale).astype(pts.dtype)
    out: NDArray[np.floating] = pts @ A.T
    out += np.asarray(e.origin, dtype=pts.dtype)
    return out


def apply_to_cameras(e: Edits, cam_to_world: ArrayLike) -> Float64Array:
    """Model-world camera poses to the edited world.

    A camera's rotation becomes ``R @ R_c`` (still orthonormal) and its centre ``s R (C - origin)``;
    intrinsics do not change. A point's camera-frame coordinates are then multiplied by ``s``, so its
    projection (and every reprojection error) is exactly the same as before the edit.

    Parameters
    ----------
    cam_to_world : array_like, (V, 4, 4) or (4, 4)
        Camera-to-world poses, OpenCV camera axes (x right, y down, z forward), model world.

    Returns
    -------
    np.ndarray, same shape, float64
        Camera-to-world poses in the edited world (rigid: no scale in the 3x3 block).
    """
    T = np.asarray(cam_to_world, dtype=np.float64)
    if T.shape[-2:] != (4, 4):
        raise EditsError(f"cam_to_world must be (..., 4, 4), got shape {T.shape}")
    R = rotation_array(e.rotation)
    out = np.array(T, copy=True)
    out[..., :3, :3] = np.einsum("ij,...jk->...ik", R, T[..., :3, :3])
    out[..., :3, 3] = e.scale * np.einsum("ij,...j->...i", R, T[..., :3, 3] - np.asarray(e.origin))
    return out


#: Largest id range :func:`_member` looks up in a table (one byte per id: 64 MiB at most).
_TABLE_IDS = 1 << 26


def _member(sorted_ids: IdArray, ids: IdArray) -> NDArray[np.bool_]:
    """``np.isin(ids, sorted_ids)`` for strictly increasing ``sorted_ids``.

    Ids are pixel ids, so they are dense: a byte table over their range answers each id in O(1) (a
    2 M-point delete is then a gather, not 2 M binary searches); a range too wide for a table (ids
    from a hand-written file) falls back to one binary search per id.
    """
    if sorted_ids.size == 0 or ids.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    lo = min(int(sorted_ids[0]), int(ids.min()))
    hi = max(int(sorted_ids[-1]), int(ids.max()))
    if hi - lo < _TABLE_IDS:
        table = np.zeros(hi - lo + 1, dtype=bool)
        table[sorted_ids - lo] = True
        hit: NDArray[np.bool_] = table[ids - lo]
        return hit
    pos = np.searchsorted(sorted_ids, ids)
    np.minimum(pos, sorted_ids.size - 1, out=pos)
    found: NDArray[np.bool_] = sorted_ids[pos] == ids
    return found


def keep_mask(e: Edits, xyz_edited: ArrayLike | None, point_ids: ArrayLike) -> NDArray[np.bool_]:
    """Which points survive the crop box and the selections.

    Parameters
    ----------
    xyz_edited : array_like, (N, 3) float, or None
        The points in the **edited** world (``apply_to_points(e, xyz)``); may be None when
        ``e.crop is None``.
    point_ids : array_like, (N,) int64
        Their ids (:func:`point_ids`).

    Returns
    -------
    np.ndarray, (N,) bool
        True for a kept point. A boolean mask keeps the confidence order, so a threshold prefix of the
        kept points is still a prefix.
    """
    ids = np.asarray(point_ids, dtype=np.int64).reshape(-1)
    keep = np.ones(ids.shape, dtype=bool)
    if e.crop is not None:
        if xyz_edited is None:
            raise EditsError("keep_mask needs the edited points when the edits have a crop box")
        pts = _as_points(xyz_edited, "xyz_edited")
        if pts.shape[0] != ids.shape[0]:
            raise EditsError(f"keep_mask got {pts.shape[0]} points and {ids.shape[0]} ids")
        keep &= e.crop.contains(pts)
    for sel in e.selections:
        inside = _member(sel.ids, ids)
        if sel.mode == "delete":
            keep &= ~inside
        else:
            keep &= inside
    return keep


def edit_points(
    e: Edits, xyz: ArrayLike, point_ids: ArrayLike
) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
    """Everything an exporter or the viewer does to points, in one call.

    Parameters
    ----------
    xyz : array_like, (N, 3) float32 or float64
        Model-world points (e.g. ``PointSet.xyz``, confidence-ordered).
    point_ids : array_like, (N,) int64
        Their ids (:func:`point_ids` of ``PointSet.view`` / ``PointSet.pixel``).

    Returns
    -------
    xyz_kept : np.ndarray, (K, 3), dtype of ``xyz``
        The kept points in the edited world, in their original (confidence) order.
    keep : np.ndarray, (N,) bool
        Which input points were kept (apply it to colours, confidences, views, pixels too).
    """
    xyz_e = apply_to_points(e, xyz)
    if not e.filters_points:
        return xyz_e, np.ones(xyz_e.shape[0], dtype=bool)
    keep = keep_mask(e, xyz_e, point_ids)
    return xyz_e[keep], keep
