"""Issue 15: one export table, one PointSelection, one ExportReport, typed refusal of empty exports,
and the one atomic-write helper."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import trimesh

from fast3r_core import atomic, cli
from fast3r_core.errors import EmptyExportError, ExportError, InputError
from fast3r_core.export import FORMATS, ExportReport, PointSelection, select_points
from fast3r_core.project_file import save_project
from fast3r_core.result import Reconstruction
from tests.core.recon_factory import MIXED_SIZES, make_synthetic_reconstruction


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Reconstruction:
    """Mixed sizes, real photos; view 2's pose estimation failed."""
    return make_synthetic_reconstruction(
        original_sizes=MIXED_SIZES,
        image_dir=tmp_path_factory.mktemp("photos"),
        pose_ok=[True, True, False, True],
    )


def _read_back(key: str, report: ExportReport) -> tuple[int, int]:
    """(points, cameras) as another tool reads them from what the export wrote."""
    if key == "ply":
        return len(trimesh.load(report.path).vertices), 0
    if key == "glb":
        scene = trimesh.load(report.path)
        points = sum(len(g.vertices) for n, g in scene.geometry.items() if n == "points")
        return points, sum(1 for n in scene.geometry if n.startswith("camera_"))
    if key == "colmap":
        model = pycolmap.Reconstruction(report.path / "sparse" / "0")
        return model.num_points3D(), model.num_cameras()
    if key == "nerfstudio":
        doc = json.loads(report.path.read_text())
        return len(trimesh.load(report.path.parent / doc["ply_file_path"]).vertices), len(doc["frames"])
    doc = json.loads(report.path.read_text())
    return 0, len(doc["views"])


@pytest.mark.parametrize("key", list(FORMATS))
def test_round_trip_through_the_table(tmp_path: Path, rec: Reconstruction, key: str) -> None:
    fmt = FORMATS[key]
    selection = PointSelection(top_percent=50, views=(0, 1, 2))
    report = fmt.export(rec, tmp_path / fmt.default_name, selection)
    assert isinstance(report, ExportReport) and report.format == key
    assert report.files and all(p.is_file() for p in report.files)
    assert report.path.exists()
    if not fmt.is_folder:
        assert report.path in report.files
    points, cameras = _read_back(key, report)
    assert (points, cameras) == (report.n_points, report.n_cameras)
    expected = select_points(rec, selection)
    if key in ("ply", "glb"):
        assert report.n_points == len(expected)
    elif key == "nerfstudio":  # views with a pose only
        assert report.n_points == len(select_points(rec, selection.with_views((0, 1))))
    elif key == "colmap":
        assert report.n_points + report.dropped == len(select_points(rec, selection.with_views((0, 1))))
    if key in ("glb", "colmap", "nerfstudio"):
        assert report.skipped_views == (2,) and cameras == 2
    if key == "cameras":
        assert report.n_cameras == rec.n_views  # takes no selection: every view's camera
    # the table says what the GUI and the CLI show
    assert fmt.summarize(report) and fmt.title.startswith("Export ") and "&" in fmt.menu_text
    assert fmt.is_folder == (fmt.file_filter is None) == (key in ("colmap", "nerfstudio"))


def test_cli_names_come_from_the_table() -> None:
    assert cli.EXPORT_FORMATS == tuple(FORMATS)
    assert {k: v for k, v in cli.OUTPUT_NAMES.items() if k != "project"} == {
        k: f.reconstruct_name for k, f in FORMATS.items()
    }
    assert cli.OUTPUT_NAMES["nerfstudio"] == "transforms.json"
    sub = cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "colmap: COLMAP sparse model" in " ".join(sub["export"].format_help().split())


@pytest.mark.parametrize("key", ["ply", "colmap", "nerfstudio"])
def test_zero_points_is_refused_and_nothing_is_written(tmp_path: Path, rec: Reconstruction, key: str) -> None:
    dest = tmp_path / FORMATS[key].default_name
    with pytest.raises(EmptyExportError, match="no point is selected") as info:
        FORMATS[key].export(rec, dest, PointSelection(threshold=1e9))
    assert isinstance(info.value, ExportError) and "confidence above 1e+09" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_glb_of_cameras_only_says_so(tmp_path: Path, rec: Reconstruction) -> None:
    report = FORMATS["glb"].export(rec, tmp_path / "s.glb", PointSelection(threshold=1e9))
    assert report.n_points == 0 and report.n_cameras == 3 and "cameras only" in report.warnings[0]
    with pytest.raises(EmptyExportError, match="Nothing to write"):
        FORMATS["glb"].export(rec, tmp_path / "t.glb", PointSelection(threshold=1e9), cameras=False)


