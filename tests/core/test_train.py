"""Training objective (parity with the published loss), the training step and loop, checkpoints, CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fast3r_core.model import Fast3R
from fast3r_core.train.data import SceneCache, build_cache
from fast3r_core.train.loop import TrainConfig, forward_train, lr_at, small_config, train, train_step
from fast3r_core.train.loss import fast3r_loss
from tests.tiny import TINY_TRAIN_MODEL as TINY
from tests.tiny import quick_train_settings

PARITY = Path(__file__).resolve().parents[1] / "data" / "parity" / "loss" / "case.npz"


def _fixture():
    z = np.load(PARITY)
    n = sum(1 for k in z.files if k.endswith(".camera_pose"))
    gts = [
        {k: torch.from_numpy(z[f"gt{i}.{k}"]) for k in ("camera_pose", "pts3d", "valid_mask")}
        for i in range(n)
    ]
    keys = ("pts3d_in_other_view", "conf", "pts3d_local", "conf_local")
    preds = [{k: torch.from_numpy(z[f"pred{i}.{k}"]) for k in keys} for i in range(n)]
    return gts, preds, float(z["alpha"]), float(z["ref_loss"])


def test_loss_matches_published_fixture():
    gts, preds, alpha, ref = _fixture()
    assert float(fast3r_loss(gts, preds, alpha=alpha)) == pytest.approx(ref, abs=1e-5)


def test_loss_is_scale_and_frame_invariant_and_zero_error_at_truth():
    gts, preds, alpha, ref = _fixture()
    # predictions scaled by any factor: the same loss (both pointmaps are normalised)
    scaled = [
        {**p, "pts3d_in_other_view": 3.0 * p["pts3d_in_other_view"], "pts3d_local": 0.5 * p["pts3d_local"]}
        for p in preds
    ]
    assert float(fast3r_loss(gts, scaled, alpha)) == pytest.approx(ref, abs=1e-5)
    # a rigid change of the GT world frame changes nothing either (targets live in camera frames)
    a = 0.7
    T = torch.tensor(
        [
            [math.cos(a), -math.sin(a), 0, 1.0],
            [math.sin(a), math.cos(a), 0, -2.0],
            [0, 0, 1, 0.5],
            [0, 0, 0, 1],
        ]
    )
    moved = [
        {**g, "camera_pose": T @ g["camera_pose"], "pts3d": g["pts3d"] @ T[:3, :3].T + T[:3, 3]} for g in gts
    ]
    assert float(fast3r_loss(moved, preds, alpha)) == pytest.approx(ref, abs=1e-4)
    # predicting the normalised truth exactly leaves only the -alpha log C term
    from fast3r_core.train.loss import normalised_targets

    glob, local, masks = normalised_targets(gts)
    perfect = [
        {"pts3d_in_other_view": g, "conf": p["conf"], "pts3d_local": loc, "conf_local": p["conf_local"]}
        for g, loc, p in zip(glob, local, preds, strict=True)
    ]
    expected = sum(
        float((-alpha * torch.log(p["conf"][m])).mean() + (-alpha * torch.log(p["conf_local"][m])).mean())
        for p, m in zip(preds, masks, strict=True)
    ) / (2 * len(preds))
    assert float(fast3r_loss(gts, perfect, alpha)) == pytest.approx(expected, abs=1e-5)


def test_lr_schedule():
    cfg = TrainConfig(out="x", cache="y", steps=100, lr=1e-3, min_lr=1e-6, warmup=10)
    assert lr_at(cfg, 0) == pytest.approx(1e-4)
    assert lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 55) == pytest.approx((1e-3 + 1e-6) / 2, rel=1e-3)
    assert lr_at(cfg, 100) == pytest.approx(1e-6)
    assert all(lr_at(cfg, s) >= lr_at(cfg, s + 1) for s in range(10, 100))
    assert cfg.stage_at(0) == (112, 32) and cfg.stage_at(60) == (224, 12)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return SceneCache(build_cache(tmp_path_factory.mktemp("cache"), 4, seed=3, size=32, views=4))


def test_cache_batch_geometry(cache):
    rng = np.random.default_rng(0)
    b = cache.batch(rng, 2, 3, 32)
    assert len(b.images) == 3 and b.images[0].shape == (2, 3, 32, 32)
    assert -1.0 <= float(b.images[0].min()) and float(b.images[0].max()) <= 1.0
    g = b.gts[1]
    assert g["pts3d"].shape == (2, 32, 32, 3) and g["valid_mask"].dtype == torch.bool
    # valid world points lie in front of their own camera
    w2c = torch.linalg.inv(g["camera_pose"])
    cam = (w2c[:, None, None, :3, :3] @ g["pts3d"][..., None])[..., 0] + w2c[:, None, None, :3, 3]
    assert (cam[..., 2][g["valid_mask"]] > 0).all()
    half = cache.batch(rng, 1, 2, 16)
    assert half.images[0].shape == (1, 3, 16, 16) and half.gts[0]["pts3d"].shape == (1, 16, 16, 3)


def test_forward_train_equals_model_forward():
    torch.manual_seed(0)
    model = Fast3R(small_config(**TINY)).eval()
    images = [torch.randn(2, 3, 32, 48) for _ in range(3)]
    ids = torch.tensor([[0, 5, 9], [0, 700, 3]])
    with torch.no_grad():
        a, b = model(images, ids), forward_train(model, images, ids)
    for va, vb in zip(a, b, strict=True):
        for k in va:
            torch.testing.assert_close(va[k], vb[k], rtol=1e-5, atol=1e-5)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(cache):
    torch.manual_seed(0)
    model = Fast3R(small_config(**TINY))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    batch = cache.batch(np.random.default_rng(1), 2, 3, 32)
    ids = torch.tensor([[0, 10, 20], [0, 30, 40]])
    losses = [train_step(model, opt, batch.images, batch.gts, ids)["loss"] for _ in range(12)]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.7 * losses[0], losses


def test_train_checkpoint_and_resume(cache, tmp_path):
    common = {**quick_train_settings(cache.folder), "stages": [(0.0, 16, 4), (0.5, 32, 4)], "max_views": 4}
    full = TrainConfig(out=str(tmp_path / "full"), steps=4, **common)
    s_full = train(full)
    assert s_full["steps"] == 4
    part = TrainConfig(out=str(tmp_path / "part"), steps=4, max_minutes=0.0, **common)
    assert train(part)["steps"] == 1  # time limit: stops after one step, with a checkpoint
    s_res = train(TrainConfig(out=str(tmp_path / "part"), steps=4, **common), resume=True)
    assert s_res["steps"] == 4
    assert s_res["last_loss"] == pytest.approx(s_full["last_loss"], rel=1e-4)
    rows = (tmp_path / "part" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4  # header + one row per step, none duplicated by the resume
    for name in (
        "loss.png",
        "state/state.safetensors",
        "state/state.json",
        "last/config.json",
        "last/model.safetensors",
        "train_config.json",
    ):
        assert (tmp_path / "part" / name).is_file(), name


def test_cli_commands(tmp_path, cache):
    from fast3r_core.train import cli_commands
    from fast3r_core.train.loop import export_model
    from fast3r_core.weights import load_model

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli_commands.add_train_parser(sub)
    cli_commands.add_eval_parser(sub)
    args = parser.parse_args(["train", "run", "--cache", "c", "--out", "o", "--stages", "0:112:8,0.5:224:4"])
    assert args.stages == [(0.0, 112, 8), (0.5, 224, 4)] and callable(args.handler)
    assert parser.parse_args(["eval", "--scenes", "d"]).model == "demo"

    assert (
        cli_commands.train_main(
            ["scenes", "--out", str(tmp_path / "sc"), "--scenes", "2", "--views", "3", "--size", "64"]
        )
        == 0
    )
    torch.manual_seed(0)
    folder = export_model(Fast3R(small_config(**TINY)), tmp_path / "m")
    assert (
        load_model(folder).decoder.dec_blocks[0].norm1.weight.dtype == torch.float32
    )  # fp16 file, fp32 model
    report = tmp_path / "r.json"
    code = cli_commands.eval_main(
        ["--model", str(folder), "--scenes", str(tmp_path / "sc"), "--report", str(report)]
    )
    assert code == 0
    data = json.loads(report.read_text())
    assert data["scenes"] == 2 and set(data["metrics"]) >= {"RRA@15", "RTA@15", "mAA@30"}
    assert [r["views"] for r in data["per_scene"]] == [2, 3]
