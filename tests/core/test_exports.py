"""Exporters, checked by reading the files back with other libraries (trimesh, pycolmap, json)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import trimesh
from PIL import Image

from fast3r_core.errors import EmptyExportError, ExportError
from fast3r_core.export import (
    FORMATS,
    PointSelection,
    export_cameras_json,
    export_colmap,
    export_glb,
    export_nerfstudio,
    export_ply,
)
from fast3r_core.export import ply as ply_module
from fast3r_core.geometry import rotmat_to_quat_wxyz
from fast3r_core.result import Reconstruction
from tests.core.recon_factory import MIXED_SIZES, make_synthetic_reconstruction, project_original

THRESHOLD = 3.0


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("photos")


@pytest.fixture(scope="module")
def rec(photos: Path) -> Reconstruction:
    """Mixed sizes; view 2's pose estimation failed."""
    return make_synthetic_reconstruction(
        original_sizes=MIXED_SIZES, image_dir=photos, pose_ok=[True, True, False, True]
    )


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- PLY -------------------------------------------------------------------------------------------


def test_ply_binary_read_back(tmp_path: Path, rec: Reconstruction) -> None:
    path = tmp_path / "cloud.ply"
    n = export_ply(rec, path, PointSelection(threshold=THRESHOLD)).n_points
    sel = rec.select(threshold=THRESHOLD)
    assert n == len(sel) > 1000

    raw = path.read_bytes()
    header_end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:header_end].decode()
    assert "format binary_little_endian 1.0" in header and f"element vertex {n}\n" in header
    assert "property float confidence\nproperty float quality\n" in header
    assert "OpenCV axes" in header
    assert len(raw) == header_end + 23 * n

    cloud = trimesh.load(path)
    assert isinstance(cloud, trimesh.PointCloud)
    assert np.array_equal(np.asarray(cloud.vertices, np.float32), sel.xyz)
    assert np.array_equal(cloud.colors[:, :3], sel.rgb)
    vertex = cloud.metadata["_ply_raw"]["vertex"]["data"]
    assert np.array_equal(vertex["confidence"], sel.conf)
    assert np.array_equal(vertex["quality"], sel.conf)
    assert vertex["confidence"].min() > THRESHOLD


def test_ply_ascii_local_views_top_percent(tmp_path: Path, rec: Reconstruction) -> None:
    path = tmp_path / "a.ply"
    n = export_ply(
        rec, path, PointSelection(source="local", views=(1, 3), top_percent=40), ascii=True
    ).n_points
    sel = rec.select("local", top_percent=40, views=[1, 3])
    assert n == len(sel) and set(np.unique(sel.view).tolist()) == {1, 3}
    assert path.read_bytes().startswith(b"ply\nformat ascii 1.0\n")
    cloud = trimesh.load(path)
    # 9 significant digits give float32 back exactly
    assert np.array_equal(np.asarray(cloud.vertices, np.float32), sel.xyz)
    assert np.array_equal(cloud.colors[:, :3], sel.rgb)
    conf = np.asarray(cloud.metadata["_ply_raw"]["vertex"]["data"]["confidence"]).ravel()
    assert np.array_equal(conf, sel.conf)


def test_ply_voxel_keeps_most_confident_point_per_voxel(tmp_path: Path, rec: Reconstruction) -> None:
    voxel = 0.2
    path = tmp_path / "v.ply"
    n = export_ply(rec, path, PointSelection(voxel_size=voxel)).n_points
    pts = rec.global_points
    best: dict[tuple[int, int, int], int] = {}
    keys = np.floor(pts.xyz.astype(np.float64) / voxel).astype(np.int64)
    for i, key in enumerate(map(tuple, keys)):
        if key not in best or pts.conf[i] > pts.conf[best[key]]:
            best[key] = i
    assert n == len(best) < len(pts) // 4
    kept = np.sort(np.array(list(best.values())))
    cloud = trimesh.load(path)
    assert np.array_equal(np.asarray(cloud.vertices, np.float32), pts.xyz[kept])
    assert np.array_equal(cloud.colors[:, :3], pts.rgb[kept])
    with pytest.raises(ValueError, match="voxel size"):
        export_ply(rec, path, PointSelection(voxel_size=0))


