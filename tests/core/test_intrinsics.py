"""Tests of fast3r_core.intrinsics: EXIF focal, intrinsics files (JSON, COLMAP), trust order, model pixels."""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import ExifTags, Image

from fast3r_core.errors import IntrinsicsError
from fast3r_core.export.colmap import export_colmap
from fast3r_core.geometry import intrinsics_model_to_original
from fast3r_core.images import load_image, resize_crop_geometry
from fast3r_core.intrinsics import (
    KnownIntrinsics,
    exif_camera,
    exif_intrinsics,
    intrinsics_source,
    read_colmap_intrinsics,
    read_intrinsics_file,
    read_json_intrinsics,
    resolve_intrinsics,
    to_model_pixels,
)

from .recon_factory import MIXED_SIZES, make_synthetic_reconstruction

DIAG_35 = math.hypot(36.0, 24.0)


def photo(
    path: Path,
    size: tuple[int, int] = (120, 80),
    *,
    make: str = "Acme",
    model: str = "One",
    f35: float | None = None,
    f_mm: float | None = None,
    xres: float | None = None,
    unit: int | None = None,
    orientation: int = 1,
) -> Path:
    """A JPEG of stored size ``size`` with the given EXIF tags."""
    exif = Image.Exif()
    if make:
        exif[ExifTags.Base.Make] = make
    if model:
        exif[ExifTags.Base.Model] = model
    exif[ExifTags.Base.Orientation] = orientation
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if f35 is not None:
        sub[ExifTags.Base.FocalLengthIn35mmFilm] = int(f35)
    if f_mm is not None:
        sub[ExifTags.Base.FocalLength] = f_mm
    if xres is not None:
        sub[ExifTags.Base.FocalPlaneXResolution] = xres
    if unit is not None:
        sub[ExifTags.Base.FocalPlaneResolutionUnit] = unit
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, exif=exif)
    return path


# ------------------------------------------------------------------------------------------- EXIF


def test_exif_35mm_focal_over_the_diagonal(tmp_path: Path) -> None:
    k = exif_intrinsics(photo(tmp_path / "a.jpg", (120, 80), f35=28, f_mm=4.2))
    assert k is not None and k.source == "exif"
    assert k.fx == pytest.approx(28 * math.hypot(120, 80) / DIAG_35)
    assert k.fy == k.fx and (k.cx, k.cy) == (59.5, 39.5) and k.size == (120, 80)


def test_exif_focal_from_focal_plane_resolution(tmp_path: Path) -> None:
    # 4 mm lens, 250 pixels per cm on the sensor -> 100 px
    k = exif_intrinsics(photo(tmp_path / "a.jpg", f_mm=4.0, xres=250.0, unit=3))
    assert k is not None and k.fx == pytest.approx(100.0)
    # inches (the EXIF default unit)
    k = exif_intrinsics(photo(tmp_path / "b.jpg", f_mm=4.0, xres=635.0))
    assert k is not None and k.fx == pytest.approx(100.0)


def test_exif_without_focal_or_with_nonsense(tmp_path: Path) -> None:
    assert exif_intrinsics(photo(tmp_path / "a.jpg", f_mm=4.0)) is None  # no sensor size
    assert exif_intrinsics(photo(tmp_path / "b.jpg")) is None
    assert exif_intrinsics(photo(tmp_path / "c.jpg", f_mm=4.0, xres=1e-6, unit=3)) is None  # absurd
    plain = tmp_path / "d.png"
    Image.new("RGB", (30, 20)).save(plain)
    assert exif_intrinsics(plain) is None


def test_exif_rotated_photo_uses_the_upright_size(tmp_path: Path) -> None:
    # stored 120x80, orientation 6 (rotate 90): upright 80x120
    k = exif_intrinsics(photo(tmp_path / "r.jpg", (120, 80), f35=50, orientation=6))
    assert k is not None and k.size == (80, 120)
    assert (k.cx, k.cy) == (39.5, 59.5)
    assert k.fx == pytest.approx(50 * math.hypot(80, 120) / DIAG_35)
    view = load_image(tmp_path / "r.jpg", 64)
    assert view.original_size == k.size


