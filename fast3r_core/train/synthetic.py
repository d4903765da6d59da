"""Procedural synthetic scenes: textured primitives ray-cast on the CPU with numpy (no OpenGL).

A scene is a handful of primitives (axis-aligned and rotated boxes, spheres, capped cylinders, a finite
ground plane, optionally a room enclosing everything) with procedural solid textures (checkers of random
scale, stripes, value noise, random palettes), lit by one random directional light (Lambertian) plus
ambient light. Cameras either orbit the objects (varied radius, elevation, azimuth spread up to 360
degrees, look-at jitter) or stand inside a room looking outward.

Conventions: world frame z-up (the ground is z = 0), metres-ish units; cameras are OpenCV (x right,
y down, z forward), poses are cam-to-world 4x4 float64; intrinsics K = [[f, 0, W/2], [0, f, H/2],
[0, 0, 1]] with pixel (col u, row v) centred at (u + 0.5, v + 0.5). Pixels whose ray hits nothing
(background, "sky") are invalid.

Everything here is numpy only (no torch) so that sample scenes can be made and read anywhere.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from fast3r_core.errors import InputError

__all__ = [
    "ASPECTS",
    "LOOKS",
    "Camera",
    "Primitive",
    "Scene",
    "SceneSample",
    "Texture",
    "load_scene_folder",
    "make_cameras",
    "make_scene",
    "render_sample",
    "render_view",
    "restyle_unseen",
    "save_scene_folder",
]

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: Image shapes (W, H) per aspect name at the reference long side 224 (scaled by ``render_sample``).
ASPECTS: dict[str, tuple[float, float]] = {
    "landscape": (4.0, 3.0),
    "square": (1.0, 1.0),
    "portrait": (3.0, 4.0),
}

_EPS = 1e-4
_NO_HIT = np.float32(np.inf)


# ------------------------------------------------------------------------------------------------
# Textures
# ------------------------------------------------------------------------------------------------
def _random_palette(rng: np.random.Generator, n: int) -> F32:
    """``n`` distinct-ish colours (n, 3) in [0, 1]: random hue, saturation and value."""
    base_h = rng.random()
    hues = (base_h + rng.random(n) * rng.uniform(0.15, 1.0)) % 1.0
    sat = rng.uniform(0.25, 1.0, n)
    val = rng.uniform(0.25, 1.0, n)
    # a lighter and a darker colour in every palette so that the texture has contrast
    val[0], val[-1] = rng.uniform(0.75, 1.0), rng.uniform(0.1, 0.45)
    return _hsv_to_rgb(hues, sat, val).astype(np.float32)


def _hsv_to_rgb(h: F64, s: F64, v: F64) -> F64:
    i = np.floor(h * 6.0).astype(int) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack(
        [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    )
    return table[i, np.arange(len(h))]


@dataclass
class Texture:
    """A procedural solid texture evaluated at points of a primitive's local frame.

    Attributes
    ----------
    kind : "checkers" | "stripes" | "noise" | "plain" (the training look) or "dots" | "rings" | "grid"
        (only in the "unseen" evaluation look).
    scale : float, size of a checker cell / stripe period / noise lattice cell (local units).
    palette : (K, 3) float32 colours in [0, 1].
    direction : (3,) unit vector of the stripes.
    lattice : (16, 16, 16) float32 random values of the value noise.
    """

    kind: str
    scale: float
    palette: F32
    direction: F32 = field(default_factory=lambda: np.array([1.0, 0.0, 0.0], np.float32))
    lattice: F32 | None = None

    @classmethod
    def random(cls, rng: np.random.Generator, scale_range: tuple[float, float] = (0.08, 0.5)) -> Texture:
        """A random texture; its cell size is log-uniform in ``scale_range``."""
        kind = str(rng.choice(["checkers", "stripes", "noise", "noise", "checkers"]))
        scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
        palette = _random_palette(rng, int(rng.integers(2, 5)))
        d = rng.normal(size=3)
        direction = (d / np.linalg.norm(d)).astype(np.float32)
        lattice = rng.random((16, 16, 16)).astype(np.float32) if kind == "noise" else None
        return cls(kind, scale, palette, direction, lattice)

    @classmethod
    def random_unseen(
        cls, rng: np.random.Generator, scale_range: tuple[float, float] = (0.08, 0.5)
    ) -> Texture:
        """A texture of a kind and palette that training never sees (for the "unseen" evaluation look)."""
        kind = str(rng.choice(["dots", "rings", "grid"]))
        scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
        k = int(rng.integers(2, 4))
        if rng.random() < 0.5:  # pastel: light, unsaturated
            pal = _hsv_to_rgb(rng.random(k), rng.uniform(0.1, 0.35, k), rng.uniform(0.7, 1.0, k))
        else:  # duotone: one hue, dark and light
            h = np.full(k, rng.random())
            pal = _hsv_to_rgb(h, np.full(k, rng.uniform(0.5, 1.0)), np.linspace(0.95, 0.15, k))
        d = rng.normal(size=3)
        return cls(kind, scale, pal.astype(np.float32), (d / np.linalg.norm(d)).astype(np.float32), None)

    def _noise(self, p: F32) -> F32:
        """Fractal value noise in [0, 1] (two octaves, trilinear with smoothstep)."""
        assert self.lattice is not None
        total = np.zeros(len(p), np.float32)
        amp_sum = 0.0
        for octave, amp in ((1.0, 1.0), (2.5, 0.5)):
            q = p / (self.scale * 1.0 / octave) + 7.3 * octave
            i0 = np.floor(q).astype(np.int64)
            f = q - i0
            f = f * f * (3.0 - 2.0 * f)
            acc = np.zeros(len(p), np.float32)
            for dx in (0, 1):
                wx = f[:, 0] if dx else 1.0 - f[:, 0]
                for dy in (0, 1):
                    wy = f[:, 1] if dy else 1.0 - f[:, 1]
                    for dz in (0, 1):
                        wz = f[:, 2] if dz else 1.0 - f[:, 2]
                        idx = (i0 + np.array([dx, dy, dz])) & 15
                        acc += wx * wy * wz * self.lattice[idx[:, 0], idx[:, 1], idx[:, 2]]
            total += amp * acc
            amp_sum += amp
        return total / amp_sum

    def albedo(self, p: F32) -> F32:
        """Colour (M, 3) float32 in [0, 1] at local points p (M, 3)."""
        pal = self.palette
        k = len(pal)
        if self.kind == "plain" or len(p) == 0:
            return np.broadcast_to(pal[0], (len(p), 3)).astype(np.float32)
        if self.kind == "checkers":
            cell = np.floor(p / self.scale + 1e-3).astype(np.int64).sum(axis=1)
            return pal[cell % min(k, 2) if k < 3 else cell % k]
        if self.kind in ("dots", "grid"):
            q = p / self.scale
            frac = q - np.floor(q) - 0.5
            if self.kind == "dots":
                on = np.linalg.norm(frac, axis=1) < 0.32
            else:
                on = (np.abs(frac) > 0.42).any(axis=1)
            return pal[np.where(on, k - 1, 0)]
        if self.kind == "rings":
            idx = np.floor(np.linalg.norm(p, axis=1) / self.scale).astype(np.int64) % k
            return pal[idx]
        if self.kind == "stripes":
            s = (p @ self.direction) / self.scale
            idx = np.floor(s).astype(np.int64) % k
            return pal[idx]
        # value noise mapped through the palette (piecewise-linear colour ramp)
        n = np.clip(self._noise(p), 0.0, 0.999) * (k - 1)
        i = np.floor(n).astype(np.int64)
        w = (n - i)[:, None]
        return (1.0 - w) * pal[i] + w * pal[np.minimum(i + 1, k - 1)]


# ------------------------------------------------------------------------------------------------
# Primitives
# ------------------------------------------------------------------------------------------------
def _rot_z(a: float) -> F64:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(a: float) -> F64:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclass
class Primitive:
    """One textured shape, given in its local frame (``x_world = R x_local + center``).

    kind and ``size`` (local half extents / radius):
      * "box": size = (ex, ey, ez) half extents.
      * "sphere": size = (r, r, r).
      * "cylinder": axis = local z, size = (r, r, half height).
      * "ground": the plane z = 0 (local), |x|, |y| <= size[0] = size[1].
      * "room": a box seen from inside (floor, walls and ceiling); textures[0] floor, [1] walls,
        [2] ceiling.
    """

    kind: str
    center: F64
    R: F64
    size: F64
    textures: list[Texture]

    def to_local(self, p: F64) -> F64:
        return (np.asarray(p) - self.center) @ self.R

    @property
    def bounding_radius(self) -> float:
        if self.kind == "cylinder":
            return float(math.hypot(self.size[0], self.size[2]))
        return float(np.linalg.norm(self.size)) if self.kind == "box" else float(self.size[0])

    # -- ray intersection in the local frame: origin o (3,), directions d (N, 3) ---------------------
    def hit(self, o: F32, d: F32) -> F32:
        """Ray parameter t (N,) of the first hit in front of the camera, inf where missed."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "sphere":
                return _hit_sphere(o, d, float(self.size[0]))
            if self.kind in ("box", "room"):
                return _hit_box(o, d, self.size.astype(np.float32), inside=self.kind == "room")
            if self.kind == "cylinder":
                return _hit_cylinder(o, d, float(self.size[0]), float(self.size[2]))
            if self.kind == "ground":
                t = -o[2] / d[:, 2]
                p = o + t[:, None] * d
                ok = (t > _EPS) & (np.abs(p[:, 0]) <= self.size[0]) & (np.abs(p[:, 1]) <= self.size[1])
                return np.where(ok, t, _NO_HIT).astype(np.float32)
        raise InputError(f"unknown primitive kind {self.kind!r}")

    def normal_and_texture(self, p: F32) -> tuple[F32, F32]:
        """Local unit normals (M, 3) and albedo (M, 3) at local surface points p (M, 3)."""
        if self.kind == "sphere":
            n = p / np.linalg.norm(p, axis=1, keepdims=True)
            return n, self.textures[0].albedo(p)
        if self.kind == "ground":
            n = np.zeros_like(p)
            n[:, 2] = 1.0
            return n, self.textures[0].albedo(p)
        if self.kind == "cylinder":
            r, h = float(self.size[0]), float(self.size[2])
            on_cap = np.abs(np.abs(p[:, 2]) - h) < 1e-3 * max(h, 1.0) + 1e-4
            on_cap &= np.hypot(p[:, 0], p[:, 1]) < r * (1 - 1e-3)
            n = np.where(on_cap[:, None], np.stack([0 * p[:, 0], 0 * p[:, 0], np.sign(p[:, 2])], 1), 0.0)
            side = np.stack([p[:, 0], p[:, 1], 0 * p[:, 0]], 1) / r
            n = np.where(on_cap[:, None], n, side).astype(np.float32)
            return n, self.textures[0].albedo(p)
        # box / room: the face is the axis where |p| / extent is largest
        q = np.abs(p) / self.size.astype(np.float32)
        axis = np.argmax(q, axis=1)
        sign = np.sign(p[np.arange(len(p)), axis])
        n = np.zeros_like(p)
        n[np.arange(len(p)), axis] = sign
        if self.kind == "room":
            n = -n  # seen from inside
            albedo = np.empty_like(p)
            floor = (axis == 2) & (sign < 0)
            ceiling = (axis == 2) & (sign > 0)
            walls = ~(floor | ceiling)
            for mask, tex in (
                (floor, self.textures[0]),
                (walls, self.textures[1]),
                (ceiling, self.textures[2]),
            ):
                if mask.any():
                    albedo[mask] = tex.albedo(p[mask])
            return n, albedo
        return n, self.textures[0].albedo(p)


