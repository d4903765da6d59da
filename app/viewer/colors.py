"""Colours of the viewport: one hue per view, the confidence colormap, packed vertex attributes.

Pure numpy (VisPy only for the viridis table), no OpenGL: tested without a GL context.

The point-cloud shader receives two float attributes per point besides its position, so that switching
the colour mode or highlighting a view changes uniforms only:

* ``a_rgb`` = ``r * 65536 + g * 256 + b`` (exact in float32: 24 bits), unpacked in the shader.
* ``a_aux`` = ``view + AUX_FRACTION * c`` with ``c`` in [0, 1] the normalised confidence: the integer
  part is the view index, the fractional part the colormap coordinate.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

from fast3r_core.point_set import PointSet

__all__ = [
    "AUX_FRACTION",
    "CONF_NORMS",
    "colormap_lut",
    "conf_norm_values",
    "pack_aux",
    "pack_rgb",
    "parse_color",
    "view_palette",
]

AUX_FRACTION = 0.99
"""Scale of the normalised confidence in ``a_aux`` (keeps the fractional part below 1)."""

CONF_NORMS = ("global", "view")
"""How confidence is normalised for the colormap (see :func:`conf_norm_values`)."""


def view_palette(n_views: int, *, saturation: float = 0.72, value: float = 0.98) -> np.ndarray:
    """One distinct hue per view, evenly spaced around the colour wheel in view order.

    Adjacent views get neighbouring hues, so a video's frames read as a gradient along the path;
    for a handful of views the hues are as far apart as they can be.

    Parameters
    ----------
    n_views : int
        Number of views V (>= 0).
    saturation, value : float
        HSV saturation and value in 0..1.

    Returns
    -------
    np.ndarray, (V, 3) float32
        RGB in 0..1; view 0 is orange-red (hue 0.02), the hue then turns through yellow, green, blue.
    """
    if n_views < 0:
        raise ValueError(f"n_views must be >= 0, got {n_views}")
    # Stop before wrapping around to red again: 0.02 .. 0.85 of the wheel.
    span = 0.83 if n_views > 1 else 0.0
    hues = 0.02 + span * np.arange(n_views) / max(n_views - 1, 1)
    out = np.array([colorsys.hsv_to_rgb(h, saturation, value) for h in hues], dtype=np.float32)
    return out.reshape(n_views, 3)


@lru_cache(maxsize=8)
def colormap_lut(name: str = "viridis", n: int = 256) -> np.ndarray:
    """A colormap sampled at ``n`` evenly spaced values of 0..1.

    Returns
    -------
    np.ndarray, (n, 4) float32
        RGBA in 0..1 (read-only: cached).
    """
    from vispy.color import get_colormap

    lut = np.asarray(get_colormap(name).map(np.linspace(0.0, 1.0, n)), dtype=np.float32).reshape(n, 4)
    lut.setflags(write=False)
    return lut


def parse_color(color: str | tuple[float, ...]) -> tuple[float, float, float]:
    """``"#rrggbb"`` (or a name VisPy knows, or an RGB(A) tuple in 0..1) to an RGB tuple in 0..1."""
    from vispy.color import Color

    r, g, b, _ = Color(color).rgba
    return float(r), float(g), float(b)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Pack (N, 3) uint8 colours into (N,) float32 ``r * 65536 + g * 256 + b`` (exact)."""
    if rgb.ndim != 2 or rgb.shape[1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (N, 3) uint8, got {rgb.shape} {rgb.dtype}")
    packed = rgb[:, 0].astype(np.int32) << 16
    packed |= rgb[:, 1].astype(np.int32) << 8
    packed |= rgb[:, 2]
    return packed.astype(np.float32)


def conf_norm_values(points: PointSet, n_views: int, mode: str = "global") -> np.ndarray:
    """Normalised confidence in [0, 1] of each point, for the colormap.

    Parameters
    ----------
    points : PointSet
        Confidence-ordered points (highest first).
    n_views : int
        Number of views of the reconstruction.
    mode : {"global", "view"}
        ``"global"``: the point's rank over all points, ``1 - i / (N - 1)`` for the ``i``-th most
        confident. The colour then tells which fraction the "keep top p %" slider keeps: with p %
        kept, the colours shown span ``1 - p/100 .. 1``, and the colormap is used evenly whatever the
        distribution of confidences. ``"view"``: min-max of ``log(conf)`` within each view, as the
        published demo normalises per view (log because confidence is ``1 + exp(x)``, heavy-tailed).

    Returns
    -------
    np.ndarray, (N,) float32
    """
    n = len(points)
    if mode == "global":
        if n <= 1:
            return np.ones(n, dtype=np.float32)
        return np.linspace(1.0, 0.0, n, dtype=np.float32)
    if mode != "view":
        raise ValueError(f"conf norm must be one of {CONF_NORMS}, got {mode!r}")
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    logc = np.log(np.clip(points.conf, np.float32(1e-6), np.float32(1e38)))  # +inf conf exists
    view = points.view.astype(np.intp)
    lo = np.full(n_views, np.inf, dtype=np.float32)
    hi = np.full(n_views, -np.inf, dtype=np.float32)
    _segment_minmax(logc, view, lo, hi)
    span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
    out = (logc - lo[view]) / span[view]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _segment_minmax(values: np.ndarray, view: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Per-view min and max of ``values`` in place (sort by view once; faster than ufunc.at)."""
    order = np.argsort(view, kind="stable")
    sorted_view = view[order]
    starts = np.flatnonzero(np.r_[True, sorted_view[1:] != sorted_view[:-1]])
    sorted_values = values[order]
    ids = sorted_view[starts]
    lo[ids] = np.minimum.reduceat(sorted_values, starts)
    hi[ids] = np.maximum.reduceat(sorted_values, starts)


def pack_aux(view: np.ndarray, conf01: np.ndarray) -> np.ndarray:
    """``view + AUX_FRACTION * conf01`` as (N,) float32 (see the module docstring).

    Exact enough for views < 32768: float32 keeps 24 bits, 15 for the view leave 9 for the colour.
    """
    return view.astype(np.float32) + np.float32(AUX_FRACTION) * conf01.astype(np.float32, copy=False)
