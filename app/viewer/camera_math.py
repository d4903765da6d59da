"""Camera maths of the viewport: robust scene bounds, look-at orientations and VisPy camera parameters.

Pure numpy (no GL, no Qt). Frames:

* World: the reconstruction's frame, OpenCV axes (x right, y down, z forward of view 0's camera), so
  "up" in the world is ``-y``.
* A viewing orientation is given as ``forward`` (the direction the eye looks along) and ``up`` (the
  direction that appears upwards on screen), both world vectors. A reconstruction camera with
  cam-to-world ``c2w`` looks along ``c2w[:3, 2]`` (+z) with image up ``-c2w[:3, 1]`` (-y).

VisPy's camera nodes map their local axes to the scene with ``p_scene = p_local @ M`` (row vectors):
local ``-z`` is the viewing direction, local ``+y`` is screen up, local ``+x`` is screen right.
"""

from __future__ import annotations

import math

import numpy as np

from fast3r_core.geometry import quat_wxyz_to_rotmat, rotmat_to_quat_wxyz

__all__ = [
    "arcball_quaternion",
    "box_corners",
    "camera_axes",
    "default_view_direction",
    "fit_distance",
    "look_basis",
    "pose_of_view",
    "robust_bounds",
    "slerp_rotation",
    "smoothstep",
    "turntable_angles",
]