def _hit_sphere(o: F32, d: F32, r: float) -> F32:
    a = np.einsum("ij,ij->i", d, d)
    b = 2.0 * (d @ o)
    c = float(o @ o) - r * r
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0 = (-b - sq) / (2 * a)
    t1 = (-b + sq) / (2 * a)
    t = np.where(t0 > _EPS, t0, np.where(t1 > _EPS, t1, _NO_HIT))
    return np.where(disc >= 0, t, _NO_HIT).astype(np.float32)


def _hit_box(o: F32, d: F32, e: F32, inside: bool) -> F32:
    inv = 1.0 / d
    t1 = (-e - o) * inv
    t2 = (e - o) * inv
    tn = np.nanmax(np.minimum(t1, t2), axis=1)
    tf = np.nanmin(np.maximum(t1, t2), axis=1)
    ok = tf >= np.maximum(tn, _EPS)
    if inside:
        return np.where(ok, tf, _NO_HIT).astype(np.float32)
    return np.where(ok & (tn > _EPS), tn, _NO_HIT).astype(np.float32)


def _hit_cylinder(o: F32, d: F32, r: float, h: float) -> F32:
    # side: (ox + t dx)^2 + (oy + t dy)^2 = r^2 with |z| <= h
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2.0 * (o[0] * d[:, 0] + o[1] * d[:, 1])
    c = o[0] ** 2 + o[1] ** 2 - r * r
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    best = np.full(len(d), np.inf, np.float32)
    for t in ((-b - sq) / (2 * a), (-b + sq) / (2 * a)):
        z = o[2] + t * d[:, 2]
        ok = (disc >= 0) & (t > _EPS) & (np.abs(z) <= h) & (a > 1e-12)
        best = np.where(ok & (t < best), t, best)
    for zc in (-h, h):  # caps
        t = (zc - o[2]) / d[:, 2]
        x = o[0] + t * d[:, 0]
        y = o[1] + t * d[:, 1]
        ok = (t > _EPS) & (x * x + y * y <= r * r)
        best = np.where(ok & (t < best), t, best)
    return best.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Scene and cameras
