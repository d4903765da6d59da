"""Reconstruction: validation, confidence-ordered point sets, per-view stats, project save/load."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fast3r_core.errors import ProjectFileError
from fast3r_core.project_file import PROJECT_FORMAT_VERSION, load_project, save_project
from fast3r_core.result import Reconstruction, RunRecord
from tests.core.recon_factory import MIXED_SIZES, make_synthetic_reconstruction, project_original

REPO = Path(__file__).resolve().parents[2]
_ARRAY_FIELDS = ("pts3d", "conf", "pts3d_local", "conf_local", "colors")
_STACKED = (
    "cam_to_world",
    "intrinsics",
    "intrinsics_original",
    "original_sizes",
    "resized_sizes",
    "crop_boxes",
    "pose_ok",
)


@pytest.fixture(scope="module")
def rec() -> Reconstruction:
    return make_synthetic_reconstruction(original_sizes=MIXED_SIZES, pose_ok=[True, True, False, True])


def _fields(rec: Reconstruction) -> dict:
    return {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)}


# -- validation ------------------------------------------------------------------------------------


def test_shapes_dtypes_and_readonly(rec: Reconstruction) -> None:
    assert rec.n_views == 4
    assert [rec.view_shape(v) for v in range(4)] == [(48, 64), (64, 48), (48, 64), (64, 64)]
    for name in _ARRAY_FIELDS:
        for a in getattr(rec, name):
            assert not a.flags.writeable
    assert rec.pts3d[0].dtype == np.float32 and rec.colors[0].dtype == np.uint8
    assert rec.cam_to_world.dtype == np.float64 and rec.crop_boxes.dtype == np.int64
    with pytest.raises(ValueError, match="read-only"):
        rec.pts3d[0][0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        rec.cam_to_world[0, 0, 0] = 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.model_name = "x"  # type: ignore[misc]
    assert rec.runs == (RunRecord(views=[0, 1, 2, 3]),)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("conf", lambda r: (r.conf[0][:-1], *r.conf[1:]), r"conf\[0\] has shape \(47, 64\)"),
        ("pts3d_local", lambda r: r.pts3d_local[:3], "pts3d_local must have one array per view"),
        ("colors", lambda r: tuple(c.astype(np.float32) for c in r.colors), "colors.* must be uint8"),
        ("cam_to_world", lambda r: r.cam_to_world[:, :3], r"cam_to_world must have shape \(4, 4, 4\)"),
        ("crop_boxes", lambda r: r.crop_boxes + 1, None),
        ("crop_boxes", lambda r: r.crop_boxes[:, :3], r"crop_boxes must have shape \(4, 4\)"),
        ("image_paths", lambda r: r.image_paths[:2], "image_paths must have 4 entries"),
        ("pose_ok", lambda r: np.ones(4), "pose_ok must be bool"),
    ],
)
def test_validation_names_field(rec: Reconstruction, field: str, value, match: str | None) -> None:
    kwargs = _fields(rec)
    kwargs[field] = value(rec)
    if field == "crop_boxes" and match is None:
        # shifting the box keeps its size: valid. Growing it breaks the size match.
        Reconstruction(**kwargs)
        kwargs[field] = rec.crop_boxes + np.array([0, 0, 1, 0])
        match = r"crop_boxes\[0\].*pointmap of view 0 is 64x48"
    with pytest.raises(ValueError, match=match):
        Reconstruction(**kwargs)


def test_accepts_stacked_arrays_of_equal_size() -> None:
    r = make_synthetic_reconstruction(2)
    kwargs = _fields(r)
    for name in _ARRAY_FIELDS:
        kwargs[name] = np.stack(getattr(r, name))
    r2 = Reconstruction(**kwargs)
    assert isinstance(r2.pts3d, tuple) and len(r2.pts3d) == 2
    assert np.array_equal(r2.pts3d[1], r.pts3d[1])


# -- point sets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["global", "local"])
def test_point_set_matches_pointmaps(rec: Reconstruction, source: str) -> None:
    ps = rec.points(source)
    pts = rec.pts3d if source == "global" else rec.pts3d_local
    conf = rec.conf if source == "global" else rec.conf_local
    assert len(ps) == rec.n_pixels == sum(h * w for h, w in map(rec.view_shape, range(4)))
    assert np.all(np.diff(ps.conf) <= 0), "confidence must be descending"
    u, v = ps.pixel[:, 0], ps.pixel[:, 1]
    for view in range(rec.n_views):
        m = ps.view == view
        h, w = rec.view_shape(view)
        assert m.sum() == h * w
        assert u[m].max() == w - 1 and v[m].max() == h - 1
        assert np.array_equal(ps.xyz[m], pts[view][v[m], u[m]])
        assert np.array_equal(ps.rgb[m], rec.colors[view][v[m], u[m]])
        assert np.array_equal(ps.conf[m], conf[view][v[m], u[m]])
        # every (u, v) appears exactly once
        assert np.unique(v[m] * w + u[m]).size == h * w


def test_point_set_is_cached_and_readonly(rec: Reconstruction) -> None:
    assert rec.global_points is rec.points("global")
    assert rec.local_points is rec.points("local")
    with pytest.raises(ValueError, match="read-only"):
        rec.global_points.xyz[0, 0] = 0.0


def test_ties_are_stable_and_nonfinite_dropped() -> None:
    r = make_synthetic_reconstruction(2)
    kwargs = _fields(r)
    conf = [np.full(c.shape, 2.0, np.float32) for c in r.conf]
    conf[1][0, :3] = 5.0
    pts = [p.copy() for p in r.pts3d]
    pts[0][1, 2, 0] = np.nan
    conf[0][0, 5] = np.inf
    conf[0][3, 7] = np.nan
    kwargs.update(conf=tuple(conf), pts3d=tuple(pts))
    ps = Reconstruction(**kwargs).global_points
    assert len(ps) == r.n_pixels - 2
    # +inf confidence first, then the three 5.0 of view 1 in pixel order
    assert ps.view[0] == 0 and ps.pixel[0].tolist() == [5, 0] and ps.conf[0] == np.inf
    assert ps.view[1:4].tolist() == [1, 1, 1] and ps.pixel[1:4, 0].tolist() == [0, 1, 2]
    # then view 0 in row-major order (pixel = (col, row)), without the NaN point and the NaN conf
    assert ps.view[4] == 0 and ps.pixel[4:7].tolist() == [[0, 0], [1, 0], [2, 0]]
    rest = ps.pixel[4:][ps.view[4:] == 0].tolist()
    assert [2, 1] not in rest and [7, 3] not in rest and [5, 0] not in rest
    assert rest == sorted(rest, key=lambda p: (p[1], p[0]))


def test_counts_and_select(rec: Reconstruction) -> None:
    ps = rec.global_points
    all_conf = np.concatenate([c.ravel() for c in rec.conf])
    for t in (1.0, 2.5, float(np.median(all_conf)), 1e9):
        assert ps.count_above(t) == int((all_conf > t).sum())
    t = float(ps.conf[100])  # a value that exists: strictly above excludes it
    assert ps.count_above(t) == 100
    assert ps.count_top_percent(0) == 0
    assert ps.count_top_percent(100) == len(ps)
    assert ps.count_top_percent(25) == round(0.25 * len(ps))
    assert ps.threshold_for_count(101) == t

    sel = rec.select(threshold=3.0)
    assert len(sel) == int((all_conf > 3.0).sum())
    assert np.shares_memory(sel.xyz, ps.xyz), "a pure threshold is a prefix view"
    both = rec.select(threshold=3.0, top_percent=10)
    assert len(both) == min(len(sel), ps.count_top_percent(10))

    sub = rec.select(threshold=3.0, views=[1, 3])
    expected = sum(int((rec.conf[v] > 3.0).sum()) for v in (1, 3))
    assert len(sub) == expected
    assert set(np.unique(sub.view).tolist()) == {1, 3}
    assert np.all(np.diff(sub.conf) <= 0)
    mask = np.array([False, True, False, True])
    assert len(rec.select(threshold=3.0, views=mask)) == expected
    assert len(rec.select(views=[])) == 0
    with pytest.raises(ValueError, match="view indices"):
        rec.select(views=[7])
    with pytest.raises(ValueError, match="top percent"):
        rec.select(top_percent=120)
    with pytest.raises(ValueError, match="point source"):
        rec.select("nope")  # type: ignore[arg-type]


def test_per_view_stats(rec: Reconstruction) -> None:
    stats = rec.per_view_stats(threshold=2.0)
    assert [s.view for s in stats] == [0, 1, 2, 3]
    for s, c in zip(stats, rec.conf, strict=True):
        assert s.n_points == c.size
        assert s.n_above == int((c > 2.0).sum())
        assert s.mean_conf == pytest.approx(float(c.astype(np.float64).mean()))
        assert s.median_conf == pytest.approx(float(np.median(c)))
        assert s.max_conf == float(c.max())
    assert [s.pose_ok for s in stats] == [True, True, False, True]
    local = rec.per_view_stats("local")
    assert local[0].max_conf == float(rec.conf_local[0].max())
    assert local[0].n_above == local[0].n_points


def test_synthetic_points_reproject_to_their_pixels(rec: Reconstruction) -> None:
    """The factory's contract, which the export tests rely on."""
    ps = rec.global_points
    orig = rec.model_to_original_pixels(ps.view, ps.pixel)
    for v in range(rec.n_views):
        m = ps.view == v
        xy, z = project_original(rec, v, ps.xyz[m])
        assert np.all(z > 0)
        assert np.abs(xy - orig[m]).max() < 1e-3
    # the pixel mapping itself, on one hand-computed value
    left, top = rec.crop_boxes[1, :2]
    sx = rec.resized_sizes[1, 0] / rec.original_sizes[1, 0]
    sy = rec.resized_sizes[1, 1] / rec.original_sizes[1, 1]
    got = rec.model_to_original_pixels(np.array([1]), np.array([[3, 5]]))[0]
    assert got == pytest.approx([(3 + left + 0.5) / sx - 0.5, (5 + top + 0.5) / sy - 0.5])


