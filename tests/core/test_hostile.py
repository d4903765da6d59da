"""Hostile files and faults (issue 16): crafted projects and checkpoints are data, nothing leaks,
nothing runs, nothing of the user's is changed or lost.

Every crafted file is made by the test itself, in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fast3r_core import cli
from fast3r_core.errors import ProjectFileError
from fast3r_core.export import export_colmap, export_nerfstudio
from fast3r_core.result import Reconstruction, load_project, save_project
from tests.core.recon_factory import make_synthetic_reconstruction

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
    members["meta.json"] = out if isinstance(out, bytes) else json.dumps(out if out is not None else meta).encode()
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
    rec, path = _project(tmp_path)
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
    code, stdout, err = _main(capsys, "export", path, "--format", fmt, "--out", out)
    assert code == 0, err
    assert all(SECRET not in data for data in _all_bytes(out))
    images = sorted(p.name for p in (out / "images").iterdir())
    assert images == ["view_02.png"]
    # the export says which images it could not include
    assert "id_rsa" in err and "id_ed25519.jpg" in err and "2 image(s)" in err


def test_image_of_another_size_is_not_copied(tmp_path: Path) -> None:
    rec, path = _project(tmp_path)
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
