"""Training data: a pre-rendered cache of synthetic scenes and the sampler of multi-view batches.

Rendering a scene of 8 views at 224 px takes ~0.2 s on one core, more than a training step spends per
scene, so scenes are rendered once into a cache folder of flat memory-mapped arrays and training reads
random view subsets from it:

``images.u8``  (S, V, H, W, 3) uint8 RGB
``depth.f16``  (S, V, H, W) float16 z-depth, 0 = background (invalid)
``c2w.f32``    (S, V, 4, 4) float32 cam-to-world, OpenCV axes
``K.f32``      (S, V, 3, 3) float32 intrinsics in pixels (principal point W/2, H/2)
``kinds.u8``   (S,) uint8 scene kind: 0 objects, 1 room (caches made before it existed lack it)
``meta.json``  shapes, seed, generator settings

World points are recomputed from depth (``X_cam = z K^-1 (u + 0.5, v + 0.5, 1)``, ``X = c2w X_cam``),
which keeps the cache at ~2 MB per 8-view scene at 224 px.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from fast3r_core.errors import InputError

from .synthetic import render_sample

__all__ = ["Batch", "SceneCache", "build_cache", "depth_to_world", "scene_seed"]

log = logging.getLogger(__name__)

_FILES = {"images": ("images.u8", np.uint8), "depth": ("depth.f16", np.float16)}


def scene_seed(base_seed: int, index: int) -> np.random.Generator:
    """The generator of scene ``index`` of a set with ``base_seed`` (independent streams)."""
    return np.random.default_rng([int(base_seed), int(index)])


def _shapes(n: int, views: int, size: int) -> dict[str, tuple[int, ...]]:
    return {
        "images": (n, views, size, size, 3),
        "depth": (n, views, size, size),
        "c2w": (n, views, 4, 4),
        "K": (n, views, 3, 3),
    }


KIND_CODES = {"objects": 0, "room": 1}


def _open(folder: Path, meta: dict[str, Any], mode: Literal["r", "r+", "w+"]) -> dict[str, np.memmap]:
    shapes = _shapes(meta["num_scenes"], meta["views"], meta["size"])
    dtypes: dict[str, type[np.generic]] = {
        "images": np.uint8,
        "depth": np.float16,
        "c2w": np.float32,
        "K": np.float32,
    }
    names = {"images": "images.u8", "depth": "depth.f16", "c2w": "c2w.f32", "K": "K.f32"}
    out = {k: np.memmap(folder / names[k], dtype=dtypes[k], mode=mode, shape=shapes[k]) for k in shapes}
    if mode != "r" or (folder / "kinds.u8").is_file():
        out["kinds"] = np.memmap(folder / "kinds.u8", dtype=np.uint8, mode=mode, shape=(meta["num_scenes"],))
    return out


def _render_range(args: tuple[str, int, int, int, dict[str, Any]]) -> int:
    folder, start, stop, base_seed, meta = args
    arrays = _open(Path(folder), meta, "r+")
    for i in range(start, stop):
        s = render_sample(scene_seed(base_seed, i), meta["views"], aspect="square", long_side=meta["size"])
        arrays["images"][i] = s.images
        arrays["depth"][i] = s.depth.astype(np.float16)
        arrays["c2w"][i] = s.cam_to_world.astype(np.float32)
        arrays["K"][i] = s.intrinsics.astype(np.float32)
        arrays["kinds"][i] = KIND_CODES[s.kind]
    for a in arrays.values():
        a.flush()
    return stop - start


def build_cache(
    folder: str | Path, num_scenes: int, seed: int = 0, size: int = 224, views: int = 8, workers: int = 1
) -> Path:
    """Render ``num_scenes`` square scenes of ``views`` views at ``size`` px into ``folder``.

    Scene i is ``render_sample(scene_seed(seed, i))``, so a cache is reproducible and two caches with
    different seeds do not share scenes. An existing complete cache with the same settings is reused.
    """
    folder = Path(folder)
    meta = {"num_scenes": int(num_scenes), "views": int(views), "size": int(size), "seed": int(seed)}
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if old.get("complete") and all(old.get(k) == v for k, v in meta.items()):
            log.info("reusing the scene cache %s", folder)
            return folder
    folder.mkdir(parents=True, exist_ok=True)
    for k, a in _open(folder, meta, "w+").items():  # allocate the files
        a.flush()
        del k
    meta_path.write_text(json.dumps({**meta, "complete": False}))
    t0 = time.perf_counter()
    chunk = 20
    jobs = [(str(folder), s, min(s + chunk, num_scenes), seed, meta) for s in range(0, num_scenes, chunk)]
    done = 0
    if workers <= 1:
        for job in jobs:
            done += _render_range(job)
            log.info("cache: %d/%d scenes (%.0f s)", done, num_scenes, time.perf_counter() - t0)
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            for n in pool.imap_unordered(_render_range, jobs):
                done += n
                log.info("cache: %d/%d scenes (%.0f s)", done, num_scenes, time.perf_counter() - t0)
    meta_path.write_text(json.dumps({**meta, "complete": True}))
    return folder


def depth_to_world(depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """World points (..., H, W, 3) float32 from z-depth (..., H, W), K (..., 3, 3), c2w (..., 4, 4)."""
    H, W = depth.shape[-2:]
    v, u = torch.meshgrid(
        torch.arange(H, dtype=torch.float32) + 0.5, torch.arange(W, dtype=torch.float32) + 0.5, indexing="ij"
    )
    fx, fy = K[..., 0, 0, None, None], K[..., 1, 1, None, None]
    cx, cy = K[..., 0, 2, None, None], K[..., 1, 2, None, None]
    cam = torch.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], dim=-1)
    R, t = c2w[..., None, None, :3, :3], c2w[..., None, None, :3, 3]
    return (R @ cam[..., None])[..., 0] + t


@dataclass
class Batch:
    """One training batch: B samples of N views at resolution H x W.

    Attributes
    ----------
    images : N tensors (B, 3, H, W) float32 in [-1, 1].
    gts : N dicts with ``pts3d`` (B, H, W, 3) world points, ``valid_mask`` (B, H, W) bool and
        ``camera_pose`` (B, 4, 4) cam-to-world (OpenCV), as ``fast3r_loss`` expects.
    depth : (B, N, H, W) float32 z-depth (0 = background); K : (B, N, 3, 3) intrinsics in pixels of
        these images; c2w : (B, N, 4, 4) cam-to-world (for correspondence supervision).
    """

    images: list[torch.Tensor]
    gts: list[dict[str, torch.Tensor]]
    depth: torch.Tensor | None = None
    K: torch.Tensor | None = None
    c2w: torch.Tensor | None = None


class SceneCache:
    """Read access to a cache written by :func:`build_cache`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise InputError(f"{self.folder} is not a scene cache (no meta.json)")
        self.meta = json.loads(meta_path.read_text())
        if not self.meta.get("complete"):
            raise InputError(f"the scene cache {self.folder} is incomplete (interrupted build?)")
        self.arrays = _open(self.folder, self.meta, "r")

    def __len__(self) -> int:
        return int(self.meta["num_scenes"])

    @property
    def views(self) -> int:
        return int(self.meta["views"])

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    def scenes_of_kind(self, kind: str) -> np.ndarray:
        """Indices of the scenes of ``kind`` ("objects" / "room"); all scenes if the cache has no kinds."""
        kinds = self.arrays.get("kinds")
        if kinds is None:
            return np.arange(len(self))
        return np.flatnonzero(np.asarray(kinds) == KIND_CODES[kind])

    def _angles(self, scene: int) -> np.ndarray:
        """(V, V) rotation angle in degrees between the cameras of ``scene`` (cached)."""
        cache = self.__dict__.setdefault("_angle_cache", {})
        hit = cache.get(scene)
        if hit is None:
            R = np.asarray(self.arrays["c2w"][scene][:, :3, :3], np.float64)
            tr = np.einsum("aij,bij->ab", R, R)  # trace(R_a^T R_b)
            hit = np.degrees(np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0)))
            cache[scene] = hit
        return hit

    def pick_views(
        self, rng: np.random.Generator, scene: int, num_views: int, max_angle: float | None = None
    ) -> np.ndarray:
        """``num_views`` distinct views of ``scene`` in random order; view 0 (the reference frame) is a
        random one, and with ``max_angle`` (degrees) the others are drawn among the views whose camera
        is rotated at most that much from it (the nearest ones if too few are)."""
        first = int(rng.integers(self.views))
        if max_angle is None or max_angle >= 180.0:
            rest = rng.permutation(np.delete(np.arange(self.views), first))[: num_views - 1]
            return np.concatenate([[first], rest])
        ang = self._angles(scene)[first]
        order = np.argsort(ang)
        near = [int(v) for v in order if v != first and ang[v] <= max_angle]
        if len(near) < num_views - 1:
            near = [int(v) for v in order if v != first][: num_views - 1]
        rest = rng.permutation(np.array(near))[: num_views - 1]
        return np.concatenate([[first], rest])

    def batch(
        self,
        rng: np.random.Generator,
        batch_size: int,
        num_views: int,
        res: int,
        *,
        max_angle: float | None = None,
        room_share: float | None = None,
    ) -> Batch:
        """Random scenes, ``num_views`` random views of each (random order, so view 0 varies).

        ``res`` must divide the cache size (images are box-filtered down, depth subsampled).
        ``max_angle``: views at most this rotation (degrees) from view 0 (curriculum of overlap).
        ``room_share``: the share of room scenes in the batch (None: as the cache has them).
        """
        size = self.size
        if size % res:
            raise InputError(f"training resolution {res} must divide the cache size {size}")
        f = size // res
        if room_share is None:
            scenes = rng.choice(len(self), size=batch_size, replace=False)
        else:
            pools = (self.scenes_of_kind("objects"), self.scenes_of_kind("room"))
            rooms = int(rng.binomial(batch_size, room_share)) if len(pools[1]) else 0
            if not len(pools[0]):
                rooms = batch_size
            counts = (batch_size - rooms, rooms)
            scenes = np.concatenate(
                [rng.choice(pool, n, replace=n > len(pool)) for pool, n in zip(pools, counts, strict=True)]
            ).astype(np.int64)
        idx = np.stack([self.pick_views(rng, int(s), num_views, max_angle) for s in scenes])
        imgs = np.stack([self.arrays["images"][s][i] for s, i in zip(scenes, idx, strict=True)])
        depth = np.stack([self.arrays["depth"][s][i] for s, i in zip(scenes, idx, strict=True)])
        c2w = np.stack([self.arrays["c2w"][s][i] for s, i in zip(scenes, idx, strict=True)])
        K = np.stack([self.arrays["K"][s][i] for s, i in zip(scenes, idx, strict=True)])
        img_t = torch.from_numpy(imgs).float()  # (B, N, S, S, 3)
        dep_t = torch.from_numpy(depth.astype(np.float32))
        K_t = torch.from_numpy(K.copy())
        if f > 1:
            B, N = img_t.shape[:2]
            img_t = img_t.reshape(B, N, res, f, res, f, 3).mean(dim=(3, 5))
            # the depth sample nearest to the low-res pixel centre; a pixel centre of the low-res grid is
            # at f*(u+0.5) in full-res units, which sample (f/2) of the block approximates
            dep_t = dep_t[:, :, f // 2 :: f, f // 2 :: f]
            K_t = K_t.clone()
            K_t[..., :2, :] /= f
        pts = depth_to_world(dep_t, K_t, torch.from_numpy(c2w.copy()))
        valid = dep_t > 0
        img_t = img_t / 127.5 - 1.0
        images = [img_t[:, v].permute(0, 3, 1, 2).contiguous() for v in range(num_views)]
        c2w_t = torch.from_numpy(c2w.astype(np.float32))
        gts = [
            {"pts3d": pts[:, v], "valid_mask": valid[:, v], "camera_pose": c2w_t[:, v]}
            for v in range(num_views)
        ]
        return Batch(images, gts, dep_t, K_t.float(), c2w_t)
