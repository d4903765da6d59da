"""fast3r_core.edits: the edits description, its JSON form, applying it, operations, selections."""

from __future__ import annotations

import base64
import copy
import json
import zlib
from typing import Any

import numpy as np
import pytest

from fast3r_core import edits as ed
from fast3r_core.errors import EditsError, Fast3RError
from tests.core.recon_factory import MIXED_SIZES, make_synthetic_reconstruction


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """cam-to-world (4, 4), OpenCV axes, of a camera at ``centre`` looking at ``target`` in a Z-up world."""
    f = target - centre
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    d = np.cross(f, r)  # y down
    T = np.eye(4)
    T[:3, :3] = np.stack([r, d, f], axis=1)
    T[:3, 3] = centre
    return T


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _plane_normal(pts: np.ndarray) -> np.ndarray:
    n = np.linalg.svd(pts - pts.mean(axis=0), full_matrices=False)[2][-1]
    return n if n[2] >= 0 else -n


def _full_edits() -> ed.Edits:
    """An Edits with every kind of content, built through the operations."""
    rng = np.random.default_rng(1)
    e = ed.scale_by(ed.Edits(), 2.5)
    e = ed.rotate(e, _random_rotation(rng))
    e = ed.set_origin(e, [0.1, -0.2, 0.3])
    e = ed.scale_from_distance(e, [0, 0, 0], [0.3, 0.4, 0.0], 1.7)
    e = ed.crop_box(e, [-1, -2, -3], [1, 2, 3])
    e = ed.rotate(e, _random_rotation(rng))  # the crop box becomes oriented
    e = ed.delete_points(e, [5, 3, 3, 10**9, *range(100, 5000)])
    e = ed.keep_only(e, np.arange(0, 10**6, 7))
    e = ed.add_measurement(e, "table width", [0, 0, 0], [1.0, 2.0, 2.0])
    e = ed.add_measurement(e, ed.unique_measurement_name(e), [1, 1, 1], [1, 1, 1.5])
    return ed.set_display_unit(e, "cm")


# ---------------------------------------------------------------------------------- model and JSON


def test_json_round_trip_is_exact() -> None:
    e = _full_edits()
    text = json.dumps(ed.edits_to_json(e))
    back = ed.edits_from_json(json.loads(text))
    assert back == e
    assert hash(back) == hash(e)
    assert json.dumps(ed.edits_to_json(back)) == text
    assert ed.edits_from_json(ed.edits_to_json(ed.Edits())) == ed.Edits()
    assert ed.Edits().is_empty and not e.is_empty


def test_selections_are_compact() -> None:
    e = ed.delete_points(ed.Edits(), np.arange(1_000_000, 3_000_000))  # a lasso: one long run
    data = ed.edits_to_json(e)["selections"][0]["data"]
    assert len(data) < 20_000  # 2 M ids: 16 MB as int64, a few kB here
    assert ed.edits_from_json(ed.edits_to_json(e)) == e


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(ed.edits_to_json(_full_edits()))
    node = obj
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return obj


_DELETE = object()