# -- project file ------------------------------------------------------------------------------------


def _assert_same(a: Reconstruction, b: Reconstruction) -> None:
    for name in _ARRAY_FIELDS:
        for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    for name in _STACKED:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.image_paths == b.image_paths
    assert a.model_name == b.model_name
    assert a.options == b.options
    assert a.timings == b.timings
    assert a.runs == b.runs
    assert b.format_version == PROJECT_FORMAT_VERSION


@pytest.mark.parametrize("compress", [False, True])
def test_project_round_trip_exact(tmp_path: Path, rec: Reconstruction, compress: bool) -> None:
    path = save_project(rec, tmp_path / "scene.f3r", compress=compress)
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"meta.json", "arrays.npz"}
        meta = json.loads(zf.read("meta.json"))
    assert meta["format"] == "fast3r-project" and meta["version"] == PROJECT_FORMAT_VERSION == 2
    assert meta["model_name"] == "synthetic" and meta["runs"] == [{"views": [0, 1, 2, 3]}]
    assert meta["images"][0]["absolute"] == rec.image_paths[0]
    assert "created" in meta and "app_version" in meta
    back = load_project(path)
    _assert_same(rec, back)
    assert np.array_equal(back.global_points.xyz, rec.global_points.xyz)
    assert [p.name for p in tmp_path.iterdir()] == ["scene.f3r"], "no temporary file left"


