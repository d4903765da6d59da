"""The user's edits in projects and exports: stored in the .f3r, applied alike by every exporter.

After each kind of edit (scale, scale from cameras, level, origin, crop, deleted points, all of them) the
PLY (trimesh), GLB (trimesh and its accessors), COLMAP (pycolmap), Nerfstudio and cameras.json files
must agree with each other and with :func:`fast3r_core.edits.edit_points` / ``apply_to_cameras`` (what
the viewer draws): camera centres, point counts, a measured distance; COLMAP's reprojection errors
must be those of the unedited export.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import trimesh

from fast3r_core import cli
from fast3r_core import edits as ed
from fast3r_core.errors import ProjectFileError
from fast3r_core.export import (
    PointSelection,
    apply_edits,
    export_cameras_json,
    export_colmap,
    export_glb,
    export_nerfstudio,
    export_ply,
)
from fast3r_core.export.edited import gltf_rotation
from fast3r_core.project_file import load_project, save_project
from fast3r_core.result import Reconstruction
from tests.core.recon_factory import MIXED_SIZES, make_synthetic_reconstruction
from tests.core.test_exports import _glb_accessor, _glb_json
from tests.core.test_result import _rewrite

SELECTION = PointSelection(top_percent=60.0)
POSED = (0, 1, 3)  # view 2's pose estimation failed


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Reconstruction:
    """Mixed sizes; view 2's pose estimation failed; real image files for COLMAP and Nerfstudio."""
    photos = tmp_path_factory.mktemp("photos")
    return make_synthetic_reconstruction(
        original_sizes=MIXED_SIZES, image_dir=photos, pose_ok=[True, True, False, True]
    )


def _ids(rec: Reconstruction, points) -> np.ndarray:
    return ed.point_ids(points.view, points.pixel, [rec.view_shape(v) for v in range(rec.n_views)])


def _edits(kind: str, rec: Reconstruction) -> ed.Edits:
    """One edit of each kind, each with a measurement between the centres of views 0 and 3."""
    pts = rec.global_points
    e = ed.Edits()
    if kind in ("scale", "combined"):
        e = ed.scale_by(e, 2.5)
    if kind in ("scale_cameras", "combined"):
        e = ed.scale_from_cameras(e, rec.cam_to_world, 0, 3, 1.75)
    if kind in ("level", "combined"):
        e = ed.level_auto(e, rec.cam_to_world[rec.pose_ok], pts.xyz, pts.conf)
    if kind in ("origin", "combined"):
        e = ed.set_origin(e, ed.apply_to_points(e, pts.xyz[:1].astype(np.float64))[0])
    if kind in ("crop", "combined"):
        xyz = ed.apply_to_points(e, pts.xyz.astype(np.float64))
        lo, hi = np.percentile(xyz, 20, axis=0), np.percentile(xyz, 85, axis=0)
        e = ed.crop_box(e, lo, hi)
    if kind in ("delete", "combined"):
        e = ed.delete_points(e, _ids(rec, pts)[::3])  # every third point, spread over every view
    centres = ed.apply_to_cameras(e, rec.cam_to_world[[0, 3]])[:, :3, 3]
    return ed.add_measurement(e, "baseline", centres[0], centres[1])


KINDS = ["none", "scale", "scale_cameras", "level", "origin", "crop", "delete", "combined"]


# ------------------------------------------------------------------------------------- the project


def test_edits_round_trip_through_the_project(tmp_path: Path, rec: Reconstruction) -> None:
    e = _edits("combined", rec)
    assert e.crop is not None and e.selections and e.metres_per_unit == 1.0
    back = load_project(save_project(dataclasses.replace(rec, edits=e), tmp_path / "p.f3r"))
    assert back.edits == e
    assert back.format_version == 2
    with zipfile.ZipFile(tmp_path / "p.f3r") as zf:
        meta = json.loads(zf.read("meta.json"))
    assert meta["version"] == 2 and meta["edits"]["format"] == "fast3r-edits"
    # no edits: stored as such, read back as Edits()
    plain = load_project(save_project(rec, tmp_path / "plain.f3r"))
    assert plain.edits == ed.Edits() and plain.edits.is_empty