def _bomb(count: int) -> str:
    return base64.b64encode(zlib.compress(b"\x01" * 8 * (count + 10**6))).decode()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["format"], "something-else", "format"),
        (["version"], 2, "newer"),
        (["version"], True, "version"),
        (["transform"], _DELETE, "missing keys"),
        (["extra"], 1, "unexpected keys"),
        (["transform", "scale"], float("nan"), "finite"),
        (["transform", "scale"], float("inf"), "finite"),
        (["transform", "scale"], -1.0, "scale"),
        (["transform", "scale"], "2", "number"),
        (["transform", "scale"], True, "number"),
        (["transform", "rotation"], [[1, 0, 0], [0, 1, 0], [0, 0, 2]], "not a rotation"),
        (["transform", "rotation"], [[1, 0, 0], [0, 1, 0], [0, 0, -1]], "not a rotation"),
        (["transform", "rotation"], [[1, 0, 0], [0, 1, 0]], "3x3"),
        (["transform", "origin"], [0, 0, "1"], "number"),
        (["transform", "origin"], [0, 0, 1e300], "magnitude"),
        (["crop", "half_extents"], [1, 0, 1], "> 0"),
        (["crop"], [1, 2, 3], "object"),
        (["selections", 0, "mode"], "erase", "mode"),
        (["selections", 0, "count"], -1, "count"),
        (["selections", 0, "count"], 3, "exactly 3|not valid"),
        (["selections", 0, "data"], "not base64!", "not valid"),
        (["selections", 0, "data"], base64.b64encode(b"not zlib").decode(), "not valid"),
        (["selections", 0, "data"], 12, "string"),
        (["selections", 0, "encoding"], "raw", "encoding"),
        (["selections"], [{}] * 5000, "at most"),
        (["measurements", 0, "name"], "", "name"),
        (["measurements", 0, "name"], "x" * 201, "name"),
        (["measurements", 0, "name"], "a\nb", "name"),
        (["measurements", 1, "name"], "table width", "unique"),
        (["measurements", 0, "distance"], 123.0, "does not match"),
        (["units", "display"], "furlong", "display unit"),
        (["units", "metres_per_unit"], 0.0, "metres per unit"),
    ],
)
def test_hostile_json_is_rejected(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(EditsError, match=message) as info:
        ed.edits_from_json(_mutated(path, value))
    assert isinstance(info.value, Fast3RError)


@pytest.mark.parametrize("obj", [None, [], "edits", 3])
def test_non_objects_are_rejected(obj: Any) -> None:
    with pytest.raises(EditsError, match="must be an object"):
        ed.edits_from_json(obj)


def test_bad_ids_are_rejected() -> None:
    def with_runs(runs: list[list[int]], count: int) -> dict[str, Any]:
        data = base64.b64encode(zlib.compress(np.array(runs, "<i8").tobytes())).decode()
        obj = ed.edits_to_json(ed.delete_points(ed.Edits(), [1]))
        obj["selections"][0].update(count=count, data=data)
        return obj

    sel = ed.edits_from_json(with_runs([[4, 1], [1, 2]], 3)).selections[0]
    np.testing.assert_array_equal(sel.ids, [4, 6, 7])
    # touching runs, a negative start, an empty run, overflow
    for runs in ([[4, 1], [0, 2]], [[-1, 2]], [[1, 0], [2, 1]], [[2**62, 1], [2**62, 1]]):
        with pytest.raises(EditsError, match="strictly increasing"):
            ed.edits_from_json(with_runs(runs, 3))
    with pytest.raises(EditsError, match="exactly 5"):
        ed.edits_from_json(with_runs([[4, 1], [1, 2]], 5))
    obj = with_runs([[0, 1000]], 1000)  # a decompression bomb: 11 kB of text that inflates to 8 MB
    obj["selections"][0]["data"] = _bomb(1000)
    with pytest.raises(EditsError, match="not valid"):
        ed.edits_from_json(obj)


def test_constructor_validates() -> None:
    with pytest.raises(EditsError, match="not a rotation"):
        ed.Edits(rotation=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.1)))
    with pytest.raises(EditsError, match="strictly increasing"):
        ed.Selection("delete", np.array([3, 2]))
    with pytest.raises(EditsError, match="already"):
        ed.add_measurement(
            ed.add_measurement(ed.Edits(), "a", [0, 0, 0], [1, 0, 0]), "a", [0, 0, 0], [1, 0, 0]
        )
    with pytest.raises(EditsError, match="maximum"):
        ed.crop_box(ed.Edits(), [0, 0, 0], [1, -1, 1])
    with pytest.raises(EditsError, match="unit"):
        ed.to_metres(1.0, "yd")


# ------------------------------------------------------------------------------------------ applying