# ------------------------------------------------------------------------------------------------
@dataclass
class Scene:
    """Primitives, light and background of one scene.

    Attributes
    ----------
    primitives : list of Primitive
    light_dir : (3,) unit vector towards the light (world frame); light_rgb : (3,) its colour.
    ambient : float in [0, 1], the share of ambient light.
    sky : (2, 3) float32, background colours at the top and bottom of the image.
    kind : "objects" or "room".
    extent : float, radius of the region holding the objects (for camera placement).
    """

    primitives: list[Primitive]
    light_dir: F64
    ambient: float
    sky: F32
    kind: str
    extent: float
    room_half: F64 | None = None
    light_rgb: F32 = field(default_factory=lambda: np.ones(3, np.float32))  # colour of the light


@dataclass
class Camera:
    """A pinhole camera. ``c2w`` (4, 4) float64 cam-to-world, OpenCV axes; ``K`` (3, 3) in pixels."""

    c2w: F64
    K: F64
    width: int
    height: int


@dataclass
class SceneSample:
    """Rendered views of one scene with their ground truth.

    Attributes
    ----------
    images : (V, H, W, 3) uint8 RGB.
    pts3d : (V, H, W, 3) float32 world points (0 where invalid).
    valid : (V, H, W) bool, False on the background.
    depth : (V, H, W) float32 z-depth in the camera frame (0 where invalid).
    cam_to_world : (V, 4, 4) float64, OpenCV axes (x right, y down, z forward).
    intrinsics : (V, 3, 3) float64, principal point (W/2, H/2), pixel centres at (u + 0.5, v + 0.5).
    kind : "objects" or "room".
    """

    images: NDArray[np.uint8]
    pts3d: F32
    valid: NDArray[np.bool_]
    depth: F32
    cam_to_world: F64
    intrinsics: F64
    kind: str


