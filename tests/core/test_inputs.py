"""Issue 19 end to end: known intrinsics, masks, video frame choice and excluded views, through the
pipeline, the ``fast3r`` command line, the project file and every export.

Runs the tiny random-weight model (tests/tiny.py) at 224 px on 224x224 photos, so that a photo's pixel
is exactly a model pixel (no resampling) and a mask's effect can be read off the exported colours.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import ExifTags, Image

from fast3r_core import cli
from fast3r_core.errors import InputError, MaskError, ProjectFileError
from fast3r_core.images import extract_video_frames, load_inputs
from fast3r_core.images.video import _video_folder_name
from fast3r_core.pipeline import ReconstructOptions, add_views, prepare_views, reconstruct
from fast3r_core.project_file import load_project, save_project
from tests.tiny import make_tiny_model

from .recon_factory import make_synthetic_reconstruction
from .test_cli import _isolated_env, _one_error_line
from .test_frame_selection import write_clip

SIDE = 224
MAGENTA = (255, 0, 255)
DIAG_35 = math.hypot(36.0, 24.0)


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _isolated_env(tmp_path).items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("model"))


def _photos(folder: Path, n: int = 3, *, ext: str = ".png", f35: int | None = None) -> list[Path]:
    """``n`` 224x224 photos panning over a texture whose green never drops below 100, each with a
    magenta block (its left quarter, rows 40..120): the only pixels with green 0."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    big = rng.integers(100, 200, (SIDE // 8, (SIDE + 16 * n) // 8, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(big, 8, axis=0), 8, axis=1)
    paths = []
    for i in range(n):
        img = np.ascontiguousarray(big[:, 16 * i : 16 * i + SIDE])
        img[40:120, : SIDE // 4] = MAGENTA
        p = folder / f"view_{i:02d}{ext}"
        if f35 is not None:
            exif = Image.Exif()
            exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "Acme", "One"
            exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = f35
            Image.fromarray(img).save(p, exif=exif, quality=95)
        else:
            Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def _masks(folder: Path, photos: list[Path], *, size: tuple[int, int] = (SIDE, SIDE)) -> Path:
    """Masks ``NAME.png`` that ignore each photo's magenta block (0) and keep the rest (255)."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in photos:
        keep = np.full((size[1], size[0]), 255, np.uint8)
        keep[40:120, : SIDE // 4] = 0
        Image.fromarray(keep).save(folder / f"{p.name}.png")
    return folder


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _reconstruct(
    capsys: pytest.CaptureFixture[str], model: Path, inputs: Path, out: Path, *extra: str | Path
) -> tuple[int, str, str]:
    return _cli(
        capsys,
        *("reconstruct", inputs, "--out", out, "--model", model, "--size", "224"),
        *("--conf-percentile", "0"),
        *extra,
    )


def _is_magenta(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)[:, :3].astype(int)
    return (rgb[:, 1] < 10) & (rgb[:, 0] > 245) & (rgb[:, 2] > 245)


def _exported_colours(out: Path) -> dict[str, np.ndarray]:
    """(N, 3) colours of the points of every export of a ``reconstruct --formats all`` folder."""
    import pycolmap

    glb = trimesh.load(out / "scene.glb")
    colmap = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    nerf = json.loads((out / "transforms.json").read_text(encoding="utf-8"))
    return {
        "ply": np.asarray(trimesh.load(out / "points.ply").colors),
        "glb": np.asarray(glb.geometry["points"].colors),
        "colmap": np.array([p.color for p in colmap.points3D.values()]).reshape(-1, 3),
        "nerfstudio": np.asarray(trimesh.load(out / nerf["ply_file_path"]).colors),
    }


# ---------------------------------------------------------------------------------------- masks


def test_masked_points_are_in_no_export(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _photos(tmp_path / "photos")
    masks = _masks(tmp_path / "masks", photos)
    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "photos", tmp_path / "plain")
    assert code == 0, err
    plain = _exported_colours(tmp_path / "plain")
    assert _is_magenta(plain["ply"]).any() and _is_magenta(plain["glb"]).any()  # the test can see them

    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "photos", tmp_path / "out", "--masks", masks)
    assert code == 0, err
    colours = _exported_colours(tmp_path / "out")
    for fmt, rgb in colours.items():
        assert len(rgb) and not _is_magenta(rgb).any(), fmt
    rec = load_project(tmp_path / "out" / "project.f3r")
    assert rec.keep_masks is not None
    block = 80 * (SIDE // 4)
    assert [rec.n_masked(v) for v in range(rec.n_views)] == [block] * 3
    assert all(s.n_points == SIDE * SIDE - block for s in rec.per_view_stats())
    assert rec.options["masks"] == str(masks.resolve())

    code, out, _ = _cli(capsys, "info", tmp_path / "out" / "project.f3r", "--json")
    info = json.loads(out)
    assert [v["masked_pixels"] for v in info["per_view"]] == [block] * 3
    code, out, _ = _cli(capsys, "info", tmp_path / "out" / "project.f3r")
    assert f"{3 * block} pixels masked in 3 view(s)" in out


def test_mask_errors_name_the_file(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _photos(tmp_path / "photos", 2)
    wrong = _masks(tmp_path / "wrong", photos[:1], size=(100, 80))
    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "photos", tmp_path / "out", "--masks", wrong)
    line = _one_error_line(err)
    assert code == 2 and "view_00.png.png" in line and "100x80" in line and "224x224" in line
    assert not (tmp_path / "out" / "project.f3r").exists()

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "view_01.png").write_bytes(b"not a png")
    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "photos", tmp_path / "out", "--masks", broken)
    assert code == 2 and "view_01.png" in _one_error_line(err)

    views = load_inputs(tmp_path / "photos", 224).views
    with pytest.raises(MaskError, match=r"view_00\.png\.png"):
        prepare_views(views, ReconstructOptions(size=224, masks=str(wrong)))


def test_add_views_keeps_masks_and_known_flags(tiny, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 4)
    for p in photos[3:]:
        p.rename(tmp_path / p.name)
    masks = _masks(tmp_path / "masks", photos)
    k = tmp_path / "k.json"
    k.write_text(json.dumps({"view_03.png": {"fx": 250.0, "fy": 250.0, "cx": 111.5, "cy": 111.5}}))
    base = reconstruct(tmp_path / "photos", tiny, ReconstructOptions(size=224))
    assert base.keep_masks is None and not base.intrinsics_known.any()
    opts = ReconstructOptions(size=224, masks=str(masks), intrinsics=str(k))
    rec = add_views(base, [tmp_path / "view_03.png"], tiny, opts)
    assert rec.n_views == 4 and rec.intrinsics_known.tolist() == [False, False, False, True]
    assert rec.keep_masks is not None and [rec.n_masked(v) for v in range(4)] == [0, 0, 0, 80 * SIDE // 4]
    np.testing.assert_array_equal(rec.intrinsics_original[3], [[250, 0, 111.5], [0, 250, 111.5], [0, 0, 1]])
    assert not _is_magenta(rec.points().rgb[rec.points().view == 3]).any()


# ----------------------------------------------------------------------------------- intrinsics


def test_known_intrinsics_reach_every_export_exactly(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pycolmap

    _photos(tmp_path / "photos")
    k = {"fx": 300.0, "fy": 310.0, "cx": 111.5, "cy": 100.25}
    kfile = tmp_path / "intrinsics.json"
    kfile.write_text(json.dumps(k))
    code, _, err = _reconstruct(
        capsys, tiny_model, tmp_path / "photos", tmp_path / "out", "--intrinsics", kfile
    )
    assert code == 0, err
    cams = json.loads((tmp_path / "out" / "cameras.json").read_text())["views"]
    for cam in cams:
        assert cam["intrinsics_source"] == "known"
        assert {key: cam[key] for key in k} == k
    colmap = pycolmap.Reconstruction(str(tmp_path / "out" / "colmap" / "sparse" / "0"))
    for cam in colmap.cameras.values():  # PINHOLE fx fy cx cy with COLMAP's +0.5 pixel centres
        assert list(cam.params) == [300.0, 310.0, 112.0, 100.75]
    nerf = json.loads((tmp_path / "out" / "transforms.json").read_text())
    assert nerf["frames"]
    for frame in nerf["frames"]:  # Nerfstudio's pixel centres are at +0.5 too
        assert [frame[key] for key in ("fl_x", "fl_y", "cx", "cy")] == [300.0, 310.0, 112.0, 100.75]
    rec = load_project(tmp_path / "out" / "project.f3r")
    assert rec.intrinsics_known.all()
    assert rec.options["intrinsics"] == str(kfile.resolve())

    # COLMAP import round trip: our own export as the intrinsics of a new run
    sparse = tmp_path / "out" / "colmap" / "sparse" / "0"
    args = ("--intrinsics", sparse, "--formats", "project")
    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "photos", tmp_path / "again", *args)
    assert code == 0, err
    again = load_project(tmp_path / "again" / "project.f3r")
    assert again.intrinsics_known.all()
    np.testing.assert_allclose(again.intrinsics_original, rec.intrinsics_original, rtol=0, atol=1e-9)

    code, out, _ = _cli(capsys, "info", tmp_path / "out" / "project.f3r")
    assert "Intrinsics   3 known, 0 estimated" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "photos", tmp_path / "x", "--intrinsics", bad)
    assert code == 2 and "bad.json" in _one_error_line(err)


def test_exif_focal_through_auto_not_estimate(tiny, tmp_path: Path) -> None:
    _photos(tmp_path / "photos", ext=".jpg", f35=28)
    f_px = 28 * math.hypot(SIDE, SIDE) / DIAG_35
    auto = reconstruct(tmp_path / "photos", tiny, ReconstructOptions(size=224))
    assert auto.intrinsics_known.all()
    np.testing.assert_allclose(auto.intrinsics_original[:, 0, 0], f_px, rtol=1e-12)
    np.testing.assert_allclose(auto.intrinsics_original[:, :2, 2], (SIDE - 1) / 2, rtol=1e-12)
    est = reconstruct(tmp_path / "photos", tiny, ReconstructOptions(size=224, intrinsics="estimate"))
    assert not est.intrinsics_known.any()
    assert not np.allclose(est.intrinsics_original[:, 0, 0], f_px)


# ------------------------------------------------------------------------------------ exclusion


def test_exclude_leaves_the_view_out_and_is_recorded(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _photos(tmp_path / "photos", 4)
    args = ("--exclude", "view_01.png", "view_03", "--formats", "project,cameras")
    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "photos", tmp_path / "out", *args)
    assert code == 0, err
    rec = load_project(tmp_path / "out" / "project.f3r")
    assert [Path(p).name for p in rec.image_paths] == ["view_00.png", "view_02.png"]
    assert rec.options["exclude"] == ["view_01.png", "view_03"]
    code, out, _ = _cli(capsys, "info", tmp_path / "out" / "project.f3r")
    assert "Excluded     view_01.png, view_03" in out

    code, _, err = _reconstruct(
        capsys, tiny_model, tmp_path / "photos", tmp_path / "x", "--exclude", "veiw_01.png"
    )
    line = _one_error_line(err)
    assert code == 2 and "veiw_01.png" in line and "view_01.png" in line  # a close name is suggested


# -------------------------------------------------------------------------------------- frames


def test_sharp_frames_through_the_cli(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = write_clip(tmp_path / "clip.avi", 60)  # frame i blurred when i % 3 == 1
    code, _, err = _reconstruct(
        capsys,
        tiny_model,
        clip,
        tmp_path / "out",
        *("--video-fps", "7.5", "--formats", "project"),  # 15 bins of 4 frames
    )
    assert code == 0, err
    rec = load_project(tmp_path / "out" / "project.f3r")
    idx = [int(re.fullmatch(r"frame_(\d{6})\.jpg", Path(p).name).group(1)) for p in rec.image_paths]
    assert len(idx) == 15 and all(i % 3 != 1 for i in idx), idx
    assert rec.options["frames"] == "sharp"
    # uniform sampling at the same rate takes blurred frames (0, 4, 8, ...): the test can tell
    uniform = extract_video_frames(clip, fps=7.5, frames_dir=tmp_path / "u")
    assert any(f.index % 3 == 1 for f in uniform)
    assert _video_folder_name(clip, 7.5, 100, "sharp") != _video_folder_name(clip, 7.5, 100, "uniform")


# ------------------------------------------------------------------------- project and points


def test_project_keeps_masks_and_known_flags(tmp_path: Path) -> None:
    rec = make_synthetic_reconstruction(3)
    masks = []
    for v in range(rec.n_views):
        m = np.ones(rec.view_shape(v), bool)
        m[v : v + 5, 2:9] = False
        masks.append(m)
    rec = dataclasses.replace(rec, keep_masks=tuple(masks), intrinsics_known=np.array([True, False, True]))
    back = load_project(save_project(rec, tmp_path / "p.f3r"))
    assert back.intrinsics_known.tolist() == [True, False, True]
    assert back.keep_masks is not None
    for a, b in zip(rec.keep_masks, back.keep_masks, strict=True):
        np.testing.assert_array_equal(a, b)
    plain = load_project(save_project(make_synthetic_reconstruction(3), tmp_path / "q.f3r"))
    assert plain.keep_masks is None and not plain.intrinsics_known.any()
    # masked pixels are in no point set and no statistic
    pts = back.points()
    assert len(pts) == sum(int(m.sum()) for m in masks)
    for v, m in enumerate(masks):
        sel = pts.pixel[pts.view == v]
        assert m[sel[:, 1], sel[:, 0]].all()
    assert [s.n_points for s in back.per_view_stats()] == [int(m.sum()) for m in masks]
    assert len(back.points("local")) == len(pts)


@pytest.mark.parametrize("bad_member", ["short", "wide"])
def test_project_with_a_bad_mask_member_is_refused(tmp_path: Path, bad_member: str) -> None:
    import zipfile

    rec = make_synthetic_reconstruction(2)
    rec = dataclasses.replace(rec, keep_masks=tuple(np.ones(rec.view_shape(v), bool) for v in range(2)))
    src = save_project(rec, tmp_path / "p.f3r")
    with zipfile.ZipFile(src) as zf:
        meta, arrays = zf.read("meta.json"), zf.read("arrays.npz")
    import io

    with zipfile.ZipFile(io.BytesIO(arrays)) as inner:
        members = {n: inner.read(n) for n in inner.namelist()}
    buf = io.BytesIO()
    n_bytes = (sum(rec.view_shape(v)[0] * rec.view_shape(v)[1] for v in range(2)) + 7) // 8
    if bad_member == "short":
        np.save(buf, np.zeros(3, np.uint8))  # far fewer bytes than the views' pixels need
    else:
        np.save(buf, np.full(n_bytes, 256 + 255, np.uint16))  # the right length, but a cast would wrap
    members["keep_masks_packed.npy"] = buf.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as inner:
        for n, data in members.items():
            inner.writestr(n, data)
    bad = tmp_path / "bad.f3r"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("meta.json", meta)
        zf.writestr("arrays.npz", out.getvalue())
    with pytest.raises(ProjectFileError, match="keep_masks_packed"):
        load_project(bad)


def test_exclude_errors() -> None:
    from fast3r_core.pipeline import exclude_views

    with pytest.raises(InputError, match="no input is named"):
        exclude_views([], ["a.jpg"])


def test_exclude_by_path_when_two_inputs_share_a_file_name(tmp_path) -> None:
    """Two folders with the same file names: a path leaves out that one file, a file name both."""
    from fast3r_core.images import ViewInput
    from fast3r_core.pipeline import exclude_views

    rgb = np.zeros((4, 4, 3), np.uint8)
    views = [
        ViewInput(rgb, tmp_path / cam / name, (4, 4), (4, 4), (0, 0, 4, 4), f"{cam}/{name}")
        for cam in ("camA", "camB")
        for name in ("view_00.png", "view_01.png")
    ]
    kept = exclude_views(views, [str(tmp_path / "camB" / "view_00.png")])
    assert [v.name for v in kept] == ["camA/view_00.png", "camA/view_01.png", "camB/view_01.png"]
    assert len(exclude_views(views, ["view_00.png"])) == 2


def test_exclude_missing_ok_ignores_names_that_match_nothing(tmp_path) -> None:
    """Names taken from an earlier result (a video's frames, chosen another way since) may match no
    input: with ``missing_ok`` they are ignored and listed, the others still apply; never by default."""
    from fast3r_core.images import ViewInput
    from fast3r_core.pipeline import exclude_views, unmatched_names

    rgb = np.zeros((4, 4, 3), np.uint8)
    views = [
        ViewInput(rgb, tmp_path / f"frame_{i:06d}.jpg", (4, 4), (4, 4), (0, 0, 4, 4), f"frame_{i:06d}.jpg")
        for i in (0, 5, 9)
    ]
    names = ["frame_000010.jpg", "frame_000005.jpg"]
    kept = exclude_views(views, names, missing_ok=True)
    assert [v.path.name for v in kept] == ["frame_000000.jpg", "frame_000009.jpg"]
    assert unmatched_names(views, names) == ["frame_000010.jpg"]
    with pytest.raises(InputError, match="frame_000010"):
        exclude_views(views, names)