def test_points_and_inverse() -> None:
    rng = np.random.default_rng(2)
    e = ed.set_origin(ed.rotate(ed.scale_by(ed.Edits(), 3.0), _random_rotation(rng)), [1, 2, 3])
    x = rng.normal(size=(100, 3))
    y = ed.apply_to_points(e, x)
    s, R, o = e.scale, np.array(e.rotation), np.array(e.origin)
    np.testing.assert_allclose(y, s * (x - o) @ R.T, atol=1e-12)
    np.testing.assert_allclose(ed.apply_inverse_to_points(e, y), x, atol=1e-12)
    M = e.similarity_matrix()
    np.testing.assert_allclose(y, x @ M[:3, :3].T + M[:3, 3], atol=1e-12)
    assert ed.apply_to_points(e, x.astype(np.float32)).dtype == np.float32
    x32 = x.astype(np.float32)
    assert ed.apply_to_points(ed.Edits(), x32) is x32  # no copy without a transform


def test_reprojection_is_unchanged_by_edits() -> None:
    rng = np.random.default_rng(3)
    cams = np.stack([_look_at(rng.normal(size=3) * 3 + [0, 0, 5], np.zeros(3)) for _ in range(4)])
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    x = rng.normal(size=(200, 3))

    def project(c2w: np.ndarray, pts: np.ndarray) -> np.ndarray:
        cam = (pts - c2w[:3, 3]) @ c2w[:3, :3]  # world-to-camera: R^T (x - C)
        uv = cam @ K.T
        return uv[:, :2] / uv[:, 2:]

    e = ed.level_from_points(ed.scale_by(ed.Edits(), 0.37), [0, 0, 0], [1, 0.2, 0], [0, 1, 0.3])
    e = ed.set_origin(e, [0.5, -1, 2])
    cams_e = ed.apply_to_cameras(e, cams)
    x_e = ed.apply_to_points(e, x)
    for v in range(len(cams)):
        R = cams_e[v, :3, :3]
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        np.testing.assert_allclose(project(cams_e[v], x_e), project(cams[v], x), atol=1e-8)
    # camera centres move like points
    np.testing.assert_allclose(cams_e[:, :3, 3], ed.apply_to_points(e, cams[:, :3, 3]), atol=1e-12)


def test_scale_from_cameras_gives_the_exact_distance() -> None:
    rng = np.random.default_rng(4)
    cams = np.stack([_look_at(rng.normal(size=3), np.array([0, 0, 10.0])) for _ in range(5)])
    e = ed.rotate(ed.Edits(), _random_rotation(rng))
    e = ed.scale_from_cameras(e, cams, 1, 3, 0.12)
    c = ed.apply_to_cameras(e, cams)[:, :3, 3]
    assert np.linalg.norm(c[1] - c[3]) == pytest.approx(0.12, rel=1e-12)
    assert e.metres_per_unit == 1.0
    with pytest.raises(EditsError, match="out of range"):
        ed.scale_from_cameras(e, cams, 0, 5, 1.0)
    same = np.stack([cams[0], cams[0]])
    with pytest.raises(EditsError, match="coincide"):
        ed.scale_from_cameras(e, same, 0, 1, 1.0)


def test_scale_from_distance_and_units() -> None:
    e = ed.add_measurement(ed.Edits(), "a", [0, 0, 0], [0, 3, 4])
    assert e.measurement("a").distance(e) == pytest.approx(5.0)
    assert ed.format_length(e, 5.0) == "5 units"
    e = ed.scale_from_distance(e, [0, 0, 0], [0, 0, 2], ed.to_metres(50, "cm"))
    assert e.measurement("a").distance(e) == pytest.approx(1.25)
    assert ed.format_length(ed.set_display_unit(e, "mm"), 1.25) == "1250 mm"
    e2 = ed.scale_by(e, 2.0)  # twice as big: one unit is now half a metre
    assert e2.metres_per_unit == pytest.approx(0.5)
    assert e2.measurement("a").distance(e2) * e2.metres_per_unit == pytest.approx(1.25)
    assert ed.from_metres(0.3048, "ft") == pytest.approx(1.0)
    with pytest.raises(EditsError, match="coincide"):
        ed.scale_from_distance(e, [1, 1, 1], [1, 1, 1], 1.0)
    assert ed.remove_measurement(e, "a").measurements == ()
    assert any("measurement a" in line for line in ed.describe(e))
    assert ed.describe(ed.clear()) == []


