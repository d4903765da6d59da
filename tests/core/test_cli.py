"""End-to-end tests of the ``fast3r`` command line (fast3r_core/cli/), in-process and as a subprocess.

A tiny model (tests/tiny.py: the parity ``model_small`` config with narrow DPT heads and 4 decoder
blocks, random weights) keeps each reconstruction around a second on the CPU. Inputs are small
synthetic PNGs, also from tests/tiny.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from fast3r_core import cli
from fast3r_core.cli import console
from tests.tiny import make_tiny_model, write_views

N_VIEWS = 4  # the default ``n`` of tests.tiny.write_views


# ------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------------
def _isolated_env(root: Path) -> dict[str, str]:
    """Environment variables that keep logs, model cache and video frames inside ``root``."""
    return {
        cli.LOG_DIR_ENV: str(root / "logs"),
        "FAST3R_CACHE_DIR": str(root / "cache"),
        "XDG_CACHE_HOME": str(root / "xdg-cache"),
        "HF_HUB_OFFLINE": "1",
    }


def _must_not_run(reason: str) -> Callable[..., None]:
    """A stand-in for a step that must not be reached: it fails the test with ``reason``."""

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError(reason)

    return must_not_run


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in _isolated_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    return tmp_path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight Fast3R saved as config.json + model.safetensors."""
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One full ``reconstruct --json`` run (all formats) shared by the read-back tests."""
    root = tmp_path_factory.mktemp("run")
    images = root / "images"
    write_views(images)
    out = root / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, _isolated_env(root)),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        code = cli.main(
            [
                *("reconstruct", str(images), "--out", str(out), "--model", str(tiny_model)),
                *("--size", "224", "--json", "--conf-percentile", "0"),
            ]
        )
    assert code == 0, stderr.getvalue()
    return {"summary": json.loads(stdout.getvalue()), "stderr": stderr.getvalue(), "out": out, "root": root}


def _main(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _reconstruct(
    capsys: pytest.CaptureFixture[str], model: Path, inputs: list[Path] | Path, out: Path, *extra: str
) -> tuple[int, str, str]:
    paths = inputs if isinstance(inputs, list) else [inputs]
    return _main(
        capsys,
        "reconstruct",
        *paths,
        "--out",
        out,
        "--model",
        model,
        "--size",
        "224",
        "--formats",
        "ply",
        *extra,
    )


def _one_error_line(err: str, prefix: str = "error:") -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    errors = [ln for ln in lines if ln.startswith(prefix)]
    assert len(errors) == 1, err
    return errors[0]


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name]


# ------------------------------------------------------------------------------------------------
# reconstruct: every output, read back
# ------------------------------------------------------------------------------------------------
def test_reconstruct_summary(run: dict) -> None:
    s = run["summary"]
    assert s["status"] == "ok"
    assert s["views"] == N_VIEWS
    assert s["skipped"] == []
    assert [Path(p) for p in s["images"]] == sorted((run["root"] / "images").iterdir())
    assert s["points_total"] == N_VIEWS * 224 * 224
    assert s["points_written"]["ply"] == s["points_total"]  # --conf-percentile 0 keeps all
    assert s["points_written"]["glb"] == s["points_total"]
    assert set(s["outputs"]) == set(cli.RECONSTRUCT_FORMATS)
    for path in s["outputs"].values():
        assert Path(path).exists()
    for key in ("load_images", "load_model", "inference", "poses", "export", "total"):
        assert s["timings"][key] >= 0
    err = s["colmap_mean_reprojection_error_px"]
    assert err is None or 0 <= err <= 2.0  # the exporter drops points beyond 2 px
    assert _leftovers(run["out"].parent) == []


def test_reconstruct_ply_and_glb_read_back(run: dict) -> None:
    import trimesh

    cloud = trimesh.load(run["out"] / "points.ply")
    assert len(cloud.vertices) == run["summary"]["points_written"]["ply"]
    scene = trimesh.load(run["out"] / "scene.glb")
    assert isinstance(scene, trimesh.Scene) and scene.geometry


def test_reconstruct_colmap_reads_back(run: dict) -> None:
    pycolmap = pytest.importorskip("pycolmap")
    recon = pycolmap.Reconstruction(str(run["out"] / "colmap" / "sparse" / "0"))
    n_posed = N_VIEWS - len(run["summary"]["failed_poses"])
    assert recon.num_images() == n_posed
    assert recon.num_points3D() == run["summary"]["points_written"]["colmap"]
    for image in recon.images.values():
        assert (run["out"] / "colmap" / "images" / image.name).is_file()


def test_reconstruct_json_outputs_parse(run: dict) -> None:
    cams = json.loads((run["out"] / "cameras.json").read_text(encoding="utf-8"))
    assert len(cams["views"]) == N_VIEWS
    assert cams["views"][0]["width"] == 128 and cams["views"][0]["height"] == 96
    transforms = json.loads((run["out"] / "transforms.json").read_text(encoding="utf-8"))
    assert len(transforms["frames"]) == N_VIEWS - len(run["summary"]["failed_poses"])
    for frame in transforms["frames"]:
        assert (run["out"] / frame["file_path"]).is_file()
    assert (run["out"] / transforms["ply_file_path"]).is_file()


def test_reconstruct_project_loads(run: dict) -> None:
    from fast3r_core.project_file import load_project

    rec = load_project(run["out"] / "project.f3r")
    assert rec.n_views == N_VIEWS
    assert rec.view_shape(0) == (224, 224)
    assert rec.model_name == str(Path(run["summary"]["model"]))
    assert rec.options["size"] == 224
    assert rec.timings["load_model"] >= 0
    assert [Path(p).name for p in rec.image_paths] == [f"view_{i:02d}.png" for i in range(N_VIEWS)]


def test_reconstruct_human_output_progress_and_quiet(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    write_views(images, 2)
    code, out, err = _reconstruct(capsys, tiny_model, images, tmp_path / "out", "--formats", "ply,cameras")
    assert code == 0, err
    assert "Reconstructed 2 view(s)" in out and "points.ply" in out and "cameras.json" in out
    lines = err.splitlines()
    # not a terminal: plain progress lines, one stage per line
    assert any(ln.startswith("images ") and ln.endswith("2/2") for ln in lines), err
    assert any(ln.startswith("encode ") for ln in lines), err
    assert any(ln.startswith("export ") for ln in lines), err
    listing = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert listing == [cli.MANIFEST_NAME, "cameras.json", "points.ply"]

    code, out, err = _reconstruct(capsys, tiny_model, images, tmp_path / "out2", "--quiet")
    assert code == 0
    assert out == "" and err == ""
    assert (tmp_path / "out2" / "points.ply").is_file()


def test_reconstruct_replaces_outputs_keeps_other_files(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    write_views(images, 2)
    out = tmp_path / "out"
    (out / "colmap").mkdir(parents=True)
    (out / "colmap" / "stale.txt").write_text("old", encoding="utf-8")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "points.ply").write_text("old", encoding="utf-8")
    # the user's own files: refused, nothing touched (issue 16: never overwrite what we did not write)
    code, _, err = _reconstruct(capsys, tiny_model, images, out, "--formats", "ply,colmap")
    assert code == 2 and "--overwrite" in _one_error_line(err) and "notes.txt" in err
    assert (out / "points.ply").read_text(encoding="utf-8") == "old"
    code, _, err = _reconstruct(capsys, tiny_model, images, out, "--formats", "ply,colmap", "--overwrite")
    assert code == 0, err
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (out / "points.ply").read_bytes().startswith(b"ply\n")
    assert (out / "colmap" / "stale.txt").read_text(encoding="utf-8") == "old"  # merged, not replaced
    assert (out / "colmap" / "sparse" / "0" / "points3D.bin").is_file()
    assert sorted(p.name for p in out.iterdir()) == [cli.MANIFEST_NAME, "colmap", "notes.txt", "points.ply"]

    (out / "points.ply").unlink()
    (out / "points.ply").mkdir()  # a folder where an output file goes: refused, nothing moved
    (out / "colmap" / "sparse" / "0" / "points3D.bin").unlink()
    code, _, err = _reconstruct(capsys, tiny_model, images, out, "--formats", "ply,colmap", "--overwrite")
    assert code == 2
    assert "in the way" in _one_error_line(err)
    assert not (out / "colmap" / "sparse" / "0" / "points3D.bin").exists()
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# export, info, models, download
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", cli.EXPORT_FORMATS)
def test_export_each_format(run: dict, fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = run["out"] / "project.f3r"
    dest = tmp_path / {"ply": "a.ply", "glb": "a.glb", "cameras": "c.json"}.get(fmt, fmt)
    code, out, err = _main(capsys, "export", project, "--format", fmt, "--out", dest, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["format"] == fmt
    if fmt == "ply":
        import trimesh

        n = len(trimesh.load(dest).vertices)
        assert n == summary["points_written"]
        assert n == round(run["summary"]["points_total"] * 0.9)  # default: drop the lowest 10 %
    elif fmt == "glb":
        import trimesh

        assert trimesh.load(dest).geometry
    elif fmt == "cameras":
        assert len(json.loads(dest.read_text(encoding="utf-8"))["views"]) == N_VIEWS
    elif fmt == "nerfstudio":
        frames = json.loads((dest / "transforms.json").read_text(encoding="utf-8"))["frames"]
        assert frames and all((dest / f["file_path"]).is_file() for f in frames)
    elif fmt == "colmap":
        pycolmap = pytest.importorskip("pycolmap")
        recon = pycolmap.Reconstruction(str(dest / "sparse" / "0"))
        assert recon.num_points3D() == summary["points_written"]


def test_export_percentile_and_folder_destination(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = run["out"] / "project.f3r"
    code, out, _ = _main(capsys, "export", project, "-f", "ply", "-o", tmp_path, "--conf-percentile", "75")
    assert code == 0
    assert "points.ply" in out
    import trimesh

    n = len(trimesh.load(tmp_path / "points.ply").vertices)
    assert n == round(run["summary"]["points_total"] * 0.25)


def test_export_errors(run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_project = tmp_path / "x.f3r"
    not_project.write_bytes(b"not a zip")
    code, _, err = _main(capsys, "export", not_project, "--format", "ply", "--out", tmp_path / "a.ply")
    assert code == 2
    assert "not a Fast3R Studio project" in _one_error_line(err)
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    code, _, err = _main(
        capsys, "export", run["out"] / "project.f3r", "-f", "ply", "-o", blocker / "sub" / "a.ply"
    )
    assert code == 2
    _one_error_line(err)
    code, _, err = _main(capsys, "export", run["out"] / "project.f3r", "-f", "obj", "-o", tmp_path)
    assert code == 2 and "invalid choice" in err


def test_info_text_and_json(run: dict, capsys: pytest.CaptureFixture[str]) -> None:
    project = run["out"] / "project.f3r"
    code, out, err = _main(capsys, "info", project)
    assert code == 0, err
    assert f"Views        {N_VIEWS}" in out
    assert "128x96 (x4)" in out and "224x224 (x4)" in out
    assert "view_03.png" in out and "mean confidence" in out
    # the widths of the model that made the project (tests/tiny.py: encoder 2x128, decoder 4x128)
    assert "(encoder 2x128 (2 heads), decoder 4x128 (2 heads)" in out

    code, out, _ = _main(capsys, "info", project, "--json")
    assert code == 0
    info = json.loads(out)
    assert info["views"] == N_VIEWS and info["points"] == N_VIEWS * 224 * 224
    assert info["options"]["size"] == 224
    assert info["architecture"].startswith("encoder 2x128 (2 heads), decoder 4x128")
    assert len(info["per_view"]) == N_VIEWS
    assert all(v["mean_confidence"] > 1.0 for v in info["per_view"])  # the model's confidence is > 1
    assert "inference" not in info["timings"] and "model" in info["timings"]

    code, _, err = _main(capsys, "info", run["root"] / "missing.f3r")
    assert code == 2 and "does not exist" in _one_error_line(err)


def test_edit_then_export_info_and_reconstruct_outputs(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``fast3r edit`` on a reconstructed project: info lists the edits, export and the writer of
    reconstruct's outputs apply them (the PLY is the similarity of the unedited one)."""
    import trimesh

    from fast3r_core.cli.commands_reconstruct import export_outputs
    from fast3r_core.edits import apply_to_points
    from fast3r_core.project_file import load_project

    project = run["out"] / "project.f3r"
    rec = load_project(project)
    posed = [int(v) for v in np.flatnonzero(rec.pose_ok)]
    if len(posed) < 2:
        pytest.skip("the tiny random model estimated fewer than two poses")
    i, j = posed[:2]
    edited = tmp_path / "edited.f3r"
    code, out, err = _main(
        capsys, "edit", project, "--scale-cameras", i, j, "2.5", "--level", "auto", "-o", edited, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["metres_per_unit"] == 1.0
    assert load_project(project).edits.is_empty  # -o: the source project is unchanged

    code, out, _ = _main(capsys, "info", edited)
    assert code == 0 and "Edits" in out and "1 m per unit" in out
    code, out, _ = _main(capsys, "info", edited, "--json")
    assert json.loads(out)["edits"]["z_up"] is True

    code, _, err = _main(capsys, "export", edited, "-f", "cameras", "-o", tmp_path / "c.json")
    assert code == 0, err
    views = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))["views"]
    c = np.array([v["cam_to_world"] for v in views])[:, :3, 3]
    assert np.linalg.norm(c[i] - c[j]) == pytest.approx(2.5)

    e = load_project(edited).edits
    paths, counts, _ = export_outputs(load_project(edited), tmp_path / "out", ["ply"], 100.0, lambda ev: None)
    export_outputs(rec, tmp_path / "plain", ["ply"], 100.0, lambda ev: None)
    got = np.asarray(trimesh.load(paths["ply"]).vertices)
    plain = np.asarray(trimesh.load(tmp_path / "plain" / "points.ply").vertices, dtype=np.float64)
    assert counts["ply"] == len(got) == len(plain)
    assert np.allclose(got, apply_to_points(e, plain), atol=1e-4 * max(1.0, float(np.abs(got).max())))

    # info counts what the crop box leaves, as the exports write it
    lo, hi = np.percentile(got, 20, axis=0), np.percentile(got, 80, axis=0)
    cropped = tmp_path / "cropped.f3r"
    code, _, err = _main(capsys, "edit", edited, "--crop-box", *lo, *hi, "-o", cropped)
    assert code == 0, err
    code, out, _ = _main(capsys, "info", cropped, "--json")
    info = json.loads(out)
    _, counts, _ = export_outputs(load_project(cropped), tmp_path / "crop", ["ply"], 100.0, lambda ev: None)
    assert 0 < info["points_after_edits"] == counts["ply"] < info["finite_points"]
    code, out, _ = _main(capsys, "info", cropped)
    assert f"{counts['ply']} after the crop and deletions" in out