def robust_bounds(
    xyz: np.ndarray, *, lo: float = 2.0, hi: float = 98.0, max_samples: int = 200_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis percentile box of a point cloud, ignoring outliers.

    Parameters
    ----------
    xyz : np.ndarray, (N, 3)
        World points.
    lo, hi : float
        Percentiles (0..100) of each axis that bound the box.
    max_samples : int
        Above this many points, the percentiles are taken on a fixed random subsample (fast for 5 M).
    seed : int
        Seed of that subsample.

    Returns
    -------
    center : np.ndarray, (3,) float64
        Centre of the box.
    size : np.ndarray, (3,) float64
        Side lengths of the box (zeros for an empty or single-point cloud).
    """
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz must be (N, 3), got {xyz.shape}")
    if len(xyz) == 0:
        return np.zeros(3), np.zeros(3)
    pts = xyz
    if len(xyz) > max_samples:  # with replacement: drawing 200 k of 5 M takes ~2 ms, a permutation ~60
        pts = xyz[np.random.default_rng(seed).integers(0, len(xyz), max_samples)]
    pts = np.asarray(pts, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        return np.zeros(3), np.zeros(3)
    a, b = np.percentile(pts, [lo, hi], axis=0)
    return (a + b) / 2.0, b - a


def look_basis(forward: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Orthonormal (right, up, forward) from a viewing direction and an approximate up vector.

    Returns
    -------
    np.ndarray, (3, 3) float64
        Rows: screen right, screen up, forward. ``right x up = -forward`` (as for a camera that looks
        along ``-z`` in its own axes), so the rotation matrix of the view is ``[right; up; -forward]``,
        not this matrix (whose determinant is -1).

    Raises
    ------
    ValueError
        If ``forward`` is zero or parallel to ``up``.
    """
    f = np.asarray(forward, dtype=np.float64)
    nf = np.linalg.norm(f)
    if nf == 0:
        raise ValueError("forward must be non-zero")
    f = f / nf
    u = np.asarray(up, dtype=np.float64)
    u = u - f * np.dot(u, f)
    nu = np.linalg.norm(u)
    if nu < 1e-9:
        raise ValueError("up must not be parallel to forward")
    u = u / nu
    r = np.cross(f, u)  # OpenCV: x = y cross z with y = -up, z = forward -> x = forward cross up
    return np.stack([r, u, f])


def pose_of_view(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eye, forward and up of a reconstruction camera.

    Parameters
    ----------
    c2w : np.ndarray, (4, 4)
        Cam-to-world, OpenCV axes (x right, y down, z forward).

    Returns
    -------
    eye, forward, up : np.ndarray, (3,) float64 each
        Camera centre, unit optical axis (+z), unit image up (-y), in world coordinates.
    """
    m = np.asarray(c2w, dtype=np.float64)
    fwd = m[:3, 2] / np.linalg.norm(m[:3, 2])
    up = -m[:3, 1] / np.linalg.norm(m[:3, 1])
    return m[:3, 3].copy(), fwd, up


def default_view_direction(
    c2w: np.ndarray, azimuth_deg: float = 35.0, elevation_deg: float = 25.0
) -> tuple[np.ndarray, np.ndarray]:
    """The viewing direction of the default view: view 0's, turned aside and tilted down.

    Looking exactly along view 0's optical axis puts its frustum between the eye and the cloud, where
    it covers the middle of the picture; a three-quarter view from slightly above shows the cloud with
    the cameras beside it.

    Parameters
    ----------
    c2w : np.ndarray, (4, 4)
        Cam-to-world of view 0, OpenCV axes.
    azimuth_deg : float
        Turn about the image's up axis (positive: the viewing direction turns towards the image's right).
    elevation_deg : float
        Tilt: the eye rises above the camera and looks down.

    Returns
    -------
    forward, up : np.ndarray, (3,) float64
        Unit viewing direction and the screen's up, in world coordinates.
    """
    _, fwd, up = pose_of_view(c2w)
    right = np.cross(fwd, up)
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    turned = math.cos(a) * fwd + math.sin(a) * right
    tilted = math.cos(e) * turned - math.sin(e) * up
    tilted /= np.linalg.norm(tilted)
    new_up = up - tilted * float(np.dot(up, tilted))
    return tilted, new_up / np.linalg.norm(new_up)


def turntable_angles(forward: np.ndarray, up: np.ndarray) -> tuple[float, float, float]:
    """Azimuth, elevation and roll (degrees) of a VisPy ``TurntableCamera(up="-y")`` for a view.

    VisPy builds the turntable's orientation (row vectors) as ``A @ Rz(el) @ R-y(az) @ Rx(roll)``,
    where ``A`` is its pose at zero angles (local x -> -z, local y -> -y, local -z -> +x). In column
    form the rotation part is ``Rx(roll) Ry(-az) Rz(el)``: X-Y-Z Euler angles, solved here in closed
    form, choosing the solution with ``|el| <= 90`` (VisPy clamps the elevation). Azimuth 90, elevation
    0, roll 0 looks along +z with -y up: exactly view 0 of a reconstruction.
    """
    r, u, f = look_basis(forward, up)
    desired = np.stack([r, u, -f])  # rows: images of the camera's local x, y, z
    base = np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])
    m = np.linalg.solve(base, desired).T  # column form: Rx(roll) @ Ry(-az) @ Rz(el)
    b = math.asin(float(np.clip(m[0, 2], -1.0, 1.0)))
    if abs(math.cos(b)) < 1e-9:  # gimbal lock: looking straight up or down
        a, c = 0.0, math.atan2(m[1, 0], m[1, 1])
    else:
        a = math.atan2(-m[1, 2], m[2, 2])
        c = math.atan2(-m[0, 1], m[0, 0])
    if abs(c) > math.pi / 2:  # the other X-Y-Z solution has |el| <= 90
        a, b, c = a + math.pi, math.pi - b, c - math.copysign(math.pi, c)
    roll, az, el = (math.degrees(x) for x in (a, -b, c))
    return _wrap180(az), el, _wrap180(roll)


def _wrap180(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


def arcball_quaternion(forward: np.ndarray, up: np.ndarray) -> tuple[float, float, float, float]:
    """``(w, x, y, z)`` for VisPy's ``ArcballCamera._quaternion`` that gives this view.

    VisPy's arcball composes ``affine_map(...)`` (local -z -> scene +y, local +y -> scene +z) with a
    rotation about the axis ``(x, z, y)`` of its quaternion (note the swapped components); this inverts
    that composition.
    """
    r, u, f = look_basis(forward, up)
    desired = np.stack([r, u, -f])  # rows: images of local x, y, z (row-vector convention)
    # Rows of base: images of local x, y, z under the fixed map: x -> +x, y -> +z, z -> -y.
    base = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    rq_row = np.linalg.solve(base, desired)
    w, x, y, z = rotmat_to_quat_wxyz(rq_row.T)
    return float(w), float(x), float(z), float(y)


def camera_axes(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eye, forward and up of a VisPy 3-D camera from its node matrix (``camera.transform.matrix``).

    Returns
    -------
    eye, forward, up : np.ndarray, (3,) float64 each
        Eye position, unit viewing direction and unit screen-up direction, in scene coordinates.
    """
    m = np.asarray(matrix, dtype=np.float64)
    eye = m[3, :3]
    fwd = -m[2, :3]
    up = m[1, :3]
    return eye.copy(), fwd / np.linalg.norm(fwd), up / np.linalg.norm(up)


def box_corners(center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The 8 corners, (8, 3), of an axis-aligned box given by its centre and side lengths."""
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)
    return np.asarray(center, np.float64) + signs * (np.asarray(size, np.float64) / 2.0)


def fit_distance(
    center: np.ndarray,
    points: np.ndarray,
    forward: np.ndarray,
    up: np.ndarray,
    fov_deg: float,
    aspect: float = 1.0,
    margin: float = 1.08,
) -> float:
    """Smallest eye distance from ``center`` along ``-forward`` at which every point is in view.

    Parameters
    ----------
    center : np.ndarray, (3,)
        The point the eye looks at (world coordinates).
    points : np.ndarray, (M, 3)
        What must be visible, e.g. a subsample of the shown points and the camera centres, or the
        corners of a box (:func:`box_corners`).
    forward, up : np.ndarray, (3,)
        Viewing direction and screen up (see :func:`look_basis`).
    fov_deg : float
        Vertical field of view in degrees (perspective).
    aspect : float
        Viewport width / height.
    margin : float
        Extra room (1.08 leaves about 4 % on each side).

    Returns
    -------
    float
        The smallest ``d`` with ``|(p - c).right| <= (d + (p - c).forward) * tan(h/2)`` and likewise
        vertically for every point ``p``, and with every point in front of the eye; never below 1 %
        of the points' spread.
    """
    r, u, f = look_basis(forward, up)
    tan_v = math.tan(math.radians(min(max(fov_deg, 1.0), 179.0)) / 2.0) / margin
    tan_h = tan_v * max(aspect, 1e-3)
    rel = np.asarray(points, np.float64).reshape(-1, 3) - np.asarray(center, np.float64)
    rel = rel[np.isfinite(rel).all(axis=1)]
    if len(rel) == 0:
        return 1.0
    along = rel @ f
    need = np.maximum(np.abs(rel @ r) / tan_h, np.abs(rel @ u) / tan_v) - along
    spread = float(np.linalg.norm(rel.max(axis=0) - rel.min(axis=0)))
    floor = 0.01 * spread if spread > 0 else 1.0
    in_front = float((-along).max()) + floor  # the nearest point stays in front of the eye
    return float(max(need.max(), in_front, floor))


def slerp_rotation(r0: np.ndarray, r1: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of two rotation matrices (3, 3) at ``t`` in [0, 1] (shortest arc)."""
    q0 = rotmat_to_quat_wxyz(r0)
    q1 = rotmat_to_quat_wxyz(r1)
    d = float(np.dot(q0, q1))
    if d < 0.0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + t * (q1 - q0)
    else:
        th = math.acos(min(d, 1.0))
        q = (math.sin((1 - t) * th) * q0 + math.sin(t * th) * q1) / math.sin(th)
    return quat_wxyz_to_rotmat(q / np.linalg.norm(q))


def smoothstep(t: float) -> float:
    """Ease-in-out of ``t`` in [0, 1] (zero speed at both ends)."""
    t = min(max(t, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)
