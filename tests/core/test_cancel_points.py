"""A cancel takes effect inside the encoder, the fusion decoder and the heads, not only between chunks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fast3r_core.errors import Cancelled
from fast3r_core.inference import InferenceOptions, predict
from fast3r_core.model import layers
from fast3r_core.progress import ProgressEvent


def _images(n: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, 224, 224, generator=g) * 2 - 1 for _ in range(n)]


def _trace(modules: dict[str, nn.Module], ran: list[str], trigger: str, cancel: threading.Event) -> list:
    """Record which modules ran; set ``cancel`` right after ``trigger`` ran (what the GUI thread does)."""

    def hook(name: str) -> Callable[..., None]:
        def fn(_m: nn.Module, _a: object, _o: object) -> None:
            ran.append(name)
            if name == trigger:
                cancel.set()

        return fn

    return [m.register_forward_hook(hook(name)) for name, m in modules.items()]


@pytest.mark.parametrize(
    ("trigger", "never"),
    [
        ("enc0.attn", "enc0.mlp"),  # inside the first encoder block
        ("dec0", "dec1.attn"),  # between fusion blocks
        ("dec1.attn", "dec1.mlp"),  # inside a fusion block
        ("head.post0", "head.refine1"),  # inside the global DPT head
    ],
)
def test_cancel_stops_inside_a_stage(tiny, trigger, never):
    dpt = tiny.downstream_head.dpt
    modules: dict[str, nn.Module] = {
        "enc0.attn": tiny.encoder.enc_blocks[0].attn,
        "enc0.mlp": tiny.encoder.enc_blocks[0].mlp,
        "dec0": tiny.decoder.dec_blocks[0],
        "dec1.attn": tiny.decoder.dec_blocks[1].attn,
        "dec1.mlp": tiny.decoder.dec_blocks[1].mlp,
        "head.post0": dpt.act_postprocess[0],
        "head.refine1": dpt.scratch.refinenet1,
    }
    cancel = threading.Event()
    ran: list[str] = []
    handles = _trace(modules, ran, trigger, cancel)
    try:
        with pytest.raises(Cancelled):
            predict(tiny, _images(), options=InferenceOptions(encoder_chunk=3, head_chunk=3), cancel=cancel)
    finally:
        for h in handles:
            h.remove()
    assert trigger in ran
    assert never not in ran
    # the run's own check points are gone afterwards: a new run is not cancelled by stale hooks
    assert all(not m._forward_hooks for m in modules.values())


def test_fusion_reports_progress_per_block(tiny):
    events: list[ProgressEvent] = []
    predict(tiny, _images(2), progress=events.append)
    fuse = [(e.done, e.total) for e in events if e.stage == "fuse"]
    depth = len(tiny.decoder.dec_blocks)
    assert [(i, depth) for i in range(1, depth)] == [f for f in fuse if f[1] == depth]
    assert fuse[-1][0] == fuse[-1][1]  # the stage ends at 100 %


# -- inside one long call: attention in blocks of queries, linears and MLP in blocks of tokens ----------
def test_pieces_match_one_call():
    """A block cut into pieces (with a check between them) gives the one-call result within fp rounding."""
    torch.manual_seed(0)
    blk = layers.Block(64, 4).eval()
    x = torch.randn(2, 300, 64)
    checks: list[int] = []
    with torch.inference_mode():
        ref = blk(x)
        with layers.interruptible(lambda: checks.append(1), flops=2e5):
            out = blk(x)
        one = blk(x)  # outside the block: the one-call path again
    assert len(checks) > 20
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert torch.equal(one, ref)


def test_attention_pieces_are_exact():
    """Blocks of queries and heads change no bit of the attention output (softmax per row and head)."""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 4, 2100, 16, generator=g) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, scale=0.25)
    calls: list[int] = []
    with layers.interruptible(lambda: calls.append(1), flops=4.0 * 2100 * 16 * 1024 * 1.5):
        out = layers.attention(q, k, v, 0.25)
    assert len(calls) == 3 * 4 - 1  # 1024 query rows (3 blocks) of one head per piece
    assert torch.equal(out, ref)
    calls.clear()
    with layers.interruptible(lambda: calls.append(1), flops=4.0 * 4 * 2100 * 16 * 1500):
        out = layers.attention(q, k, v, 0.25)
    assert len(calls) == 2 and torch.equal(out, ref)  # 1024 rows of all heads: 3 pieces


def test_training_and_other_threads_are_not_cut():
    """Autograd keeps the one-call path; the check belongs to the thread (run) that set it."""
    blk = layers.Block(32, 2)
    x = torch.randn(1, 200, 32, requires_grad=True)
    calls: list[int] = []
    with layers.interruptible(lambda: calls.append(1), flops=1e3):
        blk(x).sum().backward()
        seen: list[object] = []
        t = threading.Thread(target=lambda: seen.append(layers._PIECES.get()))
        t.start()
        t.join()
    assert calls == [] and seen == [None]


def test_cancel_during_one_long_fusion_attention_returns_promptly(tiny, monkeypatch):
    """A cancel set while a fusion attention runs stops it at its next query block, not at its end."""
    monkeypatch.setattr(layers, "PIECE_FLOPS", 5e6)  # tiny pieces: dozens per fusion attention
    monkeypatch.setattr(layers, "MIN_PIECE_ROWS", 16)
    n_tokens = 3 * (224 // 16) ** 2  # the fusion attends over the tokens of all 3 views
    cancel = threading.Event()
    fusion_rows: list[int] = []
    real = F.scaled_dot_product_attention

    def sdpa(q: torch.Tensor, k: torch.Tensor, *a: object, **kw: object) -> torch.Tensor:
        if k.shape[2] == n_tokens:
            fusion_rows.append(q.shape[2])
            if len(fusion_rows) == 2:  # the GUI thread sets the event in the middle of the call
                cancel.set()
        return real(q, k, *a, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", sdpa)
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        predict(tiny, _images(), options=InferenceOptions(encoder_chunk=3, head_chunk=3), cancel=cancel)
    elapsed = time.perf_counter() - t0
    # no block of queries ran after the one during which the event was set, of the many the call has
    assert len(fusion_rows) == 2 and fusion_rows[0] < n_tokens // 10
    assert elapsed < 30
