"""Hostile files and faults (issue 16): crafted projects and checkpoints are data, nothing leaks,
nothing runs, nothing of the user's is changed or lost.

Every crafted file is made by the test itself, in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fast3r_core import cli
from fast3r_core.cli import commands_reconstruct, output_folder
from fast3r_core.errors import ProjectFileError
from fast3r_core.export import export_colmap, export_nerfstudio
from fast3r_core.project_file import load_project, save_project
from fast3r_core.result import Reconstruction
from tests.core.recon_factory import make_synthetic_reconstruction, stand_in_reconstruction

SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.LOG_DIR_ENV, str(tmp_path / "logs"))
    monkeypatch.setenv("FAST3R_CACHE_DIR", str(tmp_path / "cache"))


def _main(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _read_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_members(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compression, allowZip64=True) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _edit_meta(path: Path, edit: Any) -> None:
    """Rewrite the project's meta.json through ``edit(meta) -> meta | bytes``."""
    members = _read_members(path)
    meta = json.loads(members["meta.json"])
    out = edit(meta)
    if not isinstance(out, bytes):
        out = json.dumps(out if out is not None else meta).encode()
    members["meta.json"] = out
    _write_members(path, members)


def _project(tmp_path: Path, n_views: int = 3, **kwargs: Any) -> tuple[Reconstruction, Path]:
    rec = make_synthetic_reconstruction(n_views, image_dir=tmp_path / "photos", **kwargs)
    path = save_project(rec, tmp_path / "proj" / "p.f3r")
    return rec, path


def _all_bytes(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file()]


# ------------------------------------------------------------------------------------------------
# 1. A crafted project never exports private files
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["colmap", "nerfstudio"])
def test_project_pointing_at_private_files_exports_only_images(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _project(tmp_path)
    secret_dir = tmp_path / "home" / ".ssh"
    secret_dir.mkdir(parents=True)
    (secret_dir / "id_rsa").write_bytes(SECRET)
    (secret_dir / "id_ed25519.jpg").write_bytes(SECRET)

    def edit(meta: dict) -> dict:
        # view 0: absolute path to the key; view 1: "../" relative path to a key named like a photo
        meta["images"][0] = {"relative": None, "absolute": str(secret_dir / "id_rsa")}
        rel = os.path.relpath(secret_dir / "id_ed25519.jpg", path.parent)
        meta["images"][1] = {"relative": rel, "absolute": "/nonexistent/x.jpg"}
        return meta

    _edit_meta(path, edit)
    out = tmp_path / "export"
    code, _, err = _main(capsys, "export", path, "--format", fmt, "--out", out)
    assert code == 0, err
    assert all(SECRET not in data for data in _all_bytes(out))
    images = sorted(p.name for p in (out / "images").iterdir())
    assert images == ["view_02.png"]
    # the export says which images it could not include
    assert "id_rsa" in err and "id_ed25519.jpg" in err and "2 image(s)" in err


def test_image_of_another_size_is_not_copied(tmp_path: Path) -> None:
    _, path = _project(tmp_path)
    from PIL import Image

    # a real photo of the user's, but not the one the view was made from (wrong size)
    other = tmp_path / "private.png"
    Image.new("RGB", (33, 17)).save(other)
    _edit_meta(path, lambda m: m["images"].__setitem__(2, {"relative": None, "absolute": str(other)}))
    report = export_colmap(load_project(path), tmp_path / "c")
    assert report.missing_images == (str(other),)
    assert sorted(p.name for p in (tmp_path / "c" / "images").iterdir()) == ["view_00.png", "view_01.png"]


# ------------------------------------------------------------------------------------------------
# 3. Editing an exported photo never edits the original
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exporter", [export_colmap, export_nerfstudio])
def test_exported_images_are_copies_by_default(tmp_path: Path, exporter: Any) -> None:
    rec, _ = _project(tmp_path)
    exporter(rec, tmp_path / "out")
    exported = tmp_path / "out" / "images" / "view_00.png"
    original = Path(rec.image_paths[0])
    before = original.read_bytes()
    assert os.stat(exported).st_ino != os.stat(original).st_ino
    # what a 3DGS script does: rewrite the exported image in place
    with open(exported, "r+b") as f:
        f.write(b"\0" * 64)
    assert original.read_bytes() == before

    exporter(rec, tmp_path / "linked", link_images=True)  # only on request
    assert os.stat(tmp_path / "linked" / "images" / "view_00.png").st_ino == os.stat(original).st_ino


def test_cli_link_images_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec, path = _project(tmp_path)
    original = Path(rec.image_paths[0])
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", tmp_path / "copy")
    assert code == 0, err
    assert os.stat(tmp_path / "copy" / "images" / "view_00.png").st_ino != os.stat(original).st_ino
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", tmp_path / "link", "--link-images")
    assert code == 0, err
    assert os.stat(tmp_path / "link" / "images" / "view_00.png").st_ino == os.stat(original).st_ino


# ------------------------------------------------------------------------------------------------
# 4. The outputs of a large run are counted, bounded, and refused before the run when they cannot fit
# ------------------------------------------------------------------------------------------------
def _big_reconstruction(n_views: int = 64, side: int = 128) -> Reconstruction:
    """A stand-in result of ``n_views`` square views (random finite points): n_views * side**2 points."""
    rng = np.random.default_rng(0)
    pts = [rng.standard_normal((side, side, 3), dtype=np.float32) for _ in range(n_views)]
    conf = [1 + rng.random((side, side), dtype=np.float32) for _ in range(n_views)]
    colors = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n_views)]
    maps = {"pts3d": pts, "conf": conf, "pts3d_local": pts, "conf_local": conf, "colors": colors}
    return stand_in_reconstruction(maps)