def test_two_cameras_get_their_own_intrinsics(tmp_path: Path) -> None:
    a = [photo(tmp_path / f"a{i}.jpg", (120, 80), make="Acme", model="One", f35=28) for i in range(2)]
    b = [photo(tmp_path / f"b{i}.jpg", (120, 80), make="Other", model="Two", f35=80) for i in range(2)]
    ks = resolve_intrinsics("auto", a + b)
    assert all(k is not None and k.source == "exif" for k in ks)
    assert ks[0] == ks[1] and ks[2] == ks[3]
    assert ks[0] is not None and ks[2] is not None
    assert ks[0].camera != ks[2].camera and ks[2].fx > 2 * ks[0].fx
    assert "Acme One" in ks[0].camera


def test_auto_needs_every_photo_of_a_camera(tmp_path: Path) -> None:
    a = [photo(tmp_path / "a0.jpg", f35=28), photo(tmp_path / "a1.jpg")]  # same body, one lacks it
    b = [photo(tmp_path / "b0.jpg", make="Other", f35=35)]
    ks = resolve_intrinsics("auto", a + b)
    assert ks[0] is None and ks[1] is None and ks[2] is not None
    assert [intrinsics_source(k) for k in ks] == ["estimated", "estimated", "exif"]
    assert resolve_intrinsics("estimate", a + b) == [None, None, None]
    # a rotated photo is the same body as an upright one
    c = [photo(tmp_path / "c0.jpg", (120, 80), f35=28), photo(tmp_path / "c1.jpg", (120, 80), orientation=6)]
    assert resolve_intrinsics("auto", c) == [None, None]
    assert exif_camera(c[0]).body == exif_camera(c[1]).body


# ------------------------------------------------------------------------------------------- JSON


def test_json_one_object_for_all(tmp_path: Path) -> None:
    f = tmp_path / "k.json"
    f.write_text(json.dumps({"fx": 100, "fy": 101, "cx": 59.5, "cy": 39.5}))
    photos = [photo(tmp_path / "a.jpg", f35=28), photo(tmp_path / "b.jpg")]
    ks = resolve_intrinsics(f, photos)
    assert all(k is not None and k.source == "file" for k in ks)
    assert ks[0] is not None and (ks[0].fx, ks[0].fy, ks[0].cx, ks[0].cy) == (100, 101, 59.5, 39.5)


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"fx": 1e300, "fy": 1e300, "cx": 59.5, "cy": 39.5}, "fx = 1e+300 px is implausible"),
        ({"fx": 100, "fy": 0.5, "cx": 59.5, "cy": 39.5}, "fy = 0.5 px is implausible"),
        ({"fx": 100, "fy": 100, "cx": -1e12, "cy": 39.5}, "cx = -1e+12 px lies far outside"),
        ({"fx": 100, "fy": 100, "cx": 59.5, "cy": 400}, "cy = 400 px lies far outside"),
    ],
)
def test_implausible_file_intrinsics_are_refused_naming_the_value(
    tmp_path: Path, values: dict, needle: str
) -> None:
    """A unit slip or a typo (a focal of 1e300 px, a principal point a trillion pixels away) is refused
    before the run, not carried into the poses and every export."""
    f = tmp_path / "k.json"
    f.write_text(json.dumps(values))
    photos = [photo(tmp_path / "a.jpg")]  # 120 x 80
    with pytest.raises(IntrinsicsError, match=re.escape(needle)):
        resolve_intrinsics(f, photos)