def test_ply_empty_selection(tmp_path: Path, rec: Reconstruction) -> None:
    # issue 15: zero points is refused with a typed error, not written as an empty file
    path = tmp_path / "e.ply"
    with pytest.raises(EmptyExportError, match="no point is selected"):
        export_ply(rec, path, PointSelection(threshold=1e9))
    assert not path.exists()


def test_ply_atomic_on_failure(tmp_path: Path, rec: Reconstruction, monkeypatch) -> None:
    path = tmp_path / "keep.ply"
    path.write_bytes(b"old content")

    def boom(*args):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(ply_module, "_vertex_records", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        export_ply(rec, path)
    assert path.read_bytes() == b"old content"
    assert _listing(tmp_path) == ["keep.ply"], "the temporary file must be removed"


# -- every format: destination errors, FORMATS table ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_unwritable_destination_is_export_error(tmp_path: Path, rec: Reconstruction, name: str) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    fmt = FORMATS[name]
    dest = blocker / fmt.default_name.rstrip("/")
    with pytest.raises(ExportError, match="not_a_folder"):
        fmt.export(rec, dest)
    assert _listing(tmp_path) == ["not_a_folder"]


@pytest.mark.parametrize("name", ["ply", "glb", "cameras"])
def test_existing_folder_as_file_is_export_error(tmp_path: Path, rec: Reconstruction, name: str) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="a folder of that name exists"):
        FORMATS[name].export(rec, tmp_path / "taken")


def test_formats_table(tmp_path: Path, rec: Reconstruction) -> None:
    assert set(FORMATS) == {"ply", "glb", "colmap", "nerfstudio", "cameras"}
    for name, fmt in FORMATS.items():
        function, default_name, description = fmt.writer, fmt.default_name, fmt.description
        assert callable(function) and description
        function(rec, tmp_path / default_name.rstrip("/"))
        assert (tmp_path / default_name.rstrip("/")).exists(), name
        assert fmt.is_folder == (name in ("colmap", "nerfstudio"))


# -- GLB -----------------------------------------------------------------------------------------------


def _glb_json(path: Path) -> dict:
    data = path.read_bytes()
    magic, version, _ = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF" and version == 2
    length, kind = struct.unpack("<I4s", data[12:20])
    assert kind == b"JSON"
    return json.loads(data[20 : 20 + length])


def _glb_accessor(path: Path, gltf: dict, index: int) -> np.ndarray:
    """Read one accessor of a GLB's binary chunk (tightly packed float32 or uint8 data)."""
    data = path.read_bytes()
    json_len = struct.unpack("<I", data[12:16])[0]
    bin_start = 20 + json_len + 8
    acc = gltf["accessors"][index]
    view = gltf["bufferViews"][acc["bufferView"]]
    dtype = {5126: np.float32, 5121: np.uint8}[acc["componentType"]]
    width = {"VEC3": 3, "VEC4": 4}[acc["type"]]
    start = bin_start + view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    count = acc["count"] * width
    return np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(-1, width)


