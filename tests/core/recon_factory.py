"""Synthetic :class:`Reconstruction` objects with exactly known geometry, for tests and benchmarks.

Every pixel's global point is built by back-projecting that pixel with the view's model intrinsics at a
known depth and moving it to world with the view's pose, so projecting it back with the same camera
gives the pixel again (to float32 rounding). The original-resolution intrinsics are built to agree
with the model-to-original pixel mapping ``x_orig = (u + left + 0.5) / sx - 0.5``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fast3r_core.result import Reconstruction

__all__ = [
    "MIXED_SIZES",
    "look_at_c2w",
    "make_synthetic_reconstruction",
    "project_original",
    "resize_and_crop_box",
    "stand_in_reconstruction",
]

MIXED_SIZES: tuple[tuple[int, int], ...] = ((160, 120), (120, 160), (200, 150), (150, 150))
"""(width, height) of original photos for a mixed landscape/portrait/square case."""


def resize_and_crop_box(
    original_size: tuple[int, int], long_side: int
) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Resize so the long side is ``long_side``, then centre-crop to multiples of 16.

    Returns
    -------
    resized_size : (width, height)
    crop_box : (left, top, right, bottom) in resized pixels
    """
    w, h = original_size
    s = long_side / max(w, h)
    rw, rh = round(w * s), round(h * s)
    cx, cy = rw // 2, rh // 2
    hw, hh = 8 * ((2 * cx) // 16), 8 * ((2 * cy) // 16)
    return (rw, rh), (cx - hw, cy - hh, cx + hw, cy + hh)


def look_at_c2w(center: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 cam-to-world (OpenCV axes) of a camera at ``center`` looking at ``target``, y down ~ +y."""
    z = target - center
    z = z / np.linalg.norm(z)
    x = np.cross(np.array([0.0, 1.0, 0.0]), z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, :3] = np.stack([x, y, z], axis=1)
    m[:3, 3] = center
    return m


def make_synthetic_reconstruction(
    n_views: int = 3,
    *,
    original_sizes: Sequence[tuple[int, int]] | None = None,
    long_side: int = 70,
    seed: int = 0,
    image_dir: str | Path | None = None,
    image_ext: str = ".png",
    pose_ok: Sequence[bool] | None = None,
    model_name: str = "synthetic",
) -> Reconstruction:
    """Build a Reconstruction of a known synthetic scene.

    Parameters
    ----------
    n_views : int
        Number of views (ignored when ``original_sizes`` is given: one view per size).
    original_sizes : sequence of (width, height), optional
        Original photo sizes; default (160, 120) for every view. Use ``MIXED_SIZES`` for mixed
        orientations.
    long_side : int
        Long side of the model-resolution images before the crop to multiples of 16.
    seed : int
        Random seed (depths, confidences, colours, intrinsics jitter).
    image_dir : path, optional
        When given, write an image file of each view's original size there and use those paths.
    image_ext : str
        ".png" or ".jpg" for the written images.
    pose_ok : sequence of bool, optional
        Per-view PnP success flags (default all True).
    model_name : str
        Stored model name.

    Returns
    -------
    Reconstruction
        View 0's camera is the world frame (identity pose); the other cameras sit on an arc around
        the point (0, 0, 4) looking at it.
    """
    rng = np.random.default_rng(seed)
    sizes = list(original_sizes) if original_sizes is not None else [(160, 120)] * n_views
    n_views = len(sizes)
    target = np.array([0.0, 0.0, 4.0])

    pts3d, conf, pts_local, conf_local, colors = [], [], [], [], []
    c2w = np.zeros((n_views, 4, 4))
    k_model = np.zeros((n_views, 3, 3))
    k_orig = np.zeros((n_views, 3, 3))
    resized = np.zeros((n_views, 2), dtype=np.int64)
    crops = np.zeros((n_views, 4), dtype=np.int64)
    paths: list[str] = []
    for v, (w, h) in enumerate(sizes):
        (rw, rh), box = resize_and_crop_box((w, h), long_side)
        left, top, right, bottom = box
        mw, mh = right - left, bottom - top
        resized[v], crops[v] = (rw, rh), box
        sx, sy = rw / w, rh / h

        f = 1.1 * max(w, h) * (1.0 + 0.05 * rng.standard_normal())
        ko = np.array(
            [[f, 0.0, (w - 1) / 2 + rng.uniform(-2, 2)], [0.0, f * 1.01, (h - 1) / 2 + rng.uniform(-2, 2)]]
        )
        k_orig[v] = np.vstack([ko, [0.0, 0.0, 1.0]])
        # Model intrinsics that agree with x_orig = (u + left + 0.5) / sx - 0.5.
        k_model[v] = [
            [sx * ko[0, 0], 0.0, sx * (ko[0, 2] + 0.5) - 0.5 - left],
            [0.0, sy * ko[1, 1], sy * (ko[1, 2] + 0.5) - 0.5 - top],
            [0.0, 0.0, 1.0],
        ]

        angle = np.deg2rad(15.0 * v)
        center = target + np.array([4.0 * np.sin(angle), 0.3 * np.sin(3 * angle), -4.0 * np.cos(angle)])
        c2w[v] = look_at_c2w(center, target) if v else np.eye(4)

        u, r = np.meshgrid(np.arange(mw, dtype=np.float64), np.arange(mh, dtype=np.float64))
        depth = 4.0 + 0.5 * np.sin(0.21 * u + 0.1 * v) * np.cos(0.17 * r) + 0.2 * rng.random()
        rays = np.stack([u, r, np.ones_like(u)], axis=-1) @ np.linalg.inv(k_model[v]).T
        cam = rays * depth[..., None]
        world = cam @ c2w[v][:3, :3].T + c2w[v][:3, 3]
        pts3d.append(world.astype(np.float32))
        pts_local.append((world + rng.normal(0.0, 0.01, world.shape)).astype(np.float32))
        conf.append((1.0 + np.exp(rng.normal(0.5, 1.0, (mh, mw)))).astype(np.float32))
        conf_local.append((1.0 + np.exp(rng.normal(0.5, 1.0, (mh, mw)))).astype(np.float32))
        colors.append(rng.integers(0, 256, (mh, mw, 3), dtype=np.uint8))

        name = f"view_{v:02d}{image_ext}"
        if image_dir is not None:
            folder = Path(image_dir)
            folder.mkdir(parents=True, exist_ok=True)
            grad = np.zeros((h, w, 3), dtype=np.uint8)
            grad[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
            grad[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
            grad[..., 2] = (40 * v) % 256
            Image.fromarray(grad).save(folder / name)
            paths.append(str((folder / name).resolve()))
        else:
            paths.append(f"/nonexistent/synthetic/{name}")

    return Reconstruction(  # the per-view lists become tuples there
        pts3d=pts3d,
        conf=conf,
        pts3d_local=pts_local,
        conf_local=conf_local,
        colors=colors,
        cam_to_world=c2w,
        intrinsics=k_model,
        intrinsics_original=k_orig,
        original_sizes=np.array(sizes, dtype=np.int64),
        resized_sizes=resized,
        crop_boxes=crops,
        image_paths=tuple(paths),
        model_name=model_name,
        options={"size": long_side, "seed": seed, "image_ids": list(range(n_views)), "device": "cpu"},
        timings={"encode": 0.5, "fuse": 0.25, "heads": 0.125, "poses": 0.0625},
        pose_ok=np.array(pose_ok if pose_ok is not None else [True] * n_views, dtype=bool),
    )


def stand_in_reconstruction(maps: Mapping[str, Sequence[np.ndarray]]) -> Reconstruction:
    """A result around given per-view maps of square (side, side) views, for memory and size tests.

    ``maps`` holds the five per-view fields of :class:`Reconstruction` (pts3d, conf, pts3d_local,
    conf_local, colors). The cameras are placeholders (identity poses, a pinhole of focal ``side`` at
    the centre, no resize or crop, paths that do not exist): only the maps' sizes matter to the callers.
    """
    n_views = len(maps["pts3d"])
    side = int(maps["pts3d"][0].shape[0])
    k = np.array([[side, 0, side / 2], [0, side, side / 2], [0, 0, 1]], dtype=np.float64)
    return Reconstruction(
        **maps,
        cam_to_world=np.tile(np.eye(4), (n_views, 1, 1)),
        intrinsics=np.tile(k, (n_views, 1, 1)),
        intrinsics_original=np.tile(k, (n_views, 1, 1)),
        original_sizes=np.full((n_views, 2), side, dtype=np.int64),
        resized_sizes=np.full((n_views, 2), side, dtype=np.int64),
        crop_boxes=np.tile(np.array([0, 0, side, side], dtype=np.int64), (n_views, 1)),
        image_paths=tuple(f"/nonexistent/{v:05d}.jpg" for v in range(n_views)),
        model_name="stand-in",
    )


def project_original(rec: Reconstruction, view: int, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into view ``view`` with its original-resolution intrinsics.

    Returns
    -------
    xy : (N, 2) float64 pixel coordinates in the original photo (pixel centres at integers)
    z : (N,) float64 depth in the camera frame
    """
    w2c = np.linalg.inv(rec.cam_to_world[view])
    cam = np.asarray(xyz, dtype=np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    k = rec.intrinsics_original[view]
    xy = cam[:, :2] / cam[:, 2:3] * np.diag(k)[:2] + k[:2, 2]
    return xy, cam[:, 2]
