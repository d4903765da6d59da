"""A cancel takes effect inside the encoder, the fusion decoder and the heads, not only between chunks."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import torch
from torch import nn

from fast3r_core.errors import Cancelled
from fast3r_core.inference import InferenceOptions, predict
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
