"""The GPU path on a CPU-only machine: CUDA / MPS facts are mocked, autocast is emulated with its cast
lists (tests/gpu_emulation.py), live device bytes are summed by a dispatch mode on the meta device.

One section per item of issue 20: precision choice, MPS attention blocking, the memory estimate, free
memory, out-of-memory handling, cuda:N and pinning, chunk synchronisation, allocation failures.
"""

from __future__ import annotations

import contextlib
import math
import sys
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fast3r_core import forward_memory, inference
from fast3r_core.errors import InsufficientMemoryError
from fast3r_core.forward_memory import available_memory, estimate_peak_memory
from fast3r_core.inference import InferenceOptions, autocast_dtype, predict
from fast3r_core.model import Fast3R, Fast3RConfig, layers
from tests.gpu_emulation import emulated_stage_peaks

GiB = 2**30
SHAPE_512 = (384, 512)


def _views(n: int, h: int = 64, w: int = 96, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g) * 2 - 1 for _ in range(n)]


@pytest.fixture(scope="module")
def vitl_meta() -> Fast3R:
    """The published ViT-L config on the meta device: shapes and dtypes only, no memory, no compute."""
    with torch.device("meta"):
        return Fast3R(Fast3RConfig()).eval()


# -- 1. "auto" precision: bf16 only on compute capability >= 8.0 of the model's own GPU -----------------
@pytest.mark.parametrize(("index", "expected"), [(0, torch.bfloat16), (1, torch.float16)])
def test_auto_precision_asks_the_models_gpu_not_is_bf16_supported(monkeypatch, index, expected):
    """GPU 0 is an A100 (8.0), GPU 1 a T4 (7.5); the current device is 0. is_bf16_supported() says yes
    everywhere (it counts emulation), which must not matter."""
    caps = {0: (8, 0), 1: (7, 5)}

    def capability(device=None):
        idx = torch.device(device).index if device is not None else 0
        return caps[0 if idx is None else idx]

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert autocast_dtype(torch.device("cuda", index), "auto") is expected


# -- 2. MPS: attention in query blocks whose scores stay under 2**30 bytes, exact -----------------------
def test_score_block_bound_is_the_same_number_in_the_model_and_the_estimate():
    assert layers.SCORE_BLOCK_BYTES == forward_memory.SCORE_BLOCK_BYTES == 2**30


def test_query_blocks_only_where_scores_are_materialised():
    big = dict(batch=1, heads=16, q_len=32 * 768, k_len=32 * 768, itemsize=2)
    assert layers.query_block_rows(**big, device_type="cpu") == big["q_len"]
    assert layers.query_block_rows(**big, device_type="cuda") == big["q_len"]
    rows = layers.query_block_rows(**big, device_type="mps")
    per_row = big["batch"] * big["heads"] * big["k_len"] * big["itemsize"]
    assert rows < big["q_len"] and rows * per_row <= 2**30 < (rows + 1) * per_row
    small = dict(big, q_len=768, k_len=768)  # 18 MiB of scores: one call even on MPS
    assert layers.query_block_rows(**small, device_type="mps") == 768


def _count_sdpa(monkeypatch) -> list[tuple[int, ...]]:
    calls: list[tuple[int, ...]] = []
    real = F.scaled_dot_product_attention

    def counting(q, k, v, *a, **kw):
        calls.append((*q.shape[:3], k.shape[2]))
        return real(q, k, v, *a, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    return calls


def test_blocked_attention_equals_one_call(monkeypatch):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 37, 16) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, scale=0.3)
    calls = _count_sdpa(monkeypatch)
    monkeypatch.setattr(layers, "MATERIALISING_DEVICES", frozenset({"cpu"}))
    monkeypatch.setattr(layers, "SCORE_BLOCK_BYTES", 2 * 3 * 37 * 4 * 8)  # 8 query rows per block
    out = layers.attention(q, k, v, 0.3)
    assert [c[2] for c in calls] == [8, 8, 8, 8, 5]
    assert out.shape == ref.shape and out.transpose(1, 2).is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_model_with_blocked_attention_gives_the_same_output(monkeypatch, tiny):
    views = [v[None] for v in _views(3)]
    ids = torch.tensor([0, 4, 9])
    with torch.inference_mode():
        ref = tiny(views, ids)
    calls = _count_sdpa(monkeypatch)
    monkeypatch.setattr(layers, "MATERIALISING_DEVICES", frozenset({"cpu"}))
    monkeypatch.setattr(layers, "SCORE_BLOCK_BYTES", 4 * 1024)
    with torch.inference_mode():
        out = tiny(views, ids)
    assert max(c[0] * c[1] * c[2] * c[3] * 4 for c in calls) <= 4 * 1024  # every call within the bound
    for r, o in zip(ref, out, strict=True):
        for key in r:
            torch.testing.assert_close(o[key], r[key], rtol=1e-5, atol=1e-5)