def _traced_peak(fn: Any) -> int:
    """Peak bytes allocated (numpy included) while ``fn()`` runs, above what was allocated before."""
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_confidence_ordering_memory_is_as_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from fast3r_core import output_memory, point_set

    monkeypatch.setattr(point_set, "_CHUNK", 1 << 15)  # the chunks of a run of 100 M points: ~1 %
    rec = _big_reconstruction()
    n = rec.n_pixels
    peak = _traced_peak(lambda: rec.global_points)
    budget = (output_memory.POINT_SET_BYTES + output_memory.ORDERING_TRANSIENT_BYTES) * n
    assert peak <= budget + 2_000_000, f"{peak / n:.1f} bytes a point"


@pytest.mark.parametrize("fmt", ["ply", "glb", "nerfstudio", "colmap"])
def test_point_exports_stream_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    from fast3r_core import export, output_memory, point_set
    from fast3r_core.export import glb, ply

    monkeypatch.setattr(point_set, "_CHUNK", 1 << 15)
    monkeypatch.setattr(ply, "CHUNK_POINTS", 1 << 15)
    monkeypatch.setattr(glb, "CHUNK_POINTS", 1 << 15)
    rec = _big_reconstruction()
    _ = rec.global_points  # built once and kept (counted as "points")
    n = rec.n_pixels
    spec = export.FORMATS[fmt]
    peak = _traced_peak(lambda: spec.export(rec, tmp_path / f"out.{fmt}"))
    per_point = output_memory.COLMAP_BYTES_PER_POINT if fmt == "colmap" else 0
    assert peak <= per_point * n + 6_000_000, f"{fmt}: {peak / n:.1f} bytes a point"


def test_outputs_that_cannot_fit_are_refused_before_the_run() -> None:
    from fast3r_core.errors import InsufficientMemoryError
    from fast3r_core.output_memory import check_output_memory, estimate_output_memory

    shapes = [(224, 224)] * 2000
    est = estimate_output_memory(shapes, ["ply", "glb", "colmap", "project"], top_percent=90)
    assert est.n_points == 2000 * 224 * 224
    assert 7e9 < est.total < 10e9  # bench/outputs.py measures this run (bench/README.md)
    with pytest.raises(InsufficientMemoryError, match=r"--max-views \d+"):
        check_output_memory(shapes, ["colmap"], top_percent=90, available=6 * 1024**3)
    check_output_memory(shapes[:500], ["colmap"], top_percent=90, available=6 * 1024**3)