def test_project_image_paths_follow_a_moved_folder(tmp_path: Path) -> None:
    r = make_synthetic_reconstruction(2, image_dir=tmp_path / "proj" / "photos")
    save_project(r, tmp_path / "proj" / "p.f3r")
    with zipfile.ZipFile(tmp_path / "proj" / "p.f3r") as zf:
        meta = json.loads(zf.read("meta.json"))
    assert [e["relative"] for e in meta["images"]] == ["photos/view_00.png", "photos/view_01.png"]
    assert load_project(tmp_path / "proj" / "p.f3r").image_paths == r.image_paths

    shutil.move(tmp_path / "proj", tmp_path / "moved")
    moved = load_project(tmp_path / "moved" / "p.f3r")
    assert moved.image_paths == tuple(
        str(tmp_path / "moved" / "photos" / f"view_{v:02d}.png") for v in range(2)
    )
    assert all(os.path.isfile(p) for p in moved.image_paths)

    # the project alone moved: fall back to the absolute paths (which also do not exist any more)
    shutil.move(tmp_path / "moved" / "p.f3r", tmp_path / "alone.f3r")
    assert load_project(tmp_path / "alone.f3r").image_paths == r.image_paths


def test_runs_and_options_round_trip(tmp_path: Path) -> None:
    r = make_synthetic_reconstruction(3)
    kwargs = _fields(r)
    kwargs["runs"] = ({"views": [0, 1], "seed": 1}, {"views": [2], "seed": 2})
    kwargs["options"] = {"size": 512, "dtype": "fp32", "nested": {"a": [1, 2.5, None]}}
    r2 = Reconstruction(**kwargs)
    back = load_project(save_project(r2, tmp_path / "r.f3r"))
    assert back.runs == r2.runs and back.options == r2.options
    with pytest.raises(ValueError, match=r"runs\[0\]"):
        Reconstruction(**{**kwargs, "runs": ({"views": [5]},)})