def _textures(rng: np.random.Generator, n: int, scale_range: tuple[float, float]) -> list[Texture]:
    return [Texture.random(rng, scale_range) for _ in range(n)]


def _place_objects(
    rng: np.random.Generator, n: int, region: float, keep_out: list[tuple[F64, float]]
) -> list[Primitive]:
    """``n`` objects resting on z = 0 inside |x|, |y| < region, not overlapping (footprint circles)."""
    prims: list[Primitive] = []
    taken = list(keep_out)
    for _ in range(n):
        for _attempt in range(30):
            kind = str(rng.choice(["box", "box", "sphere", "cylinder", "cylinder_lying", "box_tilted"]))
            s = rng.uniform(0.15, 0.55, 3)
            yaw = rng.uniform(0, 2 * math.pi) if rng.random() < 0.7 else 0.0  # some axis-aligned
            if kind == "sphere":
                size = np.full(3, s[0])
                R = _rot_z(yaw) @ _rot_x(rng.uniform(0, math.pi))
                foot, z = s[0], s[0]
            elif kind == "cylinder":
                size = np.array([s[0], s[0], s[1] * 1.3])
                R = _rot_z(yaw)
                foot, z = s[0], size[2]
            elif kind == "cylinder_lying":
                size = np.array([s[0] * 0.7, s[0] * 0.7, s[1] * 1.2])
                R = _rot_z(yaw) @ _rot_x(math.pi / 2)
                foot, z = float(np.hypot(size[0], size[2])), size[0]
                kind = "cylinder"
            elif kind == "box_tilted":  # a box leaning on an edge: rotated about a horizontal axis
                size = s * np.array([1.0, 1.0, 1.2])
                tilt = rng.uniform(0.2, 0.6)
                R = _rot_z(yaw) @ _rot_x(tilt)
                corners = (
                    np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * size
                )
                wc = corners @ R.T
                foot, z = float(np.linalg.norm(size[:2])) + 0.1, -float(wc[:, 2].min())
                kind = "box"
            else:
                size = s * np.array([1.0, 1.0, rng.uniform(0.6, 2.2)])
                R = _rot_z(yaw)
                foot, z = float(np.linalg.norm(size[:2])), size[2]
            xy = rng.uniform(-region, region, 2)
            if all(np.linalg.norm(xy - c) > foot + r + 0.05 for c, r in taken):
                taken.append((xy, foot))
                center = np.array([xy[0], xy[1], z])
                if rng.random() < 0.15 and kind != "sphere":  # now and then stacked a bit higher
                    center[2] += rng.uniform(0.0, 0.3)
                tex = _textures(rng, 1, (0.05, 0.35))
                prims.append(Primitive(kind, center, R, size.astype(np.float64), tex))
                break
    return prims