def test_glb_points_and_frusta(tmp_path: Path, rec: Reconstruction) -> None:
    path = tmp_path / "scene.glb"
    n = export_glb(rec, path, PointSelection(threshold=THRESHOLD), frustum_scale=0.5).n_points
    sel = rec.select(threshold=THRESHOLD)
    assert n == len(sel)

    gltf = _glb_json(path)
    modes = sorted(p["mode"] for m in gltf["meshes"] for p in m["primitives"])
    assert modes == [0, 1, 1, 1], "one POINTS primitive, LINES for the 3 views with a pose"
    points_mesh = next(m for m in gltf["meshes"] if m["primitives"][0]["mode"] == 0)
    attributes = points_mesh["primitives"][0]["attributes"]
    assert gltf["accessors"][attributes["POSITION"]]["count"] == n and "COLOR_0" in attributes

    scene = trimesh.load(path)
    cloud = scene.geometry["points"]
    flip = np.array([1, -1, -1], np.float32)
    assert np.array_equal(np.asarray(cloud.vertices, np.float32), sel.xyz * flip)
    assert np.array_equal(np.asarray(cloud.colors)[:, :3], sel.rgb)

    cams = sorted(k for k in scene.geometry if k.startswith("camera_"))
    assert cams == ["camera_000", "camera_001", "camera_003"]
    colors = set()
    for key in cams:
        v = int(key.split("_")[1])
        verts = np.asarray(scene.geometry[key].vertices, np.float64) * flip  # back to OpenCV world
        assert verts.shape == (22, 3)
        assert np.allclose(verts[0], rec.cam_to_world[v][:3, 3], atol=1e-5), "segment 0 starts at centre"
        corners = verts[[1, 3, 5, 7]]  # centre->corner segments end at tl, tr, br, bl
        xy, z = project_original(rec, v, corners)
        w, h = rec.original_sizes[v]
        expected = [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]]
        assert np.allclose(xy, expected, atol=1e-3) and np.allclose(z, 0.5, atol=1e-5)
    for mesh in gltf["meshes"]:
        attributes = mesh["primitives"][0]["attributes"]
        if mesh["primitives"][0]["mode"] == 1:
            line_colors = _glb_accessor(path, gltf, attributes["COLOR_0"])
            assert len(np.unique(line_colors, axis=0)) == 1, "one colour per frustum"
            colors.add(tuple(line_colors[0]))
    assert len(colors) == 3, "a different colour per view"


def test_glb_without_cameras_and_default_scale(tmp_path: Path, rec: Reconstruction) -> None:
    path = tmp_path / "pts.glb"
    export_glb(rec, path, PointSelection(top_percent=5), cameras=False)
    assert [p["mode"] for m in _glb_json(path)["meshes"] for p in m["primitives"]] == [0]
    # no point, one frustum of the default size
    export_glb(rec, path, PointSelection(threshold=1e9, views=(0,)))
    scene = trimesh.load(path)
    assert list(scene.geometry) == ["camera_000"]
    centre_to_corner = np.linalg.norm(np.asarray(scene.geometry["camera_000"].vertices)[1])
    assert 0.3 < centre_to_corner < 2.0, "default depth = 15 % of the ~4 units scene depth"
    with pytest.raises(ExportError, match="Nothing to write"):
        export_glb(rec, path, PointSelection(threshold=1e9), cameras=False)


# -- COLMAP --------------------------------------------------------------------------------------------


def test_quaternion_convention() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] >= 0 else -q
        w, x, y, z = q
        r = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )
        assert np.allclose(rotmat_to_quat_wxyz(r), q, atol=1e-12)
        assert np.allclose(pycolmap.Rotation3d(rotmat_to_quat_wxyz(r)[[1, 2, 3, 0]]).matrix(), r)
    assert np.allclose(rotmat_to_quat_wxyz(np.diag([1.0, -1.0, -1.0])), [0, 1, 0, 0])