def test_cpu_attention_is_one_call_however_long_the_sequence(monkeypatch):
    """The CPU (and CUDA) path is untouched: one fused call even for 64 views of 512 x 384."""
    calls = _count_sdpa(monkeypatch)
    q = torch.empty(1, 16, 64 * 768, 64, device="meta")
    with torch.inference_mode():
        layers.attention(q, q, q, 0.125)
    assert len(calls) == 1


def test_mps_keeps_each_score_matrix_under_the_bound_and_the_plan_counts_them(vitl_meta):
    """32 views at 512 x 384 on MPS in fp16: 12 GiB of scores per fusion layer unblocked."""
    shapes = [SHAPE_512] * 32
    peaks = emulated_stage_peaks(
        vitl_meta,
        shapes,
        encoder_chunk=4,
        head_chunk=2,
        device_type="mps",
        dtype=torch.float16,
        fusion_only=True,
    )
    assert 0 < peaks["max_scores"] <= 2**30
    est = estimate_peak_memory(
        vitl_meta.config, shapes, bytes_per_el=2, encoder_chunk=4, head_chunk=2, device_type="mps"
    )
    cuda = estimate_peak_memory(
        vitl_meta.config, shapes, bytes_per_el=2, encoder_chunk=4, head_chunk=2, device_type="cuda"
    )
    assert peaks["fusion"] <= est.fusion
    assert est.fusion - cuda.fusion >= 2 * peaks["max_scores"] * 0.99  # scores + probabilities


# -- 3. the estimate sizes each tensor by its real dtype ---------------------------------------------
@pytest.mark.parametrize(
    ("device_type", "dtype", "shape", "n", "enc", "head"),
    [
        ("cuda", torch.bfloat16, SHAPE_512, 8, 8, 4),
        ("cuda", None, SHAPE_512, 8, 8, 4),
        ("mps", torch.float16, SHAPE_512, 8, 8, 4),
        ("cuda", torch.float16, (224, 224), 3, 3, 3),
    ],
)
def test_estimate_covers_the_emulated_peak_of_every_stage(vitl_meta, device_type, dtype, shape, n, enc, head):
    shapes = [shape] * n
    peaks = emulated_stage_peaks(
        vitl_meta, shapes, encoder_chunk=enc, head_chunk=head, device_type=device_type, dtype=dtype
    )
    # the engine's own call (weights in the model's dtype: fp32 here)
    est = inference.memory_estimate(vitl_meta, shapes, torch.device(device_type), dtype, enc, head)
    for stage in ("encoder", "fusion", "heads"):
        assert peaks[stage] <= getattr(est, stage), stage
        if shape == SHAPE_512:  # and not wildly above (chunks would be smaller than they need be)
            assert getattr(est, stage) <= 1.35 * peaks[stage], stage


def test_estimate_covers_a_small_config(tiny):
    with torch.device("meta"):
        model = Fast3R(tiny.config).eval()
    shapes = [SHAPE_512] * 6
    peaks = emulated_stage_peaks(model, shapes, encoder_chunk=3, head_chunk=2, dtype=torch.float16)
    est = estimate_peak_memory(
        tiny.config, shapes, bytes_per_el=2, encoder_chunk=3, head_chunk=2, device_type="cuda"
    )
    for stage in ("encoder", "fusion", "heads"):
        assert peaks[stage] <= getattr(est, stage), stage


