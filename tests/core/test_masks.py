"""Tests of fast3r_core.masks: finding, reading, resizing + cropping and combining masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fast3r_core.errors import MaskError
from fast3r_core.images import load_image, resize_crop_geometry
from fast3r_core.masks import combine_masks, find_mask, load_mask, load_masks


def write_photo(path: Path, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def write_mask(path: Path, keep: np.ndarray) -> Path:
    Image.fromarray(np.where(keep, 255, 0).astype(np.uint8)).save(path)
    return path


def test_find_mask_conventions(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    masks = tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    assert find_mask(masks, photos / "a.jpg") is None
    write_mask(masks / "a.png", np.ones((2, 2), bool))
    assert find_mask(masks, photos / "a.jpg") == masks / "a.png"  # Nerfstudio: STEM.png
    write_mask(masks / "a.jpg.png", np.ones((2, 2), bool))
    assert find_mask(masks, "a.jpg") == masks / "a.jpg.png"  # COLMAP: NAME.png, preferred


@pytest.mark.parametrize("size", [(210, 150), (150, 210), (160, 160)])
def test_mask_follows_the_resize_and_crop(tmp_path: Path, size: tuple[int, int]) -> None:
    w, h = size
    photo = write_photo(tmp_path / "p.jpg", size)
    view = load_image(photo, 64)
    keep = np.zeros((h, w), bool)
    x0, y0 = w // 3, h // 2
    keep[y0:, x0:] = True  # keep the lower right part
    mask = load_mask(write_mask(tmp_path / "p.jpg.png", keep), view)
    assert mask.shape == view.true_shape and mask.dtype == np.bool_
    geom = resize_crop_geometry(w, h, 64)
    left, top = geom.crop_box[:2]
    (rw, rh) = geom.resized_size
    # model pixel centre -> original pixel (nearest): kept iff that original pixel is
    u = np.arange(mask.shape[1])
    v = np.arange(mask.shape[0])
    ou = np.floor((u + left + 0.5) * w / rw).astype(int)
    ov = np.floor((v + top + 0.5) * h / rh).astype(int)
    expected = keep[np.ix_(ov, ou)]
    np.testing.assert_array_equal(mask, expected)
    assert mask.any() and not mask.all()


def test_values_zero_ignore_anything_else_keeps(tmp_path: Path) -> None:
    geom = resize_crop_geometry(64, 48, 64)
    grey = np.zeros((48, 64), np.uint8)
    grey[:, 32:] = 1  # 1 is "keep" too
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert (
        load_mask(tmp_path / "g.png", geom)[:, 32:].all()
        and not load_mask(tmp_path / "g.png", geom)[:, :32].any()
    )
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:24, :, 2] = 7  # only blue
    Image.fromarray(rgb).save(tmp_path / "c.png")
    m = load_mask(tmp_path / "c.png", geom)
    assert m[:24].all() and not m[24:].any()
    pal = Image.fromarray((grey > 0).astype(np.uint8)).convert("P")
    pal.putpalette([255, 255, 255, 0, 0, 0])  # index 0 is white: kept; index 1 black: ignored
    pal.save(tmp_path / "p.png")
    m = load_mask(tmp_path / "p.png", geom)
    assert m[:, :32].all() and not m[:, 32:].any()
    bits = Image.fromarray(grey > 0)
    bits.save(tmp_path / "b.png")
    assert (load_mask(tmp_path / "b.png", geom) == (grey > 0)).all()


def test_wrong_size_or_unreadable_mask_is_an_error(tmp_path: Path) -> None:
    geom = resize_crop_geometry(64, 48, 64)
    write_mask(tmp_path / "small.png", np.ones((40, 64), bool))
    with pytest.raises(MaskError, match=r"small\.png.*64x40.*64x48"):
        load_mask(tmp_path / "small.png", geom)
    write_mask(tmp_path / "rot.png", np.ones((64, 48), bool))
    with pytest.raises(MaskError, match=r"rot\.png.*rotated"):
        load_mask(tmp_path / "rot.png", geom)
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(MaskError, match=r"junk\.png"):
        load_mask(tmp_path / "junk.png", geom)
    with pytest.raises(MaskError, match=r"missing\.png"):
        load_mask(tmp_path / "missing.png", geom)


def test_load_masks_folder(tmp_path: Path) -> None:
    photos = [write_photo(tmp_path / f"{n}.jpg", (64, 48)) for n in ("a", "b")]
    views = [load_image(p, 64) for p in photos]
    masks = tmp_path / "masks"
    masks.mkdir()
    write_mask(masks / "a.png", np.ones((48, 64), bool))
    out = load_masks(masks, photos, views)
    assert out[0] is not None and out[0].all() and out[1] is None
    with pytest.raises(MaskError, match=r"no mask for 1 photos \(b\.jpg\)"):
        load_masks(masks, photos, views, require_all=True)
    with pytest.raises(MaskError, match="does not exist"):
        load_masks(tmp_path / "nope", photos, views)
    write_mask(masks / "b.jpg.png", np.ones((10, 10), bool))
    with pytest.raises(MaskError, match=r"b\.jpg\.png"):
        load_masks(masks, photos, views)


def test_combine_masks() -> None:
    user = np.array([[True, True], [False, True]])
    sky = np.array([[True, False], [False, False]])
    np.testing.assert_array_equal(combine_masks(user, sky), [[False, True], [False, True]])
    np.testing.assert_array_equal(combine_masks(None, sky), ~sky)
    np.testing.assert_array_equal(combine_masks(user, None), user)
    assert combine_masks(user) is not user
    assert combine_masks(None, None) is None
    extra = np.array([[True, False], [True, True]])
    np.testing.assert_array_equal(combine_masks(user, sky, extra), [[False, False], [False, True]])
    with pytest.raises(MaskError, match="shape"):
        combine_masks(user, np.zeros((3, 3), bool))