def test_format_1_project_loads_with_no_edits(tmp_path: Path, rec: Reconstruction) -> None:
    good = save_project(dataclasses.replace(rec, edits=ed.scale_by(ed.Edits(), 2.0)), tmp_path / "new.f3r")
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read("meta.json"))
    del meta["edits"]
    meta["version"] = 1
    _rewrite(good, tmp_path / "old.f3r", meta=meta)
    old = load_project(tmp_path / "old.f3r")
    assert old.edits == ed.Edits() and old.format_version == 1
    # saved again, it is a format-2 project
    again = save_project(dataclasses.replace(old, edits=ed.scale_by(old.edits, 3.0)), tmp_path / "again.f3r")
    assert load_project(again).edits.scale == 3.0


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("transform", "rotation"), [[1, 0, 0], [0, 2, 0], [0, 0, 1]], r"edits\.transform\.rotation"),
        (("transform", "scale"), "big", r"edits\.transform\.scale"),
        (("transform", "scale"), -1.0, "scale"),
        (("crop",), {"center": [0, 0, 0]}, r"edits\.crop"),
        (("units", "display"), "furlong", "display unit"),
        (("measurements",), [{"name": "a", "a": [0, 0, 0], "b": [1, 0, 0], "distance": 7.0}], "distance"),
        ((), [1, 2, 3], "edits must be an object"),
    ],
)
def test_hostile_edits_are_refused_naming_the_field(
    tmp_path: Path, rec: Reconstruction, path: tuple[str, ...], value: object, match: str
) -> None:
    good = save_project(rec, tmp_path / "good.f3r")
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read("meta.json"))
    if path:
        target = meta["edits"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    else:
        meta["edits"] = value
    _rewrite(good, tmp_path / "bad.f3r", meta=meta)
    with pytest.raises(ProjectFileError, match=match) as info:
        load_project(tmp_path / "bad.f3r")
    assert "meta.json" in str(info.value)


def test_selection_ids_beyond_the_reconstruction_are_refused(tmp_path: Path, rec: Reconstruction) -> None:
    e = ed.delete_points(ed.Edits(), [0, rec.n_pixels])  # one id past the last pixel
    good = save_project(dataclasses.replace(rec, edits=e), tmp_path / "ids.f3r")
    with pytest.raises(ProjectFileError, match=r"edits\.selections\[0\].*out of range"):
        load_project(good)


# ----------------------------------------------------------------------------- every export agrees


def _centres(c2w: np.ndarray) -> np.ndarray:
    return np.asarray(c2w)[..., :3, 3]


def _export_all(rec: Reconstruction, root: Path) -> dict:
    out = {
        "ply": export_ply(rec, root / "points.ply", SELECTION),
        "glb": export_glb(rec, root / "scene.glb", SELECTION, frustum_scale=0.3),
        "colmap": export_colmap(rec, root / "colmap", SELECTION, text=True),
        "nerfstudio": export_nerfstudio(rec, root / "ns", SELECTION),
        "cameras": export_cameras_json(rec, root / "cameras.json"),
    }
    return out


@pytest.fixture(scope="module")
def unedited(rec: Reconstruction, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _export_all(rec, tmp_path_factory.mktemp("unedited"))


@pytest.mark.parametrize("kind", KINDS)
def test_every_export_agrees_after_an_edit(
    kind: str, rec: Reconstruction, unedited: dict, tmp_path: Path
) -> None:
    e = _edits(kind, rec) if kind != "none" else ed.Edits()
    edited_rec = dataclasses.replace(rec, edits=e)
    reports = _export_all(edited_rec, tmp_path)

    # what the viewer shows: the selected model points through edit_points, cameras through apply_to_cameras
    model = rec.select(top_percent=SELECTION.top_percent)
    want_xyz, keep = ed.edit_points(e, model.xyz, _ids(rec, model))
    want_c2w = ed.apply_to_cameras(e, rec.cam_to_world)
    assert 0 < keep.sum() <= len(model)
    if kind in ("crop", "delete", "combined"):
        assert keep.sum() < len(model)
    scene = apply_edits(edited_rec)
    assert np.allclose(scene.cam_to_world, want_c2w)

    # PLY (trimesh): the same points, in the same (confidence) order
    ply = np.asarray(trimesh.load(tmp_path / "points.ply").vertices)
    assert reports["ply"].n_points == len(ply) == keep.sum()
    tol = 1e-5 * max(1.0, float(np.abs(want_xyz).max()))
    assert np.allclose(ply, want_xyz, atol=tol)

    # GLB (trimesh for the points, the accessors for the frusta): glTF axes on top of the edited world
    to_gltf = gltf_rotation(e)
    glb_scene = trimesh.load(tmp_path / "scene.glb", force="scene")
    clouds = [g for g in glb_scene.geometry.values() if isinstance(g, trimesh.PointCloud)]
    assert len(clouds) == 1
    assert np.allclose(np.asarray(clouds[0].vertices) @ to_gltf, ply, atol=tol)
    gltf = _glb_json(tmp_path / "scene.glb")
    frusta = {
        m["name"]: _glb_accessor(tmp_path / "scene.glb", gltf, m["primitives"][0]["attributes"]["POSITION"])
        for m in gltf["meshes"]
        if m["name"].startswith("camera_")
    }
    assert sorted(frusta) == [f"camera_{v:03d}" for v in POSED]
    glb_centres = np.array([frusta[f"camera_{v:03d}"][0] @ to_gltf for v in POSED])  # apex = centre
    assert np.allclose(glb_centres, _centres(want_c2w[list(POSED)]), atol=tol)
    if kind in ("level", "combined"):
        up = ed.cameras_mean_up(want_c2w[list(POSED)])
        assert up[2] > 0.9  # levelled: Z up, which glTF holds as +Y
        assert (to_gltf @ up)[1] > 0.9
    elif kind == "none":
        assert gltf["scenes"][0]["extras"]["fast3r"]["convention"].startswith("glTF axes: (x, -y, -z)")

    # COLMAP (pycolmap): poses in the edited world, the same reprojection errors as without edits
    model_colmap = pycolmap.Reconstruction(tmp_path / "colmap" / "sparse" / "0")
    colmap_centres = np.array([model_colmap.images[v + 1].projection_center() for v in POSED])
    assert np.allclose(colmap_centres, _centres(want_c2w[list(POSED)]), atol=tol)
    posed_kept = np.isin(model.view[keep], POSED).sum()
    colmap = reports["colmap"]
    assert colmap.n_points + colmap.dropped == posed_kept == len(model_colmap.points3D)
    errors = []
    for point in model_colmap.points3D.values():
        el = point.track.elements[0]
        image = model_colmap.images[el.image_id]
        cam = model_colmap.cameras[image.camera_id]
        xy = cam.img_from_cam(image.cam_from_world() * point.xyz)
        errors.append(np.linalg.norm(xy - image.points2D[el.point2D_idx].xy))
    assert max(errors) < 1e-3  # the synthetic points lie on their pixels' rays, before and after
    if not e.filters_points:  # the same points: exactly the unedited errors
        assert colmap.n_points == unedited["colmap"].n_points
        assert colmap.mean_reproj_px == pytest.approx(unedited["colmap"].mean_reproj_px, abs=1e-5)  # float32

    # Nerfstudio: OpenGL camera axes in the same world, the PLY beside it
    ns = json.loads((tmp_path / "ns" / "transforms.json").read_text())
    ns_centres = np.array([np.array(f["transform_matrix"])[:3, 3] for f in ns["frames"]])
    assert np.allclose(ns_centres, _centres(want_c2w[list(POSED)]), atol=tol)
    assert reports["nerfstudio"].n_points == posed_kept
    ns_ply = np.asarray(trimesh.load(tmp_path / "ns" / "points.ply").vertices)
    assert np.allclose(ns_ply, want_xyz[np.isin(model.view[keep], POSED)], atol=tol)

    # cameras.json: every view, and the measurement with its distance in the file's world
    doc = json.loads((tmp_path / "cameras.json").read_text())
    assert np.allclose([v["cam_to_world"] for v in doc["views"]], want_c2w, atol=tol)
    assert doc["convention"].startswith("cam_to_world maps camera coordinates")
    if kind == "none":
        assert "edits" not in doc and "edits" not in ns["fast3r"]
        return
    d_cams = float(np.linalg.norm(_centres(want_c2w[0]) - _centres(want_c2w[3])))
    for record in (doc["edits"], ns["fast3r"]["edits"], gltf["scenes"][0]["extras"]["fast3r"]["edits"]):
        (m,) = record["measurements"]
        assert m["name"] == "baseline"
        assert m["distance"] == pytest.approx(d_cams, rel=1e-9)
        assert np.allclose(m["a"], _centres(want_c2w[0])) and np.allclose(m["b"], _centres(want_c2w[3]))
        assert np.allclose(record["similarity"], e.similarity_matrix())
    d_colmap = np.linalg.norm(colmap_centres[0] - colmap_centres[2])  # views 0 and 3
    assert d_colmap == pytest.approx(d_cams, rel=1e-6)
    if kind in ("scale_cameras", "combined"):
        assert d_cams == pytest.approx(1.75, rel=1e-9) and doc["edits"]["metres_per_unit"] == 1.0
        assert doc["edits"]["measurements"][0]["distance_m"] == pytest.approx(1.75)
    if kind == "scale":
        d0 = np.linalg.norm(_centres(rec.cam_to_world[0]) - _centres(rec.cam_to_world[3]))
        assert d_cams == pytest.approx(2.5 * d0)


def test_voxels_are_in_edited_units(rec: Reconstruction, tmp_path: Path) -> None:
    """Voxel downsampling comes after the edits: the same cells whatever the scale, in its units."""
    plain = export_ply(rec, tmp_path / "a.ply", PointSelection(voxel_size=0.2)).n_points
    scaled = dataclasses.replace(rec, edits=ed.scale_by(ed.Edits(), 10.0))
    assert export_ply(scaled, tmp_path / "b.ply", PointSelection(voxel_size=2.0)).n_points == plain
    assert export_ply(scaled, tmp_path / "c.ply", PointSelection(voxel_size=0.2)).n_points > plain


# ----------------------------------------------------------------------------------- fast3r edit


def _floor_reconstruction(tilt_deg: float = 8.0) -> tuple[Reconstruction, np.ndarray]:
    """A scene with a known floor: the synthetic cameras, each pixel's point on a floor plane 1.5 below
    the cameras' target (tilted by ``tilt_deg`` from the cameras' up) or else on a sphere around the
    scene. Returns the reconstruction and the floor's unit up normal (model world)."""
    rec = make_synthetic_reconstruction(n_views=5, long_side=96, seed=3)
    a = np.radians(tilt_deg)
    up = np.array([0.0, -np.cos(a), np.sin(a)])  # OpenCV: -Y is up; tilted about X
    on_floor = np.array([0.0, 1.5, 4.0])
    pts3d = []
    for v in range(rec.n_views):
        h, w = rec.view_shape(v)
        u, r = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        rays = np.stack([u, r, np.ones_like(u)], axis=-1) @ np.linalg.inv(rec.intrinsics[v]).T
        d = rays @ rec.cam_to_world[v, :3, :3].T
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        o = rec.cam_to_world[v, :3, 3]
        with np.errstate(divide="ignore"):
            t_floor = (up @ (on_floor - o)) / (d @ up)
        oc = o - np.array([0.0, 0.0, 4.0])  # a sphere of radius 12 around the target, seen from inside
        b = d @ oc
        t_sphere = -b + np.sqrt(b * b - (oc @ oc - 144.0))
        t = np.where((t_floor > 0) & (t_floor < t_sphere), t_floor, t_sphere)
        pts3d.append((o + d * t[..., None]).astype(np.float32))
    return dataclasses.replace(rec, pts3d=tuple(pts3d)), up


def _main(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_edit_level_auto_puts_the_floor_normal_on_z(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec, up = _floor_reconstruction()
    project = save_project(rec, tmp_path / "floor.f3r")
    # the cameras alone are 8 degrees off: the floor plane does the work
    assert np.degrees(np.arccos(ed.cameras_mean_up(rec.cam_to_world) @ up)) > 5.0
    code, _, err = _main(capsys, "edit", project, "--level", "auto", "-o", tmp_path / "level.f3r")
    assert code == 0, err
    e = load_project(tmp_path / "level.f3r").edits
    normal = np.array(e.rotation) @ up
    assert np.degrees(np.arccos(np.clip(normal[2], -1, 1))) < 2.0
    assert load_project(project).edits == ed.Edits()  # -o: the original is untouched
    # the exported floor points are horizontal: their z spread is tiny next to their x/y extent
    export_ply(load_project(tmp_path / "level.f3r"), tmp_path / "level.ply")
    on_floor = np.abs((rec.global_points.xyz - np.array([0, 1.5, 4.0])) @ up) < 1e-3
    xyz = ed.apply_to_points(e, rec.global_points.xyz[on_floor].astype(np.float64))
    assert np.ptp(xyz[:, 2]) < 0.05 * np.ptp(xyz[:, 0])


def test_edit_options_compose_in_the_documented_order(
    tmp_path: Path, rec: Reconstruction, capsys: pytest.CaptureFixture[str]
) -> None:
    project = save_project(dataclasses.replace(rec, edits=ed.scale_by(ed.Edits(), 7.0)), tmp_path / "p.f3r")
    origin = ed.apply_to_points(ed.scale_by(ed.Edits(), 7.0), rec.cam_to_world[1:2, :3, 3])[0]
    argv = [
        *("edit", project, "--crop-box", "-5", "-5", "-5", "5", "5", "5"),  # the last, whatever its place
        *("--scale-cameras", "0", "3", "2.0", "--scale", "0.5", "--level", "auto"),
        *("--origin", *origin, "--json"),
    ]
    code, out, err = _main(capsys, *argv)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["command"] == "edit" and summary["metres_per_unit"] == pytest.approx(2.0)
    e = load_project(project).edits  # rewritten in place
    # expected: stored edits, then origin (current world), scale cameras, scale, level, crop
    want = ed.set_origin(ed.scale_by(ed.Edits(), 7.0), origin)
    want = ed.scale_by(ed.scale_from_cameras(want, rec.cam_to_world, 0, 3, 2.0), 0.5)
    pts = rec.global_points
    want = ed.level_auto(want, rec.cam_to_world[rec.pose_ok], pts.xyz, pts.conf)
    want = ed.crop_box(want, [-5, -5, -5], [5, 5, 5])
    assert e.scale == pytest.approx(want.scale) and np.allclose(e.rotation, want.rotation)
    assert np.allclose(e.origin, want.origin) and e.crop == want.crop
    c = ed.apply_to_cameras(e, rec.cam_to_world)
    assert np.linalg.norm(c[0, :3, 3] - c[3, :3, 3]) == pytest.approx(1.0)  # 2 m, then halved
    assert np.allclose(c[1, :3, 3], 0.0, atol=1e-9)  # view 1's centre is the origin
    # fast3r info lists them; --clear removes them
    code, out, _ = _main(capsys, "info", project)
    assert code == 0 and "Edits        transform: scale" in out and "crop box" in out
    assert "measurement" not in out and "m per unit" in out
    code, out, _ = _main(capsys, "info", project, "--json")
    info = json.loads(out)
    assert info["edits"]["metres_per_unit"] == pytest.approx(2.0) and info["edits"]["z_up"]
    code, _, err = _main(capsys, "edit", project, "--clear")
    assert code == 0, err
    assert load_project(project).edits == ed.Edits()
    code, out, _ = _main(capsys, "info", project)
    assert "Edits        none" in out


def test_edit_then_export_applies_the_edits(
    tmp_path: Path, rec: Reconstruction, capsys: pytest.CaptureFixture[str]
) -> None:
    project = save_project(rec, tmp_path / "p.f3r")
    code, _, err = _main(capsys, "edit", project, "--scale-cameras", "0", "1", "3.0")
    assert code == 0, err
    code, _, err = _main(capsys, "export", project, "-f", "cameras", "-o", tmp_path / "cams.json")
    assert code == 0, err
    doc = json.loads((tmp_path / "cams.json").read_text())
    c = np.array([v["cam_to_world"] for v in doc["views"]])[:, :3, 3]
    assert np.linalg.norm(c[0] - c[1]) == pytest.approx(3.0)
    assert "1 unit = 1 m" in doc["convention"]


def _one_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scale-cameras", "0", "9", "1.0"), "view 9 does not exist"),
        (("--scale-cameras", "0", "x", "1.0"), "not an integer"),
        (("--scale-cameras", "0", "2", "1.0"), "view 2 has no reliable pose"),
        (("--scale-cameras", "0", "1", "0"), "positive number of metres"),
        (("--scale-cameras", "0", "1", "-2"), "positive number of metres"),
        (("--scale-cameras", "1", "1", "2"), "two different views"),
        (("--scale-cameras", "0", "4", "2"), "coincide"),
        (("--crop-box", "0", "0", "0", "0", "1", "1"), "must exceed its minimum"),
        (("--crop-box", "100", "100", "100", "101", "101", "101"), "no point lies in the box"),
        ((), "nothing to do"),
    ],
)
def test_edit_errors_leave_the_project_as_it_was(
    tmp_path: Path, rec: Reconstruction, capsys: pytest.CaptureFixture[str], args: tuple, message: str
) -> None:
    # view 4 sits where view 0 is: a pair of coincident cameras
    c2w = np.concatenate([rec.cam_to_world, rec.cam_to_world[:1]])
    five = make_synthetic_reconstruction(
        original_sizes=[*MIXED_SIZES, MIXED_SIZES[0]], pose_ok=[True, True, False, True, True]
    )
    five = dataclasses.replace(five, cam_to_world=c2w)
    before = ed.scale_by(ed.Edits(), 2.0)
    project = save_project(dataclasses.replace(five, edits=before), tmp_path / "p.f3r")
    data = project.read_bytes()
    code, _, err = _main(capsys, "edit", project, *args)
    assert code == 2
    assert message in _one_error(err)
    assert project.read_bytes() == data and sorted(p.name for p in tmp_path.iterdir()) == ["p.f3r"]


def test_edit_usage_and_unreadable_projects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _main(capsys, "edit", tmp_path / "missing.f3r", "--scale", "2")
    assert code == 2 and "does not exist" in _one_error(err)
    (tmp_path / "junk.f3r").write_bytes(b"junk")
    code, _, err = _main(capsys, "edit", tmp_path / "junk.f3r", "--scale", "2")
    assert code == 2 and "not a Fast3R Studio project" in _one_error(err)
    assert (tmp_path / "junk.f3r").read_bytes() == b"junk"
    for bad in (("--scale", "0"), ("--scale", "-1"), ("--level", "manual"), ("--origin", "1", "2")):
        code, _, err = _main(capsys, "edit", tmp_path / "junk.f3r", *bad)
        assert code == 2 and "usage:" in err
    code, _, err = _main(capsys, "edit", tmp_path / "junk.f3r", "--origin", "nan", "0", "0")
    assert code == 2 and "finite" in err


def test_an_export_left_empty_by_the_edits_says_so(tmp_path: Path, rec: Reconstruction) -> None:
    from fast3r_core.errors import EmptyExportError

    every = ed.delete_points(rec.edits, _ids(rec, rec.global_points))
    with pytest.raises(EmptyExportError, match="deleted points leave none"):
        export_ply(dataclasses.replace(rec, edits=every), tmp_path / "x.ply")
    assert not (tmp_path / "x.ply").exists()
    with pytest.raises(EmptyExportError, match="no point is selected") as info:
        export_ply(rec, tmp_path / "y.ply", PointSelection(threshold=1e30))
    assert "deleted" not in str(info.value)