def test_models_lists_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(capsys, "models")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAME", "SIZE", "LICENCE", "CACHED", "PATH"]
    assert "fast3r-vitl-512" in out and "FAIR Noncommercial Research License" in out
    assert str(tmp_path / "cache" / "models") in out

    code, out, _ = _main(capsys, "--json", "models")
    assert code == 0
    models = {m["name"]: m for m in json.loads(out)["models"]}
    assert models["fast3r-vitl-512"]["cached"] is False
    assert models["fast3r-vitl-512"]["requires_license_acceptance"] is True
    assert models["fast3r-vitl-512"]["size_bytes"] > 2e9
    assert models["fast3r-vitl-512"]["architecture"] is None  # not downloaded: no config to read


def test_models_shows_the_widths_of_local_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached model whose encoder and decoder widths differ (the published training config)."""
    from fast3r_core import weights
    from fast3r_core.model import DecoderArgs, Fast3RConfig

    folder = tmp_path / "cache" / "models" / "fast3r-vitl-512"
    folder.mkdir(parents=True)
    cfg = Fast3RConfig(decoder_args=DecoderArgs(embed_dim=768, num_heads=12, depth=12))
    cfg.to_json(folder / "config.json")
    (folder / "model.safetensors").write_bytes(b"x")  # only the listing is tested
    code, out, err = _main(capsys, "models")
    assert code == 0, err
    assert "encoder 24x1024 (16 heads), decoder 12x768 (12 heads)" in out
    code, out, _ = _main(capsys, "--json", "models")
    models = {m["name"]: m for m in json.loads(out)["models"]}
    assert models["fast3r-vitl-512"]["architecture"].startswith("encoder 24x1024 (16 heads), decoder 12x768")
    assert models["demo"]["architecture"].startswith("encoder ")
    assert weights.is_cached("fast3r-vitl-512", tmp_path / "cache" / "models")


def test_download_refuses_without_license(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(capsys, "download", "fast3r-vitl-512")
    assert code == 2
    line = _one_error_line(err)
    assert "licen" in line.lower() and "--accept-license" in line
    assert out == ""


def test_download_with_license_reports_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fast3r_core import weights
    from fast3r_core.progress import ProgressEvent

    calls = []

    def fake_download(name: str, *, accept_license: bool = False, progress=None, cancel=None) -> Path:
        calls.append((name, accept_license))
        for done in (0, 50_000_000, 100_000_000):
            progress(ProgressEvent("download", done, 100_000_000, "model.safetensors"))
        return tmp_path / "cache" / "models" / name

    monkeypatch.setattr(weights, "download_model", fake_download)
    code, out, err = _main(capsys, "download", "fast3r-vitl-512", "--accept-license")
    assert code == 0, err
    assert calls == [("fast3r-vitl-512", True)]
    assert "ready in" in out and "fast3r-vitl-512" in out
    assert "download 50.0/100.0 MB model.safetensors" in err.splitlines()
    assert "download 100.0/100.0 MB model.safetensors" in err.splitlines()


# ------------------------------------------------------------------------------------------------
# Bad inputs: exit 2, one line, no traceback
# ------------------------------------------------------------------------------------------------
def test_empty_folder(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "empty", tmp_path / "out")
    assert code == 2
    assert "No usable image" in _one_error_line(err)
    assert not (tmp_path / "out").exists()  # created for the check, removed again
    assert _leftovers(tmp_path) == []


def test_only_non_images(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello", encoding="utf-8")
    (folder / "data.csv").write_text("1,2", encoding="utf-8")
    code, _, err = _reconstruct(capsys, tiny_model, folder, tmp_path / "out")
    assert code == 2
    assert "No usable image" in _one_error_line(err)


def test_missing_input(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _reconstruct(capsys, tiny_model, tmp_path / "nope", tmp_path / "out")
    assert code == 2
    assert "No such file or folder" in _one_error_line(err)


def test_skipped_file_records_are_known_by_their_flag_not_their_wording() -> None:
    """The CLI lists skipped files from the run's report; it drops the image loader's per-file records by the
    flag they carry, so a reworded message cannot leak, and another "Skipping ..." message still shows."""
    import logging

    from fast3r_core.progress import SKIPPED_FILE_RECORD

    def record(msg: str, **extra: object) -> logging.LogRecord:
        rec = logging.LogRecord("fast3r_core.images", logging.WARNING, __file__, 1, msg, (), None)
        rec.__dict__.update(extra)
        return rec

    quiet, verbose = console._StderrFilter(0), console._StderrFilter(1)
    assert not quiet.filter(record("Cannot use %s", **{SKIPPED_FILE_RECORD: True}))
    assert quiet.filter(record("Skipping the warm-up"))
    assert verbose.filter(record("Cannot use %s", **{SKIPPED_FILE_RECORD: True}))


def test_corrupt_and_truncated_images_are_skipped(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    good = write_views(folder, 2)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg" * 10)
    data = good[0].read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 3])
    code, out, err = _reconstruct(capsys, tiny_model, folder, tmp_path / "out", "--json")
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: skipped")]
    assert len(warnings) == 1, err
    assert "corrupt.jpg" in warnings[0] and "truncated.png" in warnings[0]
    assert "Skipping" not in err  # the per-file log warnings stay in the log file
    summary = json.loads(out)
    assert summary["views"] == 2
    assert sorted(Path(s["path"]).name for s in summary["skipped"]) == ["corrupt.jpg", "truncated.png"]


def test_all_images_corrupt(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a.jpg", "b.png"):
        (folder / name).write_bytes(b"garbage" * 50)
    code, _, err = _reconstruct(capsys, tiny_model, folder, tmp_path / "out")
    assert code == 2
    line = _one_error_line(err)
    assert "No usable image" in line and "a.jpg" in line


def test_garbage_video(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(4096))
    code, _, err = _reconstruct(capsys, tiny_model, video, tmp_path / "out")
    assert code == 2
    assert "clip.mp4" in _one_error_line(err)


def test_unwritable_output_fails_before_the_model(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fast3r_core import images, weights

    must_not_run = _must_not_run("ran before the output folder was checked")
    monkeypatch.setattr(weights, "load_model", must_not_run)
    monkeypatch.setattr(images, "load_inputs", must_not_run)
    folder = tmp_path / "images"
    write_views(folder, 1)

    blocker = tmp_path / "a_file"
    blocker.write_text("x", encoding="utf-8")
    targets = [blocker / "sub", blocker]  # a file in the path fails for root too
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        if not os.access(readonly, os.W_OK):  # root ignores permissions
            targets.append(readonly)
        for target in targets:
            code, _, err = _reconstruct(capsys, tiny_model, folder, target)
            assert code == 2, (target, err)
            assert "output folder" in _one_error_line(err)
    finally:
        readonly.chmod(0o755)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no-such-model", "Unknown model 'no-such-model'"),
        ("./missing/folder", "No such model file or folder"),
        ("fast3r-vitl-512", "--accept-license"),  # needs a download: the licence first, no network
    ],
)
def test_model_problems_fail_before_decoding(
    model: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fast3r_core import images

    monkeypatch.setattr(images, "load_inputs", _must_not_run("images decoded before the model was checked"))
    folder = tmp_path / "images"
    write_views(folder, 1)
    code, _, err = _main(capsys, "reconstruct", folder, "--out", tmp_path / "out", "--model", model)
    assert code == 2
    assert message in _one_error_line(err)
    assert not (tmp_path / "out").exists()


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["reconstruct", str(tmp_path), "--out", str(tmp_path / "o"), "--formats", "ply,obj"],
        ["reconstruct", str(tmp_path), "--out", str(tmp_path / "o"), "--conf-percentile", "100"],
        ["reconstruct", str(tmp_path), "--out", str(tmp_path / "o"), "--size", "300"],
        ["reconstruct", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "tpu"],
        ["reconstruct", str(tmp_path)],
        ["frobnicate"],
        [],
    ):
        code, _, err = _main(capsys, *argv)
        assert code == 2, argv
        assert "error" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    code, out, _ = _main(capsys, "--help")
    assert code == 0 and "reconstruct" in out


# ------------------------------------------------------------------------------------------------
# Inputs that must work
# ------------------------------------------------------------------------------------------------
def test_large_jpeg(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    yy, xx = np.mgrid[0:4000:8, 0:6000:8]
    small = np.stack([xx % 256, yy % 256, (xx // 7 + yy // 5) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(small).resize((6000, 4000), Image.Resampling.NEAREST).save(folder / "big.jpg", quality=80)
    write_views(folder, 1)
    code, out, err = _reconstruct(
        capsys, tiny_model, folder, tmp_path / "out", "--formats", "cameras", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["views"] == 2
    cams = json.loads((tmp_path / "out" / "cameras.json").read_text(encoding="utf-8"))
    assert (cams["views"][0]["width"], cams["views"][0]["height"]) == (6000, 4000)


def test_non_ascii_paths(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "фото été 写真"
    paths = write_views(folder, 2)
    renamed = folder / "ñandú 1.png"
    paths[1].rename(renamed)
    out = tmp_path / "résultat ✓"
    code, stdout, err = _reconstruct(capsys, tiny_model, folder, out, "--formats", "ply,project,colmap")
    assert code == 0, err
    assert str(out) in stdout
    from fast3r_core.project_file import load_project

    rec = load_project(out / "project.f3r")
    assert Path(rec.image_paths[1]) == renamed
    assert (out / "points.ply").is_file()
    code, info, err = _main(capsys, "info", out / "project.f3r")
    assert code == 0, err
    assert "ñandú 1.png" in info


# ------------------------------------------------------------------------------------------------
# Internal errors and cancellation
# ------------------------------------------------------------------------------------------------
def test_internal_error_goes_to_the_log(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fast3r_core import pipeline

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom in the pipeline")

    monkeypatch.setattr(pipeline, "reconstruct", boom)
    folder = tmp_path / "images"
    write_views(folder, 1)
    code, _, err = _reconstruct(capsys, tiny_model, folder, tmp_path / "out")
    assert code == 1
    line = _one_error_line(err, "internal error:")
    log_path = tmp_path / "logs" / cli.LOG_FILE_NAME
    assert line == f"internal error: RuntimeError: boom in the pipeline (details in {log_path})"
    text = log_path.read_text(encoding="utf-8")
    assert "Traceback" in text and "boom in the pipeline" in text and "def boom" not in err
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_log_file_option_and_verbose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_file = tmp_path / "custom" / "my.log"
    code, _, err = _main(capsys, "-v", "--log-file", log_file, "info", tmp_path / "none.f3r")
    assert code == 2
    assert "does not exist" in _one_error_line(err)
    text = log_file.read_text(encoding="utf-8")
    assert "info" in text and "ProjectFileError" in text  # the traceback of user errors: file only


@pytest.mark.parametrize("where", ["inference", "export"])
def test_ctrl_c_leaves_nothing(
    where: str,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fast3r_core import pipeline, project_file

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    if where == "inference":
        monkeypatch.setattr(pipeline, "reconstruct", interrupt)
    else:  # after points.ply, scene.glb, ... were written: the last output is interrupted
        monkeypatch.setattr(project_file, "save_project", interrupt)
    folder = tmp_path / "images"
    write_views(folder, 2)
    new_out = tmp_path / "new" / "out"
    code, _, err = _main(
        capsys, "reconstruct", folder, "--out", new_out, "--model", tiny_model, "--size", "224"
    )
    assert code == 130
    assert err.strip().splitlines()[-1] == "cancelled" and "Traceback" not in err
    assert not (tmp_path / "new").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("x", encoding="utf-8")
    code, _, _ = _main(
        capsys, "reconstruct", folder, "-o", existing, "--model", tiny_model, "--size", "224", "--overwrite"
    )
    assert code == 130
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# As a program
# ------------------------------------------------------------------------------------------------
def _subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_isolated_env(tmp_path))
    return env


def test_subprocess_help_and_failure(tmp_path: Path) -> None:
    env = _subprocess_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "fast3r_core", "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0
    assert "reconstruct" in done.stdout and "download" in done.stdout

    missing = tmp_path / "no such photos"
    done = subprocess.run(
        [sys.executable, "-m", "fast3r_core", "reconstruct", str(missing), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: No such file or folder: {missing}"]
    assert done.stdout == ""


def test_light_commands_do_not_import_torch(run: dict, tmp_path: Path) -> None:
    project = run["out"] / "project.f3r"
    code = (
        "import sys\n"
        "from fast3r_core.cli import main\n"
        "assert main(['--help']) == 0\n"
        "assert main(['models']) == 0\n"
        f"assert main(['info', {str(project)!r}]) == 0\n"
        f"assert main(['export', {str(project)!r}, '-f', 'ply', '-o', {str(tmp_path / 'p.ply')!r}]) == 0\n"
        f"assert main(['edit', {str(project)!r}, '--scale', '2', '-o', {str(tmp_path / 'e.f3r')!r}]) == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'vispy'))\n"
        "assert not bad, bad[:5]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_subprocess_env(tmp_path),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_progress_modes(capsys: pytest.CaptureFixture[str]) -> None:
    from fast3r_core.progress import ProgressEvent

    bar = console.Progress("bar")  # what a terminal gets
    for done in range(4):
        bar(ProgressEvent("encode", done, 3))
    bar(ProgressEvent("heads", 1, 1))
    bar.close()
    err = capsys.readouterr().err
    assert "encode" in err and "3/3" in err and "heads" in err

    lines = console.Progress("lines")
    for done in range(0, 1001, 10):
        lines(ProgressEvent("poses", done, 1000))
    lines(ProgressEvent("poses", 1000, 1000))
    out = capsys.readouterr().err.splitlines()
    assert out[0] == "poses 0/1000" and out[-1] == "poses 1000/1000"
    assert len(out) == 11  # one line per tenth, no duplicate at the end


# ------------------------------------------------------------------------------------------------
# chunked runs and adding photos
# ------------------------------------------------------------------------------------------------
def test_reconstruct_in_passes_then_add_photos(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_views(tmp_path / "images")
    out = tmp_path / "out"
    code, stdout, err = _reconstruct(
        capsys,
        tiny_model,
        tmp_path / "images",
        out,
        *("--formats", "project", "--max-views-per-pass", "3", "--anchors", "1", "--json"),
    )
    assert code == 0, err
    run = json.loads(stdout)["runs"][0]
    # 4 views, view 0 in every pass, 2 own views per pass: 2 passes
    assert run["passes"] == 2 and run["views_per_pass"] == [3, 2] and run["anchors"] == [0]
    assert "encode 3/3 pass 1/2" in err and "heads 2/2 pass 2/2" in err  # progress names the pass

    project = out / "project.f3r"
    code, stdout, err = _main(capsys, "info", project)
    assert code == 0, err
    assert "run 0 (reconstruct): 4 view(s) 0-3, 2 passes of up to 3 views, anchors 0" in stdout

    code, _, err = _main(capsys, "edit", project, "--scale", "2")  # the edits survive an add
    assert code == 0, err
    import dataclasses

    from fast3r_core.edits import edit_points, keep_only, point_ids
    from fast3r_core.project_file import load_project, save_project

    def kept_per_view(rec) -> np.ndarray:
        ps = rec.global_points
        ids = point_ids(ps.view, ps.pixel, [rec.view_shape(v) for v in range(rec.n_views)])
        _, keep = edit_points(rec.edits, ps.xyz, ids)
        return np.bincount(ps.view[keep], minlength=rec.n_views), ids[ps.view == 0][:50]

    # "keep only these 50 points": made before the new photos, it must not hide them
    base = load_project(project)
    save_project(dataclasses.replace(base, edits=keep_only(base.edits, kept_per_view(base)[1])), project)
    assert kept_per_view(load_project(project))[0].tolist() == [50, 0, 0, 0]
    more = write_views(tmp_path / "more", n=2, size=(112, 96))
    dest = tmp_path / "more.f3r"
    # the project names a local model: a project file does not choose what to load, --model does
    code, _, err = _main(capsys, "add", project, *more, "-o", dest)
    assert code == 2 and "not a registered model" in err and f"--model {tiny_model}" in err
    assert not dest.exists()
    code, stdout, err = _main(
        capsys, "add", project, *more, "-o", dest, "--anchors", "2", "--json", "--model", tiny_model
    )
    assert code == 0, err
    added_rec = load_project(dest)
    assert added_rec.edits.scale == 2.0
    kept = kept_per_view(added_rec)[0]
    total = np.bincount(added_rec.global_points.view, minlength=6)
    assert kept[:4].tolist() == [50, 0, 0, 0] and kept[4:].tolist() == total[4:].tolist() and total[4] > 0
    added = json.loads(stdout)
    assert added["views"] == 6 and added["added"] == [4, 5] and added["anchors"][0] == 0
    assert len(added["anchors"]) == 2 and added["passes"] == 1

    code, stdout, _ = _main(capsys, "info", dest, "--json")
    info = json.loads(stdout)
    assert info["views"] == 6 and info["view_runs"] == [0, 0, 0, 0, 1, 1]
    assert [r["kind"] for r in info["runs"]] == ["reconstruct", "add"]
    code, stdout, _ = _main(capsys, "info", dest)
    assert "run 1 (add): 2 view(s) 4-5" in stdout

    # in place (no -o): the same photos again are already in the project -> nothing to add
    code, _, err = _main(capsys, "add", dest, *more, "--model", tiny_model)
    assert code == 2 and "already in the project" in _one_error_line(err)
    code, _, err = _main(capsys, "add", dest, *more, "--max-views-per-pass", "1", "--model", tiny_model)
    assert code == 2 and "at least 2" in err
    code, _, err = _main(capsys, "add", tmp_path / "missing.f3r", *more)
    assert code == 2 and "does not exist" in _one_error_line(err)


def test_add_checks_masks_before_loading_the_model(
    run: dict,
    tiny_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wrong mask is reported before the (slow) model load, as in ``reconstruct``."""
    from PIL import Image

    from fast3r_core import weights

    more = write_views(tmp_path / "more", n=1)
    (tmp_path / "masks").mkdir()
    Image.new("L", (7, 5), 255).save(tmp_path / "masks" / more[0].name)  # not the photo's size
    loads: list[object] = []
    monkeypatch.setattr(weights, "load_model", lambda *a, **k: loads.append(a) or pytest.fail("loaded"))
    code, _, err = _main(
        capsys,
        "add",
        run["out"] / "project.f3r",
        *more,
        "-o",
        tmp_path / "x.f3r",
        "--masks",
        tmp_path / "masks",
        "--model",
        tiny_model,
    )
    assert code == 2 and more[0].name in err and not loads
    assert not (tmp_path / "x.f3r").exists()