def test_cli_refuses_a_result_too_big_before_loading_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import psutil

    from fast3r_core import weights
    from tests.tiny import write_views

    write_views(tmp_path / "images", 3)

    class _Mem:
        available = 1_000_000  # 1 MB: 3 views of 224 px do not fit

    monkeypatch.setattr(psutil, "virtual_memory", lambda: _Mem())
    monkeypatch.setattr(weights, "load_model", lambda *a, **k: pytest.fail("the model must not be loaded"))
    out = tmp_path / "out"
    code, _, err = _main(capsys, "reconstruct", tmp_path / "images", "-o", out, "-m", "demo", "--size", "224")
    assert code == 2 and "memory" in err and "--max-views" in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------
# 5. Zip bombs: declared sizes checked before reading, only the members in use are read
# ------------------------------------------------------------------------------------------------
def test_meta_json_bomb_is_refused_unread(tmp_path: Path) -> None:
    _, path = _project(tmp_path)
    members = _read_members(path)
    meta = members["meta.json"]
    bomb = meta[:-1] + b" " * (100 * 1024**2) + meta[-1:]  # 100 MB, ~100 kB deflated
    _write_members(path, {"meta.json": bomb, "arrays.npz": members["arrays.npz"]}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2_000_000
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ProjectFileError, match=r"meta\.json declares \d+ bytes"):
        load_project(path)
    assert tracemalloc.get_traced_memory()[1] < 5_000_000
    tracemalloc.stop()


def _with_npz_members(path: Path, extra: dict[str, bytes], replace: bool = False) -> None:
    """Rewrite the project's arrays.npz with ``extra`` members (deflated) added or replacing others."""
    import io

    members = _read_members(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(members["arrays.npz"])) as src, zipfile.ZipFile(buf, "w") as dst:
        for name in src.namelist():
            if not (replace and name in extra):
                dst.writestr(name, src.read(name))
        for name, data in extra.items():
            dst.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    members["arrays.npz"] = buf.getvalue()
    _write_members(path, members)


