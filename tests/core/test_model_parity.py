"""The model reproduces the published implementation's outputs (tests/data/parity/model_small*)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import fast3r_core
from fast3r_core.errors import Cancelled, InputError
from fast3r_core.inference import InferenceOptions, predict
from fast3r_core.model import Fast3RConfig
from fast3r_core.model.fast3r import draw_image_ids

from .weights_by_rule import write_model_folder

PARITY = Path(__file__).resolve().parents[1] / "data" / "parity"
KEYS = ("pts3d_in_other_view", "conf", "pts3d_local", "conf_local")


@pytest.fixture(scope="module", params=["model_small", "model_small_mixed", "model_small_widths"])
def case(request, tmp_path_factory):
    name = request.param
    folder = write_model_folder(PARITY / name, tmp_path_factory.mktemp(name))
    data = np.load(PARITY / name / "case.npz")
    model = fast3r_core.load_model(folder, device="cpu")
    n = len([k for k in data.files if k.startswith("input")])
    images = [torch.from_numpy(data[f"input{i}"]) for i in range(n)]
    return model, data, images


def _assert_close(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    err = np.abs(ours - ref) / (1 + np.abs(ref))
    assert ours.shape == ref.shape, what
    assert err.max() <= 1e-4, f"{what}: max rel err {err.max():.3g}"


def test_predict_matches_published_outputs(case):
    model, data, images = case
    outs = predict(model, images, image_ids=data["image_ids"])
    assert len(outs) == len(images)
    for v, out in enumerate(outs):
        for k in KEYS:
            assert out[k].dtype == np.float32
            _assert_close(out[k], data[f"view{v}.{k}"], f"view{v}.{k}")
        assert (out["conf"] > 1).all() and (out["conf_local"] > 1).all()


def test_intermediate_layers_match(case):
    model, data, images = case
    with torch.no_grad():
        tokens = [model.encode(im[None]) for im in images]
        _assert_close(tokens[0][0].numpy(), data["debug.encoder_out.view0"], "encoder view0")
        hooks = model.fuse(tokens, torch.from_numpy(data["image_ids"])[None])
    assert model.config.hooks == (0, 5, 7, 10)
    widths = (model.config.encoder_args.embed_dim,) + (model.config.decoder_args.embed_dim,) * 3
    for k, h, width in zip(model.config.hooks, hooks, widths, strict=True):
        assert h.shape[-1] == width  # hook 0: encoder width; the others: decoder width
        _assert_close(h[0].numpy(), data[f"debug.decoder_layer{k}"], f"decoder layer {k}")


def test_chunked_equals_unchunked(case):
    model, data, images = case
    ids = data["image_ids"]
    whole = predict(model, images, ids, options=InferenceOptions(encoder_chunk=64, head_chunk=64))
    one = predict(model, images, ids, options=InferenceOptions(encoder_chunk=1, head_chunk=1))
    for a, b in zip(whole, one, strict=True):
        for k in KEYS:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-5)


def test_default_ids_are_deterministic_and_seeded(case):
    model, _data, images = case
    a = predict(model, images)
    b = predict(model, images)
    c = predict(model, images, options=InferenceOptions(seed=123))
    for k in KEYS:
        assert np.array_equal(a[1][k], b[1][k])
    # another seed gives other image indices, hence other outputs (view 0 always has index 0)
    assert not np.allclose(a[1]["pts3d_in_other_view"], c[1]["pts3d_in_other_view"])


def test_forward_matches_predict(case):
    model, data, images = case
    ids = torch.from_numpy(data["image_ids"])
    with torch.no_grad():
        outs = model([im[None] for im in images], ids)
    for v, out in enumerate(outs):
        _assert_close(out["pts3d_local"][0].numpy(), data[f"view{v}.pts3d_local"], "forward")


def test_cancel_raises_and_progress_reports_stages(case):
    model, _data, images = case
    events = []
    predict(model, images, progress=events.append)
    stages = [e.stage for e in events]
    assert stages[0] == "encode" and "fuse" in stages and stages[-1] == "heads"
    assert events[-1].done == events[-1].total == len(images)
    cancel = threading.Event()

    def cancel_after_encode(ev):
        if ev.stage == "fuse":
            cancel.set()

    with pytest.raises(Cancelled):
        predict(model, images, progress=cancel_after_encode, cancel=cancel)


def test_bad_inputs_are_typed_errors(case):
    model, _data, images = case
    with pytest.raises(InputError, match="multiple of the patch size"):
        predict(model, [torch.zeros(3, 60, 96)])
    with pytest.raises(InputError, match="no images"):
        predict(model, [])
    with pytest.raises(InputError, match=r"\(3, H, W\)"):
        predict(model, [torch.zeros(1, 3, 64, 96)])
    with pytest.raises(InputError, match="distinct"):
        predict(model, images[:2] if len(images) > 2 else images, image_ids=[0, 0][: len(images[:2])])


def test_image_id_draw():
    ids = draw_image_ids(8, seed=0)
    assert ids[0] == 0 and len(set(ids.tolist())) == 8 and ids[1:].min() >= 1 and ids.max() <= 999
    assert torch.equal(ids, draw_image_ids(8, seed=0))
    assert draw_image_ids(1000).unique().numel() == 1000
    with pytest.raises(InputError, match="at most 1000"):
        draw_image_ids(1001)
    assert draw_image_ids(3, random_ids=False).tolist() == [0, 1, 2]


def test_published_config_builds_published_keys():
    """The published ViT-L config gives exactly the checkpoint's 712 keys and 647,551,368 parameters."""
    from fast3r_core.model import Fast3R

    expected = _vitl_keys()
    with torch.device("meta"):
        model = Fast3R(Fast3RConfig())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == expected
    assert sum(p.numel() for p in model.parameters()) == 647_551_368