@pytest.mark.parametrize("command", ["reconstruct", "add"])
def test_exclude_before_the_inputs_says_it_took_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """``--exclude`` takes every name after it: when it swallowed the inputs, the usage error says so."""
    code, _, err = _main(capsys, command, "--exclude", "a.jpg", tmp_path, "-o", tmp_path / "out")
    assert code == 2
    assert re.search(r"required: .*INPUT", err) and "put --exclude after the inputs" in err
    assert f"e.g. 'fast3r {command} " in err
    # without --exclude, argparse's message alone
    code, _, err = _main(capsys, command, "-o", tmp_path / "out")
    assert code == 2 and re.search(r"required: .*INPUT", err) and "--exclude" not in err.split("error:")[-1]


# ---------------------------------------------------------------------------------------------------
# what the commands may write over: never the user's files unasked, never the inputs, never a device
# ---------------------------------------------------------------------------------------------------


def _project(tmp_path: Path, name: str = "scene.f3r") -> Path:
    from fast3r_core.project_file import save_project
    from tests.core.recon_factory import make_synthetic_reconstruction

    return save_project(make_synthetic_reconstruction(3, image_dir=tmp_path / "photos"), tmp_path / name)


def test_edit_out_replaces_a_project_but_not_a_file_of_the_users(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from fast3r_core.project_file import load_project

    project = _project(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    code, _, err = _main(capsys, "edit", project, "--scale", "2", "-o", notes)
    assert code == 2 and "not a Fast3R Studio project" in err and "--overwrite" in err
    assert notes.read_text() == "my notes"
    # an earlier project is replaced without asking; the user's file with --overwrite
    other = _project(tmp_path, "other.f3r")
    other.chmod(0o640)
    assert _main(capsys, "edit", project, "--scale", "2", "-o", other)[0] == 0
    assert load_project(other).edits.scale == 2.0
    assert other.stat().st_mode & 0o777 == 0o640  # the replaced file keeps its permissions
    assert _main(capsys, "edit", project, "--scale", "3", "-o", notes, "--overwrite")[0] == 0
    assert load_project(notes).edits.scale == 3.0
    # a link as --out is not followed, nor replaced, unasked
    link = tmp_path / "link.f3r"
    link.symlink_to(notes)
    code, _, err = _main(capsys, "edit", project, "--scale", "2", "-o", link)
    assert code == 2 and "is a link" in err and link.is_symlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX pipes")
@pytest.mark.parametrize("command", ["edit", "export"])
def test_a_device_or_pipe_is_never_written_over(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """/dev/null (as root) or a pipe: the atomic rename would replace the node itself, --overwrite or not."""
    project = _project(tmp_path)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    args = ["--scale", "2"] if command == "edit" else ["--format", "ply"]
    code, _, err = _main(capsys, command, project, *args, "-o", pipe, "--overwrite")
    assert code == 2 and "not a regular file" in err
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)


def test_edit_in_place_through_a_link_updates_the_linked_project(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from fast3r_core.project_file import load_project

    real = _project(tmp_path, "real.f3r")
    link = tmp_path / "link.f3r"
    link.symlink_to(real)
    assert _main(capsys, "edit", link, "--scale", "2")[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_project(real).edits.scale == 2.0
    # -o naming the project itself (another spelling) is an update in place too
    assert _main(capsys, "edit", real, "--scale", "5", "-o", link)[0] == 0
    assert link.is_symlink() and load_project(real).edits.scale == 10.0  # scales compose


def test_reconstruct_never_writes_over_its_inputs(
    capsys: pytest.CaptureFixture[str], tiny_model: Path, tmp_path: Path
) -> None:
    """Photos inside the output folder (``scene/images`` -> ``-o scene``): refused even with --overwrite,
    before the model runs; nothing is written and the photos are untouched."""
    scene = tmp_path / "scene"
    photos = write_views(scene / "images", n=3)
    before = {p: p.read_bytes() for p in photos}
    for extra in ((), ("--overwrite",)):
        code, _, err = _main(
            capsys,
            "reconstruct",
            scene / "images",
            "-o",
            scene,
            "--model",
            tiny_model,
            "--size",
            "224",
            *extra,
        )
        assert code == 2 and ("holds input files" in err or not extra)
    assert "holds input files" in err
    assert {p: p.read_bytes() for p in photos} == before
    assert sorted(p.name for p in scene.iterdir()) == ["images"]
    # export of a project into the folder of its photos: the same
    project = _project(tmp_path)
    code, _, err = _main(
        capsys, "export", project, "--format", "colmap", "-o", tmp_path / "photos", "--overwrite"
    )
    assert code == 2 and "holds input files" in err


def test_reconstruct_into_a_linked_output_folder(
    capsys: pytest.CaptureFixture[str], tiny_model: Path, tmp_path: Path
) -> None:
    """``-o out`` where ``out`` links to a folder: the outputs go into that folder, the link stays,
    nothing is left behind; a new output folder gets the usual permissions (not 0700)."""
    images = tmp_path / "images"
    write_views(images, n=3)
    real = tmp_path / "real"
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)
    real.mkdir()
    args = ("--model", tiny_model, "--size", "224", "--formats", "ply,cameras")
    for _ in range(2):  # a new folder, then a previous output
        code, _, err = _main(capsys, "reconstruct", images, "-o", link, *args)
        assert code == 0, err
    assert link.is_symlink() and (real / "points.ply").is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging or .old left
    fresh = tmp_path / "fresh"
    assert _main(capsys, "reconstruct", images, "-o", fresh, *args)[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o777 & ~umask