def test_json_list_and_dict_per_image(tmp_path: Path) -> None:
    photos = [photo(tmp_path / "a.jpg", f35=28), photo(tmp_path / "b.jpg", f35=28)]
    lst = tmp_path / "list.json"
    lst.write_text(json.dumps([{"name": "a.jpg", "fx": 90, "fy": 90, "cx": 60, "cy": 40}]))
    ks = resolve_intrinsics(lst, photos)
    assert ks[0] is not None and ks[0].source == "file" and ks[0].fx == 90
    assert ks[1] is not None and ks[1].source == "exif"  # not in the file: EXIF next
    dct = tmp_path / "dict.json"
    # calibrated at twice the size: scaled to the photo
    dct.write_text(
        json.dumps({"b.jpg": {"fx": 200, "fy": 200, "cx": 119.5, "cy": 79.5, "width": 240, "height": 160}})
    )
    table = read_json_intrinsics(dct)
    assert set(table) == {"b.jpg"}
    ks = resolve_intrinsics(dct, photos)
    assert ks[1] is not None and ks[1].fx == pytest.approx(100) and ks[1].cx == pytest.approx(59.5)
    assert ks[1].size == (120, 80)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{", "line 1"),
        ('{"fx": 1, "fy": 1, "cx": 0}', "missing cy"),
        ('{"fx": -1, "fy": 1, "cx": 0, "cy": 0}', "positive"),
        ('{"fx": "a", "fy": 1, "cx": 0, "cy": 0}', "finite number"),
        ('[{"fx": 1, "fy": 1, "cx": 0, "cy": 0}]', '"name"'),
        ('{"a.jpg": 3}', "entry 'a.jpg'"),
        ("3", "object or list"),
        ('{"a.jpg": {"fx": 1, "fy": 1, "cx": 0, "cy": 0, "width": 10, "height": 99}}', "aspect"),
    ],
)
def test_json_errors_name_the_file(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text("\n\n" + text if needle == "line 1" else text)
    with pytest.raises(IntrinsicsError) as exc:
        resolve_intrinsics(f, [photo(tmp_path / "a.jpg")])
    assert str(f) in str(exc.value)
    assert needle.replace("line 1", "line 3") in str(exc.value)


def test_file_listing_no_photo_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "k.json"
    f.write_text(json.dumps({"z.jpg": {"fx": 1, "fy": 1, "cx": 0, "cy": 0}}))
    with pytest.raises(IntrinsicsError, match="none of the 1 photos"):
        resolve_intrinsics(f, [photo(tmp_path / "a.jpg")])
    with pytest.raises(IntrinsicsError, match="no such"):
        resolve_intrinsics(tmp_path / "missing.json", [photo(tmp_path / "a.jpg")])


def test_entries_naming_no_photo_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "k.json"
    k = {"fx": 100, "fy": 100, "cx": 40, "cy": 30}
    f.write_text(json.dumps([{"name": "a.jpg", **k}, {"name": "zzz.jpg", **k}]))
    with caplog.at_level("WARNING", logger="fast3r_core.intrinsics"):
        got = resolve_intrinsics(f, [photo(tmp_path / "a.jpg"), photo(tmp_path / "b.jpg")])
    assert got[0] is not None
    assert "match no photo" in caplog.text and "'zzz.jpg'" in caplog.text and "'a.jpg'" not in caplog.text


# ----------------------------------------------------------------------------------------- COLMAP


@pytest.mark.parametrize("binary", [True, False])
def test_colmap_round_trip_with_our_export(tmp_path: Path, binary: bool) -> None:
    rec = make_synthetic_reconstruction(original_sizes=MIXED_SIZES, image_dir=tmp_path / "photos")
    out = tmp_path / "colmap"
    export_colmap(rec, out, binary=binary, text=not binary, copy_images=False)
    sparse = out / "sparse" / "0"
    for where in (sparse, sparse / ("cameras.bin" if binary else "cameras.txt")):
        table = read_intrinsics_file(where)
        assert len(table) == rec.n_views
    ks = resolve_intrinsics(sparse, rec.image_paths, sizes=[tuple(s) for s in rec.original_sizes])
    for v, k in enumerate(ks):
        assert k is not None and k.source == "file"
        np.testing.assert_allclose(k.matrix, rec.intrinsics_original[v], rtol=0, atol=1e-9)
        geom = SimpleNamespace(
            original_size=tuple(rec.original_sizes[v]),
            resized_size=tuple(rec.resized_sizes[v]),
            crop_box=tuple(rec.crop_boxes[v]),
        )
        np.testing.assert_allclose(to_model_pixels(k, geom), rec.intrinsics[v], atol=1e-9)


def test_colmap_text_models_and_folders(tmp_path: Path) -> None:
    (tmp_path / "cameras.txt").write_text(
        "# comment\n1 SIMPLE_PINHOLE 120 80 100 60 40\n2 OPENCV 240 160 200 210 120 80 0.01 0 0 0\n"
    )
    (tmp_path / "images.txt").write_text(
        "# header\n1 1 0 0 0 0 0 0 1 images/a.jpg\n\n2 1 0 0 0 0 0 0 2 b.jpg\n1.0 2.0 -1\n"
    )
    table = read_colmap_intrinsics(tmp_path / "cameras.txt")
    assert set(table) == {"images/a.jpg", "b.jpg"}
    ks = resolve_intrinsics(tmp_path / "cameras.txt", [photo(tmp_path / "a.jpg"), photo(tmp_path / "b.jpg")])
    assert ks[0] is not None and (ks[0].fx, ks[0].cx, ks[0].cy) == (100, 59.5, 39.5)
    # b was calibrated at 240x160: scaled to the 120x80 photo
    assert ks[1] is not None and ks[1].fx == pytest.approx(100) and ks[1].fy == pytest.approx(105)
    # a single camera without images.txt applies to every photo
    solo = tmp_path / "solo"
    solo.mkdir()
    (solo / "cameras.txt").write_text("7 PINHOLE 120 80 90 91 60 40\n")
    assert set(read_intrinsics_file(solo)) == {None}


def test_colmap_binary_from_pycolmap(tmp_path: Path) -> None:
    pycolmap = pytest.importorskip("pycolmap")
    rec = pycolmap.Reconstruction()
    cam = pycolmap.Camera(model="SIMPLE_RADIAL", width=120, height=80, params=[100.0, 60.0, 40.0, 0.0])
    cam.camera_id = 3
    if not hasattr(rec, "add_camera_with_trivial_rig"):
        pytest.skip("pycolmap < 3.12: no trivial rigs")
    rec.add_camera_with_trivial_rig(cam)
    rec.add_image_with_trivial_frame(
        pycolmap.Image(name="a.jpg", camera_id=3, image_id=1), pycolmap.Rigid3d()
    )
    rec.write_binary(str(tmp_path))
    ks = read_colmap_intrinsics(tmp_path / "cameras.bin")
    assert ks["a.jpg"].fx == 100 and ks["a.jpg"].cx == 59.5


def _cameras_bin(records: list[tuple[int, int, int, int, list[float]]], count: int | None = None) -> bytes:
    out = struct.pack("<Q", len(records) if count is None else count)
    for cid, mid, w, h, params in records:
        out += struct.pack("<IiQQ", cid, mid, w, h) + struct.pack(f"<{len(params)}d", *params)
    return out


@pytest.mark.parametrize(
    ("cameras", "images", "needle"),
    [
        (_cameras_bin([(1, 1, 120, 80, [1, 1, 60, 40])])[:-3], None, "truncated"),
        (_cameras_bin([], count=1 << 40), None, "more than the file can hold"),
        (_cameras_bin([(1, 99, 120, 80, [1, 1, 1])]), None, "unknown camera model id 99"),
        (_cameras_bin([(1, 5, 120, 80, [1, 1, 60, 40, 0, 0, 0, 0])]), None, "FISHEYE"),
        (_cameras_bin([(1, 1, 120, 80, [0, 1, 60, 40])]), None, "invalid params"),
        (
            _cameras_bin([(1, 1, 120, 80, [1, 1, 60, 40]), (2, 1, 120, 80, [1, 1, 60, 40])]),
            None,
            "which image uses which",
        ),
        (
            _cameras_bin([(1, 1, 120, 80, [1, 1, 60, 40])]),
            struct.pack("<QI7dI", 1, 1, 1, 0, 0, 0, 0, 0, 0, 1) + b"a" * 5000,
            "not terminated",
        ),
        (
            _cameras_bin([(1, 1, 120, 80, [1, 1, 60, 40])]),
            struct.pack("<QI7dI", 1, 1, 1, 0, 0, 0, 0, 0, 0, 1) + b"a.jpg\0" + struct.pack("<Q", 1 << 50),
            "past the end",
        ),
        (
            _cameras_bin([(1, 1, 120, 80, [1, 1, 60, 40])]),
            struct.pack("<QI7dI", 1, 1, 1, 0, 0, 0, 0, 0, 0, 9) + b"a.jpg\0" + struct.pack("<Q", 0),
            "camera 9",
        ),
    ],
)
def test_colmap_binary_hostile(tmp_path: Path, cameras: bytes, images: bytes | None, needle: str) -> None:
    (tmp_path / "cameras.bin").write_bytes(cameras)
    if images is not None:
        (tmp_path / "images.bin").write_bytes(images)
    with pytest.raises(IntrinsicsError, match=needle) as exc:
        read_intrinsics_file(tmp_path)
    assert "cameras.bin" in str(exc.value) or "images.bin" in str(exc.value)


@pytest.mark.parametrize(
    ("cameras", "needle"),
    [
        ("1 PINHOLE 120 80 1 1 60\n", "line 1.*expects 4"),
        ("# x\n1 WEIRD 120 80 1\n", "line 2.*unknown camera model"),
        ("1 PINHOLE 120 eighty 1 1 60 40\n", "line 1"),
        ("1 PINHOLE 120\n", "line 1"),
    ],
)
def test_colmap_text_hostile(tmp_path: Path, cameras: str, needle: str) -> None:
    (tmp_path / "cameras.txt").write_text(cameras)
    with pytest.raises(IntrinsicsError, match=needle):
        read_intrinsics_file(tmp_path / "cameras.txt")


# ----------------------------------------------------------------------------------- model pixels


def test_to_model_pixels_inverts_model_to_original() -> None:
    for w, h in [(4032, 3024), (3024, 4032), (1000, 1000), (640, 480)]:
        geom = resize_crop_geometry(w, h, 512)
        k = KnownIntrinsics(0.9 * w, 0.91 * w, (w - 1) / 2 + 3, (h - 1) / 2 - 2, "file", size=(w, h))
        km = to_model_pixels(k, geom)
        back = intrinsics_model_to_original(km, geom.crop_box, geom.resized_size, geom.original_size)
        np.testing.assert_allclose(back, k.matrix, rtol=1e-12, atol=1e-9)
    # a centred principal point lands near the model image's centre
    geom = resize_crop_geometry(640, 480, 512)
    km = to_model_pixels(np.array([[500.0, 0, 319.5], [0, 500, 239.5], [0, 0, 1]]), geom)
    ow, oh = geom.output_size
    assert km[0, 2] == pytest.approx((ow - 1) / 2) and km[1, 2] == pytest.approx((oh - 1) / 2)
    assert km[0, 0] == pytest.approx(500 * 512 / 640)


def test_known_intrinsics_validation() -> None:
    with pytest.raises(ValueError):
        KnownIntrinsics(0, 1, 0, 0, "file")
    with pytest.raises(ValueError):
        KnownIntrinsics(1, float("nan"), 0, 0, "file")


def test_colmap_text_long_lines_and_encoding(tmp_path: Path) -> None:
    (tmp_path / "cameras.txt").write_text("1 PINHOLE 120 80 100 100 60 40\r\n")
    points = " ".join(["12.5 7.25 -1"] * 300_000)  # ~4 MB of 2-D points: skipped, not held
    (tmp_path / "images.txt").write_text(
        f"1 1 0 0 0 0 0 0 1 a.jpg\r\n{points}\r\n2 1 0 0 0 0 0 0 1 b.jpg\r\n\r\n"
    )
    assert set(read_colmap_intrinsics(tmp_path)) == {"a.jpg", "b.jpg"}
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 0 1 " + "n" * 100_000 + "\n")
    with pytest.raises(IntrinsicsError, match=r"images\.txt, line 1: line longer"):
        read_colmap_intrinsics(tmp_path)
    (tmp_path / "images.txt").write_bytes(b"1 1 0 0 0 0 0 0 1 \xff\xfe.jpg\n")
    with pytest.raises(IntrinsicsError, match="line 1: not UTF-8"):
        read_colmap_intrinsics(tmp_path)


def test_hostile_json_numbers(tmp_path: Path) -> None:
    f = tmp_path / "k.json"
    f.write_text('{"fx": 1' + "0" * 400 + ', "fy": 1, "cx": 0, "cy": 0}')
    with pytest.raises(IntrinsicsError, match="fx must be a finite number"):
        read_json_intrinsics(f)
    f.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(IntrinsicsError, match=r"k\.json"):
        read_json_intrinsics(f)


def test_known_intrinsics_accepts_numpy_scalars() -> None:
    k = KnownIntrinsics(np.float32(100.5), np.float64(101), np.int64(60), 40, "exif")
    assert type(k.fx) is float and k.fx == 100.5 and type(k.cx) is float
    assert intrinsics_source(k) == "exif" and intrinsics_source(None) == "estimated"


def test_unreadable_photo_has_no_exif_and_heic_is_read(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    ks = resolve_intrinsics("auto", [junk, photo(tmp_path / "a.jpg", f35=28)], sizes=[(10, 10), (120, 80)])
    assert ks[0] is None and ks[1] is not None
    pytest.importorskip("pillow_heif")
    from fast3r_core.images import heif_supported

    assert heif_supported()
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = 28
    Image.new("RGB", (64, 48), (90, 20, 20)).save(tmp_path / "h.heic", exif=exif)
    k = exif_intrinsics(tmp_path / "h.heic")
    assert k is not None and k.fx == pytest.approx(28 * math.hypot(64, 48) / DIAG_35)