def test_unused_npz_member_is_never_read(tmp_path: Path) -> None:
    import tracemalloc

    rec, path = _project(tmp_path)
    _with_npz_members(path, {"junk.npy": bytes(300 * 1024**2)})  # 300 MB of zeros, ~300 kB deflated
    tracemalloc.start()
    back = load_project(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert back.n_views == rec.n_views
    assert peak < 50_000_000, f"{peak / 1e6:.0f} MB"


@pytest.mark.parametrize("how", ["size", "shape"])
def test_oversized_array_member_is_refused_unread(tmp_path: Path, how: str) -> None:
    import io

    _, path = _project(tmp_path)
    if how == "size":  # a pointmap member that declares 300 MB
        buf = io.BytesIO()
        np.save(buf, np.zeros((300, 1024, 1024), np.uint8))
        data = buf.getvalue()
    else:  # a header announcing a huge array (numpy would allocate it before reading)
        buf = io.BytesIO()
        np.save(buf, np.zeros((1, 1, 3), np.float32))
        data = buf.getvalue().replace(b"(1, 1, 3)", b"(90000, 90000, 3)")
    _with_npz_members(path, {"pts3d_0000.npy": data}, replace=True)
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ProjectFileError, match="corrupt"):
        load_project(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB"


# ------------------------------------------------------------------------------------------------
# 6. Malformed meta.json values: exit 2, naming the field
# ------------------------------------------------------------------------------------------------
def _raw_replace(old: str, new: str) -> Any:
    def edit(meta: dict) -> bytes:
        text = json.dumps(meta)
        assert old in text
        return text.replace(old, new, 1).encode()

    return edit


DEEP = '"options": {"x": ' + "[" * 100000 + "]" * 100000 + ", "
MALFORMED = {
    "n_views_5000_digits": (
        lambda m: _raw_replace('"n_views": 3', '"n_views": ' + "9" * 5000)(m),
        "meta.json",
    ),
    "n_views_infinity": (_raw_replace('"n_views": 3', '"n_views": Infinity'), "n_views"),
    "n_views_float": (lambda m: {**m, "n_views": 3.0}, "n_views"),
    "n_views_huge": (lambda m: {**m, "n_views": 10**12}, "n_views"),
    "images_string": (lambda m: {**m, "images": "abc"}, "images"),
    "images_numbers": (lambda m: {**m, "images": [1, 2, 3]}, "images[0]"),
    "timings_list": (lambda m: {**m, "timings": [1, 2]}, "timings"),
    "deep_nesting": (_raw_replace('"options": {', DEEP), "meta.json"),
    "passes_string": (lambda m: {**m, "runs": [{"views": [0, 1, 2], "passes": "3"}]}, "runs[0].passes"),
    "run_views_out_of_range": (lambda m: {**m, "runs": [{"views": [0, 7]}]}, "runs[0].views"),
    "view_shapes_negative": (lambda m: {**m, "view_shapes": [[-1, 5]] * 3}, "view_shapes[0]"),
    "model_name_number": (lambda m: {**m, "model_name": 5}, "model_name"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_meta_is_a_project_error_naming_the_field(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, field = MALFORMED[case]
    _, path = _project(tmp_path)
    _edit_meta(path, edit)
    with pytest.raises(ProjectFileError) as info:
        load_project(path)
    assert field in str(info.value)
    code, _, err = _main(capsys, "info", path)
    assert code == 2, err
    assert err.startswith("error:") and field in err and "internal error" not in err


# ------------------------------------------------------------------------------------------------
# 7. NaN / inf: refused on load; never written as JSON
# ------------------------------------------------------------------------------------------------
def _with_array(path: Path, key: str, edit: Any) -> None:
    import io

    members = _read_members(path)
    with np.load(io.BytesIO(members["arrays.npz"])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays[key] = edit(arrays[key].copy())
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    members["arrays.npz"] = buf.getvalue()
    _write_members(path, members)


@pytest.mark.parametrize("key", ["cam_to_world", "intrinsics_original"])
@pytest.mark.parametrize("fmt", ["glb", "colmap", "cameras", "nerfstudio"])
def test_non_finite_cameras_are_refused(
    tmp_path: Path, key: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _project(tmp_path)

    def poison(a: np.ndarray) -> np.ndarray:
        a[1, 0, 0] = np.nan
        a[2, 1, 1] = np.inf
        return a

    _with_array(path, key, poison)
    out = tmp_path / "out"
    code, _, err = _main(capsys, "export", path, "-f", fmt, "-o", out)
    assert code == 2 and key in err and "1, 2" in err
    assert not out.exists()


def _shear(a: np.ndarray) -> np.ndarray:
    a[1, 0, 1] = 0.5  # the rotation is no longer one
    return a


def _mirror(a: np.ndarray) -> np.ndarray:
    a[2, :3, 0] *= -1  # orthonormal, det -1
    return a


def _zero_focal(a: np.ndarray) -> np.ndarray:
    a[1, 0, 0] = 0.0
    return a


def _negative_focal(a: np.ndarray) -> np.ndarray:
    a[2, 1, 1] = -100.0
    return a


def _absurd_centre(a: np.ndarray) -> np.ndarray:
    a[1, 0, 2] = -1e12
    return a


@pytest.mark.parametrize(
    ("key", "edit", "views"),
    [
        ("cam_to_world", _shear, "1"),
        ("cam_to_world", _mirror, "2"),
        ("intrinsics", _zero_focal, "1"),
        ("intrinsics_original", _negative_focal, "2"),
        ("intrinsics_original", _absurd_centre, "1"),
    ],
)
def test_cameras_no_export_could_write_are_refused_on_loading(
    tmp_path: Path, key: str, edit: Any, views: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pose that is not a rotation, a focal length <= 0 or a principal point a trillion pixels away:
    the project is refused when it is read (by every command), not half-exported."""
    _, path = _project(tmp_path)
    _with_array(path, key, edit)
    out = tmp_path / "out"
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", out)
    assert code == 2 and key in err and f"view(s) {views})" in err
    assert not out.exists()
    code, _, err = _main(capsys, "info", path)
    assert code == 2 and key in err


def test_in_memory_non_finite_camera_never_writes_invalid_json(tmp_path: Path) -> None:
    import dataclasses

    from fast3r_core.errors import ExportError
    from fast3r_core.export import export_cameras_json

    rec = make_synthetic_reconstruction(2)
    c2w = rec.cam_to_world.copy()
    c2w[1, 0, 3] = np.nan
    bad = dataclasses.replace(rec, cam_to_world=c2w)
    with pytest.raises(ExportError, match="not finite"):
        export_cameras_json(bad, tmp_path / "c.json")
    with pytest.raises(ExportError, match="not finite"):
        export_nerfstudio(bad, tmp_path / "ns", copy_images=False)
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "ns" / "transforms.json").exists()
    assert not (tmp_path / "ns" / "points.ply").exists(), "nothing written before the refusal"


# ------------------------------------------------------------------------------------------------
# 8. Terminal escape sequences in names are shown escaped, never sent to the terminal
# ------------------------------------------------------------------------------------------------
EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\r"


def test_info_escapes_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = make_synthetic_reconstruction(2, model_name=f"model{EVIL}")
    import dataclasses

    rec = dataclasses.replace(rec, image_paths=(f"/photos/a{EVIL}.jpg", "/photos/b.jpg"))
    path = save_project(rec, tmp_path / "p.f3r")
    code, out, err = _main(capsys, "info", path)
    assert code == 0, err
    for ch in ("\x1b", "\x07", "\x9b", "\u202e", "\r"):
        assert ch not in out and ch not in err
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil\\x0d" in out

    code, out, err = _main(capsys, "info", path, "--json")
    assert code == 0, err
    assert "\x9b" not in out and "\x1b" not in out and "\u202e" not in out
    doc = json.loads(out)
    assert doc["model"] == f"model{EVIL}"  # escaped for the terminal, the same string for a program
    assert doc["per_view"][0]["image"].endswith(f"a{EVIL}.jpg")


def test_warnings_escape_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    rec = make_synthetic_reconstruction(2)
    rec = dataclasses.replace(rec, image_paths=(f"/nonexistent/a{EVIL}.png", "/nonexistent/b.png"))
    path = save_project(rec, tmp_path / "p.f3r")
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", tmp_path / "c")
    assert code == 0
    assert "not in the export" in err and "\x1b" not in err and "\\x1b" in err


# ------------------------------------------------------------------------------------------------
# 10. Interrupted writes: exports are atomic, stale files of killed runs are cleaned, SIGTERM = Ctrl-C
# ------------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(proc.stdout)


def _hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".partial-" in p.name or p.name.endswith(".tmp"))


@pytest.mark.parametrize("fmt", ["colmap", "nerfstudio"])
def test_ctrl_c_during_a_folder_export_leaves_nothing(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fast3r_core.export import colmap, nerfstudio

    _, path = _project(tmp_path)

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # after sparse/0/*.bin (or transforms.json) were written

    monkeypatch.setattr(colmap if fmt == "colmap" else nerfstudio, "place_images", interrupt)
    out = tmp_path / "export"
    code, _, err = _main(capsys, "export", path, "-f", fmt, "-o", out)
    assert code == 130, err
    assert not out.exists()
    assert _hidden_leftovers(tmp_path) == []


def test_stale_files_of_killed_runs_are_cleaned_at_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _project(tmp_path)
    dead = _dead_pid()
    out = tmp_path / "colmap"
    stale_dir = tmp_path / f".colmap.partial-{dead}-abc123"
    (stale_dir / "sparse").mkdir(parents=True)
    (stale_dir / "sparse" / "big.bin").write_bytes(b"x" * 1000)
    live_dir = tmp_path / f".colmap.partial-{os.getpid()}-live99"  # a run in progress: kept
    live_dir.mkdir()
    stale_tmp = tmp_path / f".points.ply.{dead}-q1w2e3.tmp"
    stale_tmp.write_bytes(b"x")
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", out)
    assert code == 0, err
    assert not stale_dir.exists() and live_dir.exists()
    code, _, err = _main(capsys, "export", path, "-f", "ply", "-o", tmp_path / "points.ply")
    assert code == 0, err
    assert not stale_tmp.exists()


def test_outputs_left_aside_by_a_killed_swap_are_restored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _project(tmp_path)
    out = tmp_path / "colmap"
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", out)
    assert code == 0, err
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    # killed between "move the old outputs aside" and "move the new ones in"
    aside = tmp_path / f".colmap.old-{_dead_pid()}-zz9"
    os.rename(out, aside)
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", out)
    assert code == 0, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert not aside.exists()


def test_rerun_over_a_previous_output_swaps_whole_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A previous output is replaced as a whole (two renames), never merged file by file: a killed
    run cannot leave cameras.json of one run beside transforms.json of another."""
    from tests.tiny import make_tiny_model, write_views

    model = make_tiny_model(tmp_path / "model")
    write_views(tmp_path / "a", 3)
    write_views(tmp_path / "b", 2)
    out = tmp_path / "out"
    args = ("-o", out, "-m", model, "--size", "224", "--formats", "cameras,nerfstudio")
    code, _, err = _main(capsys, "reconstruct", tmp_path / "a", *args)
    assert code == 0, err
    monkeypatch.setattr(output_folder.OutputFolder, "_merge", lambda *a: pytest.fail("merged file by file"))
    code, _, err = _main(capsys, "reconstruct", tmp_path / "b", *args)
    assert code == 0, err
    frames = json.loads((out / "transforms.json").read_text())["frames"]
    assert len(json.loads((out / "cameras.json").read_text())["views"]) == len(frames) == 2
    assert _hidden_leftovers(tmp_path) == []


def test_sigterm_cleans_up_like_ctrl_c(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    from tests.tiny import write_views

    write_views(tmp_path / "images", 2)
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from fast3r_core import cli, images, weights

        def terminate(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            raise SystemExit("SIGTERM was ignored")

        weights.load_model = terminate
        sys.exit(cli.main(["reconstruct", {str(tmp_path / "images")!r}, "-o", {str(tmp_path / "out")!r},
                           "-m", "demo", "--size", "224"]))
        """
    )
    env = dict(os.environ, FAST3R_LOG_DIR=str(tmp_path / "logs"), FAST3R_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == cli.EXIT_TERMINATED, proc.stderr
    assert "terminated" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() and _hidden_leftovers(tmp_path) == []


def test_video_frames_go_to_the_cache_dir_and_are_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import cv2

    from fast3r_core import images

    cache = tmp_path / "cache"
    monkeypatch.setenv("FAST3R_CACHE_DIR", str(cache))
    root = cache / "video-frames"
    old = root / "old-0123456789abcdef"
    old.mkdir(parents=True)
    (old / "frame_000000.jpg").write_bytes(b"x" * 100)
    (old / "frames.json").write_text("{}")
    stamp = time.time() - 40 * 86400  # unused for 40 days
    os.utime(old / "frames.json", (stamp, stamp))
    user = root / "mine"  # not ours: never touched
    user.mkdir()
    (user / "notes.txt").write_text("x")

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    frames = images.extract_video_frames(video, fps=5.0)
    assert frames and all(root in f.path.parents for f in frames)
    assert not old.exists() and (user / "notes.txt").exists()


# ------------------------------------------------------------------------------------------------
# 11. Never overwrite a file the program did not write
# ------------------------------------------------------------------------------------------------
def test_export_refuses_a_folder_with_the_users_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _project(tmp_path)
    out = tmp_path / "mine"
    (out / "images").mkdir(parents=True)
    (out / "images" / "view_00.png").write_bytes(b"my own photo")
    (out / "notes.txt").write_text("mine")
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", out)
    assert code == 2 and "--overwrite" in err and "notes.txt" in err
    assert (out / "images" / "view_00.png").read_bytes() == b"my own photo"
    assert sorted(p.name for p in out.iterdir()) == ["images", "notes.txt"]
    code, _, err = _main(capsys, "export", path, "-f", "colmap", "-o", out, "--overwrite")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine" and (out / "sparse" / "0" / "images.bin").is_file()


@pytest.mark.parametrize(
    ("fmt", "name"), [("ply", "points.ply"), ("glb", "scene.glb"), ("cameras", "c.json")]
)
def test_export_refuses_to_replace_the_users_file(
    tmp_path: Path, fmt: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _project(tmp_path)
    dest = tmp_path / name
    dest.write_bytes(b"the user's own file")
    code, _, err = _main(capsys, "export", path, "-f", fmt, "-o", dest)
    assert code == 2 and "--overwrite" in err
    assert dest.read_bytes() == b"the user's own file"
    code, _, err = _main(capsys, "export", path, "-f", fmt, "-o", dest, "--overwrite")
    assert code == 0, err
    code, _, err = _main(capsys, "export", path, "-f", fmt, "-o", dest)  # ours now: replaced freely
    assert code == 0, err


# ------------------------------------------------------------------------------------------------
# 12. add -o checks that it can write before the run
# ------------------------------------------------------------------------------------------------
def test_add_checks_the_destination_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tempfile

    from fast3r_core import weights
    from tests.tiny import write_views

    _, path = _project(tmp_path)
    write_views(tmp_path / "more", 1)
    dest_dir = tmp_path / "readonly"
    dest_dir.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:
        if dir is not None and Path(dir) == dest_dir:
            raise PermissionError(13, "Permission denied")  # root ignores chmod: simulate it
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(weights, "load_model", lambda *a, **k: pytest.fail("ran before checking -o"))
    monkeypatch.setattr(commands_reconstruct, "_precheck_model", lambda *a: None)
    code, _, err = _main(capsys, "add", path, tmp_path / "more", "-o", dest_dir / "more.f3r", "-m", "demo")
    assert code == 2, err
    assert "Permission denied" in err and str(dest_dir) in err


# ------------------------------------------------------------------------------------------------
# 9. A config is checked against the weights' header (and bounded) before anything is built
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("model"))


def _model_with_config(tmp_path: Path, tiny_folder: Path, edit: Any) -> Path:
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_folder, folder)
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize(
    ("part", "key", "value", "message"),
    [
        ("encoder_args", "depth", 10**6, "encoder_args.depth"),
        ("decoder_args", "depth", 10**6, "decoder_args.depth"),
        ("encoder_args", "embed_dim", 2**40, "encoder_args.embed_dim"),
        ("decoder_args", "mlp_ratio", 1e9, "decoder_args.mlp_ratio"),
        ("encoder_args", "depth", 200, "encoder depth 200 in the config, 2 blocks in the weights"),
        ("decoder_args", "depth", 100, "decoder depth 100 in the config, 4 blocks in the weights"),
        ("decoder_args", "mlp_ratio", 8, "decoder.dec_blocks.0.mlp.fc1.weight"),
    ],
)
def test_absurd_config_beside_real_weights_is_refused_before_building(
    tmp_path: Path,
    tiny_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    part: str,
    key: str,
    value: Any,
    message: str,
) -> None:
    from fast3r_core import weights
    from fast3r_core.errors import CheckpointError, ConfigError
    from fast3r_core.model import fast3r

    folder = _model_with_config(tmp_path, tiny_folder, lambda c: c[part].__setitem__(key, value))

    def no_build(*args: Any, **kwargs: Any) -> None:
        pytest.fail("the model was built before the config was checked")

    monkeypatch.setattr(fast3r.Fast3R, "__init__", no_build)
    with pytest.raises((ConfigError, CheckpointError), match=re.escape(message)):
        weights.load_model(folder, "cpu")


def test_adding_views_counts_the_grown_result(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    from fast3r_core import pipeline, weights
    from fast3r_core.errors import InsufficientMemoryError
    from tests.tiny import write_views

    model = weights.load_model(tiny_folder, "cpu")
    write_views(tmp_path / "a", 2)
    write_views(tmp_path / "b", 2, size=(120, 90))
    opts = pipeline.ReconstructOptions(size=224)
    base = pipeline.reconstruct(tmp_path / "a", model, opts)

    class _Mem:
        available = 2_000_000  # far below what 4 views of 224 px need

    monkeypatch.setattr(psutil, "virtual_memory", lambda: _Mem())
    monkeypatch.setattr(pipeline, "_plan_addition", lambda *a: pytest.fail("ran before the memory check"))
    with pytest.raises(InsufficientMemoryError, match="--max-views"):
        pipeline.add_views(base, tmp_path / "b", model, opts)