def test_crop_and_deletion_masks() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, size=(5000, 3))
    ids = np.arange(5000) * 3 + 7
    e = ed.crop_box(ed.Edits(), [-1, -1, -1], [1, 0.5, 2])
    keep = ed.keep_mask(e, x, ids)
    expected = (x >= [-1, -1, -1]).all(axis=1) & (x <= [1, 0.5, 2]).all(axis=1)
    np.testing.assert_array_equal(keep, expected)

    e = ed.delete_points(e, ids[::2])
    np.testing.assert_array_equal(ed.keep_mask(e, x, ids), expected & (np.arange(5000) % 2 == 1))
    e = ed.keep_only(e, ids[:1000])
    np.testing.assert_array_equal(
        ed.keep_mask(e, x, ids), expected & (np.arange(5000) % 2 == 1) & (np.arange(5000) < 1000)
    )
    # an oriented box: rotate the world, the crop follows the points
    e2 = ed.rotate(e, _random_rotation(rng))
    np.testing.assert_array_equal(ed.keep_mask(e2, ed.apply_to_points(e2, x), ids), ed.keep_mask(e, x, ids))
    assert ed.delete_points(e, []) is e
    assert ed.keep_only(e, np.zeros(0, dtype=np.int64)) is e
    with pytest.raises(EditsError, match="crop"):
        ed.keep_mask(e, None, ids)
    np.testing.assert_array_equal(ed.invert_selection([9, 7, 100], ids[:4]), [10, 13, 16])