def test_refuses_a_run_that_will_not_fit(case, monkeypatch):
    from fast3r_core import inference
    from fast3r_core.errors import InsufficientMemoryError

    model, _data, images = case
    monkeypatch.setattr(inference, "available_memory", lambda *a, **k: 1024)
    with pytest.raises(InsufficientMemoryError, match="fewer views"):
        predict(model, images)
    # the check can be switched off (the caller knows better, e.g. swap)
    predict(model, images, options=InferenceOptions(check_memory=False))


def test_out_of_memory_retries_with_smaller_chunks(case, monkeypatch):
    from fast3r_core.errors import InsufficientMemoryError

    model, data, images = case
    calls = []
    real_heads = model.heads

    def flaky_heads(hooks, shape):
        calls.append(hooks[0].shape[0])
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_heads(hooks, shape)

    monkeypatch.setattr(model, "heads", flaky_heads)
    outs = predict(model, images, data["image_ids"], options=InferenceOptions(head_chunk=4))
    # the first try ran the largest same-size group at once; the retry went view by view (4 -> 1)
    assert calls[0] == max(sum(1 for im in images if im.shape == s.shape) for s in images)
    assert len(calls) > 1 and all(c == 1 for c in calls[1:])
    _assert_close(outs[0]["conf"], data["view0.conf"], "after retry")

    def always_oom(hooks, shape):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(model, "heads", always_oom)
    with pytest.raises(InsufficientMemoryError, match="Out of memory"):
        predict(model, images, options=InferenceOptions(head_chunk=4))


def test_bf16_autocast_runs_and_stays_close(case):
    """Reduced precision path (what CUDA uses by default): float32 outputs, close to fp32."""
    model, data, images = case
    outs = predict(model, images, data["image_ids"], options=InferenceOptions(precision="bf16"))
    ref = data["view0.pts3d_local"]
    assert outs[0]["pts3d_local"].dtype == np.float32
    rel = np.abs(outs[0]["pts3d_local"] - ref).mean() / np.abs(ref).mean()
    assert 0 < rel < 0.05


def _vitl_keys() -> dict[str, tuple[int, ...]]:
    keys_file = Path(__file__).resolve().parents[2] / "tests" / "data" / "fast3r-vitl512-keys.txt"
    expected = {}
    for line in keys_file.read_text().splitlines():
        if line.startswith("#") or "alias-of" in line:
            continue
        name, rest = line.split(" ", 1)
        expected[name] = tuple(int(x) for x in rest.split(")")[0].strip("(").split(",") if x.strip())
    return expected