def test_cli_export_of_zero_points_is_a_clear_error(
    tmp_path: Path, rec: Reconstruction, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.LOG_DIR_ENV, str(tmp_path / "logs"))
    project = save_project(rec, tmp_path / "p.f3r")
    # keep the top 0.001 %: rounds to no point at all
    code = cli.main(
        ["export", str(project), "-f", "ply", "-o", str(tmp_path / "a.ply"), "--conf-percentile", "99.999"]
    )
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and "Nothing to export" in err and "no point is selected" in err
    assert not (tmp_path / "a.ply").exists()


def test_point_selection_validates_and_masks(rec: Reconstruction) -> None:
    assert PointSelection(views=np.array([True, False, True, False])).views == (0, 2)
    assert PointSelection(views=[3, 1, 3]) == PointSelection(views=(1, 3))
    for bad in ({"source": "sideways"}, {"top_percent": 101}, {"voxel_size": 0}, {"threshold": float("nan")}):
        with pytest.raises(InputError):
            PointSelection(**bad)  # type: ignore[arg-type]
    # a mask that leaves out the left half of view 1
    masks = tuple(np.zeros(rec.view_shape(v), bool) for v in range(rec.n_views))
    masks[1][:, : masks[1].shape[1] // 2] = True
    every = select_points(rec)
    kept = select_points(rec, PointSelection(masks=masks))
    left = (every.view == 1) & (every.pixel[:, 0] < masks[1].shape[1] // 2)
    assert len(kept) == len(every) - int(left.sum()) and len(kept) < len(every)
    np.testing.assert_array_equal(kept.xyz, every.xyz[~left])
    with pytest.raises(InputError, match="one mask per view"):
        select_points(rec, PointSelection(masks=masks[:2]))


# -- the atomic-write helper --------------------------------------------------------------------------


def test_atomic_path_suffix_and_os_errors(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    with atomic.atomic_path(dest, suffix=".mp4") as tmp:
        assert tmp.name.endswith(".tmp.mp4") and tmp.parent == tmp_path
        tmp.write_bytes(b"video")
    assert dest.read_bytes() == b"video" and os.listdir(tmp_path) == ["clip.mp4"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError), atomic.atomic_path(blocker / "a.png", error=None):
        pass  # never reached: the folder cannot exist
    with pytest.raises(ExportError, match="file"), atomic.atomic_path(blocker / "a.png"):
        pass


def test_stale_temporary_files_with_a_suffix_are_cleaned(tmp_path: Path) -> None:
    stale = tmp_path / ".clip.mp4.999999999-abc.tmp.mp4"
    stale.write_bytes(b"")
    mine = tmp_path / f".clip.mp4.{os.getpid()}-abc.tmp.mp4"
    mine.write_bytes(b"")
    assert atomic.clean_stale(tmp_path) == 1
    assert not stale.exists() and mine.exists()


def test_atomic_dir_replaces_a_folder_or_keeps_it(tmp_path: Path) -> None:
    dest = tmp_path / "state"
    with atomic.atomic_dir(dest) as staging:
        (staging / "a.txt").write_text("1")
    assert sorted(os.listdir(dest)) == ["a.txt"]
    with pytest.raises(RuntimeError), atomic.atomic_dir(dest) as staging:
        (staging / "b.txt").write_text("2")
        raise RuntimeError("killed")
    assert sorted(os.listdir(dest)) == ["a.txt"], "a failed write keeps the old folder"
    with atomic.atomic_dir(dest) as staging:
        (staging / "b.txt").write_text("2")
    assert sorted(os.listdir(dest)) == ["b.txt"]
    assert sorted(os.listdir(tmp_path)) == ["state"], "no staging or old folder left"