def make_scene(rng: np.random.Generator, kind: str | None = None) -> Scene:
    """A random scene: ``kind`` "objects" (objects on a finite textured ground) or "room" (objects in a
    closed textured room); None picks one (objects 75 %)."""
    if kind is None:
        kind = "objects" if rng.random() < 0.75 else "room"
    light = rng.normal(size=3)
    light[2] = abs(light[2]) + 0.5  # from above
    light /= np.linalg.norm(light)
    sky = _random_palette(rng, 2)
    ambient = float(rng.uniform(0.25, 0.55))
    if kind == "objects":
        extent = float(rng.uniform(0.6, 1.4))
        prims = _place_objects(rng, int(rng.integers(2, 7)), extent, [])
        half = float(rng.uniform(3.0, 6.0))
        gtex = Texture.random(rng, (0.15, 0.6))
        if gtex.kind == "stripes":  # stripes across the ground, not along its normal
            gtex.direction[2] = 0.0
            gtex.direction /= max(float(np.linalg.norm(gtex.direction)), 1e-6)
        ground = Primitive("ground", np.zeros(3), np.eye(3), np.array([half, half, 0.0]), [gtex])
        return Scene([ground, *prims], light, ambient, sky, "objects", extent)
    if kind == "room":
        hx, hy = rng.uniform(2.0, 4.0, 2)
        hz = float(rng.uniform(1.2, 1.7))
        room = Primitive(
            "room",
            np.array([0.0, 0.0, hz]),
            _rot_z(0.0),
            np.array([hx, hy, hz]),
            _textures(rng, 3, (0.15, 0.8)),
        )
        # objects along the walls and a few in the room; the middle stays free for the cameras
        keep = [(np.zeros(2), 0.9)]
        prims = _place_objects(rng, int(rng.integers(4, 11)), min(hx, hy) - 0.4, keep)
        return Scene([room, *prims], light, ambient, sky, "room", float(min(hx, hy)), np.array([hx, hy, hz]))
    raise InputError(f"unknown scene kind {kind!r}")


def look_at(position: F64, target: F64, roll: float = 0.0) -> F64:
    """Cam-to-world (4, 4) of an OpenCV camera at ``position`` looking at ``target``, world z up."""
    f = np.asarray(target, np.float64) - np.asarray(position, np.float64)
    f /= np.linalg.norm(f)
    up = np.array([0.0, 0.0, 1.0])
    r = np.cross(f, up)
    if np.linalg.norm(r) < 1e-6:  # looking straight up/down
        r = np.cross(f, np.array([0.0, 1.0, 0.0]))
    r /= np.linalg.norm(r)
    d = np.cross(f, r)  # y down
    if roll:
        c, s = math.cos(roll), math.sin(roll)
        r, d = c * r + s * d, -s * r + c * d
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = r, d, f, position
    return T


def _focal(rng: np.random.Generator, width: int, hfov_deg: tuple[float, float]) -> float:
    hfov = math.radians(rng.uniform(*hfov_deg))
    return width / 2.0 / math.tan(hfov / 2.0)


