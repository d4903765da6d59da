"""Sky / background masking: a colour + position heuristic per image (no model, no Qt, no torch).

A pixel is a *sky candidate* when it is bright and either blue (the hue of a clear sky) or nearly grey
(an overcast sky, a white studio background) and when its neighbourhood is smooth (sky has little
texture). The sky is then the set of candidate regions that touch the top border of the image: a blue
car in the middle of a street is not sky, the bright band above a skyline is. Small regions are
dropped.

:func:`sky_mask` works on one image; :func:`sky_point_mask` maps the per-view masks onto the
confidence-ordered points of a :class:`~fast3r_core.result.Reconstruction` (so that a viewer or an
exporter can drop them) and caches the result per reconstruction and point source.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from fast3r_core.point_set import PointSource
from fast3r_core.result import Reconstruction

__all__ = ["SkyParams", "sky_mask", "sky_pixel_masks", "sky_point_mask", "without_sky"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkyParams:
    """Thresholds of the heuristic (colours in 0..1).

    Attributes
    ----------
    min_value : float
        Minimum brightness (HSV value) of a blue sky pixel.
    min_value_grey : float
        Minimum brightness of a grey/white sky pixel (overcast sky, white background).
    blue_hue : (float, float)
        Hue range in degrees that counts as sky blue.
    max_grey_saturation : float
        A pixel with a lower saturation is "grey" whatever its hue.
    max_gradient : float
        Largest local colour gradient (mean absolute difference to the neighbours, 0..1) of sky.
    min_region_fraction : float
        Regions smaller than this fraction of the image are ignored.
    top_rows_fraction : float
        A region is sky only if it reaches the top ``top_rows_fraction`` of the image rows.
    """

    min_value: float = 0.45
    min_value_grey: float = 0.72
    blue_hue: tuple[float, float] = (180.0, 250.0)
    max_grey_saturation: float = 0.16
    max_gradient: float = 0.035
    min_region_fraction: float = 0.01
    top_rows_fraction: float = 0.02


_DEFAULT = SkyParams()


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees 0..360), saturation and value (0..1) of an (H, W, 3) uint8 RGB image."""
    f = rgb.astype(np.float32) / 255.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    vmax = f.max(axis=-1)
    vmin = f.min(axis=-1)
    delta = vmax - vmin
    sat = np.where(vmax > 0, delta / np.maximum(vmax, 1e-6), 0.0)
    safe = np.maximum(delta, 1e-6)
    hue = np.where(
        vmax == r,
        ((g - b) / safe) % 6.0,
        np.where(vmax == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    hue = np.where(delta > 0, hue * 60.0, 0.0)
    return hue.astype(np.float32), sat.astype(np.float32), vmax


def _gradient(rgb: np.ndarray) -> np.ndarray:
    """(H, W) mean absolute colour difference to the right and lower neighbours, 0..1, 3x3 max-pooled."""
    f = rgb.astype(np.float32) / 255.0
    g = np.zeros(f.shape[:2], dtype=np.float32)
    dx = np.abs(np.diff(f, axis=1)).mean(axis=-1)
    dy = np.abs(np.diff(f, axis=0)).mean(axis=-1)
    g[:, :-1] = np.maximum(g[:, :-1], dx)
    g[:, 1:] = np.maximum(g[:, 1:], dx)
    g[:-1, :] = np.maximum(g[:-1, :], dy)
    g[1:, :] = np.maximum(g[1:, :], dy)
    from scipy.ndimage import maximum_filter

    return maximum_filter(g, size=3, mode="nearest")


def sky_mask(rgb: np.ndarray, params: SkyParams | None = None) -> np.ndarray:
    """Sky / background pixels of one image.

    Parameters
    ----------
    rgb : np.ndarray, (H, W, 3) uint8
        The image (the model-resolution colours of a view, or any photo), rows top to bottom.
    params : SkyParams, optional
        Thresholds of the heuristic.

    Returns
    -------
    np.ndarray, (H, W) bool
        True where the pixel is sky: a bright, smooth, blue or grey region connected to the top rows.
    """
    from scipy.ndimage import binary_opening, label

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3), got {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8, got {rgb.dtype}")
    p = params or _DEFAULT
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        return np.zeros((h, w), dtype=bool)
    hue, sat, val = _hsv(rgb)
    blue = (hue >= p.blue_hue[0]) & (hue <= p.blue_hue[1]) & (val >= p.min_value)
    grey = (sat <= p.max_grey_saturation) & (val >= p.min_value_grey)
    candidate = (blue | grey) & (_gradient(rgb) <= p.max_gradient)
    candidate = binary_opening(candidate, structure=np.ones((3, 3), dtype=bool))
    labels, n = label(candidate)
    if n == 0:
        return np.zeros((h, w), dtype=bool)
    top_rows = max(1, round(h * p.top_rows_fraction))
    touching = np.unique(labels[:top_rows])
    touching = touching[touching > 0]
    if touching.size == 0:
        return np.zeros((h, w), dtype=bool)
    sizes = np.bincount(labels.reshape(-1), minlength=n + 1)
    keep = np.zeros(n + 1, dtype=bool)
    keep[touching] = sizes[touching] >= p.min_region_fraction * h * w
    return keep[labels]


# -- per reconstruction ------------------------------------------------------------------------------
_lock = threading.Lock()
_pixel_cache: weakref.WeakKeyDictionary[Reconstruction, tuple[np.ndarray, ...]] = weakref.WeakKeyDictionary()
_point_cache: weakref.WeakKeyDictionary[Reconstruction, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


def sky_pixel_masks(rec: Reconstruction) -> tuple[np.ndarray, ...]:
    """Per-view sky masks of a reconstruction's colours (computed once per reconstruction).

    Returns
    -------
    tuple of np.ndarray, each (H_v, W_v) bool, read-only
        ``sky_mask(rec.colors[v])`` for every view (model pixels).
    """
    with _lock:
        cached = _pixel_cache.get(rec)
    if cached is not None:
        return cached
    masks = []
    for c in rec.colors:
        m = sky_mask(np.asarray(c))
        m.setflags(write=False)
        masks.append(m)
    out = tuple(masks)
    with _lock:
        _pixel_cache[rec] = out
    log.debug("sky masks: %d of %d pixels", sum(int(m.sum()) for m in out), rec.n_pixels)
    return out


def sky_point_mask(rec: Reconstruction, source: PointSource = "global") -> np.ndarray:
    """Which of the confidence-ordered points of ``rec.points(source)`` are sky.

    Parameters
    ----------
    rec : Reconstruction
        The result.
    source : {"global", "local"}
        Which point set the mask is aligned with.

    Returns
    -------
    np.ndarray, (N,) bool, read-only
        ``mask[i]`` is True when point ``i`` of ``rec.points(source)`` (same order) comes from a sky
        pixel of its view. Cached per reconstruction and source.
    """
    with _lock:
        hit = _point_cache.get(rec, {}).get(source)
    if hit is not None:
        return hit
    ps = rec.points(source)
    pixel_masks = sky_pixel_masks(rec)
    sizes = np.array([m.size for m in pixel_masks], dtype=np.int64)
    widths = np.array([m.shape[1] for m in pixel_masks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate([m.reshape(-1) for m in pixel_masks])
    view = ps.view.astype(np.int64)
    index = offsets[view] + ps.pixel[:, 1].astype(np.int64) * widths[view] + ps.pixel[:, 0]
    mask = flat[index]
    mask.setflags(write=False)
    with _lock:
        _point_cache.setdefault(rec, {})[source] = mask
    return mask


def without_sky(rec: Reconstruction) -> Reconstruction:
    """A copy of ``rec`` whose sky pixels have NaN confidence, so that every exporter leaves them out.

    ``conf`` and ``conf_local`` (each (H_v, W_v) float32 per view) get NaN where
    :func:`sky_pixel_masks` is True, and the sky is one more source of ``keep_masks`` (ANDed with the
    user's masks, as :func:`fast3r_core.masks.combine_masks` does), so the statistics leave it out too; the
    points, colours and cameras are shared with ``rec``.
    """
    masks = sky_pixel_masks(rec)
    keep = tuple(
        ~m if rec.keep_masks is None else rec.keep_masks[v] & ~m  # combine_masks(user, sky), never None
        for v, m in enumerate(masks)
    )
    conf = tuple(
        np.where(m, np.float32(np.nan), c).astype(np.float32) for c, m in zip(rec.conf, masks, strict=True)
    )
    conf_local = tuple(
        np.where(m, np.float32(np.nan), c).astype(np.float32)
        for c, m in zip(rec.conf_local, masks, strict=True)
    )
    return dataclasses.replace(rec, conf=conf, conf_local=conf_local, keep_masks=keep)
