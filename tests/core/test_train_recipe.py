"""The demo model's training recipe: correspondence supervision, initialisations, curriculum, data-only
training state, the unseen evaluation look and the quality metrics."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch

from fast3r_core.errors import CheckpointError
from fast3r_core.model import Fast3R
from fast3r_core.train.correspondence import info_nce, patch_correspondences
from fast3r_core.train.data import SceneCache, build_cache
from fast3r_core.train.evaluate import scene_quality
from fast3r_core.train.init import mimetic_init, pca_patch_embed_init
from fast3r_core.train.loop import Stage, TrainConfig, load_train_state, small_config, train
from fast3r_core.train.synthetic import render_sample
from tests.tiny import TINY_TRAIN_MODEL as TINY
from tests.tiny import quick_train_settings


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return SceneCache(build_cache(tmp_path_factory.mktemp("cache"), 6, seed=11, size=64, views=6))


def _world_at_patch_centres(depth, K, c2w, patch):
    """(B, N, T, 3) world points at the patch centres, computed independently of the module."""
    B, N, H, W = depth.shape
    out = torch.zeros(B, N, (H // patch) * (W // patch), 3)
    for b in range(B):
        for n in range(N):
            k = 0
            for r in range(H // patch):
                for c in range(W // patch):
                    v, u = r * patch + patch // 2, c * patch + patch // 2
                    z = float(depth[b, n, v, u])
                    x = np.array(
                        [
                            (u + 0.5 - K[b, n, 0, 2]) / K[b, n, 0, 0] * z,
                            (v + 0.5 - K[b, n, 1, 2]) / K[b, n, 1, 1] * z,
                            z,
                        ]
                    )
                    out[b, n, k] = torch.from_numpy(c2w[b, n, :3, :3].numpy() @ x + c2w[b, n, :3, 3].numpy())
                    k += 1
    return out


def test_patch_correspondences_point_at_the_same_surface(cache):
    b = cache.batch(np.random.default_rng(0), 3, 3, 64, max_angle=70.0)
    m = patch_correspondences(b.depth, b.K, b.c2w, 16)
    B, N, _, T = m.shape
    assert m.shape == (3, 3, 3, 16)
    assert (m[:, torch.arange(N), torch.arange(N)] == -1).all()  # never a view with itself
    assert (m >= 0).sum() > 20  # overlapping views share many patches
    world = _world_at_patch_centres(b.depth, b.K, b.c2w, 16)
    bi, i, j, p = torch.nonzero(m >= 0, as_tuple=True)
    src = world[bi, i, p]
    dst = world[bi, j, m[bi, i, j, p]]
    # the matched patch's own centre lies within about a patch footprint of the source point
    foot = 16 * b.depth[bi, i].flatten(1).median(dim=1).values / b.K[bi, i, 0, 0]
    assert float(((src - dst).norm(dim=1) / foot).median()) < 1.0
    # background patches never match
    z = b.depth[:, :, 8::16, 8::16].reshape(B, N, T)
    assert (m[z[:, :, None, :].expand(B, N, N, T) == 0] == -1).all()


def test_info_nce_rewards_matching_features():
    torch.manual_seed(0)
    B, N, T = 2, 3, 9
    matches = torch.full((B, N, N, T), -1, dtype=torch.long)
    perm = torch.randperm(T)
    matches[:, 0, 1] = perm  # patch p of view 0 is patch perm[p] of view 1
    ident = torch.eye(T)
    feats = torch.zeros(B, N, T, T)
    feats[:, 0] = ident
    feats[:, 1] = ident[torch.argsort(perm)]  # view 1's patch perm[p] carries code p
    good, acc = info_nce(feats, matches, temperature=0.05)
    assert acc == 1.0 and float(good) < 1e-3
    bad, acc_bad = info_nce(torch.nn.functional.normalize(torch.randn(B, N, T, 16), dim=-1), matches)
    assert float(bad) > 1.0 and acc_bad < 1.0
    none, nan_acc = info_nce(feats, torch.full_like(matches, -1))
    assert float(none) == 0.0 and math.isnan(nan_acc)


def test_mimetic_init_makes_query_key_near_identity():
    model = Fast3R(small_config(**{**TINY, "width": 64, "heads": 2}))
    n = mimetic_init(model, torch.Generator().manual_seed(0))
    assert n == 1 + 4  # every attention of encoder and decoder
    attn = model.decoder.dec_blocks[0].attn
    d, hd = 64, 32
    W = attn.qkv.weight.detach().double()
    qk = sum(W[h * hd : (h + 1) * hd].T @ W[d + h * hd : d + (h + 1) * hd] for h in range(2)) / 2
    diag = float(qk.diagonal().mean())
    off = float((qk - torch.diag(qk.diagonal())).abs().mean())
    assert diag > 0.25 and diag > 5 * off  # a token's query matches its own key best
    vo = attn.proj.weight.detach().double() @ W[2 * d :]
    assert float(vo.diagonal().mean()) < -0.2
    assert float(attn.qkv.bias.detach().abs().max()) == 0.0


def test_pca_patch_embedding_decorrelates_patches():
    rng = np.random.default_rng(0)
    imgs = np.stack([render_sample(rng, 1, long_side=64).images[0] for _ in range(8)])
    conv = torch.nn.Conv2d(3, 24, 16, 16)
    pca_patch_embed_init(conv, imgs, np.random.default_rng(1), samples=4000)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        y = conv(x).permute(0, 2, 3, 1).reshape(-1, 24).double()
    cov = torch.cov(y.T)
    corr = cov / torch.sqrt(torch.outer(cov.diagonal(), cov.diagonal()))
    off = (corr - torch.eye(24)).abs()
    assert float(off.mean()) < 0.2  # random filters on natural-ish patches correlate far more
    assert abs(float(y.mean())) < 0.5 * float(y.std())  # the mean patch is moved into the bias


def test_stage_parsing_and_curriculum_views(cache):
    st = Stage.parse((0.2, 112, 16, 2, 4, 45.0, 0.25), (2, 8))
    assert st == Stage(0.2, 112, 16, 2, 4, 45.0, 0.25)
    assert Stage.parse((0.0, 224, 8), (3, 5)) == Stage(0.0, 224, 8, 3, 5, 180.0, None)
    assert Stage.parse({"start": 0.5, "res": 112, "images": 8, "max_angle": 30}, (2, 6)).max_views == 6
    cfg = TrainConfig(out="o", cache="c", steps=100, stages=[(0, 112, 16, 2, 3, 40), (0.5, 224, 8, 4, 8)])
    assert cfg.stage(49).max_angle == 40 and cfg.stage(50).res == 224 and cfg.stage_at(50) == (224, 8)
    rng = np.random.default_rng(3)
    for scene in range(len(cache)):
        ang = cache._angles(scene)
        for _ in range(5):
            v = cache.pick_views(rng, scene, 3, max_angle=40.0)
            assert len(set(v.tolist())) == 3
            near = np.sort(ang[v[0]][np.arange(cache.views) != v[0]])
            # within the limit, or the nearest views when too few are
            assert all(ang[v[0], w] <= max(40.0, near[1]) + 1e-6 for w in v[1:])


def test_training_with_the_recipe_resumes_from_a_data_only_state(cache, tmp_path):
    common = {
        **quick_train_settings(cache.folder),
        "stages": [(0.0, 32, 6, 2, 3, 60.0, None), (0.5, 64, 6, 2, 3)],
        "nce_weight": 0.5,
        "init_mimetic": True,
        "init_pca": True,
        "ema": 0.9,
    }
    full = train(TrainConfig(out=str(tmp_path / "full"), steps=4, **common))
    part = TrainConfig(out=str(tmp_path / "part"), steps=4, max_minutes=0.0, **common)
    assert train(part)["steps"] == 1
    res = train(TrainConfig(out=str(tmp_path / "part"), steps=4, **common), resume=True)
    assert res["steps"] == 4 and res["last_loss"] == pytest.approx(full["last_loss"], rel=1e-4)
    tensors, meta = load_train_state(tmp_path / "part")
    assert (
        meta["step"] == 4
        and any(k.startswith("ema.") for k in tensors)
        and any(k.startswith("proj.") for k in tensors)
    )
    assert not any(
        k.startswith("proj.") or k.startswith("ema.") for k in _model_keys(tmp_path / "part" / "last")
    )
    rows = (tmp_path / "part" / "log.csv").read_text().splitlines()
    assert "nce" in rows[0] and len(rows) == 5


def _model_keys(folder):
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        return list(fh.keys())


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_pickled_training_state_with_code_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": {}, "payload": _Evil()}, run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="contains code, refused"):
        load_train_state(run)
    assert "pwned" not in capsys.readouterr().out
    (run / "checkpoint.pt").write_bytes(pickle.dumps({"a": 1})[:5])
    with pytest.raises(CheckpointError, match=r"damaged|contains code"):
        load_train_state(run)
    (run / "checkpoint.pt").unlink()
    with pytest.raises(CheckpointError, match="no training state"):
        load_train_state(run)
    (run / "state").mkdir()
    (run / "state" / "state.safetensors").write_bytes(b"\x00" * 10)
    (run / "state" / "state.json").write_text(json.dumps({"step": 1}))
    with pytest.raises(CheckpointError, match="damaged"):
        load_train_state(run)


def test_unseen_look_uses_textures_and_paths_training_never_does():
    from fast3r_core.train.synthetic import make_scene, restyle_unseen

    train_kinds = {
        t.kind for i in range(30) for p in make_scene(np.random.default_rng(i)).primitives for t in p.textures
    }
    unseen = {
        t.kind
        for i in range(30)
        for p in restyle_unseen(make_scene(np.random.default_rng(i)), np.random.default_rng(i)).primitives
        for t in p.textures
    }
    assert train_kinds <= {"checkers", "stripes", "noise", "plain"}
    assert unseen and not unseen & train_kinds
    a = render_sample(4, 3, long_side=64)
    b = render_sample(4, 3, long_side=64, look="unseen")
    assert a.images.shape == b.images.shape and not np.array_equal(a.images, b.images)
    # the rendered ground truth stays consistent: valid points lie in front of their camera
    w2c = np.linalg.inv(b.cam_to_world)
    cam = np.einsum("vij,vhwj->vhwi", w2c[:, :3, :3], b.pts3d) + w2c[:, None, None, :3, 3]
    assert (cam[..., 2][b.valid] > 0).all()


def test_scene_quality_measures_focal_and_confidence():
    s = render_sample(2, 3, long_side=64)
    gt_pts = [p.astype(np.float64) for p in s.pts3d]
    rng = np.random.default_rng(0)
    conf = [rng.uniform(1, 10, p.shape[:2]) for p in gt_pts]
    # noise that shrinks with confidence: confident points are the accurate ones
    noisy = [p + rng.normal(size=p.shape) * (0.5 / c)[..., None] for p, c in zip(gt_pts, conf, strict=True)]
    f = float(s.intrinsics[0, 0, 0])
    q = scene_quality(noisy, conf, 1.1 * f, s.cam_to_world, s.intrinsics, s.depth)
    assert q["focal_err"] == pytest.approx(0.1)
    assert q["conf_ratio"] < 0.5 and q["point_err"] > 0
    flat = scene_quality(noisy, [np.ones_like(c) for c in conf], f, s.cam_to_world, s.intrinsics, s.depth)
    assert flat["conf_ratio"] > 0.5  # a constant confidence ranks nothing
    # a similarity of the truth is still perfect
    R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    moved = [3.0 * p @ R.T + 1.0 for p in gt_pts]
    assert scene_quality(moved, conf, f, s.cam_to_world, s.intrinsics, s.depth)["point_err"] < 1e-5
    assert math.isnan(scene_quality(noisy, conf, f, s.cam_to_world, s.intrinsics, None)["conf_ratio"])
