"""Host memory of a run's outputs: the result, its confidence ordering and the exports.

The inference plan (:mod:`fast3r_core.forward_memory`, :mod:`fast3r_core.chunking.plan`) covers the forward
passes. What comes after them is counted here, per model pixel (= one point per head):

* the result (:class:`~fast3r_core.result.Reconstruction`): global and local pointmaps and
  confidences (float32) and colours (uint8): 35 bytes;
* the confidence ordering of the global points (:class:`~fast3r_core.point_set.PointSet`, built once and
  kept): 29 bytes, plus 20 bytes while it is being built (sort order and one concatenated field);
* the exports: PLY, GLB, Nerfstudio and the project file are written in chunks of a fixed size
  (:data:`fast3r_core.export.ply.CHUNK_POINTS`); COLMAP groups the selected points by view (8 bytes
  a selected point).

The constants are checked against measured peaks by ``bench/outputs.py`` (bench/README.md). numpy-free
and torch-free: the CLI calls :func:`check_output_memory` before any model is loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from fast3r_core.errors import InsufficientMemoryError

__all__ = [
    "OUTPUT_FRACTION",
    "OutputMemoryEstimate",
    "check_output_memory",
    "estimate_output_memory",
    "max_views_for_outputs",
]

log = logging.getLogger(__name__)

#: Bytes per model pixel of the result's arrays (pts3d 12 + conf 4 + pts3d_local 12 + conf_local 4 +
#: colors 3).
RESULT_BYTES_PER_PIXEL = 35
#: Bytes per point of the confidence-ordered point set (xyz 12, rgb 3, conf 4, view 2, pixel 8).
POINT_SET_BYTES = 29
#: Extra bytes per point while the ordering is built (int64 order + one concatenated float32 xyz).
ORDERING_TRANSIENT_BYTES = 20
#: Extra bytes per selected point of the COLMAP export (its points grouped by view: the int64 index and
#: the sort's buffer).
COLMAP_BYTES_PER_POINT = 12
#: Fixed working memory of the chunked exporters and of the interpreter's own growth.
EXPORT_FIXED_BYTES = 200 * 1024**2
#: Share of the available memory the outputs may plan for.
OUTPUT_FRACTION = 0.9

GB = 1e9


@dataclass(frozen=True)
class OutputMemoryEstimate:
    """Peak host bytes of the outputs of a run (after the model has run).

    Attributes
    ----------
    n_points : int
        Model pixels of the run (points per head).
    parts : dict of str to int
        "result", "ordering" (point set + its transient) and "exports" (the largest exporter's
        working set), in bytes.
    """

    n_points: int
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """The peak: the result, plus the larger of the ordering and the point set + an export."""
        p = self.parts
        return p["result"] + max(p["ordering"], p["points"] + p["exports"])

    def describe(self) -> str:
        """``about 6.2 GB (result 3.5 GB, ordering 4.9 GB, ...)``."""
        inner = ", ".join(f"{k} {v / GB:.1f} GB" for k, v in self.parts.items())
        return f"about {self.total / GB:.1f} GB ({inner})"


def estimate_output_memory(
    view_shapes: Sequence[tuple[int, int]],
    formats: Sequence[str] = (),
    *,
    top_percent: float = 100.0,
) -> OutputMemoryEstimate:
    """Estimate the peak host memory of a run's outputs.

    Parameters
    ----------
    view_shapes : sequence of (H, W)
        Model-resolution shape of every view of the run.
    formats : sequence of str
        Outputs that will be written (names of ``fast3r reconstruct --formats``); empty: the result
        and its ordering only (what the app keeps).
    top_percent : float
        Share of the points the point exports keep (0..100).

    Returns
    -------
    OutputMemoryEstimate
    """
    n = int(sum(int(h) * int(w) for h, w in view_shapes))
    kept = int(n * max(0.0, min(100.0, top_percent)) / 100.0)
    points = POINT_SET_BYTES * n
    exports = EXPORT_FIXED_BYTES
    if "colmap" in formats:
        exports += COLMAP_BYTES_PER_POINT * kept
    parts = {
        "result": RESULT_BYTES_PER_PIXEL * n,
        "points": points,
        "ordering": points + ORDERING_TRANSIENT_BYTES * n,
        "exports": exports,
    }
    return OutputMemoryEstimate(n_points=n, parts=parts)


def max_views_for_outputs(
    view_shapes: Sequence[tuple[int, int]],
    available: int,
    formats: Sequence[str] = (),
    *,
    top_percent: float = 100.0,
) -> int:
    """The largest number of views (evenly spaced among ``view_shapes``) whose outputs fit ``available``."""
    budget = available * OUTPUT_FRACTION
    largest = max((int(h) * int(w) for h, w in view_shapes), default=0)
    lo, hi = 0, len(view_shapes)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        need = estimate_output_memory([(largest, 1)] * mid, formats, top_percent=top_percent).total
        if need <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def check_output_memory(
    view_shapes: Sequence[tuple[int, int]],
    formats: Sequence[str] = (),
    *,
    top_percent: float = 100.0,
    available: int | None = None,
    resident: int = 0,
) -> OutputMemoryEstimate:
    """Refuse a run whose result and exports cannot fit in the host's memory, before it starts.

    Parameters
    ----------
    view_shapes, formats, top_percent
        As in :func:`estimate_output_memory`.
    available : int or None
        Bytes of host memory the run may use; default the available RAM now (psutil).
    resident : int
        Bytes of the estimate already in memory, hence already out of ``available`` (the result a
        run adds views to).

    Returns
    -------
    OutputMemoryEstimate
        When it fits.

    Raises
    ------
    InsufficientMemoryError
        The outputs alone need more than :data:`OUTPUT_FRACTION` of ``available``; the message says
        how much, and how many views would fit.
    """
    est = estimate_output_memory(view_shapes, formats, top_percent=top_percent)
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    if est.total - resident <= available * OUTPUT_FRACTION:
        log.debug("outputs of %d views: %s of %.1f GB", len(view_shapes), est.describe(), available / GB)
        return est
    fit = max_views_for_outputs(view_shapes, available + resident, formats, top_percent=top_percent)
    raise InsufficientMemoryError(
        f"The result of {len(view_shapes)} views ({est.n_points / 1e6:.0f} M points) would need "
        f"{est.describe()} of memory for the points and the exports, more than the "
        f"{available / GB:.1f} GB available. Use at most {fit} views (--max-views {fit}), or a smaller "
        "--size, or split the photos into several projects."
    )
