"""Cancellation and fusion progress inside the model's stages, through forward hooks.

The inference engine checks its cancel event between chunks of views; one chunk of the encoder, the
whole fusion decoder or one chunk of the heads can each take tens of seconds for the published ViT-L
at 512 px on a CPU. :func:`cancel_points` adds check points inside them for the duration of a run:

* before every transformer block, and after its attention and its MLP (encoder and fusion
  decoder);
* after every stage of both DPT heads (the four token-map adapters, each residual unit of the four
  refinement blocks, every layer of the output convolutions);
* inside one attention, linear or MLP call of those blocks when it is long, on the CPU: the call runs
  in pieces of about :data:`~fast3r_core.model.layers.PIECE_FLOPS` with a check between them
  (:func:`~fast3r_core.model.layers.interruptible`). One fusion attention over all tokens is
  quadratic in the views: without pieces it ran for minutes at 153 views of 512 px;

and reports the fusion decoder's progress per block (stage ``"fuse"``, done = blocks run, total =
depth). A check that finds the event set raises :class:`~fast3r_core.errors.Cancelled` out of the
forward pass, which frees everything the pass made. The hooks are removed when the block exits, and
they cost a few microseconds per call; nothing is registered when there is neither an event nor a
progress callback.

On CUDA and MPS the hooks run when the kernels are queued, not when they finish: a check there only
bounds how much work is queued after the cancel.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .model.dpt import _DPT
from .model.layers import Block, interruptible
from .progress import ProgressCallback, check_cancel, report

if TYPE_CHECKING:
    from torch import nn

__all__ = ["cancel_points"]


def _sub_stages(model: nn.Module) -> list[nn.Module]:
    """The modules after which a run checks its cancel event (see the module docstring)."""
    points: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, Block):
            points += [m.attn, m.mlp]
        elif isinstance(m, _DPT):
            sc = m.scratch
            points += [*m.act_postprocess, *m.head]
            for ref in (sc.refinenet4, sc.refinenet3, sc.refinenet2, sc.refinenet1):
                points += [ref.resConfUnit1, ref.resConfUnit2, ref]
    return points


@contextlib.contextmanager
def cancel_points(
    model: nn.Module,
    cancel: threading.Event | None,
    progress: ProgressCallback | None = None,
) -> Iterator[None]:
    """Check ``cancel`` inside the stages of ``model`` and report fusion progress, within the block.

    Parameters
    ----------
    model : a :class:`~fast3r_core.model.Fast3R` (or its int8 version: the same module tree).
    cancel : set from another thread to stop the forward pass at the next check point.
    progress : receives ``"fuse"`` events after every fusion-decoder block.

    Raises
    ------
    Cancelled : from inside the model's forward pass, when ``cancel`` is set.
    """

    def check(_module: nn.Module, *_: Any) -> None:
        check_cancel(cancel)

    with contextlib.ExitStack() as stack:  # leaves everything below on exit, in reverse order
        handles: list[Any] = []
        if cancel is not None:
            stack.enter_context(interruptible(lambda: check_cancel(cancel)))
            handles += [m.register_forward_hook(check) for m in _sub_stages(model)]
            blocks_all = [m for m in model.modules() if isinstance(m, Block)]
            handles += [m.register_forward_pre_hook(check) for m in blocks_all]
        decoder = getattr(model, "decoder", None)
        blocks = getattr(decoder, "dec_blocks", None)
        if progress is not None and blocks is not None:
            depth = len(blocks)
            for i, blk in enumerate(blocks, start=1):

                def done(_m: nn.Module, _a: Any, _o: Any, i: int = i) -> None:
                    if i < depth:  # the engine reports the end of the stage itself
                        report(progress, "fuse", i, depth)

                handles.append(blk.register_forward_hook(done))
        for h in handles:
            stack.callback(h.remove)
        yield
