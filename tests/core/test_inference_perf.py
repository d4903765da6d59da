"""Inference-path internals: RoPE without copies, batched heads, int8 mode, dtype plumbing, chunk planning.

Speed is measured by bench/ scripts, never here; these tests pin the behaviour the fast paths must keep.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from fast3r_core.errors import InputError, InsufficientMemoryError
from fast3r_core.forward_memory import _linear_weight_count, estimate_peak_memory, plan_chunks
from fast3r_core.inference import InferenceOptions, autocast_dtype, predict
from fast3r_core.model import Fast3R, Fast3RConfig
from fast3r_core.model.layers import Block, RoPE2D
from fast3r_core.quantize import Int8Linear, int8_backend, quantized_model
from tests.tiny import PARITY_CONFIG


def _views(n: int, h: int = 64, w: int = 96, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g) * 2 - 1 for _ in range(n)]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# -- RoPE --------------------------------------------------------------------------------------------
def test_rope_rotates_each_pair_by_its_position_angle():
    """Reference built independently: complex rotation of the (i, i + D/4) pairs of each half."""
    gh, gw, hd, base = 3, 5, 16, 100.0
    x = torch.randn(2, gh * gw, 2, 4, hd, dtype=torch.float64).float()
    out = RoPE2D(base)(x, gh, gw)
    assert out.shape == x.shape and out.is_contiguous()
    half, quarter = hd // 2, hd // 4
    freqs = base ** (-np.arange(0, half, 2) / half)  # (quarter,)
    ys, xs = np.divmod(np.arange(gh * gw), gw)
    xn = x.double().numpy()
    ref = np.empty_like(xn)
    for k, pos in enumerate((ys, xs)):  # first half: row, second half: column
        part = xn[..., k * half : (k + 1) * half]
        z = part[..., :quarter] + 1j * part[..., quarter:]
        rot = z * np.exp(1j * pos[None, :, None, None, None] * freqs)
        ref[..., k * half : k * half + quarter] = rot.real
        ref[..., k * half + quarter : (k + 1) * half] = rot.imag
    np.testing.assert_allclose(out.numpy(), ref, atol=2e-5)


def test_rope_rejects_a_grid_that_does_not_match_the_tokens():
    with pytest.raises(ValueError, match="12 tokens"):
        RoPE2D()(torch.zeros(1, 12, 2, 1, 8), 3, 5)


# -- model layout ------------------------------------------------------------------------------------
def test_dpt_weights_are_channels_last_and_survive_a_state_dict_round_trip(tiny):
    conv = tiny.downstream_head.dpt.scratch.layer1_rn.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    state = {k: v.contiguous() for k, v in tiny.state_dict().items()}  # what the checkpoint writer saves
    other = Fast3R(tiny.config).eval()
    other.load_state_dict(state)
    assert other.downstream_head.dpt.scratch.layer1_rn.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(other.downstream_head.dpt.scratch.layer1_rn.weight, conv)


def test_batched_heads_in_forward_equal_per_view_heads(tiny):
    """forward() runs the heads of same-size views as one batch; it must equal view-by-view heads."""
    views = _views(3)
    ids = torch.tensor([0, 7, 3])
    with torch.inference_mode():
        outs = tiny([v[None] for v in views], ids)
        tokens = [tiny.encode(v[None]) for v in views]
        hooks = tiny.fuse(tokens, ids[None])
        T = tokens[0].shape[1]
        for v in range(3):
            ref = tiny.heads([h[:, v * T : (v + 1) * T] for h in hooks], (64, 96))
            for k, t in ref.items():
                torch.testing.assert_close(outs[v][k], t, rtol=1e-5, atol=1e-5)


def test_forward_has_no_data_dependent_ops_so_no_host_syncs():
    """The whole forward runs on the meta device: any .item(), nonzero or tensor-valued size fails there
    (each of those would be a device-to-host sync on CUDA)."""
    cfg = json.loads(PARITY_CONFIG.read_text(encoding="utf-8"))
    with torch.device("meta"):
        model = Fast3R(Fast3RConfig.from_dict(cfg)).eval()
    images = [torch.empty(2, 3, 64, 96, device="meta") for _ in range(3)]
    with torch.inference_mode():
        outs = model(images, torch.tensor([0, 5, 9], device="meta"))
    assert outs[2]["pts3d_in_other_view"].shape == (2, 64, 96, 3)
    assert outs[0]["conf_local"].shape == (2, 64, 96)


# -- precision plumbing ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("device", "precision", "expected"),
    [
        ("cpu", "auto", None),
        ("cpu", "fp32", None),
        ("cpu", "int8", None),
        ("cpu", "bf16", torch.bfloat16),
        ("cuda", "fp16", torch.float16),
        ("cuda", "fp32", None),
        ("mps", "auto", torch.float16),
    ],
)
def test_autocast_dtype(device, precision, expected):
    assert autocast_dtype(torch.device(device), precision) is expected


@pytest.mark.parametrize(("capability", "expected"), [((8, 6), torch.bfloat16), ((7, 0), torch.float16)])
def test_auto_precision_on_cuda_prefers_bf16_from_ampere_on(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert autocast_dtype(torch.device("cuda"), "auto") is expected


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_int8_is_a_cpu_mode(device):
    with pytest.raises(InputError, match="CPU mode"):
        autocast_dtype(torch.device(device), "int8")


def test_unknown_precision_is_an_input_error():
    with pytest.raises(InputError, match="int8"):
        autocast_dtype(torch.device("cpu"), "fp8")


def test_bf16_on_cpu_returns_float32_close_to_fp32(tiny):
    views = _views(2)
    ref = predict(tiny, views, options=InferenceOptions(precision="fp32"))
    out = predict(tiny, views, options=InferenceOptions(precision="bf16"))
    for r, o in zip(ref, out, strict=True):
        assert o["pts3d_in_other_view"].dtype == np.float32
        assert _rel(o["pts3d_in_other_view"], r["pts3d_in_other_view"]) < 0.05


# -- int8 mode ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", sorted({"int_mm", int8_backend()}))
def test_int8_linear_is_close_to_the_fp32_linear(backend):
    torch.manual_seed(0)
    lin = nn.Linear(64, 48)
    q = Int8Linear(lin, backend=backend)
    for shape in ((2, 40, 64), (5, 64), (1, 1, 64)):
        x = torch.randn(*shape)
        with torch.inference_mode():
            y, ref = q(x), lin(x)
        assert y.shape == ref.shape and y.dtype == torch.float32
        assert float((y - ref).norm() / ref.norm()) < 0.03, (backend, shape)


def test_int8_model_is_built_once_and_shares_the_fp32_weights(tiny):
    q1 = quantized_model(tiny)
    assert quantized_model(tiny) is q1
    qkv = q1.encoder.enc_blocks[0].attn.qkv
    assert isinstance(qkv, Int8Linear)
    assert isinstance(tiny.encoder.enc_blocks[0].attn.qkv, nn.Linear)  # the fp32 model is untouched
    assert q1.encoder.enc_blocks[0].norm1.weight is tiny.encoder.enc_blocks[0].norm1.weight
    n_int8 = sum(isinstance(m, Int8Linear) for m in q1.modules())
    assert n_int8 == sum(isinstance(m, nn.Linear) for m in tiny.modules())


def test_int8_model_is_rebuilt_when_the_weights_change(tiny):
    model = Fast3R(tiny.config).eval()
    model.load_state_dict(tiny.state_dict())
    q1 = quantized_model(model)
    with torch.no_grad():
        model.decoder.dec_blocks[0].mlp.fc1.weight.mul_(0.5)
    assert quantized_model(model) is not q1


def test_int8_predict_is_close_to_fp32(tiny):
    views = _views(3, seed=1)
    ref = predict(tiny, views, options=InferenceOptions(precision="fp32"))
    out = predict(tiny, views, options=InferenceOptions(precision="int8"))
    for r, o in zip(ref, out, strict=True):
        assert o["pts3d_local"].dtype == np.float32
        assert _rel(o["pts3d_in_other_view"], r["pts3d_in_other_view"]) < 0.1
        assert _rel(o["conf"], r["conf"]) < 0.05
        assert (o["conf"] > 1).all()


# -- memory estimate and chunk planning --------------------------------------------------------------
def test_int8_estimate_adds_one_byte_per_linear_weight():
    cfg = Fast3RConfig()
    shapes = [(224, 224)] * 4
    fp32 = estimate_peak_memory(cfg, shapes)
    int8 = estimate_peak_memory(cfg, shapes, int8=True)
    assert int8.weights - fp32.weights == _linear_weight_count(cfg)
    assert 0.55 < _linear_weight_count(cfg) / 2**30 < 0.6  # ViT-L encoder + decoder linears: ~605 M
    assert int8.activations == fp32.activations


def test_chunk_plan_follows_the_free_memory():
    cfg = Fast3RConfig()
    shapes = [(384, 512)] * 40
    assert plan_chunks(cfg, shapes, 1 << 50) == (40, 25)  # everything fits: the caps
    assert plan_chunks(cfg, shapes, 0) == (1, 1)
    budget = 6 * 2**30
    enc, head = plan_chunks(cfg, shapes, budget)
    est = estimate_peak_memory(cfg, shapes, encoder_chunk=enc, head_chunk=head)
    assert est.total - est.weights <= budget
    bigger = estimate_peak_memory(cfg, shapes, encoder_chunk=enc, head_chunk=min(40, head * 2))
    assert head == 25 or bigger.total - bigger.weights > budget
    # half the bytes per element (bf16/fp16 autocast) never gives smaller chunks
    enc16, head16 = plan_chunks(cfg, shapes, budget, bytes_per_el=2)
    assert enc16 >= enc and head16 >= head


def test_predict_plans_chunks_from_the_devices_free_memory(monkeypatch, tiny):
    """A CUDA run sizes its chunks from torch.cuda.mem_get_info: check the plan with a faked device."""
    from fast3r_core import inference

    shapes = [(64, 96)] * 12
    cfg = tiny.config

    def need(enc: int, head: int) -> int:
        est = estimate_peak_memory(
            cfg, shapes, bytes_per_el=2, encoder_chunk=enc, head_chunk=head, device_type="cuda"
        )
        return est.total - est.weights

    # room for some chunking, not for all views at once (90 % of the free memory is planned for)
    free = int((need(1, 1) + need(12, 12)) / 2 / 0.9)
    seen = {}

    def fake_available(kind, index=None):
        seen["kind"] = kind
        return free

    monkeypatch.setattr(inference, "available_memory", fake_available)
    enc, head = inference._plan(tiny, shapes, torch.device("cuda"), torch.float16, InferenceOptions())
    assert seen["kind"] == "cuda"
    assert need(enc, head) <= free * 0.9  # the planning margin
    assert (enc, head) != (12, 12) and (enc, head) != (1, 1)
    # and with the memory gone, the run is refused with a typed error before anything is allocated
    monkeypatch.setattr(inference, "available_memory", lambda kind, index=None: need(1, 1) - 1)
    with pytest.raises(InsufficientMemoryError, match="fewer views"):
        inference._plan(tiny, shapes, torch.device("cuda"), torch.float16, InferenceOptions())


def test_int8_copy_is_counted_by_the_memory_check_only_until_it_is_built(monkeypatch, tiny):
    """The first int8 run must have room for the int8 weight copy; later runs hold it already (it is
    then outside the free memory), so counting it again would refuse runs that fit."""
    from fast3r_core import inference
    from fast3r_core.errors import InsufficientMemoryError
    from fast3r_core.quantize import is_quantized

    model = Fast3R(tiny.config).eval()
    model.load_state_dict(tiny.state_dict())
    shapes = [(64, 96)] * 3
    est = estimate_peak_memory(tiny.config, shapes, encoder_chunk=1, head_chunk=1)
    # 90 % of it is planned for: room for the run, not for the int8 copy as well
    free = int((est.total - est.weights + _linear_weight_count(tiny.config) // 2) / 0.9)
    monkeypatch.setattr(inference, "available_memory", lambda *a, **k: free)
    opts = InferenceOptions(precision="int8", encoder_chunk=1, head_chunk=1)
    assert not is_quantized(model)
    with pytest.raises(InsufficientMemoryError):
        inference._plan(model, shapes, torch.device("cpu"), None, opts)
    quantized_model(model)
    assert is_quantized(model)
    assert inference._plan(model, shapes, torch.device("cpu"), None, opts) == (1, 1)
    with torch.no_grad():  # changed weights: the copy is rebuilt, so it counts again
        model.decoder.dec_blocks[0].mlp.fc1.weight.mul_(0.5)
    assert not is_quantized(model)


@pytest.mark.parametrize("rope", [False, True])
def test_inference_block_is_bitwise_the_autograd_block_and_leaves_its_input_alone(rope):
    torch.manual_seed(0)
    blk = Block(64, 4, rope=RoPE2D(100.0) if rope else None).eval()
    x = torch.randn(2, 12, 64)
    kept = x.clone()
    with torch.inference_mode():
        fast = blk(x, grid=(3, 4))  # in-place GELU and residual adds
    assert torch.equal(x, kept)  # the fusion decoder keeps block inputs as hooks
    xg = x.clone().requires_grad_(True)
    slow = blk(xg, grid=(3, 4))  # the training path: out-of-place ops
    assert torch.equal(fast, slow.detach())
    slow.sum().backward()  # and it still differentiates
    assert xg.grad is not None and torch.isfinite(xg.grad).all()


def test_residual_stream_keeps_fp32_when_autocast_runs_the_branches_in_bf16():
    torch.manual_seed(0)
    blk = Block(64, 4).eval()
    x = torch.randn(2, 12, 64)  # fp32, as the fusion decoder's x is under autocast
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast = blk(x)
    xg = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        slow = blk(xg)
    assert fast.dtype == torch.float32
    assert torch.equal(fast, slow.detach())
