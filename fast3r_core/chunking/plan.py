"""Single pass or several passes: how many views one forward pass may hold, and which views go where.

A chunked run splits the N views into passes. Every pass holds the same M *anchor* views (view 0
first, then views spread over the set, see :mod:`fast3r_core.chunking.anchors`) plus up to K views of
its own, so ``K + M <= max_views_per_pass``. The anchors are predicted in every pass; their pointmaps
bring each pass into the frame of the first one (:mod:`fast3r_core.chunking.align`).

The size of a pass comes from the memory estimate of :func:`fast3r_core.forward_memory.estimate_peak_memory`
and the free memory of the device; an explicit ``max_views_per_pass`` or ``anchors`` always wins.

numpy and the standard library only (no torch): the GUI and the tests call it without a model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from fast3r_core.errors import InputError
from fast3r_core.forward_memory import estimate_peak_memory
from fast3r_core.model.config import Fast3RConfig
from fast3r_core.result import describe_chunking  # the words of a result's run record

log = logging.getLogger(__name__)

__all__ = [
    "BUDGET_FRACTION",
    "MAX_AUTO_ANCHORS",
    "MAX_VIEWS_PER_PASS",
    "ChunkPlan",
    "auto_anchor_count",
    "describe_chunking",
    "estimate_pass_bytes",
    "host_output_bytes",
    "max_views_that_fit",
    "passes_with_anchors",
    "plan_passes",
    "resolve_pass_size",
    "split_views",
]

#: Views one forward pass can hold at all: the image-index embedding has 1000 entries
#: (``fast3r_core.model.decoder.MAX_VIEWS``; not imported here because that module imports torch).
MAX_VIEWS_PER_PASS = 1000
#: Share of the free memory a pass may plan for (the rest absorbs the estimate's error and other
#: allocations between the measurement and the run).
BUDGET_FRACTION = 0.9
#: Anchors chosen automatically: a third of a pass, at least 1 (view 0), at most this many. (A quarter
#: lost 1.8 points of mAA@30 to one pass on the model-free bench, 8 of 16 lost none: bench/README.md.)
MAX_AUTO_ANCHORS = 8


@dataclass(frozen=True)
class ChunkPlan:
    """How a run is split into forward passes.

    Attributes
    ----------
    n_views : int
        Views of the run (N).
    max_views_per_pass : int
        Largest number of views in one pass, anchors included (``N`` for a single pass).
    anchors : tuple of int
        Indices of the anchor views (view 0 first); empty for a single pass.
    passes : tuple of tuple of int
        View indices of each pass, in the order given to the model: the anchors first (view 0 first),
        then the pass's own views in input order. A single pass is ``(tuple(range(N)),)``.
    budget : int or None
        Bytes a pass may use (the free memory share it was planned for); None when not planned from
        memory (an explicit override).
    need : int or None
        Estimated bytes of the largest pass (activations + outputs + overhead, weights excluded).
    automatic : bool
        The pass size came from the memory estimate (not from an explicit override).
    """

    n_views: int
    max_views_per_pass: int
    anchors: tuple[int, ...]
    passes: tuple[tuple[int, ...], ...]
    budget: int | None = None
    need: int | None = None
    automatic: bool = True

    @property
    def single(self) -> bool:
        """One forward pass over every view (no anchors, no alignment)."""
        return len(self.passes) == 1 and not self.anchors

    @property
    def n_passes(self) -> int:
        return len(self.passes)

    @property
    def views_per_pass(self) -> tuple[int, ...]:
        """Views of each pass, anchors included."""
        return tuple(len(p) for p in self.passes)

    def describe(self) -> str:
        """``"single pass"`` or ``"4 passes of up to 16 views (4 shared anchors)"``."""
        if self.single:
            return "single pass"
        return describe_chunking(self.n_passes, max(self.views_per_pass), len(self.anchors))

    def to_json(self) -> dict[str, object]:
        """What the project file records about the split (see ``Reconstruction.runs``)."""
        return {
            "passes": self.n_passes,
            "views_per_pass": list(self.views_per_pass),
            "max_views_per_pass": self.max_views_per_pass,
            "anchors": list(self.anchors),
            "automatic": self.automatic,
            "budget_bytes": self.budget,
            "estimate_bytes": self.need,
        }


def auto_anchor_count(max_views_per_pass: int, n_views: int) -> int:
    """Anchors when the user did not choose: a third of a pass, 1..8, leaving room for new views."""
    m = min(MAX_AUTO_ANCHORS, max(1, max_views_per_pass // 3))
    return max(1, min(m, max_views_per_pass - 1, n_views - 1))


def split_views(views: Sequence[int], n_passes: int) -> list[list[int]]:
    """Split ``views`` (in order) into ``n_passes`` contiguous blocks whose sizes differ by at most 1.

    Contiguous blocks keep neighbouring frames of a video or a walk-through in the same pass, where the
    model sees them together.
    """
    if n_passes < 1:
        raise InputError(f"a run needs at least one pass, not {n_passes}")
    q, r = divmod(len(views), n_passes)
    out, start = [], 0
    for i in range(n_passes):  # the first r blocks take one more
        size = q + (1 if i < r else 0)
        out.append(list(views[start : start + size]))
        start += size
    return out


def host_output_bytes(view_shapes: Sequence[tuple[int, int]]) -> int:
    """Bytes of the float32 outputs kept on the host for these views (global + local xyz and conf)."""
    return sum(h * w for h, w in view_shapes) * 8 * 4


def max_views_that_fit(
    cfg: Fast3RConfig,
    view_shape: tuple[int, int],
    budget: int,
    *,
    upper: int,
    bytes_per_el: int = 4,
    weight_bytes_per_el: int = 4,
    device_type: str = "cpu",
) -> int:
    """Largest n in 1..upper whose one-pass estimate (weights excluded, smallest chunks) fits ``budget``.

    ``view_shape`` (H, W) should be the largest view of the run, so that any n views of it fit.
    Returns 0 when even one view does not fit.
    """

    def need(n: int) -> int:
        est = estimate_peak_memory(
            cfg,
            [view_shape] * n,
            bytes_per_el=bytes_per_el,
            weight_bytes_per_el=weight_bytes_per_el,
            encoder_chunk=1,
            head_chunk=1,
            device_type=device_type,
        )
        return est.total - est.weights

    if need(1) > budget:
        return 0
    lo, hi = 1, max(1, upper)  # need() grows with n: bisect the largest n that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if need(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def resolve_pass_size(
    view_shapes: Sequence[tuple[int, int]],
    cfg: Fast3RConfig | None,
    *,
    available: int | None,
    max_views_per_pass: int | None,
    upper: int,
    host_memory: bool = True,
    bytes_per_el: int = 4,
    weight_bytes_per_el: int = 4,
    device_type: str = "cpu",
) -> tuple[int, int | None]:
    """The largest pass (anchors included) and the budget it was planned for.

    Parameters
    ----------
    view_shapes : (H, W) of every view the run will predict (for the largest view and the host outputs).
    upper : the views of the whole run; a returned size >= ``upper`` means "everything in one pass".
    max_views_per_pass : None = from the memory estimate; 0 = no limit; else that size (at least 2).

    Returns
    -------
    (views per pass, budget in bytes or None for an override). The size never exceeds
    :data:`MAX_VIEWS_PER_PASS`. An automatic size below 2 is returned as is (the caller then runs one
    pass and lets the model's own memory check refuse it with its message).
    """
    if max_views_per_pass is not None:
        if max_views_per_pass < 0 or max_views_per_pass == 1:
            raise InputError(
                f"max views per pass must be 0 (single pass) or at least 2 (view 0 as the anchor and one "
                f"more), not {max_views_per_pass}"
            )
        size = upper if max_views_per_pass == 0 else max_views_per_pass
        return min(size, MAX_VIEWS_PER_PASS), None
    if cfg is None or available is None:
        raise InputError("an automatic plan needs the model's config and the free memory")
    largest = max(view_shapes, key=lambda s: s[0] * s[1])
    budget = int(available * BUDGET_FRACTION)
    if host_memory:
        budget -= host_output_bytes(view_shapes)
    size = max_views_that_fit(
        cfg,
        largest,
        budget,
        upper=min(upper, MAX_VIEWS_PER_PASS),
        bytes_per_el=bytes_per_el,
        weight_bytes_per_el=weight_bytes_per_el,
        device_type=device_type,
    )
    return size, budget


def passes_with_anchors(
    anchors: Sequence[int], rest: Sequence[int], per_pass: int
) -> tuple[tuple[int, ...], ...]:
    """Passes of ``anchors + block`` with the ``rest`` split into balanced contiguous blocks.

    Each pass holds at most ``per_pass`` views (anchors included, so ``per_pass > len(anchors)``).
    """
    m = len(anchors)
    if per_pass <= m:
        raise InputError(
            f"{m} anchor views leave no room in passes of {per_pass} views: use fewer anchors or more "
            "views per pass"
        )
    if not rest:
        return (tuple(anchors),)
    n_passes = math.ceil(len(rest) / (per_pass - m))
    return tuple(tuple(anchors) + tuple(block) for block in split_views(rest, n_passes))


def plan_passes(
    view_shapes: Sequence[tuple[int, int]],
    cfg: Fast3RConfig | None = None,
    *,
    available: int | None = None,
    max_views_per_pass: int | None = None,
    anchors: int | None = None,
    anchor_order: Sequence[int] | None = None,
    host_memory: bool = True,
    bytes_per_el: int = 4,
    weight_bytes_per_el: int = 4,
    device_type: str = "cpu",
) -> ChunkPlan:
    """Decide single pass or chunks for a new reconstruction, and which views go into which pass.

    Parameters
    ----------
    view_shapes : (H, W) of every view at model resolution, in input order.
    cfg : the model's config (needed for an automatic plan and for the estimate it reports).
    available : free bytes on the device (CUDA free memory, or available RAM on CPU / MPS), measured
        with the model's weights already loaded. Needed for an automatic plan.
    max_views_per_pass : None = automatic (from ``available``); 0 or >= N = single pass (unless N is
        above :data:`MAX_VIEWS_PER_PASS`); else the largest pass, anchors included (at least 2).
    anchors : anchors per pass (None = automatic: a third of a pass, 1..8). View 0 is always one.
    anchor_order : candidate anchors in order of preference, view 0 first (from
        :func:`fast3r_core.chunking.anchors.select_anchors`); default: evenly spread by input order.
    device_type : "cpu", "cuda" or "mps": how the estimate sizes tensors (see
        :func:`fast3r_core.forward_memory.estimate_peak_memory`).
    host_memory : the device shares the host's memory (CPU, MPS): the outputs of every view, kept on
        the host until the end, are taken out of the budget of a pass.

    Raises
    ------
    InputError
        An invalid override (a pass of 1 view, anchors >= pass size, anchors < 1, no views).
    """
    from fast3r_core.chunking.anchors import even_anchors

    n = len(view_shapes)
    if n == 0:
        raise InputError("no views to plan")
    if anchors is not None and anchors < 1:
        raise InputError(f"a chunked run needs at least 1 anchor view (view 0), not {anchors}")
    per_pass, budget = resolve_pass_size(
        view_shapes,
        cfg,
        available=available,
        max_views_per_pass=max_views_per_pass,
        upper=n,
        host_memory=host_memory,
        bytes_per_el=bytes_per_el,
        weight_bytes_per_el=weight_bytes_per_el,
        device_type=device_type,
    )
    automatic = max_views_per_pass is None
    largest = max(view_shapes, key=lambda s: s[0] * s[1])
    if per_pass >= n or per_pass < 2:
        # everything fits, or not even two views fit: one pass (the model's check then refuses it)
        need = estimate_pass_bytes(cfg, largest, n, bytes_per_el, device_type) if cfg is not None else None
        return ChunkPlan(n, n, (), (tuple(range(n)),), budget, need, automatic)
    m = anchors if anchors is not None else auto_anchor_count(per_pass, n)
    m = min(m, n - 1)
    if automatic and m > per_pass // 2:
        # the user chose the anchors but not the pass size, which the memory decided: keep room for
        # new views in every pass rather than refuse (an explicit pass size keeps the error below)
        log.warning("%d anchors do not fit passes of %d views: using %d", m, per_pass, max(1, per_pass // 2))
        m = max(1, per_pass // 2)
    order = list(anchor_order) if anchor_order is not None else even_anchors(n, m)
    if not order or order[0] != 0:
        raise InputError("the anchor views must start with view 0")
    chosen = tuple(dict.fromkeys(order))[:m]  # keep the order, drop repeats
    if len(chosen) < m:
        chosen = tuple(dict.fromkeys([*chosen, *even_anchors(n, n)]))[:m]
    taken = set(chosen)
    passes = passes_with_anchors(chosen, [v for v in range(n) if v not in taken], per_pass)
    need = (
        estimate_pass_bytes(cfg, largest, max(len(p) for p in passes), bytes_per_el, device_type)
        if cfg is not None
        else None
    )
    return ChunkPlan(n, per_pass, chosen, passes, budget, need, automatic)


def estimate_pass_bytes(
    cfg: Fast3RConfig, shape: tuple[int, int], n: int, bytes_per_el: int = 4, device_type: str = "cpu"
) -> int:
    """Estimated bytes of one pass of ``n`` views of ``shape`` (H, W), weights excluded, smallest chunks."""
    est = estimate_peak_memory(
        cfg, [shape] * n, bytes_per_el=bytes_per_el, encoder_chunk=1, head_chunk=1, device_type=device_type
    )
    return est.total - est.weights