def _check_colmap_model(model: pycolmap.Reconstruction, rec: Reconstruction, report, images: Path) -> None:
    used = [0, 1, 3]
    assert model.num_images() == model.num_cameras() == len(used) == report.n_images
    assert model.num_points3D() == report.n_points
    sel = rec.select(threshold=THRESHOLD, views=used)
    assert report.n_points + report.dropped == len(sel)
    assert report.dropped == 0 and report.mean_reproj_px < 1e-3
    assert model.compute_mean_reprojection_error() == pytest.approx(report.mean_reproj_px, abs=1e-6)

    for v in used:
        image = model.images[v + 1]
        camera = model.cameras[image.camera_id]
        assert camera.model == pycolmap.CameraModelId.PINHOLE
        w, h = rec.original_sizes[v]
        assert (camera.width, camera.height) == (w, h)
        k = rec.intrinsics_original[v]
        assert np.allclose(camera.params, [k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5], atol=1e-12)
        assert np.allclose(image.cam_from_world().matrix(), np.linalg.inv(rec.cam_to_world[v])[:3], atol=1e-9)
        with Image.open(images / image.name) as im:
            assert im.size == (w, h)

        # observations: the view's points in confidence order, at their original pixel + 0.5
        mine = np.flatnonzero(sel.view == v)
        assert image.num_points2D() == mine.size
        expected_xy = rec.model_to_original_pixels(sel.view[mine], sel.pixel[mine]) + 0.5
        xy = np.array([p.xy for p in image.points2D])
        assert np.allclose(xy, expected_xy, atol=1e-9)
        ids = [p.point3D_id for p in image.points2D]
        xyz = np.array([model.points3D[i].xyz for i in ids])
        rgb = np.array([model.points3D[i].color for i in ids])
        assert np.array_equal(xyz.astype(np.float32), sel.xyz[mine])
        assert np.array_equal(rgb, sel.rgb[mine])
        for i in ids[:50]:
            track = model.points3D[i].track.elements
            assert [(e.image_id, e.point2D_idx) for e in track] == [(v + 1, ids.index(i))]
        # pycolmap's own camera model puts each point on its stored 2-D point
        cam = xyz @ image.cam_from_world().rotation.matrix().T + image.cam_from_world().translation
        proj = camera.img_from_cam(cam)
        assert np.abs(proj - xy).max() < 1e-3


def test_colmap_binary_read_by_pycolmap(tmp_path: Path, rec: Reconstruction, photos: Path) -> None:
    out = tmp_path / "colmap"
    report = export_colmap(rec, out, PointSelection(threshold=THRESHOLD))
    assert report.skipped_views == (2,) and report.missing_images == ()
    assert _listing(out / "sparse") == [
        "0",
        "0/cameras.bin",
        "0/images.bin",
        "0/points3D.bin",
    ]
    assert _listing(out / "images") == ["view_00.png", "view_01.png", "view_03.png"]
    # copies, never links by default (an edit of the export must not edit the original)
    assert os.stat(out / "images" / "view_00.png").st_ino != os.stat(photos / "view_00.png").st_ino
    _check_colmap_model(pycolmap.Reconstruction(out / "sparse" / "0"), rec, report, out / "images")


def test_colmap_text_read_by_pycolmap(tmp_path: Path, rec: Reconstruction) -> None:
    out = tmp_path / "colmap_txt"
    report = export_colmap(
        rec, out, PointSelection(threshold=THRESHOLD), binary=False, text=True, link_images=False
    )
    assert _listing(out / "sparse" / "0") == ["cameras.txt", "images.txt", "points3D.txt"]
    model = pycolmap.Reconstruction()
    model.read_text(out / "sparse" / "0")
    _check_colmap_model(model, rec, report, out / "images")
    assert os.stat(out / "images" / "view_00.png").st_nlink == 1, "copied, not linked"


