"""Chunked reconstruction: the similarity fit, anchor fusion, the pass plan, anchors, the pass runner,
reconstruct() in passes and add_views(), with a stand-in for the model that returns exact pointmaps in
a different similarity frame on every call, and with the tiny random model end to end."""

from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import fast3r_core
from fast3r_core.chunking import (
    MAX_VIEWS_PER_PASS,
    PointmapFusion,
    align_pointmaps,
    correspondence_weights,
    even_anchors,
    fit_similarity,
    parse_pass_message,
    pass_message,
    plan_passes,
    select_anchors,
)
from fast3r_core.chunking.plan import estimate_pass_bytes, host_output_bytes, max_views_that_fit
from fast3r_core.errors import Cancelled, InputError, NoImagesError
from fast3r_core.geometry import umeyama_similarity
from fast3r_core.images import ViewInput
from fast3r_core.metrics import pose_metrics
from fast3r_core.model.config import Fast3RConfig
from fast3r_core.pipeline import ReconstructOptions, RunReport, add_views, reconstruct
from fast3r_core.progress import ProgressEvent, check_cancel, report
from fast3r_core.project_file import load_project, save_project
from fast3r_core.result import RunRecord
from fast3r_core.train.synthetic import render_sample
from tests.tiny import make_tiny_model, write_views

GiB = 1024**3


def _similarity(
    seed: int, angle_deg: float = 70.0, shift: float = 2.0
) -> tuple[float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    R = Rotation.from_rotvec(np.radians(angle_deg) * axis).as_matrix()
    return float(rng.uniform(0.3, 3.0)), R, rng.normal(size=3) * shift


def _rot_err_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = (np.trace(a @ b.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


# --------------------------------------------------------------------------------------------------
# similarity fit
# --------------------------------------------------------------------------------------------------


def test_exact_recovery_of_a_known_similarity() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30_000, 3)) * [2.0, 1.0, 0.5] + [0.0, 0.0, 4.0]
    s, R, t = _similarity(1, angle_deg=70.0)
    y = s * x @ R.T + t
    fit = fit_similarity(x, y)
    assert fit.scale == pytest.approx(s, rel=1e-10)
    assert np.abs(fit.rotation - R).max() < 1e-10
    assert np.abs(fit.translation - t).max() < 1e-9
    assert fit.rotation_deg() == pytest.approx(70.0, abs=1e-6)
    assert fit.inlier_fraction == 1.0 and fit.n_points == 30_000
    np.testing.assert_allclose(fit.apply(x[:5]), y[:5], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(fit.matrix()[:3, :3], s * R, atol=1e-10)


def test_exact_recovery_from_pointmaps_with_nonfinite_pixels() -> None:
    rng = np.random.default_rng(2)
    maps = [rng.normal(size=(16, 24, 3)) + np.array([0.0, 0.0, 3.0]) for _ in range(3)]
    s, R, t = _similarity(3, angle_deg=150.0)
    dst = [(s * m @ R.T + t).astype(np.float32) for m in maps]
    src = [m.astype(np.float32) for m in maps]
    src[1][2, 3] = np.nan  # a broken pixel: left out, not a failure
    conf = [np.full((16, 24), 3.0, np.float32) for _ in maps]
    fit = align_pointmaps(src, conf, dst, conf)
    assert fit.n_points == 3 * 16 * 24 - 1
    assert fit.scale == pytest.approx(s, rel=1e-5) and _rot_err_deg(fit.rotation, R) < 1e-3
    with pytest.raises(InputError, match="do not correspond"):
        align_pointmaps(src, conf, [d[:8] for d in dst], conf)


def test_robust_to_30_percent_gross_outliers() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40_000, 3)) + np.array([0.0, 0.0, 5.0])
    s, R, t = _similarity(5, angle_deg=40.0)
    y = s * x @ R.T + t + rng.normal(scale=0.01 * s, size=x.shape)
    bad = rng.random(len(x)) < 0.30
    y[bad] = rng.uniform(-30, 30, size=(int(bad.sum()), 3))
    fit = fit_similarity(x, y)
    assert fit.scale == pytest.approx(s, rel=2e-3)
    assert _rot_err_deg(fit.rotation, R) < 0.1
    assert np.linalg.norm(fit.translation - t) < 0.02 * s
    assert fit.inlier_fraction == pytest.approx(0.70, abs=0.02)
    # the plain least-squares fit is ruined by the same outliers (so the test can fail)
    s_ls, R_ls, _ = umeyama_similarity(x, y)
    assert abs(s_ls / s - 1) > 0.1 and _rot_err_deg(R_ls, R) > 2


