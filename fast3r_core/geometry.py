"""Numpy-only geometry helpers: SE(3), quaternions, camera axes, intrinsics, frusta, similarity fits.

Conventions used throughout (and repeated in each docstring that depends on them):

* Camera axes are OpenCV's: x right, y down, z forward (into the scene).
* A pose matrix is camera-to-world (``c2w``) unless its name says ``w2c``: ``X_world = c2w @ X_cam``.
* Pixel coordinates are ``(u, v) = (column, row)`` integer indices of pixel centres of the named image;
  the first pixel's centre is ``(0, 0)`` and the image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.
* Quaternions are ``(w, x, y, z)`` (scalar first, as COLMAP), unlike scipy's ``(x, y, z, w)``.
* Image sizes are ``(width, height)`` like PIL; array shapes are ``(H, W, ...)`` like numpy.

No torch here: this module is imported by the GUI at start-up, by the exporters and by
:mod:`fast3r_core.result`. scipy (for quaternions) is imported on first use, so that importing this
module stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InputError

__all__ = [
    "OPENCV_TO_OPENGL",
    "frustum_corners",
    "frustum_segments",
    "intrinsics_matrix",
    "intrinsics_model_to_original",
    "model_pixels_to_original",
    "opencv_to_opengl_c2w",
    "opengl_to_opencv_c2w",
    "quat_wxyz_to_rotmat",
    "rotmat_to_quat_wxyz",
    "se3_compose",
    "se3_from_rt",
    "se3_inverse",
    "transform_points",
    "umeyama_similarity",
]

Float64Array = NDArray[np.float64]

#: Right-multiplying a c2w by this flips the camera's y and z axes: OpenCV (y down, z forward)
#: <-> OpenGL/Nerfstudio/Blender (y up, z backward). It is its own inverse.
OPENCV_TO_OPENGL: Float64Array = np.diag([1.0, -1.0, -1.0, 1.0])


# ----------------------------------------------------------------------------------------------- SE(3)


def se3_from_rt(R: ArrayLike, t: ArrayLike) -> Float64Array:
    """Build homogeneous 4x4 matrices from rotations and translations.

    Parameters
    ----------
    R : array_like, shape (..., 3, 3)
        Rotation matrices.
    t : array_like, shape (..., 3)
        Translations.

    Returns
    -------
    ndarray, shape (..., 4, 4), float64
        ``[[R, t], [0, 0, 0, 1]]``; the frame meaning (c2w or w2c) is that of the inputs.
    """
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    batch = np.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    T = np.zeros((*batch, 4, 4), dtype=np.float64)
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def se3_inverse(T: ArrayLike) -> Float64Array:
    """Closed-form inverse of rigid transforms: ``[R | t]^-1 = [R^T | -R^T t]``.

    Parameters
    ----------
    T : array_like, shape (..., 4, 4)
        Rigid transforms (rotation + translation, last row ``0 0 0 1``). Not checked: a matrix with
        scale or shear gets a wrong "inverse", use ``np.linalg.inv`` for those.

    Returns
    -------
    ndarray, shape (..., 4, 4), float64
        The inverse (a c2w becomes the w2c of the same camera and vice versa).
    """
    T = np.asarray(T, dtype=np.float64)
    if T.shape[-2:] != (4, 4):
        raise InputError(f"expected (..., 4, 4) transforms, got shape {T.shape}")
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def se3_compose(*transforms: ArrayLike) -> Float64Array:
    """Compose transforms left to right as matrix products: ``se3_compose(A, B, C) = A @ B @ C``.

    ``se3_compose(c2w, cam_from_x)`` maps x-frame points to the world. Shapes ``(..., 4, 4)`` broadcast.
    """
    if not transforms:
        return np.eye(4)
    out = np.asarray(transforms[0], dtype=np.float64)
    for T in transforms[1:]:
        out = out @ np.asarray(T, dtype=np.float64)
    return out


def transform_points(T: ArrayLike, pts: ArrayLike) -> Float64Array:
    """Apply a 4x4 transform to 3-D points.

    Parameters
    ----------
    T : array_like, shape (4, 4)
        For example a c2w, which maps camera-frame points to world points.
    pts : array_like, shape (..., 3)

    Returns
    -------
    ndarray, shape (..., 3), float64
        ``R @ p + t`` for every point (the last row of ``T`` is ignored: no projective division).
    """
    T = np.asarray(T, dtype=np.float64)
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ T[:3, :3].T + T[:3, 3]


# --------------------------------------------------------------------------------------- rotations


def rotmat_to_quat_wxyz(R: ArrayLike) -> Float64Array:
    """Rotation matrices to unit quaternions ``(w, x, y, z)`` with ``w >= 0``.

    Parameters
    ----------
    R : array_like, shape (..., 3, 3)
        Proper rotation matrices (orthonormal, det +1).

    Returns
    -------
    ndarray, shape (..., 4), float64
        Scalar-first quaternions (COLMAP order); the sign is fixed so that ``w >= 0``.
    """
    from scipy.spatial.transform import Rotation  # ~0.2 s to import: only when needed

    R = np.asarray(R, dtype=np.float64)
    batch = R.shape[:-2]
    xyzw = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat()  # scipy order is (x, y, z, w)
    q = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
    q[q[:, 0] < 0] *= -1.0  # q and -q are the same rotation: pick one for stable files
    return q.reshape(*batch, 4)


def quat_wxyz_to_rotmat(q: ArrayLike) -> Float64Array:
    """Quaternions ``(w, x, y, z)`` (normalised here) to rotation matrices, shape ``(..., 3, 3)`` float64."""
    from scipy.spatial.transform import Rotation  # ~0.2 s to import: only when needed

    q = np.asarray(q, dtype=np.float64)
    batch = q.shape[:-1]
    flat = q.reshape(-1, 4)
    R = Rotation.from_quat(np.concatenate([flat[:, 1:], flat[:, :1]], axis=1)).as_matrix()
    return R.reshape(*batch, 3, 3)


def opencv_to_opengl_c2w(c2w: ArrayLike) -> Float64Array:
    """Change the camera axes of cam-to-world matrices from OpenCV to OpenGL.

    Parameters
    ----------
    c2w : array_like, shape (..., 4, 4)
        Cam-to-world with OpenCV camera axes (x right, y down, z forward).

    Returns
    -------
    ndarray, shape (..., 4, 4), float64
        Cam-to-world with OpenGL camera axes (x right, y up, z backward), as Nerfstudio and Blender
        want: ``c2w @ diag(1, -1, -1, 1)``. The world frame and the camera centre are unchanged.
    """
    return np.asarray(c2w, dtype=np.float64) @ OPENCV_TO_OPENGL


def opengl_to_opencv_c2w(c2w: ArrayLike) -> Float64Array:
    """Inverse of :func:`opencv_to_opengl_c2w` (the same flip, which is an involution)."""
    return np.asarray(c2w, dtype=np.float64) @ OPENCV_TO_OPENGL


# -------------------------------------------------------------------------------------- intrinsics


def intrinsics_matrix(f: float, W: int, H: int) -> Float64Array:
    """Pinhole intrinsics at model resolution as the published code builds them (spec 7.2).

    Parameters
    ----------
    f : float
        Focal length in pixels (same for x and y).
    W, H : int
        Image width and height in pixels (of the model input).

    Returns
    -------
    ndarray, shape (3, 3), float64
        ``[[f, 0, W/2], [0, f, H/2], [0, 0, 1]]``. The principal point is ``(W/2, H/2)`` in integer
        pixel-index coordinates (u = column, v = row), i.e. half a pixel right/below the geometric
        image centre ``((W-1)/2, (H-1)/2)``: this matches how the poses were estimated.
    """
    return np.array([[f, 0.0, W / 2.0], [0.0, f, H / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64)


def _scales(resized_size: ArrayLike, original_size: ArrayLike) -> tuple[Float64Array, Float64Array]:
    """``(sx, sy) = resized / original`` per axis; sizes are ``(..., 2)`` ``(width, height)``, broadcast."""
    rs = np.asarray(resized_size, dtype=np.float64)
    os_ = np.asarray(original_size, dtype=np.float64)
    if rs.shape[-1:] != (2,) or os_.shape[-1:] != (2,) or not ((rs > 0).all() and (os_ > 0).all()):
        raise InputError(
            f"image sizes must be positive (width, height), got resized {resized_size!s}, "
            f"original {original_size!s}"
        )
    s = rs / os_
    return s[..., 0], s[..., 1]


def intrinsics_model_to_original(
    K: ArrayLike,
    crop_box: Sequence[float],
    resized_size: Sequence[int],
    original_size: Sequence[int],
) -> Float64Array:
    """Express model-resolution intrinsics in pixels of the original image (undo crop and resize).

    Preprocessing resized the original image (``original_size`` -> ``resized_size``) and then cropped
    ``crop_box`` out of the resized image. With pixel-centre coordinates (integer indices) a model pixel
    ``x`` maps to ``x_orig = (x + left + 0.5) / sx - 0.5`` with ``sx = resized_w / original_w`` (and
    likewise ``y`` with ``top``, ``sy = resized_h / original_h``). Hence ``fx' = fx / sx``,
    ``fy' = fy / sy``, ``cx' = (cx + left + 0.5) / sx - 0.5``, ``cy' = (cy + top + 0.5) / sy - 0.5``.

    Parameters
    ----------
    K : array_like, shape (..., 3, 3)
        Intrinsics in model-input pixels (e.g. from :func:`intrinsics_matrix`).
    crop_box : (left, top, right, bottom)
        The crop in pixels of the resized image, as ``PIL.Image.crop`` takes it.
    resized_size : (width, height)
        Size of the resized image before the crop.
    original_size : (width, height)
        Size of the original image as decoded, after the EXIF orientation was applied.

    Returns
    -------
    ndarray, shape (..., 3, 3), float64
        Intrinsics in original-image pixels (``fx != fy`` in general because the resize rounds each side).
    """
    K = np.asarray(K, dtype=np.float64)
    sx, sy = _scales(resized_size, original_size)
    left, top = float(crop_box[0]), float(crop_box[1])
    out = K.copy()
    # Rows of K give u = fx*x/z + s*y/z + cx: scaling and shifting u scales row 0, shifts its cx.
    out[..., 0, :] = K[..., 0, :] / sx
    out[..., 1, :] = K[..., 1, :] / sy
    out[..., 0, 2] = (K[..., 0, 2] + left + 0.5) / sx - 0.5
    out[..., 1, 2] = (K[..., 1, 2] + top + 0.5) / sy - 0.5
    return out


def model_pixels_to_original(
    uv: ArrayLike,
    crop_box: ArrayLike,
    resized_size: ArrayLike,
    original_size: ArrayLike,
) -> Float64Array:
    """Map pixel coordinates of the model input to pixel coordinates of the original image.

    Parameters
    ----------
    uv : array_like, shape (..., 2)
        ``(u, v) = (column, row)`` in model-input pixels, pixel-centre convention (integer = centre).
    crop_box : array_like, shape (4,) or (..., 4)
        ``(left, top, right, bottom)`` as in :func:`intrinsics_model_to_original`; a stack of boxes
        (one per point, e.g. ``crop_boxes[view]``) broadcasts against ``uv``'s leading dimensions.
    resized_size, original_size : array_like, shape (2,) or (..., 2)
        ``(width, height)`` as in :func:`intrinsics_model_to_original`, broadcast likewise.

    Returns
    -------
    ndarray, shape (..., 2), float64
        ``(u, v)`` in original-image pixels, same convention:
        ``u_orig = (u + left + 0.5) / sx - 0.5``, ``v_orig = (v + top + 0.5) / sy - 0.5``.
    """
    uv = np.asarray(uv, dtype=np.float64)
    box = np.asarray(crop_box, dtype=np.float64)
    sx, sy = _scales(resized_size, original_size)
    out = np.empty_like(uv)
    out[..., 0] = (uv[..., 0] + box[..., 0] + 0.5) / sx - 0.5
    out[..., 1] = (uv[..., 1] + box[..., 1] + 0.5) / sy - 0.5
    return out


# ------------------------------------------------------------------------------------------ frusta


def frustum_corners(c2w: ArrayLike, K: ArrayLike, W: int, H: int, depth: float) -> Float64Array:
    """Points for drawing a camera as a pyramid.

    Parameters
    ----------
    c2w : array_like, shape (4, 4)
        Cam-to-world, OpenCV camera axes (x right, y down, z forward).
    K : array_like, shape (3, 3)
        Intrinsics in pixels of an image of size ``W x H``.
    W, H : int
        Image size in pixels.
    depth : float
        Distance of the far plane along the camera's z axis, in world units.

    Returns
    -------
    ndarray, shape (5, 3), float64
        World points: the camera centre, then the far-plane corners through the image's outer pixel
        edges ``(-0.5, -0.5)``, ``(W-0.5, -0.5)``, ``(W-0.5, H-0.5)``, ``(-0.5, H-0.5)``: top-left,
        top-right, bottom-right, bottom-left as seen in the image.
    """
    corners = np.array([[-0.5, -0.5], [W - 0.5, -0.5], [W - 0.5, H - 0.5], [-0.5, H - 0.5]])
    return transform_points(c2w, np.vstack([np.zeros(3), _unproject_at_depth(K, corners, depth)]))


def frustum_segments(c2w: ArrayLike, K: ArrayLike, W: int, H: int, depth: float) -> Float64Array:
    """Line segments that draw a camera as a pyramid with an "up" marker.

    Parameters
    ----------
    c2w, K, W, H, depth
        As in :func:`frustum_corners` (cam-to-world with OpenCV axes; intrinsics in pixels of a
        ``W x H`` image; far-plane distance along the camera's z axis, in world units).

    Returns
    -------
    ndarray, shape (11, 2, 3), float64
        Segment end points in world coordinates: 4 edges from the camera centre to the far-plane
        corners (top-left, top-right, bottom-right, bottom-left, as :func:`frustum_corners`), the 4
        far-plane edges (top, right, bottom, left), then the 3 edges of a triangle standing on the
        middle third of the top edge with its tip above it (``-y`` is up in the image), which shows
        which way the image's top is.
    """
    c, tl, tr, br, bl = frustum_corners(c2w, K, W, H, depth)
    x0, y0, x1 = -0.5, -0.5, W - 0.5
    xm, third = (x0 + x1) / 2, (x1 - x0) / 6
    up = np.array([[xm - third, y0], [xm + third, y0], [xm, y0 - 1.2 * third]])
    t0, t1, tip = transform_points(c2w, _unproject_at_depth(K, up, depth))
    return np.array(
        [
            [c, tl],
            [c, tr],
            [c, br],
            [c, bl],
            [tl, tr],
            [tr, br],
            [br, bl],
            [bl, tl],
            [t0, t1],
            [t1, tip],
            [tip, t0],
        ]
    )


def _unproject_at_depth(K: ArrayLike, uv: Float64Array, depth: float) -> Float64Array:
    """Camera-frame points, shape (N, 3), at ``z = depth`` on the rays of pixels ``uv`` (N, 2)."""
    rays = np.column_stack([uv, np.ones(len(uv))]) @ np.linalg.inv(np.asarray(K, dtype=np.float64)).T
    return rays * (depth / rays[:, 2:3])


# ------------------------------------------------------------------------------------- similarity


def umeyama_similarity(
    src: ArrayLike, dst: ArrayLike, weights: ArrayLike | None = None
) -> tuple[float, Float64Array, Float64Array]:
    """Least-squares similarity between corresponding point sets (Umeyama 1991), optionally weighted.

    Finds ``(s, R, t)`` minimising ``sum_i w_i ||s R src_i + t - dst_i||^2`` with ``R`` a proper rotation
    (det +1; a reflection is never returned) and ``s > 0``. Computed in float64.

    Parameters
    ----------
    src, dst : array_like, shape (N, 3)
        Corresponding points (e.g. a local pointmap and the global pointmap of the same pixels).
    weights : array_like, shape (N,), optional
        Non-negative weights; ``None`` means all ones.

    Returns
    -------
    s : float
        Scale (1.0 if ``src`` has no spread, then only the translation is fitted).
    R : ndarray, shape (3, 3), float64
    t : ndarray, shape (3,), float64
        Apply as ``dst ≈ s * src @ R.T + t``.

    Raises
    ------
    InputError
        If the shapes differ or are not ``(N, 3)``, or the weights are negative or sum to zero.
    """
    x = np.asarray(src, dtype=np.float64)
    y = np.asarray(dst, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape != y.shape:
        raise InputError(f"umeyama_similarity needs two (N, 3) arrays, got {x.shape} and {y.shape}")
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (len(x),) or np.any(w < 0) or not w.sum() > 0:
        raise InputError("umeyama_similarity needs N non-negative weights with a positive sum")
    w = w / w.sum()
    # einsum rather than BLAS matmuls: (3, N) x (N, 3) products gain nothing from BLAS threads, and
    # those threads fight other work (OpenCV, thread pools) for the cores.
    mx = np.einsum("n,ni->i", w, x)
    my = np.einsum("n,ni->i", w, y)
    xc = x - mx
    yc = y - my
    cov = np.einsum("n,ni,nj->ij", w, yc, xc)  # sum_n w_n (y_n - my)(x_n - mx)^T
    var_x = float(np.einsum("n,ni,ni->", w, xc, xc))
    U, D, Vt = np.linalg.svd(cov)
    S = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:  # closest rotation, not a reflection
        S[2] = -1.0
    R = (U * S) @ Vt
    s = float((D * S).sum() / var_x) if var_x > 0 else 1.0
    t = my - s * R @ mx
    return s, R, t