def test_colmap_drops_points_that_do_not_reproject(tmp_path: Path) -> None:
    rec = make_synthetic_reconstruction(2, seed=3)
    pts = [p.copy() for p in rec.pts3d]
    # push view 1's left half sideways in its camera frame by a growing amount (0 .. ~6 px)
    h, w = rec.view_shape(1)
    r = rec.cam_to_world[1][:3, :3]
    depth = 4.0
    shift_px = np.tile(np.linspace(0, 6, w // 2), (h, 1))
    fx = rec.intrinsics_original[1][0, 0]
    pts[1][:, : w // 2] += ((shift_px * depth / fx)[..., None] * r[:, 0]).astype(np.float32)
    fields = {f: getattr(rec, f) for f in rec.__dataclass_fields__}
    moved = Reconstruction(**{**fields, "pts3d": tuple(pts)})

    ps = moved.global_points
    errors = np.empty(len(ps))
    orig = moved.model_to_original_pixels(ps.view, ps.pixel)
    for v in range(2):
        m = ps.view == v
        errors[m] = np.linalg.norm(project_original(moved, v, ps.xyz[m])[0] - orig[m], axis=1)
    expected_drop = int((errors > 2.0).sum())
    assert 0 < expected_drop < len(ps)

    report = export_colmap(moved, tmp_path / "c", max_reproj_px=2.0, copy_images=False)
    assert report.dropped == expected_drop
    assert report.n_points == len(ps) - expected_drop
    assert report.mean_reproj_px == pytest.approx(errors[errors <= 2.0].mean(), rel=1e-6)
    model = pycolmap.Reconstruction(tmp_path / "c" / "sparse" / "0")
    assert model.num_points3D() == report.n_points
    assert max(p.error for p in model.points3D.values()) <= 2.0
    assert not (tmp_path / "c" / "images").exists()


def test_colmap_names_in_place_and_missing_images(tmp_path: Path, photos: Path, rec: Reconstruction) -> None:
    report = export_colmap(rec, tmp_path / "c", PointSelection(top_percent=10), copy_images=False)
    assert report.images_dir == photos
    model = pycolmap.Reconstruction(tmp_path / "c" / "sparse" / "0")
    assert sorted(im.name for im in model.images.values()) == ["view_00.png", "view_01.png", "view_03.png"]

    ghost = make_synthetic_reconstruction(2)  # paths that do not exist
    report = export_colmap(ghost, tmp_path / "g", PointSelection(top_percent=10))
    assert len(report.missing_images) == 2 and report.n_images == 2
    with pytest.raises(ExportError, match="not inside the images folder"):
        export_colmap(rec, tmp_path / "x", copy_images=False, images_dir=tmp_path)


def test_colmap_images_are_upright_and_renamed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    rec = make_synthetic_reconstruction(original_sizes=[(160, 120), (160, 120), (120, 160)])
    # view 0: a/my photo.jpg; view 1: b/my photo.jpg (same name); view 2: stored sideways + EXIF 6
    pixels = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(src / "a" / "my photo.jpg", quality=95)
    Image.fromarray(pixels).save(src / "b" / "my photo.jpg", quality=95)
    upright = np.zeros((160, 120, 3), np.uint8)
    upright[:10] = 255  # white band at the top of the upright image
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    # stored pixels are the upright image rotated 90° counter-clockwise (160 x 120 stored)
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(src / "rot.jpg", exif=exif, quality=95)
    fields = {f: getattr(rec, f) for f in rec.__dataclass_fields__}
    paths = (str(src / "a" / "my photo.jpg"), str(src / "b" / "my photo.jpg"), str(src / "rot.jpg"))
    rec = Reconstruction(**{**fields, "image_paths": paths})

    report = export_colmap(rec, tmp_path / "out", PointSelection(top_percent=5), text=True)
    model = pycolmap.Reconstruction(tmp_path / "out" / "sparse" / "0")
    names = [model.images[v + 1].name for v in range(3)]
    assert names == ["my_photo.jpg", "my_photo_001.jpg", "rot.jpg"]
    assert (tmp_path / "out" / "images" / "my_photo_001.jpg").is_file()
    with Image.open(tmp_path / "out" / "images" / "rot.jpg") as im:
        assert im.size == (120, 160)
        assert im.getexif().get(0x0112, 1) == 1
        top = np.asarray(im.convert("L"))[:8].mean()
        bottom = np.asarray(im.convert("L"))[-8:].mean()
        assert top > 200 and bottom < 50, "re-encoded upright"
    text = (report.sparse_dir / "images.txt").read_text()
    assert "my_photo_001.jpg" in text


# -- Nerfstudio ----------------------------------------------------------------------------------------


def test_nerfstudio_transforms(tmp_path: Path, rec: Reconstruction) -> None:
    json_path = export_nerfstudio(rec, tmp_path / "ns", PointSelection(threshold=THRESHOLD)).path
    assert json_path == tmp_path / "ns" / "transforms.json"
    meta = json.loads(json_path.read_text())
    assert meta["camera_model"] == "OPENCV"
    assert meta["applied_transform"] == np.eye(4)[:3].tolist()
    assert meta["ply_file_path"] == "points.ply"
    cloud = trimesh.load(json_path.parent / meta["ply_file_path"])
    sel = rec.select(threshold=THRESHOLD, views=[0, 1, 3])
    assert np.array_equal(np.asarray(cloud.vertices, np.float32), sel.xyz)

    assert len(meta["frames"]) == 3
    for frame, v in zip(meta["frames"], [0, 1, 3], strict=True):
        assert (json_path.parent / frame["file_path"]).is_file()
        with Image.open(json_path.parent / frame["file_path"]) as im:
            assert im.size == (frame["w"], frame["h"])
        c2w_gl = np.array(frame["transform_matrix"])
        assert np.allclose(c2w_gl, rec.cam_to_world[v] @ np.diag([1.0, -1.0, -1.0, 1.0]))
        assert frame["k1"] == frame["k2"] == frame["p1"] == frame["p2"] == 0.0
        # project the view's points the OpenGL way (camera looks down -z, y up)
        m = sel.view == v
        x_gl = (sel.xyz[m].astype(np.float64) - c2w_gl[:3, 3]) @ c2w_gl[:3, :3]
        depth = -x_gl[:, 2]
        assert np.all(depth > 0)
        u = frame["fl_x"] * x_gl[:, 0] / depth + frame["cx"]
        w = -frame["fl_y"] * x_gl[:, 1] / depth + frame["cy"]
        expected = rec.model_to_original_pixels(sel.view[m], sel.pixel[m]) + 0.5
        assert np.abs(np.column_stack([u, w]) - expected).max() < 1e-3


def test_nerfstudio_json_path_in_place_no_ply(tmp_path: Path, rec: Reconstruction, photos: Path) -> None:
    json_path = export_nerfstudio(
        rec, tmp_path / "d" / "cams.json", ply_file_path=None, copy_images=False
    ).path
    meta = json.loads(json_path.read_text())
    assert "ply_file_path" not in meta
    assert _listing(tmp_path / "d") == ["cams.json"]
    for frame in meta["frames"]:
        target = (json_path.parent / frame["file_path"]).resolve()
        assert target.parent == photos.resolve() and target.is_file()


# -- cameras.json --------------------------------------------------------------------------------------


def test_cameras_json(tmp_path: Path, rec: Reconstruction) -> None:
    path = tmp_path / "cams.json"
    assert export_cameras_json(rec, path).n_cameras == 4
    doc = json.loads(path.read_text())
    assert "OpenCV" in doc["convention"] and "cam_to_world" in doc["convention"]
    assert [c["index"] for c in doc["views"]] == [0, 1, 2, 3]
    assert [c["pose_ok"] for c in doc["views"]] == [True, True, False, True]
    sel = rec.global_points
    for cam in doc["views"]:
        v = cam["index"]
        assert cam["image"] == f"view_{v:02d}.png" and cam["path"] == rec.image_paths[v]
        assert (cam["width"], cam["height"]) == tuple(rec.original_sizes[v])
        c2w = np.array(cam["cam_to_world"])
        m = sel.view == v
        x = (sel.xyz[m].astype(np.float64) - c2w[:3, 3]) @ c2w[:3, :3]
        u = cam["fx"] * x[:, 0] / x[:, 2] + cam["cx"]
        w = cam["fy"] * x[:, 1] / x[:, 2] + cam["cy"]
        expected = rec.model_to_original_pixels(sel.view[m], sel.pixel[m])
        assert np.abs(np.column_stack([u, w]) - expected).max() < 1e-3