def test_training_config_widths_build_the_published_keys():
    """Encoder 1024 -> fusion decoder 768 (configs/model/fast3r.yaml: 12 blocks, 12 heads), on meta.

    Expected shapes from the spec, not from our modules: the encoder and its keys are the released
    ViT-L ones; ``decoder_embed`` is Linear 1024 -> 768; the decoder blocks are 768 wide (MLP 3072);
    DPT hook 0 reads the encoder output (1024 channels), hooks 1-3 read decoder layers (768 channels).
    """
    from fast3r_core.model import DecoderArgs, Fast3R

    vitl = _vitl_keys()
    enc, dec = 1024, 768
    expected = {k: s for k, s in vitl.items() if k.startswith("encoder.")}
    expected["decoder.decoder_embed.weight"] = (dec, enc)
    expected["decoder.decoder_embed.bias"] = (dec,)
    for i in range(12):
        b = f"decoder.dec_blocks.{i}."
        for norm in ("norm1", "norm2"):
            expected[b + norm + ".weight"] = expected[b + norm + ".bias"] = (dec,)
        expected[b + "attn.qkv.weight"], expected[b + "attn.qkv.bias"] = (3 * dec, dec), (3 * dec,)
        expected[b + "attn.proj.weight"], expected[b + "attn.proj.bias"] = (dec, dec), (dec,)
        expected[b + "mlp.fc1.weight"], expected[b + "mlp.fc1.bias"] = (4 * dec, dec), (4 * dec,)
        expected[b + "mlp.fc2.weight"], expected[b + "mlp.fc2.bias"] = (dec, 4 * dec), (dec,)
    expected["decoder.dec_norm.weight"] = expected["decoder.dec_norm.bias"] = (dec,)
    for k, s in vitl.items():
        if k.startswith("downstream_head"):
            hook = k.split("act_postprocess.")[1][0] if ".act_postprocess." in k else None
            if hook in ("1", "2", "3") and k.endswith(".0.weight"):
                s = (s[0], dec, *s[2:])  # 1x1 conv from the decoder width
            expected[k] = s
    cfg = Fast3RConfig(decoder_args=DecoderArgs(enc_embed_dim=enc, embed_dim=dec, num_heads=12, depth=12))
    assert cfg.hooks == (0, 6, 9, 12)
    with torch.device("meta"):
        model = Fast3R(cfg)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == expected
    n_params = sum(math.prod(s) for s in expected.values())
    assert sum(p.numel() for p in model.parameters()) == n_params
    # the memory estimate counts the same parameters (it is what the GUI shows before loading)
    from fast3r_core.forward_memory import estimate_peak_memory

    assert estimate_peak_memory(cfg, [(384, 512)]).weights == 4 * n_params


# -- a model whose encoder and decoder widths differ, through every path that reasons about widths -----
@pytest.fixture(scope="module")
def widths_model(tmp_path_factory):
    folder = write_model_folder(PARITY / "model_small_widths", tmp_path_factory.mktemp("widths"))
    model = fast3r_core.load_model(folder, device="cpu")
    data = np.load(PARITY / "model_small_widths" / "case.npz")
    images = [torch.from_numpy(data[f"input{i}"]) for i in range(3)]
    return model, data, images


def test_widths_model_memory_estimate_counts_hooks_at_their_widths(widths_model):
    from fast3r_core.forward_memory import estimate_peak_memory

    model, _data, _images = widths_model
    cfg = model.config
    assert cfg.hook_dims == (192, 96, 96, 96)
    est = estimate_peak_memory(cfg, [(64, 96)])
    assert est.weights == 4 * sum(p.numel() for p in model.parameters())
    # one more view of the same size keeps 24 more tokens in each hooked layer (at that layer's width)
    one = estimate_peak_memory(cfg, [(64, 96)], head_chunk=1)
    two = estimate_peak_memory(cfg, [(64, 96)] * 2, head_chunk=1)
    assert two.heads - one.heads == 24 * (192 + 3 * 96) * 4


def test_widths_model_int8_is_close_to_fp32(widths_model):
    model, data, images = widths_model
    ref = predict(model, images, data["image_ids"])
    out = predict(model, images, data["image_ids"], options=InferenceOptions(precision="int8"))
    for r, o in zip(ref, out, strict=True):
        rel = np.linalg.norm(o["pts3d_local"] - r["pts3d_local"]) / np.linalg.norm(r["pts3d_local"])
        assert rel < 0.1
        assert (o["conf"] > 1).all()


def test_widths_model_runs_in_several_passes(widths_model):
    """A chunked run: 5 views in passes of 3 with view 0 as the anchor. The views of the first pass
    keep the model's own outputs (only their global points are moved by the pass alignment)."""
    from fast3r_core.chunking.runner import predict_passes

    model, _data, images = widths_model
    views = [*images, images[1].flip(-1), images[2].flip(-2)]
    passes = [(0, 1, 2), (0, 3, 4)]
    res = predict_passes(model, views, passes, anchors=[0], image_ids=[0, 7, 9, 11, 13])
    assert sorted(res.preds) == [0, 1, 2, 3, 4]
    for v in range(5):
        assert res.preds[v]["pts3d_in_other_view"].shape == (64, 96, 3)
    first = predict(model, images, [0, 7, 9])
    for k in ("conf", "pts3d_local", "conf_local"):
        np.testing.assert_allclose(res.preds[1][k], first[1][k], rtol=1e-5, atol=1e-5)
