"""Sky / background masking heuristic (fast3r_core/sky.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fast3r_core.sky import sky_mask, sky_pixel_masks, sky_point_mask
from tests.core.recon_factory import make_synthetic_reconstruction


def _landscape(h: int = 96, w: int = 128, sky_rows: int = 40, seed: int = 0) -> np.ndarray:
    """A smooth blue-to-pale sky gradient above a textured brown/green ground."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), dtype=np.uint8)
    t = np.linspace(0.0, 1.0, sky_rows)[:, None]
    img[:sky_rows, :, 0] = (70 + 100 * t).astype(np.uint8)
    img[:sky_rows, :, 1] = (130 + 80 * t).astype(np.uint8)
    img[:sky_rows, :, 2] = 235
    ground = np.array([110, 90, 50]) + rng.integers(-45, 45, (h - sky_rows, w, 3))
    img[sky_rows:] = np.clip(ground, 0, 255).astype(np.uint8)
    return img


def test_blue_sky_above_textured_ground():
    img = _landscape()
    m = sky_mask(img)
    assert m.shape == img.shape[:2] and m.dtype == bool
    assert m[:38].mean() > 0.95  # almost all of the sky (the boundary row may go)
    assert m[42:].mean() == 0.0


def test_overcast_sky_is_grey_and_bright():
    img = _landscape()
    img[:40] = 225  # flat white-grey overcast sky
    m = sky_mask(img)
    assert m[:38].mean() > 0.95 and m[42:].mean() == 0.0


def test_blue_object_not_touching_the_top_is_not_sky():
    img = _landscape()
    img[60:90, 20:70] = (60, 120, 240)  # a smooth blue car in the street
    m = sky_mask(img)
    assert not m[60:90, 20:70].any()
    assert m[:38].mean() > 0.95


def test_textured_or_dark_top_is_not_sky():
    rng = np.random.default_rng(1)
    leaves = np.clip(np.array([40, 120, 40]) + rng.integers(-60, 60, (96, 128, 3)), 0, 255).astype(np.uint8)
    assert not sky_mask(leaves).any()
    night = np.full((96, 128, 3), (10, 10, 40), dtype=np.uint8)
    assert not sky_mask(night).any()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        sky_mask(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        sky_mask(np.zeros((4, 4), dtype=np.uint8))
    assert sky_mask(np.zeros((0, 5, 3), dtype=np.uint8)).shape == (0, 5)


def test_point_mask_is_aligned_with_the_confidence_ordered_points():
    base = make_synthetic_reconstruction(3)
    colors = []
    for v, c in enumerate(base.colors):
        h, w = c.shape[:2]
        colors.append(_landscape(h, w, sky_rows=[h // 2, h // 3, 0][v], seed=v))
    rec = dataclasses.replace(base, colors=tuple(colors))
    pixel_masks = sky_pixel_masks(rec)
    assert not pixel_masks[2].any()  # the third view has no sky
    for source in ("global", "local"):
        ps = rec.points(source)
        mask = sky_point_mask(rec, source)
        assert mask.shape == (len(ps),) and mask.dtype == bool
        expected = np.array([pixel_masks[v][r, c] for v, (c, r) in zip(ps.view, ps.pixel, strict=True)])
        np.testing.assert_array_equal(mask, expected)
        assert 0 < mask.sum() < len(ps)
        assert sky_point_mask(rec, source) is mask  # cached
        assert not mask.flags.writeable