def test_pass_planner_with_10_gib_free_picks_a_pass_that_fits(vitl_meta):
    """The issue's case: 10 GiB free on CUDA, fp16, 512 x 384. The pass the planner picks must fit by
    the emulated fusion peak (the old estimate picked 345 views, whose fusion needs ~11 GiB)."""
    from fast3r_core.chunking.plan import resolve_pass_size

    shapes = [SHAPE_512] * 400
    per_pass, budget = resolve_pass_size(
        shapes,
        vitl_meta.config,
        available=10 * GiB,
        max_views_per_pass=None,
        upper=len(shapes),
        host_memory=False,
        bytes_per_el=2,
        device_type="cuda",
    )
    assert 50 < per_pass < 345
    peaks = emulated_stage_peaks(
        vitl_meta, [SHAPE_512] * per_pass, encoder_chunk=1, head_chunk=1, fusion_only=True
    )
    assert peaks["fusion"] + forward_memory._BASE_OVERHEAD <= budget


def test_host_outputs_do_not_count_against_cuda_memory():
    cfg = Fast3RConfig()
    shapes = [SHAPE_512] * 16
    cuda = estimate_peak_memory(cfg, shapes, bytes_per_el=2, device_type="cuda")
    mps = estimate_peak_memory(cfg, shapes, bytes_per_el=2, device_type="mps")
    assert cuda.outputs == 0
    assert mps.outputs == 16 * 384 * 512 * 32


def test_chunk_plan_keeps_the_pass_planners_margin(monkeypatch, tiny):
    """A run whose estimate fits the free memory but not 90 % of it is refused up front."""
    shapes = [(64, 96)] * 4
    est = inference.memory_estimate(tiny, shapes, torch.device("cuda"), torch.float16, 1, 1)
    need = est.total - est.weights
    monkeypatch.setattr(inference, "available_memory", lambda *a, **k: int(need / 0.95))
    opts = InferenceOptions(encoder_chunk=1, head_chunk=1)
    with pytest.raises(InsufficientMemoryError, match="90%"):
        inference._plan(tiny, shapes, torch.device("cuda"), torch.float16, opts)
    monkeypatch.setattr(inference, "available_memory", lambda *a, **k: int(need / 0.89))
    assert inference._plan(tiny, shapes, torch.device("cuda"), torch.float16, opts) == (1, 1)


# -- 4. free memory counts this process's own cache ----------------------------------------------------
def test_free_cuda_memory_includes_the_cache_this_process_holds(monkeypatch):
    seen = []

    def mem_get_info(index=None):
        seen.append(index)
        return 1 * GiB, 16 * GiB

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda index=None: 7 * GiB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda index=None: 3 * GiB)  # the weights
    assert available_memory("cuda", 1) == 5 * GiB
    assert seen == [1]


# -- 5. out-of-memory: retry per stage, free outside the except block ----------------------------------
class _Calls:
    def __init__(self) -> None:
        self.encode: list[int] = []
        self.fuse = 0
        self.heads: list[int] = []


def _instrument(monkeypatch, model: Fast3R, *, encode_fails=None, fuse_fails=False, heads_fails=None):
    """Count stage calls; raise a CUDA-style OOM where the predicates say so (after allocating)."""
    calls = _Calls()
    real_encode, real_fuse, real_heads = model.encode, model.fuse, model.heads
    made: list[weakref.ref[torch.Tensor]] = []

    def scratch() -> torch.Tensor:
        t = torch.empty(1024)  # what the failed attempt holds when it fails
        made.append(weakref.ref(t))
        return t

    def oom(where: str) -> RuntimeError:
        return torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB in {where}")

    def encode(images):
        if encode_fails is not None and encode_fails(images.shape[0], calls):
            held = scratch()  # noqa: F841 - alive in this frame, which the traceback keeps
            raise oom("encode")
        calls.encode.append(images.shape[0])
        return real_encode(images)

    def fuse(tokens, ids):
        calls.fuse += 1
        if fuse_fails:
            held = scratch()  # noqa: F841
            raise oom("fuse")
        return real_fuse(tokens, ids)

    def heads(hooks, shape):
        if heads_fails is not None and heads_fails(hooks[0].shape[0], calls):
            held = scratch()  # noqa: F841
            raise oom("heads")
        calls.heads.append(hooks[0].shape[0])
        return real_heads(hooks, shape)

    monkeypatch.setattr(model, "encode", encode)
    monkeypatch.setattr(model, "fuse", fuse)
    monkeypatch.setattr(model, "heads", heads)
    return calls, made