def test_point_ids_match_global_and_local_sets() -> None:
    rec = make_synthetic_reconstruction(original_sizes=MIXED_SIZES)
    shapes = [rec.view_shape(v) for v in range(rec.n_views)]
    g, loc = rec.points("global"), rec.points("local")
    ids_g = ed.point_ids(g.view, g.pixel, shapes)
    ids_l = ed.point_ids(loc.view, loc.pixel, shapes)
    assert len(np.unique(ids_g)) == len(ids_g) == sum(h * w for h, w in shapes)
    assert set(ids_g.tolist()) == set(ids_l.tolist())
    # deleting by id removes the same pixels in both sets
    e = ed.delete_points(ed.Edits(), ids_g[: len(ids_g) // 3])
    kept_g = ids_g[ed.keep_mask(e, None, ids_g)]
    kept_l = ids_l[ed.keep_mask(e, None, ids_l)]
    assert set(kept_g.tolist()) == set(kept_l.tolist())
    v, (u, row) = int(g.view[5]), g.pixel[5]
    assert np.allclose(rec.pts3d[v][row, u], g.xyz[5])
    assert ids_g[5] == sum(h * w for h, w in shapes[:v]) + row * shapes[v][1] + u


# ----------------------------------------------------------------------------------------- levelling


def _ground_scene(
    seed: int, *, with_floor: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A Z-up scene (floor z = 0, objects, a wall) with cameras on a 120-degree arc looking slightly
    down, moved into a random similarity frame like the model's. Returns (cams, xyz, conf, floor_mask)."""
    rng = np.random.default_rng(seed)
    parts = []
    if with_floor:
        parts.append(np.column_stack([rng.uniform(-5, 5, (6000, 2)), np.zeros(6000)]))
    parts.append(rng.normal([0, 0, 0.8], [0.5, 0.5, 0.5], size=(2500, 3)))  # an object
    parts.append(np.column_stack([np.full(1500, 5.0), rng.uniform(-5, 5, 1500), rng.uniform(0, 3, 1500)]))
    floor = np.zeros(sum(len(p) for p in parts), dtype=bool)
    floor[: 6000 if with_floor else 0] = True
    xyz = np.concatenate(parts) + rng.normal(scale=0.01, size=(len(floor), 3))
    conf = rng.uniform(1.0, 10.0, len(floor))
    cams = []
    for az in np.radians(np.linspace(-60, 60, 7)) + np.pi:
        centre = np.array([4 * np.cos(az), 4 * np.sin(az), 1.6])
        target = np.array([0.0, 0.0, 0.4]) + rng.normal(scale=0.2, size=3)
        T = _look_at(centre, target)
        small = ed.rotate(ed.Edits(), _axis_angle(rng.normal(size=3), np.radians(3))).rotation
        T[:3, :3] = T[:3, :3] @ np.array(small)  # hand-held: a few degrees of roll and pitch
        cams.append(T)
    # into a "model world": random rotation, scale and translation
    G_R, G_s, G_t = _random_rotation(rng), 0.37, rng.normal(size=3)
    xyz_m = G_s * xyz @ G_R.T + G_t
    cams_m = np.stack(cams)
    cams_m[:, :3, :3] = G_R @ cams_m[:, :3, :3]
    cams_m[:, :3, 3] = G_s * cams_m[:, :3, 3] @ G_R.T + G_t
    return cams_m, xyz_m, conf, floor


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    k = axis / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    R: np.ndarray = np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K
    return R


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_level_auto_puts_the_ground_normal_on_z(seed: int) -> None:
    cams, xyz, conf, floor = _ground_scene(seed)
    e = ed.set_origin(ed.Edits(), [0.3, 0.1, -0.2])
    levelled = ed.level_auto(e, cams, xyz, conf)
    n = _plane_normal(ed.apply_to_points(levelled, xyz[floor]))
    assert _angle_deg(n, np.array([0, 0, 1.0])) < 2.0
    # the cameras alone are off by more (they look down from one side): the plane did the work
    cams_only = ed.level_auto(e, cams)
    n_cams = _plane_normal(ed.apply_to_points(cams_only, xyz[floor]))
    assert _angle_deg(n_cams, np.array([0, 0, 1.0])) > 2.0
    # up, not down: the cameras are above the floor
    z_cams = ed.apply_to_cameras(levelled, cams)[:, 2, 3]
    z_floor = ed.apply_to_points(levelled, xyz[floor])[:, 2].mean()
    assert (z_cams > z_floor).all()
    # a rotation about the edited origin: the origin stays at 0
    assert levelled.origin == pytest.approx(e.origin)
    assert ed.estimate_up(ed.apply_to_cameras(e, cams), ed.apply_to_points(e, xyz), conf).source == "plane"


def test_level_auto_without_a_floor_uses_the_cameras() -> None:
    cams, xyz, conf, _ = _ground_scene(0, with_floor=False)
    up = ed.estimate_up(cams, xyz, conf)
    assert up.source == "cameras"
    np.testing.assert_allclose(up.up, ed.cameras_mean_up(cams))


def test_level_from_points() -> None:
    cams, xyz, _, floor = _ground_scene(3)
    p = xyz[floor][[0, 10, 20]]
    e = ed.level_from_points(ed.Edits(), *p, up_hint=ed.cameras_up(ed.Edits(), cams), floor_at_zero=True)
    pe = ed.apply_to_points(e, p)
    np.testing.assert_allclose(pe[:, 2], 0.0, atol=1e-9)
    assert (ed.apply_to_cameras(e, cams)[:, 2, 3] > 0).all()
    with pytest.raises(EditsError, match="one line"):
        ed.level_from_points(ed.Edits(), [0, 0, 0], [1, 1, 1], [2, 2, 2])


def test_rotation_to_z() -> None:
    rng = np.random.default_rng(6)
    for u in [*rng.normal(size=(20, 3)), np.array([0, 0, -1.0]), np.array([0, 0, 1.0])]:
        R = ed.rotation_to_z(u)
        np.testing.assert_allclose(R @ (u / np.linalg.norm(u)), [0, 0, 1], atol=1e-12)
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
    # OpenCV up (-y) -> +Z keeps x: camera 0 then looks along +Y
    np.testing.assert_allclose(ed.rotation_to_z([0, -1, 0]) @ [0, 0, 1], [0, 1, 0], atol=1e-12)


# ---------------------------------------------------------------------------------------- composition


def test_composition_equals_applying_in_order() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 3))
    Q1, Q2 = _random_rotation(rng), _random_rotation(rng)
    steps: list[tuple[Any, Any]] = [
        (lambda e: ed.scale_by(e, 2.0), lambda y: 2.0 * y),
        (lambda e: ed.rotate(e, Q1), lambda y: y @ Q1.T),
        (lambda e: ed.set_origin(e, [1.0, -2.0, 0.5]), lambda y: y - [1.0, -2.0, 0.5]),
        (lambda e: ed.translate(e, [0.0, 0.0, 3.0]), lambda y: y + np.array([0.0, 0.0, 3.0])),
        (lambda e: ed.scale_by(e, 0.25), lambda y: 0.25 * y),
        (lambda e: ed.rotate(e, Q2), lambda y: y @ Q2.T),
    ]
    e, y = ed.Edits(), x
    for op, fn in steps:
        e, y = op(e), fn(y)
        np.testing.assert_allclose(ed.apply_to_points(e, x), y, atol=1e-10)
    # the crop box, set before later operations, stays on the same points
    e0 = ed.crop_box(ed.Edits(), [-0.5, -0.5, -0.5], [0.5, 0.5, 0.5])
    ids = np.arange(len(x))
    inside = ed.keep_mask(e0, x, ids)
    e = e0
    for op, _ in steps:
        e = op(e)
        np.testing.assert_array_equal(ed.keep_mask(e, ed.apply_to_points(e, x), ids), inside)
    # a measurement keeps its points: its length scales with the world (2.0 * 0.25)
    m = ed.add_measurement(ed.Edits(), "m", x[0], x[1])
    for op, _ in steps:
        m = op(m)
    assert m.measurement("m").distance(m) == pytest.approx(0.5 * np.linalg.norm(x[0] - x[1]))
    # many chained rotations stay exactly orthonormal (JSON-valid)
    for _ in range(200):
        e = ed.rotate(e, _random_rotation(rng))
    assert ed.edits_from_json(ed.edits_to_json(e)) == e


# ------------------------------------------------------------------------------------------ selection


def test_lasso_known_polygons() -> None:
    g = np.stack(np.meshgrid(np.arange(0.5, 10), np.arange(0.5, 10)), axis=-1).reshape(-1, 2)
    square = [[2, 2], [6, 2], [6, 6], [2, 6]]
    sel = ed.lasso_select(g, square)
    np.testing.assert_array_equal(sel, (g > 2).all(axis=1) & (g < 6).all(axis=1))
    np.testing.assert_array_equal(ed.lasso_select(g, square[::-1]), sel)  # orientation does not matter
    # a U (concave): the notch is outside
    u_shape = [[1, 1], [9, 1], [9, 9], [6, 9], [6, 4], [4, 4], [4, 9], [1, 9]]
    sel = ed.lasso_select(g, u_shape)
    notch = (g[:, 0] > 4) & (g[:, 0] < 6) & (g[:, 1] > 4)
    box = (g > 1).all(axis=1) & (g < 9).all(axis=1)
    np.testing.assert_array_equal(sel, box & ~notch)
    # a pentagram: even-odd leaves the centre out, the tips in
    ang = np.radians(90 + 144 * np.arange(5))
    star = np.column_stack([5 + 4 * np.cos(ang), 5 + 4 * np.sin(ang)])
    assert not ed.lasso_select([[5.0, 5.0]], star)[0]
    assert ed.lasso_select([[5.0, 8.5]], star)[0]
    assert not ed.lasso_select(g, square[:2]).any()  # fewer than 3 vertices
    assert not ed.lasso_select([[np.nan, 3.0]], square)[0]


def test_lasso_matches_opencv_on_random_polygons() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(8)
    pts = rng.uniform(0, 100, size=(20000, 2))
    for _ in range(5):
        ang = np.sort(rng.uniform(0, 2 * np.pi, 30))  # a star-shaped (simple) polygon
        poly = np.column_stack(
            [50 + rng.uniform(10, 45, 30) * np.cos(ang), 50 + rng.uniform(10, 45, 30) * np.sin(ang)]
        )
        sel = ed.lasso_select(pts, poly)
        contour = poly.astype(np.float32).reshape(-1, 1, 2)
        ref = np.array([cv2.pointPolygonTest(contour, (float(a), float(b)), True) for a, b in pts])
        clear = np.abs(ref) > 1e-6
        np.testing.assert_array_equal(sel[clear], ref[clear] > 0)


def test_rect_select() -> None:
    pts = np.array([[0, 0], [5, 5], [10, 10], [5, 11]], dtype=float)
    np.testing.assert_array_equal(ed.rect_select(pts, [10, 10], [0, 0]), [True, True, True, False])
    with pytest.raises(EditsError, match=r"\(N, 2\)"):
        ed.rect_select(np.zeros((3, 3)), [0, 0], [1, 1])


def test_edit_points_and_id_bound() -> None:
    rng = np.random.default_rng(9)
    x = rng.uniform(-2, 2, size=(1000, 3)).astype(np.float32)
    ids = np.arange(1000, dtype=np.int64)
    e = ed.delete_points(ed.crop_box(ed.scale_by(ed.Edits(), 2.0), [-1, -1, -1], [1, 1, 1]), ids[:10])
    kept, keep = ed.edit_points(e, x, ids)
    np.testing.assert_array_equal(keep, ed.keep_mask(e, ed.apply_to_points(e, x), ids))
    np.testing.assert_allclose(kept, 2.0 * x[keep])
    assert kept.dtype == np.float32
    all_kept, keep_all = ed.edit_points(ed.scale_by(ed.Edits(), 3.0), x, ids)
    assert keep_all.all() and len(all_kept) == len(x)
    obj = ed.edits_to_json(e)
    assert ed.edits_from_json(obj, n_points=1000) == e
    with pytest.raises(EditsError, match="out of range"):
        ed.edits_from_json(ed.edits_to_json(ed.delete_points(ed.Edits(), ids[::100])), n_points=500)
    with pytest.raises(EditsError, match="count"):
        ed.edits_from_json(ed.edits_to_json(ed.delete_points(ed.Edits(), ids)), n_points=999)


def test_many_whole_range_selections_are_refused_before_they_fill_memory() -> None:
    """Each selection is bounded by the point count, but thousands of them, each a 20-character string
    for "every point", would decode to gigabytes: their sum is bounded too."""
    n = 100_000
    every = ed.delete_points(ed.Edits(), np.arange(n))
    one = ed.edits_to_json(every)["selections"][0]
    doc = ed.edits_to_json(ed.Edits())
    doc["selections"] = [one] * 8
    assert len(ed.edits_from_json(doc, n_points=n).selections) == 8  # a busy session is fine
    doc["selections"] = [one] * 100
    with pytest.raises(EditsError, match="more point ids in all"):
        ed.edits_from_json(doc, n_points=n)


def test_appended_points_stay_out_of_no_keep_selection() -> None:
    e = ed.keep_only(ed.delete_points(ed.Edits(), [1, 2]), [0, 1, 5])
    out = ed.with_appended_points(e, 10, 14)
    assert out.selections[0] == e.selections[0]  # a deletion is about the old points only
    assert out.selections[1].ids.tolist() == [0, 1, 5, 10, 11, 12, 13]
    keep = ed.keep_mask(out, None, np.arange(14))
    assert np.flatnonzero(keep).tolist() == [0, 5, 10, 11, 12, 13]
    assert ed.with_appended_points(ed.delete_points(ed.Edits(), [3]), 10, 14).selections[0].ids.tolist() == [
        3
    ]
    with pytest.raises(EditsError):
        ed.with_appended_points(e, 5, 4)


def test_names_are_trimmed_and_a_blank_name_is_refused() -> None:
    e = ed.add_measurement(ed.Edits(), "  door  ", (0, 0, 0), (1, 0, 0))
    assert e.measurements[0].name == "door"
    for blank in ("", "   ", "\t"):
        with pytest.raises(EditsError, match="printable"):
            ed.add_measurement(ed.Edits(), blank, (0, 0, 0), (1, 0, 0))
    with pytest.raises(EditsError, match="already"):
        ed.add_measurement(e, "door ", (0, 0, 0), (1, 0, 0))


def test_an_inverted_crop_box_says_which_axes_in_plain_numbers() -> None:
    with pytest.raises(EditsError) as info:
        ed.CropBox.axis_aligned((1, 1, 1), (0, 2, 0.5))
    assert str(info.value) == (
        "crop box maximum (0, 2, 0.5) must exceed its minimum (1, 1, 1) on every axis (not on x, z)"
    )