def test_run_record_round_trip_through_a_project_file(tmp_path: Path) -> None:
    r = make_synthetic_reconstruction(4)
    first = RunRecord(
        views=[0, 1, 2],
        model="demo",
        architecture="enc 24x1024",
        passes=2,
        views_per_pass=[2, 2],
        max_views_per_pass=2,
        anchors=[0],
        automatic=False,
        budget_bytes=1 << 30,
        estimate_bytes=3 << 29,
        alignment=[{"reference": True}, {"scale": 1.5, "inliers": 100, "rmse": 0.01}],
        timings={"encode": 1.25},
    )
    added = RunRecord(views=[3], kind="add", anchors=[0, 2], options={"size": 224}, timings={"poses": 0.5})
    r2 = dataclasses.replace(r, runs=(first, added))
    back = load_project(save_project(r2, tmp_path / "r.f3r"))
    assert back.runs == (first, added)
    assert all(isinstance(run, RunRecord) for run in back.runs)
    assert back.view_runs.tolist() == [0, 0, 0, 1]
    summary = "made in 2 passes of up to 2 views (1 shared anchor); +1 view added later"
    assert back.chunking_summary() == summary
    # "not recorded" stays out of the file, as before RunRecord
    assert "options" not in first.to_json() and "timings" not in RunRecord(views=[0]).to_json()


def test_runs_of_an_older_project_file_load_as_records(tmp_path: Path) -> None:
    """A run written as a plain JSON object by an older version (few keys, nulls, a key unknown
    here) loads as a RunRecord with defaults; the unknown key survives a save; a bad type is refused."""
    r = make_synthetic_reconstruction(3)
    good = save_project(r, tmp_path / "good.f3r")
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read("meta.json"))
    meta["runs"] = [
        {"views": [0, 1], "budget_bytes": None, "future_key": {"x": 1}},
        {"views": [2], "kind": "add", "passes": 1, "anchors": [0]},
    ]
    _rewrite(good, tmp_path / "old.f3r", meta=meta)
    back = load_project(tmp_path / "old.f3r")
    assert back.runs[0] == RunRecord(views=[0, 1], extra={"future_key": {"x": 1}})
    assert back.runs[1].kind == "add" and back.runs[1].anchors == [0] and back.runs[1].timings is None
    again = load_project(save_project(back, tmp_path / "again.f3r"))
    assert again.runs == back.runs
    meta["runs"] = [{"views": [0, 1, 2], "alignment": [1, 2]}]
    _rewrite(good, tmp_path / "bad.f3r", meta=meta)
    with pytest.raises(ProjectFileError, match="alignment"):
        load_project(tmp_path / "bad.f3r")


def _rewrite(
    path: Path, out: Path, *, meta=None, drop: str | None = None, arrays: bytes | None = None
) -> None:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name == drop:
                continue
            data = src.read(name)
            if name == "meta.json" and meta is not None:
                data = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
            if name == "arrays.npz" and arrays is not None:
                data = arrays
            dst.writestr(name, data)