def make_cameras(
    rng: np.random.Generator,
    scene: Scene,
    num_views: int,
    width: int,
    height: int,
    hfov_deg: tuple[float, float] = (45.0, 75.0),
    max_spread_deg: float = 360.0,
    path: str = "orbit",
) -> list[Camera]:
    """Cameras for ``scene``: an orbit around the objects, or standing in the room looking outward.

    One focal for all views (one camera moved around), horizontal field of view uniform in
    ``hfov_deg``. The azimuth spread of the views is uniform in [30, ``max_spread_deg``] degrees; the
    views are spread over it in a random order. ``path`` "orbit" (training) or, for the "unseen"
    evaluation look, "spiral" (the elevation climbs from 5 to 55 degrees along the arc) or "handheld"
    (roll up to +-12 degrees, larger height, distance and aim jitter).
    """
    if path not in ("orbit", "spiral", "handheld"):
        raise InputError(f"camera path must be orbit, spiral or handheld, not {path!r}")
    roll_sd = 6.0 if path == "handheld" else 2.0
    shake = 2.0 if path == "handheld" else 1.0
    f = _focal(rng, width, hfov_deg)
    K = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    spread = math.radians(rng.uniform(30.0, max_spread_deg))
    start = rng.uniform(0, 2 * math.pi)
    # evenly spaced along the arc with jitter, then shuffled (the model sees an unordered set)
    base = (
        np.linspace(0.0, 1.0, num_views, endpoint=spread > math.radians(359.0))
        if num_views > 1
        else np.zeros(1)
    )
    if spread > math.radians(359.0):
        base = np.arange(num_views) / num_views
    jitter = rng.uniform(-0.35, 0.35, num_views) / max(num_views, 2)
    az = start + spread * np.clip(base + jitter, 0.0, 1.0)
    rng.shuffle(az)
    cams = []
    if scene.kind == "objects":
        hfov = 2 * math.atan(width / 2 / f)
        # far enough that the object region (radius ~extent + 0.5) fills a good part of the view
        base_radius = (scene.extent + 0.8) / math.tan(hfov / 2) * rng.uniform(1.0, 1.6)
        elev0 = rng.uniform(10.0, 45.0)
        order = np.argsort(np.argsort(az))  # rank of each view along the arc (for the spiral)
        for a, rank in zip(az, order, strict=True):
            radius = base_radius * rng.uniform(1 - 0.15 * shake, 1 + 0.15 * shake)
            if path == "spiral":
                el = math.radians(5.0 + 50.0 * rank / max(num_views - 1, 1) + rng.uniform(-3.0, 3.0))
            else:
                el = math.radians(np.clip(elev0 + rng.uniform(-10.0, 10.0) * shake, 5.0, 60.0))
            pos = np.array(
                [
                    radius * math.cos(el) * math.cos(a),
                    radius * math.cos(el) * math.sin(a),
                    radius * math.sin(el),
                ]
            )
            target = np.array([0.0, 0.0, rng.uniform(0.1, 0.4)]) + rng.normal(0.0, 0.2 * shake, 3) * [
                1,
                1,
                0.5,
            ]
            roll = float(np.clip(rng.normal(0.0, roll_sd), -12.0, 12.0))
            cams.append(Camera(look_at(pos, target, math.radians(roll)), K, width, height))
        return cams
    assert scene.room_half is not None
    centre = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(1.1, 1.7)])
    pitch0 = rng.uniform(-35.0, -5.0)
    for a in az:
        pos = centre + np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-0.1, 0.1)])
        pitch = math.radians(pitch0 + rng.uniform(-8.0, 8.0) * shake)
        target = pos + np.array(
            [math.cos(a) * math.cos(pitch), math.sin(a) * math.cos(pitch), math.sin(pitch)]
        )
        roll = float(np.clip(rng.normal(0.0, roll_sd), -12.0, 12.0))
        cams.append(Camera(look_at(pos, target, math.radians(roll)), K, width, height))
    return cams


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------
def render_view(scene: Scene, cam: Camera) -> tuple[NDArray[np.uint8], F32, NDArray[np.bool_], F32]:
    """Ray-cast one view.

    Returns
    -------
    image (H, W, 3) uint8, world points (H, W, 3) float32 (0 where invalid), valid (H, W) bool and
    z-depth (H, W) float32 (0 where invalid).
    """
    W, H = cam.width, cam.height
    K = cam.K
    u, v = np.meshgrid(np.arange(W, dtype=np.float64) + 0.5, np.arange(H, dtype=np.float64) + 0.5)
    # camera-frame directions with z = 1, so the ray parameter t is the z-depth
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1).reshape(-1, 3)
    R, o = cam.c2w[:3, :3], cam.c2w[:3, 3]
    d_world = d_cam @ R.T
    n_rays = len(d_world)
    best_t = np.full(n_rays, np.inf, np.float32)
    best_i = np.full(n_rays, -1, np.int64)
    for i, prim in enumerate(scene.primitives):
        o_l = prim.to_local(o).astype(np.float32)
        d_l = (d_world @ prim.R).astype(np.float32)
        t = prim.hit(o_l, d_l)
        closer = t < best_t
        best_t = np.where(closer, t, best_t)
        best_i = np.where(closer, i, best_i)
    valid = np.isfinite(best_t)
    pts = np.zeros((n_rays, 3), np.float32)
    rgb = np.zeros((n_rays, 3), np.float32)
    pts[valid] = (o + best_t[valid, None].astype(np.float64) * d_world[valid]).astype(np.float32)
    for i, prim in enumerate(scene.primitives):
        sel = np.flatnonzero(best_i == i)
        if len(sel) == 0:
            continue
        p_l = prim.to_local(pts[sel].astype(np.float64)).astype(np.float32)
        n_l, albedo = prim.normal_and_texture(p_l)
        n_w = n_l @ prim.R.T.astype(np.float32)
        # face the normal towards the camera (thin surfaces seen from behind)
        facing = np.einsum("ij,ij->i", n_w, d_world[sel].astype(np.float32)) > 0
        n_w[facing] *= -1
        lambert = np.clip(n_w @ scene.light_dir.astype(np.float32), 0.0, 1.0)
        shade = scene.ambient + (1.0 - scene.ambient) * lambert[:, None] * scene.light_rgb
        rgb[sel] = albedo * shade
    # background: vertical gradient between the two sky colours
    rows = (np.arange(n_rays) // W) / max(H - 1, 1)
    sky = (1 - rows)[:, None] * scene.sky[0] + rows[:, None] * scene.sky[1]
    rgb = np.where(valid[:, None], rgb, sky)
    image = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).reshape(H, W, 3)
    depth = np.where(valid, best_t, 0.0).astype(np.float32).reshape(H, W)
    return image, pts.reshape(H, W, 3), valid.reshape(H, W), depth


