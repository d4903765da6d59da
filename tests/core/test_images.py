"""Tests of fast3r_core.images: discovery, decoding, the published resize + crop, video sampling."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from fast3r_core import images as I
from fast3r_core.errors import Cancelled, InputError, NoImagesError
from fast3r_core.images import (
    LoadResult,
    ViewInput,
    decoding,
    discover_inputs,
    extract_video_frames,
    is_video,
    load_image,
    load_images,
    load_inputs,
    load_video,
    loading,
    resize_crop_geometry,
)
from fast3r_core.progress import ProgressEvent

PARITY = Path(__file__).resolve().parents[1] / "data" / "parity" / "preprocess"


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _pattern(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric (H, W, 3) uint8 test image."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = xx / max(w - 1, 1) * 255
    g = yy / max(h - 1, 1) * 255
    b = 128 + 100 * np.sin(xx / 7.0 + seed) * np.cos(yy / 5.0)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def _save(path: Path, arr: np.ndarray, **kw: object) -> Path:
    Image.fromarray(arr).save(path, **kw)
    return path


def _quadrants(w: int, h: int) -> Image.Image:
    """Four distinct flat colours, so any flip or rotation is visible."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (255, 0, 0)
    a[: h // 2, w // 2 :] = (0, 255, 0)
    a[h // 2 :, : w // 2] = (0, 0, 255)
    a[h // 2 :, w // 2 :] = (255, 255, 0)
    return Image.fromarray(a)


def _frame_level(i: int) -> int:
    # Neighbouring frames differ by >= 37 grey levels, so an off-by-one frame is detected.
    return (i * 37) % 200 + 20


def _write_video(path: Path, n_frames: int, fps: float, size: tuple[int, int] = (160, 120)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(n_frames):
        writer.write(np.full((size[1], size[0], 3), _frame_level(i), np.uint8))
    writer.release()
    return path


# ------------------------------------------------------------------------------------------------
# parity and the published geometry
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [512, 224])
def test_parity_fixture(size: int) -> None:
    expected = np.load(PARITY / "expected.npz")
    views = load_images(PARITY / "src", size=size)
    assert [v.name for v in views] == sorted(p.name for p in (PARITY / "src").iterdir())
    for v in views:
        ref = expected[f"{size}/{v.name}"]
        assert v.rgb.shape == ref.shape, v.name
        diff = np.abs(v.rgb.astype(np.int16) - ref.astype(np.int16))
        assert diff.max() <= 1, v.name
        assert diff.mean() <= 0.05, v.name
        # The model input is rgb / 255 * 2 - 1 (float32 rounding only).
        ref_t = torch.from_numpy(ref.astype(np.float32) / 255.0 * 2 - 1).permute(2, 0, 1)
        assert torch.allclose(v.image, ref_t, atol=2 / 255 + 1e-6)


MEASURED = [
    (4032, 3024, 512, (384, 512)),
    (3024, 4032, 512, (512, 384)),
    (1920, 1080, 512, (288, 512)),
    (1080, 1920, 512, (512, 288)),
    (640, 480, 512, (384, 512)),
    (512, 512, 512, (384, 512)),
    (1000, 1000, 512, (384, 512)),
    (300, 200, 512, (336, 512)),
    # at 224 every image becomes a centred 224 x 224 square
    *((w, h, 224, (224, 224)) for w, h in ((4032, 3024), (1080, 1920), (300, 200), (512, 512))),
]


@pytest.mark.parametrize(("w", "h", "size", "hw"), MEASURED)
def test_measured_examples_table(tmp_path: Path, w: int, h: int, size: int, hw: tuple[int, int]) -> None:
    path = tmp_path / f"img_{w}x{h}.jpg"
    Image.new("RGB", (w, h), (90, 140, 200)).save(path, quality=90)
    v = load_image(path, size)
    assert v.image.shape == (3, *hw)
    assert v.true_shape == hw
    assert v.original_size == (w, h)
    assert resize_crop_geometry(w, h, size).output_size == (hw[1], hw[0])


def test_geometry_values() -> None:
    g = resize_crop_geometry(300, 200, 512)
    assert (g.resized_size, g.crop_box, g.shrink) == ((512, 341), (0, 2, 512, 338), False)
    assert g.resample == Image.Resampling.BICUBIC
    g = resize_crop_geometry(512, 512, 512)
    assert (g.resized_size, g.crop_box) == ((512, 512), (0, 64, 512, 448))
    g = resize_crop_geometry(512, 512, 512, square_ok=True)
    assert g.crop_box == (0, 0, 512, 512)
    g = resize_crop_geometry(4032, 3024, 512)
    assert (g.resized_size, g.crop_box, g.shrink) == ((512, 384), (0, 0, 512, 384), True)
    assert g.resample == Image.Resampling.LANCZOS
    g = resize_crop_geometry(300, 200, 224)  # long side round(224 * 1.5) = 336
    assert (g.resized_size, g.crop_box) == ((336, 224), (56, 0, 280, 224))
    g = resize_crop_geometry(1000, 750, 224)  # round(298.67) = 299 -> 299x224 -> centre square
    assert (g.resized_size, g.crop_box) == ((299, 224), (37, 0, 261, 224))
    # Another size follows the 512 rule with that long side.
    g = resize_crop_geometry(1000, 700, 384)
    assert (g.resized_size, g.crop_box) == ((384, 269), (0, 6, 384, 262))  # 2*134 // 16 * 8 = 128
    g = resize_crop_geometry(600, 600, 384)
    assert g.output_size == (384, 288)


@pytest.mark.parametrize(("w", "h", "size"), [(1, 400, 512), (2000, 3, 512), (3, 30000, 224)])
def test_geometry_rejects_degenerate_images(w: int, h: int, size: int) -> None:
    with pytest.raises(InputError):
        resize_crop_geometry(w, h, size)


@pytest.mark.parametrize("size", [0, 8, -512, 512.0, True])
def test_invalid_size(tmp_path: Path, size: object) -> None:
    path = _save(tmp_path / "a.png", _pattern(64, 48))
    with pytest.raises(InputError):
        load_image(path, size)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        load_inputs(path, size)  # type: ignore[arg-type]


def test_view_fields_and_tensor(tmp_path: Path) -> None:
    a = _pattern(1000, 750)
    a[0:300, 0:300] = 0  # dark corner survives the crop: exactly -1 after normalisation
    a[-300:, -300:] = 255
    path = _save(tmp_path / "v.png", a)
    v = load_image(path)
    assert isinstance(v, ViewInput)
    assert v.path == path and v.name == "v.png"
    assert v.original_size == (1000, 750)
    assert v.resized_size == (512, 384)
    assert v.crop_box == (0, 0, 512, 384)
    assert v.rgb.dtype == np.uint8 and v.rgb.shape == (384, 512, 3)
    assert not v.rgb.flags.writeable
    t = v.image
    assert t.dtype == torch.float32 and t.shape == (3, 384, 512)
    assert float(t.min()) == -1.0 and float(t.max()) == 1.0
    expected = (torch.from_numpy(v.rgb.astype(np.float32)) / 255.0 - 0.5) / 0.5
    assert torch.equal(t, expected.permute(2, 0, 1))


def test_crop_box_matches_manual_resize(tmp_path: Path) -> None:
    a = _pattern(300, 200, seed=3)
    path = _save(tmp_path / "s.png", a)
    v = load_image(path)
    manual = Image.fromarray(a).resize((512, 341), Image.Resampling.BICUBIC).crop((0, 2, 512, 338))
    assert np.array_equal(v.rgb, np.asarray(manual))


# ------------------------------------------------------------------------------------------------
# orientation and pixel formats
# ------------------------------------------------------------------------------------------------

# Transposition that turns the upright picture into the stored pixels for each EXIF orientation
# (the inverse of the display transform of EXIF 2.3).
_STORE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png(tmp_path: Path, orientation: int) -> None:
    upright = _quadrants(160, 120)
    stored = upright if orientation == 1 else upright.transpose(_STORE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    stored.save(path, exif=exif)
    ref_path = tmp_path / "upright.png"
    upright.save(ref_path)
    v = load_image(path)
    ref = load_image(ref_path)
    assert v.original_size == (160, 120)
    assert np.array_equal(v.rgb, ref.rgb)
    assert tuple(v.rgb[5, 5]) == (255, 0, 0)  # top-left quadrant is red


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_large_jpeg(tmp_path: Path, orientation: int) -> None:
    upright = _quadrants(2400, 1800)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    upright.transpose(_STORE[orientation]).save(path, exif=exif, quality=95)
    v = load_image(path)
    assert v.original_size == (2400, 1800)
    assert v.true_shape == (384, 512)
    assert np.allclose(v.rgb[20, 20], (255, 0, 0), atol=6)
    assert np.allclose(v.rgb[-20, -20], (255, 255, 0), atol=6)


def test_rgba_drops_alpha_like_convert(tmp_path: Path) -> None:
    a = np.zeros((100, 150, 4), np.uint8)
    a[..., :3] = _pattern(150, 100)
    a[..., 3] = 0  # fully transparent: colour is kept, not composited on white
    path = _save(tmp_path / "rgba.png", a)
    ref = _save(tmp_path / "rgb.png", a[..., :3].copy())
    assert np.array_equal(load_image(path).rgb, load_image(ref).rgb)


def test_greyscale_16bit_png_converts_like_the_published_loader(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pillow's convert("RGB") (what the published loader calls) clips 16-bit values at 255."""
    a = np.zeros((120, 160), np.uint16)
    a[:, :80] = 65535
    a[:, 80:] = 200
    path = tmp_path / "g16.png"
    Image.fromarray(a).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    with caplog.at_level(logging.WARNING, logger="fast3r_core.images"):
        v = load_image(path)
    assert np.all(v.rgb[:, :200] == 255)
    assert np.all(v.rgb[:, 320:] == 200)
    assert np.array_equal(v.rgb[..., 0], v.rgb[..., 2])
    assert "above 255" in caplog.text


def test_palette_and_greyscale_match_rgb(tmp_path: Path) -> None:
    rgb = Image.fromarray(_pattern(150, 100)).quantize(64)
    rgb.save(tmp_path / "p.png")
    rgb.convert("RGB").save(tmp_path / "p_rgb.png")
    assert np.array_equal(load_image(tmp_path / "p.png").rgb, load_image(tmp_path / "p_rgb.png").rgb)
    grey = Image.fromarray(_pattern(150, 100)[..., 0])
    grey.save(tmp_path / "l.png")
    v = load_image(tmp_path / "l.png")
    assert v.rgb.shape == (336, 512, 3)
    assert np.array_equal(v.rgb[..., 0], v.rgb[..., 1])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    im = Image.new("CMYK", (200, 150), (0, 255, 255, 0))  # no cyan, full magenta + yellow: red
    path = tmp_path / "cmyk.jpg"
    im.save(path, quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    v = load_image(path)
    assert np.allclose(v.rgb.reshape(-1, 3).mean(0), (255, 0, 0), atol=3)


@pytest.mark.parametrize(("ext", "kw"), [(".webp", {"lossless": True}), (".bmp", {}), (".tiff", {})])
def test_lossless_formats_match_png(tmp_path: Path, ext: str, kw: dict[str, object]) -> None:
    a = _pattern(200, 130, seed=1)
    ref = load_image(_save(tmp_path / "ref.png", a))
    v = load_image(_save(tmp_path / f"x{ext}", a, **kw))
    assert np.array_equal(v.rgb, ref.rgb)


def test_heic(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    path = tmp_path / "x.heic"
    try:
        Image.new("RGB", (200, 150), (200, 30, 40)).save(path, quality=95)
    except Exception as exc:
        pytest.skip(f"pillow-heif cannot write HEIC here: {exc}")
    assert I.heif_supported()
    assert I.is_image_file(path)
    v = load_image(path)
    assert v.true_shape == (384, 512)
    assert np.allclose(v.rgb.reshape(-1, 3).mean(0), (200, 30, 40), atol=6)
    assert [x.name for x in load_images(tmp_path)] == ["x.heic"]


def test_non_ascii_paths(tmp_path: Path) -> None:
    folder = tmp_path / "données 写真"
    folder.mkdir()
    _save(folder / "фото é.jpg", _pattern(320, 240))
    _write_video(folder / "vidéo.mp4", 10, 10.0)
    views = load_images(folder)
    assert [v.name for v in views] == ["фото é.jpg"]
    frames = load_video(folder / "vidéo.mp4", frames_dir=folder / "кадры")
    assert [v.name for v in frames] == ["vidéo.mp4 #0000"]


# ------------------------------------------------------------------------------------------------
# discovery, skipping and errors
# ------------------------------------------------------------------------------------------------


def test_folder_sorted_non_recursive_and_ignored(tmp_path: Path) -> None:
    for name in ["b.png", "a.jpg", "C.png", "a10.png", "a2.png"]:
        _save(tmp_path / name, _pattern(64, 48))
    (tmp_path / "sub").mkdir()
    _save(tmp_path / "sub" / "z.png", _pattern(64, 48))
    (tmp_path / "notes.txt").write_text("hello")
    _save(tmp_path / ".hidden.png", _pattern(64, 48))
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 10)
    found = discover_inputs(tmp_path)
    expected = ["C.png", "a.jpg", "a10.png", "a2.png", "b.png"]  # plain string order, as published
    assert [p.name for p in found.files] == expected
    assert sorted(p.name for p in found.ignored) == [".hidden.png", "clip.mp4", "notes.txt"]
    result = load_inputs(str(tmp_path))
    assert isinstance(result, LoadResult)
    assert [v.name for v in result.views] == expected
    assert result.ignored == 3 and result.skipped == []


def test_single_file_and_list_inputs(tmp_path: Path) -> None:
    a = _save(tmp_path / "a.png", _pattern(64, 48))
    b = _save(tmp_path / "b.png", _pattern(64, 48, seed=2))
    assert [v.name for v in load_images(str(a))] == ["a.png"]
    assert [v.name for v in load_images([str(b), a])] == ["b.png", "a.png"]  # list order is kept


def test_corrupt_and_truncated_files_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _save(tmp_path / "good.png", _pattern(320, 240))
    (tmp_path / "bad.jpg").write_text("this is not a JPEG")
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).bytes(5000))
    big = tmp_path / "full.jpg"
    _save(big, _pattern(640, 480), quality=95)
    data = big.read_bytes()
    big.unlink()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="fast3r_core.images"):
        result = load_inputs(tmp_path)
    assert [v.name for v in result.views] == ["good.png"]
    assert sorted(s.path.name for s in result.skipped) == ["bad.jpg", "noise.png", "trunc.jpg"]
    reasons = {s.path.name: s.reason for s in result.skipped}
    assert "truncated" in reasons["trunc.jpg"]
    for name in ["bad.jpg", "noise.png", "trunc.jpg"]:
        assert any(name in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    with pytest.raises(InputError):
        load_image(tmp_path / "bad.jpg")


def test_explicit_unsupported_file_is_reported(tmp_path: Path) -> None:
    good = _save(tmp_path / "a.png", _pattern(64, 48))
    txt = tmp_path / "readme.txt"
    txt.write_text("x")
    result = load_inputs([good, txt])
    assert [v.name for v in result.views] == ["a.png"]
    assert [s.path for s in result.skipped] == [txt]


def test_no_images_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    with pytest.raises(NoImagesError, match="empty_folder"):
        load_images(empty)
    other = tmp_path / "only_text"
    other.mkdir()
    (other / "a.txt").write_text("a")
    (other / "b.mp4").write_bytes(b"")
    with pytest.raises(NoImagesError, match="only_text") as err:
        load_inputs(other)
    assert "2 other file(s) ignored" in str(err.value)
    broken = tmp_path / "only_broken"
    broken.mkdir()
    (broken / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(NoImagesError, match=r"x\.jpg"):
        load_images(broken)
    with pytest.raises(NoImagesError):
        load_images([])


def test_missing_path_is_input_error(tmp_path: Path) -> None:
    good = _save(tmp_path / "a.png", _pattern(64, 48))
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match="nope") as err:
        load_images(missing)
    assert not isinstance(err.value, NoImagesError)
    with pytest.raises(InputError, match="nope"):
        load_inputs([good, missing])
    with pytest.raises(InputError):
        load_image(tmp_path / "nope.jpg")


# ------------------------------------------------------------------------------------------------
# parallel decoding, progress, cancellation
# ------------------------------------------------------------------------------------------------


def _colour_folder(folder: Path, n: int) -> list[str]:
    names = [f"img_{i:02d}.png" for i in range(n)]
    for i, name in enumerate(names):
        Image.new("RGB", (64, 48), (i * 20, 255 - i * 20, 7)).save(folder / name)
    return names


def test_parallel_decode_keeps_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = _colour_folder(tmp_path, 12)
    real = decoding.load_image
    threads: set[int] = set()

    def slow_first(path: Path, *args: object, **kwargs: object) -> ViewInput:
        i = int(Path(path).stem.split("_")[1])
        time.sleep(0.004 * (12 - i))  # early files finish last
        threads.add(threading.get_ident())
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "load_image", slow_first)
    events: list[ProgressEvent] = []
    result = load_inputs(tmp_path, max_workers=4, progress=events.append)
    assert [v.name for v in result.views] == names
    for i, v in enumerate(result.views):
        assert tuple(v.rgb[0, 0]) == (i * 20, 255 - i * 20, 7)
    assert len(threads) > 1
    image_events = [e for e in events if e.stage == "images"]
    assert [e.done for e in image_events] == list(range(13))
    assert all(e.total == 12 for e in image_events)


@pytest.mark.parametrize("workers", [1, 4])
def test_cancel(tmp_path: Path, workers: int) -> None:
    _colour_folder(tmp_path, 8)
    cancel = threading.Event()

    def on_progress(e: ProgressEvent) -> None:
        if e.done >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        load_inputs(tmp_path, max_workers=workers, progress=on_progress, cancel=cancel)


# ------------------------------------------------------------------------------------------------
# video
# ------------------------------------------------------------------------------------------------


def _check_frame_content(views: list[ViewInput], indices: list[int]) -> None:
    for v, i in zip(views, indices, strict=True):
        assert abs(float(v.rgb.mean()) - _frame_level(i)) < 10, (v.name, float(v.rgb.mean()))


def test_video_sampling_and_max_frames(tmp_path: Path) -> None:
    video = _write_video(tmp_path / "clip.mp4", 40, 10.0)  # 4 s at 10 fps
    assert is_video(video) and is_video("X.MOV") and not is_video("x.jpg")
    views = load_video(video, frames_dir=tmp_path / "frames")
    assert [v.name for v in views] == ["clip.mp4 #0000", "clip.mp4 #0010", "clip.mp4 #0020", "clip.mp4 #0030"]
    assert all(v.path.parent == tmp_path / "frames" and v.path.suffix == ".jpg" for v in views)
    assert all(v.original_size == (160, 120) and v.true_shape == (384, 512) for v in views)
    _check_frame_content(views, [0, 10, 20, 30])
    capped = load_video(video, fps=5.0, max_frames=3, frames_dir=tmp_path / "capped")
    assert [v.name for v in capped] == ["clip.mp4 #0000", "clip.mp4 #0020", "clip.mp4 #0039"]
    _check_frame_content(capped, [0, 20, 39])
    assert len(load_video(video, fps=100.0, max_frames=100, frames_dir=tmp_path / "all")) == 40


def test_video_seeking_picks_the_right_frames(tmp_path: Path) -> None:
    video = _write_video(tmp_path / "long.mp4", 150, 30.0)  # 5 s at 30 fps
    frames = extract_video_frames(video, fps=0.5, frames_dir=tmp_path / "f")  # every 60th: seeks
    assert [f.index for f in frames] == [0, 60, 120]
    for f in frames:
        with Image.open(f.path) as im:
            level = np.asarray(im).mean()
        assert abs(level - _frame_level(f.index)) < 10


def test_video_frames_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = _write_video(tmp_path / "c.mp4", 20, 10.0)
    first = extract_video_frames(video, frames_dir=tmp_path / "f")

    def no_decode(*args: object) -> None:
        raise AssertionError("the video should not be decoded again")

    monkeypatch.setattr(cv2, "VideoCapture", no_decode)
    assert extract_video_frames(video, frames_dir=tmp_path / "f") == first
    with pytest.raises(AssertionError):  # other parameters: not the same frames
        extract_video_frames(video, fps=2.0, frames_dir=tmp_path / "f")


def test_video_in_inputs_uses_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    video = _write_video(tmp_path / "clip.mp4", 25, 10.0)
    img = _save(tmp_path / "z.png", _pattern(64, 48))
    events: list[ProgressEvent] = []
    result = load_inputs([img, video], progress=events.append)
    assert [v.name for v in result.views] == ["z.png", "clip.mp4 #0000", "clip.mp4 #0010", "clip.mp4 #0020"]
    root = tmp_path / "cache" / "fast3r-studio" / "video-frames"
    assert all(root in v.path.parents for v in result.views[1:])
    assert any(e.stage == "video" and e.done == 3 and e.total == 3 for e in events)


def test_non_video_passed_as_video(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video at all")
    with pytest.raises(InputError, match="not a video"):
        load_video(fake, frames_dir=tmp_path / "f")
    with pytest.raises(InputError, match="not a video"):
        load_inputs(fake, frames_root=tmp_path / "f")
    img = _save(tmp_path / "pic.mp4", _pattern(64, 48), format="PNG")  # an image is not a video either
    with pytest.raises(InputError, match="not a video"):
        extract_video_frames(img, frames_dir=tmp_path / "g")
    with pytest.raises(InputError):
        extract_video_frames(tmp_path / "missing.mp4")
    with pytest.raises(InputError):
        extract_video_frames(fake, fps=0.0)
    with pytest.raises(InputError):
        extract_video_frames(fake, max_frames=0)


# ------------------------------------------------------------------------------------------------
# exactly the published pipeline: full decode, one resize (parity/preprocess_photos and any format)
# ------------------------------------------------------------------------------------------------
PHOTOS = PARITY.parent / "preprocess_photos"


def _published(path: Path, size: int) -> np.ndarray:
    """Reference written from fast3r-spec section 5 with plain Pillow: exif_transpose, convert("RGB"),
    one resize of the whole image (LANCZOS when shrinking, else BICUBIC), centre crop."""
    from PIL import ImageOps

    with Image.open(path) as im:
        img = ImageOps.exif_transpose(im).convert("RGB")
    W, H = img.size
    S = max(W, H)
    long_side = round(224 * max(W / H, H / W)) if size == 224 else size
    new = (round(W * long_side / S), round(H * long_side / S))
    img = img.resize(new, Image.Resampling.LANCZOS if S > long_side else Image.Resampling.BICUBIC)
    cx, cy = new[0] // 2, new[1] // 2
    if size == 224:
        hw = hh = min(cx, cy)
    else:
        hw, hh = 8 * ((2 * cx) // 16), 8 * ((2 * cy) // 16)
        if new[0] == new[1]:
            hh = 3 * hw // 4
    return np.asarray(img.crop((cx - hw, cy - hh, cx + hw, cy + hh)))


def _assert_same(ours: np.ndarray, ref: np.ndarray, what: str, max_diff: int = 0) -> None:
    assert ours.shape == ref.shape, what
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= max_diff, f"{what}: max {diff.max()}, mean {diff.mean():.3f}"


@pytest.mark.parametrize("size", [512, 224])
def test_photos_parity_fixture(size: int) -> None:
    """Camera-sized JPEGs (EXIF rotation, DSLR, greyscale) reach the model as the published code gives."""
    expected = np.load(PHOTOS / "expected.npz")
    views = load_inputs(PHOTOS / "src", size=size, max_workers=1).views
    assert [v.name for v in views] == ["p1_phone_exif6.jpg", "p2_dslr.jpg", "p3_gray.jpg"]
    for v in views:
        ref = expected[f"{size}/{v.name}"]
        assert v.rgb.shape == ref.shape, v.name
        diff = np.abs(v.rgb.astype(np.int16) - ref.astype(np.int16))
        assert diff.max() <= 1 and diff.mean() <= 0.05, (v.name, diff.max(), diff.mean())


@pytest.fixture(scope="module")
def camera_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3000x2000 JPEG with fine detail and EXIF orientation 8, written progressive (not a fixture file)."""
    rng = np.random.default_rng(4)
    base = Image.fromarray(_pattern(750, 500, seed=2)).resize((3000, 2000), Image.Resampling.BILINEAR)
    a = np.asarray(base).astype(np.int16) + rng.integers(-30, 30, (2000, 3000, 3))
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path_factory.mktemp("cam") / "cam.jpg"
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, quality=92, exif=exif, progressive=True)
    return path


@pytest.mark.parametrize("size", [512, 224, 384])
def test_large_jpeg_is_decoded_whole_and_resized_once(camera_jpeg: Path, size: int) -> None:
    v = load_image(camera_jpeg, size)
    assert v.original_size == (2000, 3000)
    _assert_same(v.rgb, _published(camera_jpeg, size), f"{size}")


def _formats(tmp: Path) -> dict[str, Path]:
    """One file per input path the loader has: formats, bit depths and colour modes."""
    a = _pattern(900, 600, seed=5)
    out: dict[str, Path] = {}
    out["png"] = _save(tmp / "a.png", a)
    out["webp_lossless"] = _save(tmp / "a.webp", a, lossless=True)
    out["webp_lossy"] = _save(tmp / "b.webp", a, quality=80)
    out["tiff"] = _save(tmp / "a.tiff", a)
    out["bmp"] = _save(tmp / "a.bmp", a)
    out["jpeg_grey"] = _save(tmp / "g.jpg", a[..., 1].copy(), quality=90)
    cmyk = Image.fromarray(a).convert("CMYK")
    cmyk.save(tmp / "c.jpg", quality=95)
    out["jpeg_cmyk"] = tmp / "c.jpg"
    cmyk.save(tmp / "c.tiff")
    out["tiff_cmyk"] = tmp / "c.tiff"
    g16 = (a[..., 0].astype(np.uint16) * 3).astype(np.uint16)  # values up to 765: clipped at 255
    Image.fromarray(g16).save(tmp / "g16.png")
    out["png_grey16"] = tmp / "g16.png"
    cv2.imwrite(str(tmp / "rgb16.png"), (a[..., ::-1].astype(np.uint16) * 257))
    out["png_rgb16"] = tmp / "rgb16.png"
    cv2.imwrite(str(tmp / "rgb16.tiff"), (a[..., ::-1].astype(np.uint16) * 257))
    out["tiff_rgb16"] = tmp / "rgb16.tiff"
    Image.fromarray(a).quantize(64).save(tmp / "p.png")
    out["png_palette"] = tmp / "p.png"
    la = np.dstack([a[..., 0], a[..., 1]])
    Image.fromarray(la, "LA").save(tmp / "la.png")
    out["png_la"] = tmp / "la.png"
    rgba = np.dstack([a, a[..., 2]])
    Image.fromarray(rgba).save(tmp / "rgba.webp", lossless=True)
    out["webp_rgba"] = tmp / "rgba.webp"
    f32 = Image.fromarray(a[..., 0].astype(np.float32) / 255.0)
    f32.save(tmp / "f.tiff")
    out["tiff_float"] = tmp / "f.tiff"
    return out


@pytest.mark.parametrize("size", [512, 224])
def test_every_format_matches_pillows_convert_rgb_pipeline(tmp_path: Path, size: int) -> None:
    for kind, path in _formats(tmp_path).items():
        _assert_same(load_image(path, size).rgb, _published(path, size), kind)


def test_heic_matches_the_published_pipeline(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    path = tmp_path / "x.heic"
    exif = Image.Exif()
    exif[0x0112] = 6
    try:
        Image.fromarray(_pattern(1200, 900, seed=6)).save(path, quality=90, exif=exif)
    except Exception as exc:
        pytest.skip(f"pillow-heif cannot write HEIC here: {exc}")
    for size in (512, 224):
        _assert_same(load_image(path, size).rgb, _published(path, size), f"heic {size}")


@pytest.mark.parametrize("size", [512, 224])
def test_video_frames_match_the_published_pipeline(tmp_path: Path, size: int) -> None:
    """HD frames are written as JPEG (quality 95, like the published demo) and loaded like photos."""
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (1920, 1080))
    assert writer.isOpened()
    for i in range(10):
        writer.write(np.ascontiguousarray(_pattern(1920, 1080, seed=i)[..., ::-1]))
    writer.release()
    views = load_video(video, size, fps=2.5, frames_dir=tmp_path / "frames")
    assert [v.name for v in views] == [f"clip.mp4 #{i:04d}" for i in (0, 2, 4, 6, 8)]
    for v in views:
        assert v.original_size == (1920, 1080)
        _assert_same(v.rgb, _published(v.path, size), v.name)


def test_beyond_the_pixel_bound_jpeg_is_drafted_and_logged(
    camera_jpeg: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Above FULL_DECODE_MAX_PIXELS (100 MP) a JPEG is decoded at a reduced DCT scale: approximate."""
    assert decoding.FULL_DECODE_MAX_PIXELS == 100_000_000
    monkeypatch.setattr(decoding, "FULL_DECODE_MAX_PIXELS", 1_000_000)  # pretend the 6 MP photo is huge
    seen: list[tuple[int, int]] = []
    real_load = Image.Image.load

    def spy(im: Image.Image) -> object:
        seen.append(im.size)
        return real_load(im)

    monkeypatch.setattr(Image.Image, "load", spy)
    with caplog.at_level(logging.WARNING, logger="fast3r_core.images"):
        v = load_image(camera_jpeg, 512)
    assert "approximate" in caplog.text and "cam.jpg" in caplog.text
    assert (1500, 1000) in seen  # 1/2 DCT scale, still >= 2x the 512 px target (not the full 3000x2000)
    assert v.original_size == (2000, 3000) and v.true_shape == (512, 336)
    diff = np.abs(v.rgb.astype(np.int16) - _published(camera_jpeg, 512).astype(np.int16))
    assert 0 < diff.mean() < 3  # close, not exact
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fast3r_core.images"):
        exact = load_image(camera_jpeg, 512, draft=False)  # opt out: always the exact path
    assert "approximate" not in caplog.text
    _assert_same(exact.rgb, _published(camera_jpeg, 512), "draft=False")


def test_full_decodes_in_flight_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel decoding holds at most the decode budget of full-resolution pixels at once (one image
    alone may exceed it), and the results are those of a serial run."""
    for i in range(8):
        _save(tmp_path / f"im_{i}.png", _pattern(800, 600, seed=i))
    per_image = decoding._full_decode_bytes("RGB", 800, 600)
    budget = decoding._ByteBudget(2 * per_image)
    monkeypatch.setattr(decoding, "_DECODE_BUDGET", budget)
    peak = [0]
    real_hold = budget.hold

    def tracking_hold(n: int):  # type: ignore[no-untyped-def]
        cm = real_hold(n)

        class _Track:
            def __enter__(self) -> None:
                cm.__enter__()
                peak[0] = max(peak[0], budget.in_use)
                time.sleep(0.02)  # widen the window where decodes overlap

            def __exit__(self, *exc: object) -> None:
                cm.__exit__(*exc)

        return _Track()

    monkeypatch.setattr(budget, "hold", tracking_hold)
    par = load_inputs(tmp_path, max_workers=4).views
    assert 0 < peak[0] <= 2 * per_image
    assert budget.in_use == 0
    ser = load_inputs(tmp_path, max_workers=1).views
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(par, ser, strict=True))
    alone = decoding._ByteBudget(10)  # smaller than any image: one at a time, never a deadlock
    with alone.hold(1000):
        assert alone.in_use == 1000
    assert alone.in_use == 0