def test_project_errors(tmp_path: Path, rec: Reconstruction) -> None:
    good = save_project(rec, tmp_path / "good.f3r")
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read("meta.json"))
        arrays = zf.read("arrays.npz")

    with pytest.raises(ProjectFileError, match="does not exist"):
        load_project(tmp_path / "absent.f3r")
    (tmp_path / "text.f3r").write_text("hello")
    with pytest.raises(ProjectFileError, match="not a zip"):
        load_project(tmp_path / "text.f3r")

    _rewrite(good, tmp_path / "nometa.f3r", drop="meta.json")
    with pytest.raises(ProjectFileError, match=r"missing meta\.json"):
        load_project(tmp_path / "nometa.f3r")
    _rewrite(good, tmp_path / "noarr.f3r", drop="arrays.npz")
    with pytest.raises(ProjectFileError, match=r"missing arrays\.npz"):
        load_project(tmp_path / "noarr.f3r")

    _rewrite(good, tmp_path / "newer.f3r", meta={**meta, "version": PROJECT_FORMAT_VERSION + 1})
    with pytest.raises(ProjectFileError, match=r"newer Fast3R Studio.*Update the app"):
        load_project(tmp_path / "newer.f3r")
    _rewrite(good, tmp_path / "other.f3r", meta={**meta, "format": "something-else"})
    with pytest.raises(ProjectFileError, match="unknown format"):
        load_project(tmp_path / "other.f3r")
    _rewrite(good, tmp_path / "badjson.f3r", meta=b"{not json")
    with pytest.raises(ProjectFileError, match=r"meta\.json is corrupt"):
        load_project(tmp_path / "badjson.f3r")
    _rewrite(good, tmp_path / "fewviews.f3r", meta={**meta, "n_views": 9})
    with pytest.raises(ProjectFileError, match="inconsistent or corrupt"):
        load_project(tmp_path / "fewviews.f3r")

    # flip bytes in the middle of the array data: the inner CRC-32 catches it
    bad = bytearray(arrays)
    mid = len(bad) // 2
    bad[mid : mid + 8] = bytes(255 - b for b in bad[mid : mid + 8])
    _rewrite(good, tmp_path / "flipped.f3r", arrays=bytes(bad))
    with pytest.raises(ProjectFileError, match="corrupt"):
        load_project(tmp_path / "flipped.f3r")
    _rewrite(good, tmp_path / "trunc.f3r", arrays=arrays[: len(arrays) // 3])
    with pytest.raises(ProjectFileError, match="corrupt"):
        load_project(tmp_path / "trunc.f3r")

    # a zip that was re-compressed by another tool still loads (the slow path)
    deflated = tmp_path / "deflated.f3r"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    _assert_same(rec, load_project(tmp_path / "deflated.f3r"))


def test_save_is_atomic_and_errors_are_typed(tmp_path: Path, rec: Reconstruction, monkeypatch) -> None:
    path = save_project(rec, tmp_path / "p.f3r")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_project(rec, path)
    monkeypatch.undo()
    assert path.read_bytes() == before, "a failed save must leave the old file intact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.f3r"], "temporary file removed"

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProjectFileError, match="Cannot"):
        save_project(rec, blocker / "p.f3r")
    with pytest.raises(ProjectFileError, match="a folder of that name exists"):
        save_project(rec, tmp_path)
    kwargs = _fields(rec)
    kwargs["options"] = {"bad": object()}
    with pytest.raises(ProjectFileError, match="not JSON-able"):
        save_project(Reconstruction(**kwargs), tmp_path / "q.f3r")


def test_load_without_torch(tmp_path: Path, rec: Reconstruction) -> None:
    path = save_project(rec, tmp_path / "p.f3r")
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from fast3r_core.project_file import load_project\n"
        f"r = load_project({str(path)!r})\n"
        "assert r.n_views == 4 and len(r.global_points) > 0\n"
        "print('ok', 'torch' in sys.modules and sys.modules['torch'] is not None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok False"