LOOKS = ("train", "unseen")


def restyle_unseen(scene: Scene, rng: np.random.Generator) -> Scene:
    """The same geometry in a look that training never sees: dot, ring and grid textures with pastel or
    duotone palettes, a coloured light, and a flat sky (evaluation of generalisation)."""
    for prim in scene.primitives:
        lo, hi = (0.15, 0.8) if prim.kind in ("ground", "room") else (0.05, 0.35)
        prim.textures = [Texture.random_unseen(rng, (lo, hi)) for _ in prim.textures]
    hue = rng.random()
    scene.light_rgb = _hsv_to_rgb(np.array([hue]), np.array([rng.uniform(0.15, 0.45)]), np.ones(1))[0].astype(
        np.float32
    )
    flat = _hsv_to_rgb(
        np.array([rng.random()]), np.array([rng.uniform(0.0, 0.6)]), np.array([rng.uniform(0.3, 1.0)])
    )
    scene.sky = np.repeat(flat.astype(np.float32), 2, axis=0)
    return scene


def _image_size(aspect: str, long_side: int) -> tuple[int, int]:
    if aspect not in ASPECTS:
        raise InputError(f"aspect must be one of {', '.join(ASPECTS)}, not {aspect!r}")
    aw, ah = ASPECTS[aspect]
    s = long_side / max(aw, ah)
    return round(aw * s), round(ah * s)