def test_confidence_weighting_decides_between_two_explanations() -> None:
    """60 % of the points follow B with low confidence, 40 % follow A with high confidence: the
    weighted fit must pick A, the unweighted one B."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(20_000, 3)) + np.array([0.0, 0.0, 4.0])
    sa, Ra, ta = _similarity(7, angle_deg=30.0)
    sb, Rb, tb = _similarity(8, angle_deg=-50.0)
    in_a = np.arange(len(x)) < 8_000
    y = np.where(in_a[:, None], sa * x @ Ra.T + ta, sb * x @ Rb.T + tb)
    conf_a, conf_b = 40.0, 1.5
    c = np.where(in_a, conf_a, conf_b)
    w = correspondence_weights(c, c)
    weighted = fit_similarity(x, y, w)
    plain = fit_similarity(x, y)
    assert weighted.scale == pytest.approx(sa, rel=1e-8) and _rot_err_deg(weighted.rotation, Ra) < 1e-5
    assert plain.scale == pytest.approx(sb, rel=1e-8) and _rot_err_deg(plain.rotation, Rb) < 1e-5


def test_correspondence_weights() -> None:
    a = np.array([3.0, 1.0, np.nan, 5.0, np.inf, 2.0] + [4.0] * 200)
    b = np.array([2.0, 9.0, 3.0, np.inf, np.inf, 0.5] + [4.0] * 200)
    w = correspondence_weights(a, b)
    assert w[0] == 1.0  # min(3, 2) - 1
    assert w[1] == 0.0 and w[2] == 0.0 and w[5] == 0.0  # conf 1, NaN, below 1: no weight
    assert w[3] == 3.0  # min(5, inf) - 1 = 4, clipped at the 99th percentile (3)
    assert np.isfinite(w).all() and w[4] == w.max()
    with pytest.raises(InputError, match="at least 3"):
        fit_similarity(np.zeros((5, 3)), np.zeros((5, 3)), np.zeros(5))


def test_fusion_is_a_confidence_weighted_mean() -> None:
    fusion = PointmapFusion()
    p1 = np.zeros((2, 2, 3), np.float32)
    p2 = np.ones((2, 2, 3), np.float32) * 4
    c1 = np.array([[1.0, 3.0], [2.0, 2.0]], np.float32)
    c2 = np.array([[3.0, 1.0], [2.0, 2.0]], np.float32)
    p2[1, 1] = np.nan  # a pixel only the first prediction has
    fusion.add(7, p1, c1)
    fusion.add(7, p2, c2)
    pts, conf = fusion.result(7)
    assert fusion.count(7) == 2
    np.testing.assert_allclose(pts[0, 0], [3.0, 3.0, 3.0])  # (1*0 + 3*4) / 4
    np.testing.assert_allclose(pts[0, 1], [1.0, 1.0, 1.0])  # (3*0 + 1*4) / 4
    np.testing.assert_allclose(pts[1, 1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(conf, [[2.5, 2.5], [2.0, 2.0]])  # sum c^2 / sum c


# --------------------------------------------------------------------------------------------------
# plan and anchors
# --------------------------------------------------------------------------------------------------


def _cfg() -> Fast3RConfig:
    return Fast3RConfig()  # the published ViT-L config: realistic memory figures


def test_plan_single_pass_when_everything_fits() -> None:
    shapes = [(224, 224)] * 32
    plan = plan_passes(shapes, _cfg(), available=64 * GiB)
    assert plan.single and plan.passes == (tuple(range(32)),) and plan.anchors == ()
    assert plan.need is not None and plan.need < plan.budget < 64 * GiB
    assert plan.describe() == "single pass"


def test_plan_from_memory_numbers() -> None:
    cfg, shapes = _cfg(), [(384, 512)] * 256
    available = 4 * GiB
    plan = plan_passes(shapes, cfg, available=available)
    budget = int(available * 0.9) - host_output_bytes(shapes)
    assert plan.budget == budget and not plan.single and plan.automatic
    k = plan.max_views_per_pass
    # the largest pass that fits: k fits, k + 1 does not
    assert estimate_pass_bytes(cfg, (384, 512), k) <= budget < estimate_pass_bytes(cfg, (384, 512), k + 1)
    assert k == max_views_that_fit(cfg, (384, 512), budget, upper=256)
    assert plan.need is not None and plan.need <= budget
    m = len(plan.anchors)
    assert m == min(8, max(1, k // 3)) and plan.anchors[0] == 0
    own = [v for p in plan.passes for v in p[m:]]
    assert sorted(own) == sorted(set(range(256)) - set(plan.anchors))  # every view once
    assert all(p[:m] == plan.anchors and len(p) <= k for p in plan.passes)
    sizes = [len(p) for p in plan.passes]
    assert max(sizes) - min(sizes) <= 1  # balanced
    # less free memory: smaller passes, more of them; on CUDA the host outputs do not count
    small = plan_passes(shapes, cfg, available=3 * GiB)
    assert small.max_views_per_pass < k and small.n_passes > plan.n_passes
    # not even two views fit: one pass, whose own memory check then refuses it with its message
    none = plan_passes(shapes, cfg, available=2 * GiB)
    assert none.single and none.need > none.budget
    cuda = plan_passes(shapes, cfg, available=available, host_memory=False)
    assert cuda.max_views_per_pass > k


def test_plan_overrides_win() -> None:
    cfg, shapes = _cfg(), [(224, 224)] * 20
    tiny_memory = 1  # byte: the automatic plan could not even hold one view
    assert plan_passes(shapes, cfg, available=tiny_memory, max_views_per_pass=0).single
    assert plan_passes(shapes, cfg, available=tiny_memory, max_views_per_pass=20).single
    plan = plan_passes(shapes, max_views_per_pass=6, anchors=2)  # no config or memory needed
    assert not plan.automatic and plan.anchors == (0, 10) and plan.budget is None
    assert plan.n_passes == 5 and all(len(p) <= 6 for p in plan.passes)  # 18 views, 4 per pass
    assert plan.describe() == "5 passes of up to 6 views (2 shared anchors)"
    assert plan.to_json()["views_per_pass"] == [6, 6, 6, 5, 5]
    with pytest.raises(InputError, match="at least 2"):
        plan_passes(shapes, max_views_per_pass=1)
    with pytest.raises(InputError, match="no room"):
        plan_passes(shapes, max_views_per_pass=4, anchors=4)
    with pytest.raises(InputError, match="view 0"):
        plan_passes(shapes, max_views_per_pass=4, anchors=2, anchor_order=[3, 0])
    # more views than the image-index embedding holds: passes even with "one pass"
    many = plan_passes([(224, 224)] * 1500, max_views_per_pass=0)
    assert not many.single and max(many.views_per_pass) <= MAX_VIEWS_PER_PASS
    assert MAX_VIEWS_PER_PASS == 1000
    # ReconstructOptions refuses the same invalid overrides
    with pytest.raises(InputError):
        ReconstructOptions(max_views_per_pass=1)
    with pytest.raises(InputError):
        ReconstructOptions(anchors=0)


def test_max_views_per_pass_matches_the_decoder() -> None:
    from fast3r_core.model.decoder import MAX_VIEWS

    assert MAX_VIEWS == MAX_VIEWS_PER_PASS


def test_anchor_selection() -> None:
    rng = np.random.default_rng(0)
    # three groups of look-alike views: red, green, blue scenes (with noise)
    colours = {0: (200, 30, 30), 1: (30, 200, 30), 2: (30, 30, 200)}
    groups = [0, 0, 0, 1, 1, 0, 1, 2, 2, 1, 0, 2]
    images = [
        np.clip(np.array(colours[g]) + rng.integers(-20, 20, (32, 48, 3)), 0, 255).astype(np.uint8)
        for g in groups
    ]
    chosen = select_anchors(images, len(images), 3, "coverage")
    assert chosen[0] == 0 and len(set(chosen)) == 3
    assert sorted(groups[v] for v in chosen) == [0, 1, 2]  # one anchor per look
    assert select_anchors(images, len(images), 3, "coverage") == chosen  # deterministic
    assert select_anchors(images, len(images), 50, "coverage")[:3] == chosen
    assert len(select_anchors(images, len(images), 50, "coverage")) == 12
    assert even_anchors(12, 4) == [0, 3, 6, 9]
    assert select_anchors(None, 12, 4, "even") == [0, 3, 6, 9]
    assert even_anchors(5, 1) == [0] and even_anchors(3, 10) == [0, 1, 2]
    with pytest.raises(InputError):
        select_anchors(images, len(images), 3, "random")


def test_pass_messages() -> None:
    assert pass_message(1, 5) == "pass 2/5"
    assert parse_pass_message("pass 2/5") == (1, 5)
    assert parse_pass_message("pass 2/5: details") == (1, 5)
    assert parse_pass_message("") is None and parse_pass_message("pass 6/5") is None


# --------------------------------------------------------------------------------------------------
# a stand-in model: exact pointmaps of a rendered scene, in a new similarity frame on every call
# --------------------------------------------------------------------------------------------------


class _FakeModel:
    """Scene ground truth and a ``predict`` that answers from it (patched into fast3r_core.inference)."""

    def __init__(self, n_views: int = 12, seed: int = 11, noise: float = 0.0) -> None:
        import torch

        self.sample = render_sample(seed, n_views, long_side=64)
        self.n = n_views
        self.noise = noise
        w2c0 = np.linalg.inv(self.sample.cam_to_world[0])
        self.gt = self.sample.pts3d.astype(np.float64) @ w2c0[:3, :3].T + w2c0[:3, 3]  # view 0's frame
        # the background (no ground truth) gets the lowest confidence: left out of PnP and the fits
        self.conf = np.where(self.sample.valid, 6.0, 1.0).astype(np.float32)
        self.views = [
            ViewInput(
                rgb=self.sample.images[v],
                path=Path(f"/nonexistent/scene/{v:03d}.png"),
                original_size=(64, 64),
                resized_size=(64, 64),
                crop_box=(0, 0, 64, 64),
                name=f"{v:03d}.png",
            )
            for v in range(n_views)
        ]
        self.key = {self._key(v.image): i for i, v in enumerate(self.views)}
        self.calls: list[list[int]] = []
        self.layer = torch.nn.Linear(1, 1)  # parameters(): the device, for the runner

    @staticmethod
    def _key(t: object) -> bytes:
        return t.numpy().tobytes()  # type: ignore[attr-defined]

    def predict(self, model, images, image_ids=None, *, options=None, progress=None, cancel=None):
        ids = [self.key[self._key(im)] for im in images]
        assert ids[0] == 0, "view 0 must come first in every pass"
        self.calls.append(ids)
        n = len(ids)
        report(progress, "encode", 0, n)
        check_cancel(cancel)
        report(progress, "encode", n, n)
        report(progress, "fuse", 1, 1)
        check_cancel(cancel)
        report(progress, "heads", n, n)
        # like the model: each pass's frame is about view 0's camera, at a scale of its own
        s, R, t = _similarity(len(self.calls), angle_deg=0.5 * len(self.calls), shift=0.02)
        rng = np.random.default_rng(len(self.calls))
        out = []
        for v in ids:
            pts = s * self.gt[v] @ R.T + t
            if self.noise:
                pts = pts + rng.normal(scale=self.noise * s, size=pts.shape)
            local = self.sample.pts3d[v].astype(np.float64)
            w2c = np.linalg.inv(self.sample.cam_to_world[v])
            local = local @ w2c[:3, :3].T + w2c[:3, 3]
            out.append(
                {
                    "pts3d_in_other_view": pts.astype(np.float32),
                    "conf": self.conf[v].copy(),
                    "pts3d_local": local.astype(np.float32),
                    "conf_local": self.conf[v].copy(),
                }
            )
        return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = make_tiny_model(tmp_path_factory.mktemp("tiny"))
    return fast3r_core.load_model(folder, device="cpu")


@pytest.fixture
def fake(monkeypatch):
    f = _FakeModel()
    monkeypatch.setattr("fast3r_core.inference.predict", f.predict)
    return f


def _consistent_with_gt(pts: list[np.ndarray], gt: list[np.ndarray], valid: list[np.ndarray]) -> float:
    """Relative RMS residual of the best single similarity from ``gt`` to ``pts`` (valid pixels)."""
    x = np.concatenate([g[m] for g, m in zip(gt, valid, strict=True)])
    y = np.concatenate([p[m] for p, m in zip(pts, valid, strict=True)]).astype(np.float64)
    s, R, t = umeyama_similarity(x, y)
    res = np.linalg.norm(s * x @ R.T + t - y, axis=1)
    return float(np.sqrt((res**2).mean()) / (s * np.linalg.norm(x - x.mean(0), axis=1).mean()))


def test_chunked_reconstruct_recovers_exact_pointmaps_and_poses(fake, tiny_model) -> None:
    events: list[ProgressEvent] = []
    opts = ReconstructOptions(size=224, max_views_per_pass=5, anchors=2, anchor_method="even")
    rec = reconstruct(fake.views, tiny_model, opts, events.append)
    assert rec.n_views == fake.n and all(p.shape == (64, 64, 3) for p in rec.pts3d)
    # 12 views, anchors [0, 6]: 10 own views in passes of 3 -> 4 passes, every one starting with the anchors
    assert [c[:2] for c in fake.calls] == [[0, 6]] * 4 and len(fake.calls) == 4
    assert sorted(v for c in fake.calls for v in c[2:]) == [v for v in range(12) if v not in (0, 6)]
    run = rec.runs[0]
    assert run.passes == 4 and run.anchors == [0, 6] and run.views_per_pass == [5, 5, 4, 4]
    assert len(run.alignment) == 4 and all(a["inlier_fraction"] > 0.99 for a in run.alignment)
    assert rec.chunking_summary() == "made in 4 passes of up to 5 views (2 shared anchors)"
    # every view, anchors (fused) included, in one frame: the ground truth up to one similarity
    err = _consistent_with_gt(list(rec.pts3d), list(fake.gt), list(fake.sample.valid))
    assert err < 1e-5
    # ... and that frame is the first pass's (about view 0's camera): its own views keep their points
    s1, r1, t1 = _similarity(1, angle_deg=0.5, shift=0.02)
    for v in fake.calls[0][2:]:
        m = fake.sample.valid[v]
        first = (s1 * fake.gt[v] @ r1.T + t1)[m]
        assert np.abs(rec.pts3d[v][m] - first).max() < 1e-5 * np.abs(first).max()
    m = pose_metrics(rec.cam_to_world, fake.sample.cam_to_world)
    assert m["RRA@5"] == 1.0 and m["RTA@5"] == 1.0
    # progress: the model stages of each pass say which pass
    passes = {parse_pass_message(e.message) for e in events if e.stage in ("encode", "fuse", "heads")}
    assert passes == {(i, 4) for i in range(4)}
    assert [e.stage for e in events][-1] == "poses"


def test_chunked_reconstruct_is_robust_to_noisy_passes(monkeypatch, tiny_model) -> None:
    f = _FakeModel(noise=0.01)
    monkeypatch.setattr("fast3r_core.inference.predict", f.predict)
    rec = reconstruct(f.views, tiny_model, ReconstructOptions(size=224, max_views_per_pass=6, anchors=3))
    assert rec.runs[0].passes > 1 and rec.runs[0].anchors[0] == 0
    err = _consistent_with_gt(list(rec.pts3d), list(f.gt), list(f.sample.valid))
    assert err < 0.02  # the noise itself is 1 % of the scene's spread per coordinate
    assert pose_metrics(rec.cam_to_world, f.sample.cam_to_world)["RRA@5"] == 1.0


def test_cancel_between_passes_keeps_nothing(fake, tiny_model) -> None:
    cancel = threading.Event()

    def progress(ev: ProgressEvent) -> None:
        if parse_pass_message(ev.message) == (1, 4) and ev.stage == "fuse":
            cancel.set()  # inside pass 2

    with pytest.raises(Cancelled):
        reconstruct(
            fake.views,
            tiny_model,
            ReconstructOptions(size=224, max_views_per_pass=5, anchors=2),
            progress,
            cancel,
        )
    assert len(fake.calls) == 2  # pass 3 never started


def test_add_views_aligns_new_views_into_the_base_frame(fake, tiny_model, tmp_path) -> None:
    base = reconstruct(fake.views[:8], tiny_model, ReconstructOptions(size=224))
    assert base.runs[0].passes == 1 and base.chunking_summary() == ""
    path = save_project(base, tmp_path / "base.f3r")
    base = load_project(path)
    fake.calls.clear()
    rep = RunReport()
    new = [*fake.views[8:], fake.views[3]]  # view 3 is already in the project
    rec = add_views(base, new, tiny_model, ReconstructOptions(size=224, anchors=3), run_report=rep)
    assert [s.reason for s in rep.skipped] == ["already in the project"]
    assert rec.n_views == 12 and rec.view_runs.tolist() == [0] * 8 + [1] * 4
    run = rec.runs[-1]
    assert run.kind == "add" and run.views == [8, 9, 10, 11] and len(run.anchors) == 3
    assert run.anchors[0] == 0 and all(a < 8 for a in run.anchors)
    assert fake.calls == [[*run.anchors, 8, 9, 10, 11]]  # anchors rebuilt from the stored colours
    # the old views keep everything
    for v in range(8):
        assert np.array_equal(rec.pts3d[v], base.pts3d[v]) and np.array_equal(rec.conf[v], base.conf[v])
    assert np.array_equal(rec.cam_to_world[:8], base.cam_to_world)
    # the new views sit in the base frame: all 12 views match the ground truth up to one similarity
    err = _consistent_with_gt(list(rec.pts3d), list(fake.gt), list(fake.sample.valid))
    assert err < 1e-5
    assert pose_metrics(rec.cam_to_world, fake.sample.cam_to_world)["RRA@5"] == 1.0
    np.testing.assert_allclose(rec.intrinsics[8:, 0, 0], base.intrinsics[0, 0, 0])  # the base's focal
    assert rec.chunking_summary() == "+4 views added later"
    # round trip: runs and view_runs come back
    back = load_project(save_project(rec, tmp_path / "more.f3r"))
    assert back.runs == rec.runs and back.view_runs.tolist() == rec.view_runs.tolist()
    # nothing new at all, and a size that is not the project's
    with pytest.raises(NoImagesError):
        add_views(base, fake.views[:2], tiny_model, ReconstructOptions(size=224))
    with pytest.raises(InputError, match="224 px"):
        add_views(base, fake.views[8:], tiny_model, ReconstructOptions(size=512))


# --------------------------------------------------------------------------------------------------
# the tiny random model end to end
# --------------------------------------------------------------------------------------------------


def test_tiny_model_chunked_run_and_single_pass_when_k_covers_all(tiny_model, tmp_path) -> None:
    paths = write_views(tmp_path / "imgs", n=3)
    events: list[ProgressEvent] = []
    rec = reconstruct(
        paths, tiny_model, ReconstructOptions(size=224, max_views_per_pass=2, anchors=1), events.append
    )
    assert rec.n_views == 3 and all(p.shape == (224, 224, 3) for p in rec.pts3d)
    assert all(
        np.isfinite(p).all() and np.isfinite(c).all() for p, c in zip(rec.pts3d, rec.conf, strict=True)
    )
    assert rec.runs[0].passes == 2 and rec.runs[0].views_per_pass == [2, 2]
    assert {parse_pass_message(e.message) for e in events if e.stage == "heads"} == {(0, 2), (1, 2)}
    # the pass travels as numbers too (the GUI's bar reads these, not the message)
    assert {(e.pass_index, e.pass_count) for e in events if e.stage == "heads"} == {(0, 2), (1, 2)}
    single = reconstruct(paths, tiny_model, ReconstructOptions(size=224))
    covering = reconstruct(paths, tiny_model, ReconstructOptions(size=224, max_views_per_pass=3))
    assert covering.runs[0].passes == 1 and covering.runs[0].anchors == []
    for a, b in zip(single.pts3d, covering.pts3d, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(single.cam_to_world, covering.cam_to_world)


def test_add_views_with_the_tiny_model_after_the_photos_moved(tiny_model, tmp_path) -> None:
    paths = write_views(tmp_path / "imgs", n=2)
    base = reconstruct(paths, tiny_model, ReconstructOptions(size=224))
    project = save_project(base, tmp_path / "p.f3r")
    for p in paths:
        p.unlink()  # the anchor images come from the project, not from these files
    more = write_views(tmp_path / "more", n=1)
    rec = add_views(load_project(project), more, tiny_model)
    assert rec.n_views == 3 and rec.view_runs.tolist() == [0, 0, 1]
    assert rec.image_paths[2:] == tuple(str(p) for p in more)
    assert rec.runs[-1].anchors == [0, 1] and all(np.isfinite(p).all() for p in rec.pts3d[2:])
    assert rec.runs[-1].options["size"] == 224 and rec.runs[0].timings == base.timings


def test_old_project_without_runs_loads_and_takes_new_views(fake, tiny_model, tmp_path) -> None:
    rec = reconstruct(fake.views[:6], tiny_model, ReconstructOptions(size=224))
    path = save_project(rec, tmp_path / "new.f3r")
    old = tmp_path / "old.f3r"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "meta.json":
                meta = json.loads(data)
                del meta["runs"]  # a project from before runs were recorded
                meta["options"] = {k: v for k, v in meta["options"].items() if "pass" not in k}
                data = json.dumps(meta).encode()
            dst.writestr(item, data)
    back = load_project(old)
    assert back.runs == (RunRecord(views=list(range(6))),)  # validated and converted
    assert back.view_runs.tolist() == [0] * 6 and back.chunking_summary() == ""
    more = add_views(back, fake.views[6:9], tiny_model, ReconstructOptions(size=224))
    assert more.view_runs.tolist() == [0] * 6 + [1] * 3
    assert more.chunking_summary() == "+3 views added later"


def test_explicit_anchors_with_an_automatic_pass_size_are_capped_not_refused(caplog) -> None:
    """The user picks anchors, the memory picks the pass size: too many anchors are reduced (and said)."""
    from fast3r_core.model.config import Fast3RConfig

    shapes = [(384, 512)] * 400
    plan = plan_passes(shapes, Fast3RConfig(), available=4 * 1024**3, anchors=12)
    per_pass = plan.max_views_per_pass
    assert 2 < per_pass < 24  # a pass of 512 px ViT-L views in ~1.6 GiB: fewer than 2 x 12 views
    assert len(plan.anchors) == per_pass // 2 and plan.anchors[0] == 0
    assert sorted({v for p in plan.passes for v in p}) == list(range(400))
    assert "anchors do not fit passes" in caplog.text
    # an explicit pass size that cannot hold the anchors is still an error
    with pytest.raises(InputError, match="leave no room"):
        plan_passes(shapes, Fast3RConfig(), max_views_per_pass=10, anchors=12)


def test_first_int8_run_plans_room_for_the_int8_weight_copy(tiny_model) -> None:
    """An automatic plan for the fast CPU mode leaves room for the int8 copy made by its first pass."""
    from fast3r_core.chunking.runner import plan_for_model
    from fast3r_core.forward_memory import int8_copy_bytes

    model = type(tiny_model)(tiny_model.config).eval()  # a fresh model: no int8 copy cached yet
    model.load_state_dict(tiny_model.state_dict())
    shapes = [(384, 512)] * 40
    free = 2 * 1024**3
    fp32 = plan_for_model(model, shapes, max_views_per_pass=None, anchors=None, available=free)
    int8 = plan_for_model(
        model, shapes, max_views_per_pass=None, anchors=None, precision="int8", available=free
    )
    less = plan_for_model(
        model, shapes, max_views_per_pass=None, anchors=None, available=free - int8_copy_bytes(model.config)
    )
    # the same plan as with that much less memory, and a budget smaller by (a share of) the copy
    assert int8.budget == less.budget < fp32.budget
    assert int8.max_views_per_pass == less.max_views_per_pass <= fp32.max_views_per_pass


def test_a_pass_that_cannot_be_aligned_is_a_clear_error(monkeypatch, tiny_model) -> None:
    """Pass 2's anchors come back with no confidence at all: the run stops with a typed error that says
    which pass and what to change, instead of a bare "at least 3 points" input error."""
    from fast3r_core.errors import AlignmentError

    f = _FakeModel()
    real = f.predict

    def predict(*args, **kwargs):
        out = real(*args, **kwargs)
        if len(f.calls) == 2:
            for p in out[:2]:  # the two anchors
                p["conf"] = np.ones_like(p["conf"])  # weight min(conf) - 1 = 0 everywhere
        return out

    monkeypatch.setattr("fast3r_core.inference.predict", predict)
    opts = ReconstructOptions(size=224, max_views_per_pass=5, anchors=2, anchor_method="even")
    with pytest.raises(AlignmentError, match=r"pass 2 cannot be aligned.*--anchors"):
        reconstruct(f.views, tiny_model, opts)


def test_anchor_pixels_of_the_fits_leave_masked_pixels_out() -> None:
    """A user's mask (a moving person, the sky) must not steer the alignment between passes."""
    from fast3r_core.chunking.runner import FIT_PIXELS, _anchor_pixels

    shape = (400, 500)  # more pixels than a fit samples per anchor
    keep = np.zeros(shape, bool)
    keep[:, :100] = True
    plain = _anchor_pixels([shape, shape], [0, 3])
    masked = _anchor_pixels([shape, shape], [0, 3], {3: keep})
    assert np.array_equal(plain[0], masked[0])  # view 0 has no mask: as before
    cols = masked[1] % shape[1]
    assert len(masked[1]) == FIT_PIXELS // 2 and (cols < 100).all()
    small = np.zeros((10, 10), bool)
    small[2, 3] = True
    assert _anchor_pixels([(10, 10)], [5], {5: small})[0].tolist() == [23]
