"""Draw the Fast3R Studio icon into ``resources/icons/`` (PNG 256/128/48/32/16 and a Windows .ico).

Usage: ``python packaging/make_icon.py [OUT_DIR]`` (default ``resources/icons``). The drawing is
deterministic (fixed seed), so re-running it rewrites identical files.

Motif: a point cloud (a blob of dots coloured from teal to amber, like the app's confidence colours) seen
by a camera frustum drawn in white from the lower left, on a dark rounded square. Each size is drawn 8x
larger and downsampled (LANCZOS) for anti-aliasing; the small sizes use fewer, larger dots so the motif
still reads at 16 px.

Files written (``fast3r-studio.png`` is the 256 px one, the name the app and the .desktop entry use)::

    fast3r-studio.png  fast3r-studio-{16,32,48,128,256}.png  fast3r-studio.ico  (16..256, Windows)
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

log = logging.getLogger("make_icon")

SIZES = (256, 128, 48, 32, 16)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
NAME = "fast3r-studio"
_SS = 8  # supersampling factor

_BG_TOP = np.array((32, 44, 66), dtype=np.float64)
_BG_BOTTOM = np.array((14, 20, 32), dtype=np.float64)
_TEAL = np.array((38, 198, 218), dtype=np.float64)
_AMBER = np.array((255, 176, 59), dtype=np.float64)
_WHITE = (240, 244, 250, 255)


def _cloud(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Points of the blob in unit icon coordinates and their colours.

    Returns
    -------
    xy : (n, 2) float64
        Centres in [0, 1] icon coordinates (x right, y down), back to front (far points first).
    rgb : (n, 3) uint8
        Colours: teal for far points, amber for near ones.
    """
    rng = np.random.default_rng(seed)
    # points on a sphere's surface (an object's shell), seen from slightly above
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    x, y, z = v[:, 0] * 0.24, v[:, 1] * 0.21, v[:, 2]
    order = np.argsort(z)  # far (z = -1) first, so near dots are drawn on top
    xy = np.stack([0.63 + x, 0.37 + y], axis=1)[order]
    t = ((z[order] + 1.0) / 2.0)[:, None]
    rgb = np.clip(_TEAL * (1 - t) + _AMBER * t, 0, 255).astype(np.uint8)
    return xy, rgb


def draw_icon(size: int) -> Image.Image:
    """The icon at ``size`` x ``size`` pixels, RGBA uint8."""
    s = size * _SS
    # vertical gradient inside a rounded square (transparent corners)
    ramp = np.linspace(0.0, 1.0, s)[:, None, None]
    bg = (_BG_TOP * (1 - ramp) + _BG_BOTTOM * ramp).astype(np.uint8)
    bg = np.broadcast_to(bg, (s, s, 3))
    img = Image.fromarray(np.ascontiguousarray(bg), "RGB").convert("RGBA")
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, s - 1, s - 1), radius=round(s * 0.2), fill=255)
    img.putalpha(mask)
    d = ImageDraw.Draw(img)

    n, r = (14, 0.06) if size <= 16 else (40, 0.04) if size <= 32 else (150, 0.024)
    xy, rgb = _cloud(n)
    for (px, py), c in zip(xy * s, rgb, strict=True):
        d.ellipse((px - r * s, py - r * s, px + r * s, py + r * s), fill=(*(int(v) for v in c), 255))

    # camera frustum: apex at the lower left, looking up-right at the cloud; its image plane is a
    # rectangle seen obliquely (a thin parallelogram across the viewing direction)
    apex = np.array((0.15, 0.85))
    view = np.array((1.0, -1.0)) / np.sqrt(2.0)
    across = np.array((1.0, 1.0)) / np.sqrt(2.0)
    centre = apex + 0.30 * view
    a, b = 0.15, 0.05
    plane = (
        np.array(
            [
                centre + a * across + b * view,
                centre + a * across - b * view,
                centre - a * across - b * view,
                centre - a * across + b * view,
            ]
        )
        * s
    )
    apex = apex * s
    w = max(round(s * (0.06 if size <= 16 else 0.04 if size <= 32 else 0.02)), 1)
    for p in plane:
        d.line((*apex, *p), fill=_WHITE, width=w)
    d.line([*map(tuple, plane), tuple(plane[0])], fill=_WHITE, width=w, joint="curve")
    ra = w * 1.2
    d.ellipse((apex[0] - ra, apex[1] - ra, apex[0] + ra, apex[1] + ra), fill=_WHITE)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def write_icons(out_dir: Path) -> list[Path]:
    """Write the PNGs and the .ico into ``out_dir`` (created); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    images = {size: draw_icon(size) for size in sorted(set(SIZES) | set(ICO_SIZES))}
    for size in SIZES:
        path = out_dir / f"{NAME}-{size}.png"
        images[size].save(path, optimize=True)
        written.append(path)
    main_png = out_dir / f"{NAME}.png"
    images[256].save(main_png, optimize=True)
    written.append(main_png)
    ico = out_dir / f"{NAME}.ico"
    # Pillow's ICO writer takes the largest image and the list of sizes; frames given in
    # append_images are used as they are instead of being resampled from the largest one.
    images[256].save(
        ico,
        format="ICO",
        sizes=[(s, s) for s in ICO_SIZES],
        append_images=[images[s] for s in ICO_SIZES if s != 256],
    )
    written.append(ico)
    return written


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:] if argv is None else argv
    repo = Path(__file__).resolve().parent.parent
    out = Path(args[0]) if args else repo / "resources" / "icons"
    for path in write_icons(out):
        log.info("%s  %d bytes", path, path.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