def test_oom_in_the_heads_halves_their_chunk_and_keeps_the_fused_tokens(monkeypatch, tiny):
    views = _views(6)
    ref = predict(tiny, views, options=InferenceOptions(encoder_chunk=3, head_chunk=2))
    calls, _ = _instrument(monkeypatch, tiny, heads_fails=lambda n, c: n > 2)
    out = predict(tiny, views, options=InferenceOptions(encoder_chunk=3, head_chunk=4))
    assert calls.encode == [3, 3] and calls.fuse == 1  # encode and fusion ran once
    assert calls.heads == [2, 2, 2]
    for r, o in zip(ref, out, strict=True):
        np.testing.assert_allclose(o["pts3d_in_other_view"], r["pts3d_in_other_view"], rtol=1e-5, atol=1e-5)


def test_oom_in_the_encoder_keeps_the_views_already_encoded(monkeypatch, tiny):
    # the second chunk of 3 fails: the first 3 views are not encoded again
    calls, _ = _instrument(monkeypatch, tiny, encode_fails=lambda n, c: n == 3 and len(c.encode) == 1)
    out = predict(tiny, _views(6), options=InferenceOptions(encoder_chunk=3, head_chunk=6))
    assert calls.encode == [3, 1, 1, 1] and calls.fuse == 1
    assert len(out) == 6


def test_oom_in_fusion_is_not_retried_with_smaller_chunks(monkeypatch, tiny):
    calls, _ = _instrument(monkeypatch, tiny, fuse_fails=True)
    with pytest.raises(InsufficientMemoryError, match="fusion decoder"):
        predict(tiny, _views(4), options=InferenceOptions(encoder_chunk=2, head_chunk=2))
    assert calls.fuse == 1 and calls.encode == [2, 2]


def test_a_chunk_of_one_view_that_fails_gives_up_with_a_typed_error(monkeypatch, tiny):
    _instrument(monkeypatch, tiny, heads_fails=lambda n, c: True)
    with pytest.raises(InsufficientMemoryError, match="heads stage"):
        predict(tiny, _views(3), options=InferenceOptions(head_chunk=2))


def test_the_cache_is_released_after_the_failed_attempt_is_freed(monkeypatch, tiny):
    """release_device_cache must run outside the except block: there the traceback no longer holds the
    failed attempt's frames, so its tensors are really free when the cache is given back."""
    _calls, made = _instrument(monkeypatch, tiny, heads_fails=lambda n, c: n > 1)
    seen: list[tuple[bool, bool]] = []
    monkeypatch.setattr(
        inference,
        "release_device_cache",
        lambda device: seen.append((sys.exc_info()[0] is None, all(r() is None for r in made))),
    )
    predict(tiny, _views(2), options=InferenceOptions(head_chunk=2))
    assert seen == [(True, True)]