def render_sample(
    seed: int | np.random.Generator,
    num_views: int = 8,
    *,
    aspect: str | None = "square",
    long_side: int = 224,
    kind: str | None = None,
    hfov_deg: tuple[float, float] = (45.0, 75.0),
    max_spread_deg: float = 360.0,
    min_valid: float = 0.2,
    look: str = "train",
) -> SceneSample:
    """Make a random scene and render ``num_views`` views of it.

    Parameters
    ----------
    seed : int or Generator; the same seed gives the same sample.
    num_views : views to render.
    aspect : "landscape" (4:3), "square", "portrait" (3:4), or None for a random one.
    long_side : long image side in pixels.
    kind : "objects", "room" or None (random).
    hfov_deg : range of the horizontal field of view.
    max_spread_deg : largest azimuth spread of the cameras.
    min_valid : views whose valid fraction is below this are re-drawn (the camera saw mostly sky).
    look : "train" (the look of the training data) or "unseen" (textures, palettes, light, sky and
        camera paths that training never uses; see :func:`restyle_unseen`), for evaluation.

    Returns
    -------
    SceneSample
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if aspect is None:
        aspect = str(rng.choice(list(ASPECTS)))
    W, H = _image_size(aspect, long_side)
    if look not in LOOKS:
        raise InputError(f"look must be one of {', '.join(LOOKS)}, not {look!r}")
    for _attempt in range(10):
        scene = make_scene(rng, kind)
        path = "orbit"
        if look == "unseen":
            scene = restyle_unseen(scene, rng)
            path = "handheld" if scene.kind == "room" or rng.random() < 0.5 else "spiral"
        cams = make_cameras(rng, scene, num_views, W, H, hfov_deg, max_spread_deg, path)
        views = [render_view(scene, c) for c in cams]
        if min(v[2].mean() for v in views) >= min_valid:
            break
    images, pts, valid, depth = (np.stack(x) for x in zip(*views, strict=True))
    return SceneSample(
        images=images,
        pts3d=pts,
        valid=valid,
        depth=depth,
        cam_to_world=np.stack([c.c2w for c in cams]),
        intrinsics=np.stack([c.K for c in cams]),
        kind=scene.kind,
    )


# ------------------------------------------------------------------------------------------------
# Scene folders on disk (sample scenes, evaluation sets)
# ------------------------------------------------------------------------------------------------
GT_NAME = "gt.npz"
CAMERAS_NAME = "cameras.json"


def save_scene_folder(
    sample: SceneSample,
    folder: str | Path,
    *,
    with_depth: bool = True,
    image_format: str = "png",
    quality: int = 95,
) -> Path:
    """Write a scene as ``000.png`` (or ``000.jpg`` with ``image_format="jpg"``, JPEG ``quality``) ...
    plus its ground truth.

    ``gt.npz`` holds ``cam_to_world`` (V, 4, 4) float64 (OpenCV axes, world z up), ``intrinsics``
    (V, 3, 3) in pixels of the written images, and (``with_depth``) ``depth`` (V, H, W) float16 z-depth,
    0 = background. ``cameras.json`` holds the same poses and intrinsics as plain JSON.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(sample.images):
        if image_format not in ("png", "jpg"):
            raise InputError(f"image_format must be png or jpg, not {image_format!r}")
        name = f"{i:03d}.{image_format}"
        if image_format == "png":
            Image.fromarray(img).save(folder / name, optimize=True)
        else:
            Image.fromarray(img).save(folder / name, quality=quality, subsampling=0)
        names.append(name)
    arrays = {"cam_to_world": sample.cam_to_world, "intrinsics": sample.intrinsics}
    if with_depth:
        arrays["depth"] = sample.depth.astype(np.float16)
    # numpy's stubs let **kwds also fill the allow_pickle: bool keyword; these keys are array names
    np.savez_compressed(folder / GT_NAME, **arrays)  # type: ignore[arg-type]
    doc = {
        "convention": "cam_to_world, OpenCV camera axes (x right, y down, z forward), world z up",
        "kind": sample.kind,
        "views": [
            {"image": n, "cam_to_world": c.tolist(), "intrinsics": k.tolist()}
            for n, c, k in zip(names, sample.cam_to_world, sample.intrinsics, strict=True)
        ],
    }
    (folder / CAMERAS_NAME).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return folder


def load_scene_folder(folder: str | Path) -> tuple[list[Path], F64, F64]:
    """(image paths sorted by name, cam_to_world (V, 4, 4), intrinsics (V, 3, 3)) of a scene folder.

    Reads ``gt.npz`` if present, else ``cameras.json``.
    """
    folder = Path(folder)
    gt = folder / GT_NAME
    if gt.is_file():
        with np.load(gt) as z:
            c2w, K = z["cam_to_world"].astype(np.float64), z["intrinsics"].astype(np.float64)
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    elif (folder / CAMERAS_NAME).is_file():
        doc = json.loads((folder / CAMERAS_NAME).read_text(encoding="utf-8"))
        views = doc["views"]
        images = [folder / v["image"] for v in views]
        c2w = np.array([v["cam_to_world"] for v in views], np.float64)
        K = np.array([v["intrinsics"] for v in views], np.float64)
    else:
        raise InputError(f"{folder} has no {GT_NAME} or {CAMERAS_NAME} (not a scene folder)")
    if len(images) != len(c2w):
        raise InputError(f"{folder}: {len(images)} images but {len(c2w)} poses")
    return images, c2w, K