def test_errors_that_are_not_about_memory_propagate(monkeypatch, tiny):
    def broken(hooks, shape):
        raise RuntimeError("shape mismatch in the head")

    monkeypatch.setattr(tiny, "heads", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        predict(tiny, _views(2))


# -- 6. cuda:N is the current device during the run; only host tensors are pinned ----------------------
def test_device_context_makes_the_models_gpu_current(monkeypatch):
    entered = []

    @contextlib.contextmanager
    def fake_device(device):
        entered.append(torch.device(device))
        yield

    monkeypatch.setattr(torch.cuda, "device", fake_device)
    with inference.device_context(torch.device("cuda", 1)):
        pass
    with inference.device_context(torch.device("cpu")):
        pass
    assert entered == [torch.device("cuda", 1)]


def test_predict_runs_inside_the_device_context(monkeypatch, tiny):
    state = {"inside": False, "seen": None}

    @contextlib.contextmanager
    def ctx(device):
        state["inside"] = True
        yield
        state["inside"] = False

    real_run = inference._run

    def run(*a, **k):
        state["seen"] = state["inside"]
        return real_run(*a, **k)

    monkeypatch.setattr(inference, "device_context", ctx)
    monkeypatch.setattr(inference, "_run", run)
    predict(tiny, _views(2))
    assert state["seen"] is True


def test_only_host_tensors_are_pinned(monkeypatch):
    pinned = []

    def pin_memory(self, *a, **k):
        if self.device.type != "cpu":  # what CUDA does for a tensor already on a GPU
            raise RuntimeError(f"cannot pin '{self.device.type}' memory")
        pinned.append(self.device.type)
        return self

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
    cuda = torch.device("cuda", 0)
    on_gpu = torch.empty(2, 3, 8, 8, device="meta")  # stands for images already on the GPU
    assert inference._pinned(on_gpu, cuda) is on_gpu
    host = torch.zeros(2, 3, 8, 8)
    inference._pinned(host, cuda)
    assert pinned == ["cpu"]
    inference._pinned(host, torch.device("mps"))
    inference._pinned(host, torch.device("cpu"))
    assert pinned == ["cpu"]


# -- 7. progress and cancel wait for the device at every chunk -------------------------------------------
def test_progress_is_reported_after_the_chunks_kernels_have_run(monkeypatch, tiny):
    log: list[str] = []

    class FakeEvent:
        def record(self) -> None:
            log.append("record")

        def synchronize(self) -> None:
            log.append("sync")

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)

    class CudaSync(inference._ChunkSync):
        def __init__(self, device: torch.device) -> None:
            super().__init__(torch.device("cuda"))

    monkeypatch.setattr(inference, "_ChunkSync", CudaSync)
    predict(
        tiny,
        _views(6),
        options=InferenceOptions(encoder_chunk=2, head_chunk=3),
        progress=lambda ev: log.append(f"{ev.stage} {ev.done}/{ev.total}"),
    )
    for step in ("encode 2/6", "encode 4/6", "encode 6/6", "fuse 1/1", "heads 3/6", "heads 6/6"):
        i = log.index(step)
        assert log[i - 2 : i] == ["record", "sync"], (step, log[max(0, i - 3) : i + 1])


# -- 8. allocation failures of the GPU libraries; the MPS limit -----------------------------------------
@pytest.mark.parametrize(
    ("text", "oom"),
    [
        ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`", True),
        ("cuDNN error: CUDNN_STATUS_ALLOC_FAILED", True),
        ("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.2 GB)", True),
        ("CUDA error: an illegal memory access was encountered", False),
        ("mat1 and mat2 shapes cannot be multiplied", False),
    ],
)
def test_allocation_failures_of_cublas_and_cudnn_are_out_of_memory(text, oom):
    assert inference._is_oom(RuntimeError(text)) is oom


def test_cublas_allocation_failure_is_retried_like_an_oom(monkeypatch, tiny):
    calls = {"n": 0}
    real = tiny.heads

    def heads(hooks, shape):
        calls["n"] += 1
        if hooks[0].shape[0] > 1:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")
        return real(hooks, shape)

    monkeypatch.setattr(tiny, "heads", heads)
    assert len(predict(tiny, _views(2), options=InferenceOptions(head_chunk=2))) == 2


@pytest.mark.parametrize(("ram_gib", "expected_gib"), [(64, 10), (4, 4)])
def test_mps_memory_is_the_recommended_working_set_less_what_is_allocated(monkeypatch, ram_gib, expected_gib):
    import psutil

    class VM:
        available = ram_gib * GiB

    monkeypatch.setattr(psutil, "virtual_memory", lambda: VM())
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 12 * GiB)
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 2 * GiB)
    assert available_memory("mps") == expected_gib * GiB


def test_memory_estimate_helper_passes_the_device_type(tiny):
    shapes = [(64, 96)] * 2
    cuda = inference.memory_estimate(tiny, shapes, torch.device("cuda"), torch.float16)
    cpu = inference.memory_estimate(tiny, shapes, torch.device("cpu"), torch.float16)
    assert cuda.outputs == 0 < cpu.outputs
    assert math.isclose(cuda.fusion, cpu.fusion)
