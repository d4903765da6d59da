"""Chunked reconstruction: many views in several forward passes that share anchor views.

* :mod:`.plan` decides single pass or passes (from the memory estimate and the free memory, or an
  explicit override) and which views go into which pass;
* :mod:`.anchors` picks the anchor views (view 0 first, then coverage or even spacing);
* :mod:`.align` fits the robust confidence-weighted similarity between two passes' anchor pointmaps
  and fuses the anchors' predictions;
* :mod:`.runner` runs the passes (torch is imported there, lazily) and merges them.

Importing this package does not import torch: the GUI reads :func:`describe_chunking` from it on
its own thread. (Progress events of a pass carry ``pass_index`` / ``pass_count``; :func:`parse_pass_message`
reads the pass back from the text the CLI prints.)
"""

from __future__ import annotations

from .align import PointmapFusion, SimilarityFit, align_pointmaps, correspondence_weights, fit_similarity
from .anchors import ANCHOR_METHODS, even_anchors, farthest_point_order, image_descriptor, select_anchors
from .plan import (
    MAX_VIEWS_PER_PASS,
    ChunkPlan,
    auto_anchor_count,
    describe_chunking,
    passes_with_anchors,
    plan_passes,
    resolve_pass_size,
)
from .runner import PassesResult, parse_pass_message, pass_message, plan_for_model, predict_passes

__all__ = [
    "ANCHOR_METHODS",
    "MAX_VIEWS_PER_PASS",
    "ChunkPlan",
    "PassesResult",
    "PointmapFusion",
    "SimilarityFit",
    "align_pointmaps",
    "auto_anchor_count",
    "correspondence_weights",
    "describe_chunking",
    "even_anchors",
    "farthest_point_order",
    "fit_similarity",
    "image_descriptor",
    "parse_pass_message",
    "pass_message",
    "passes_with_anchors",
    "plan_for_model",
    "plan_passes",
    "predict_passes",
    "resolve_pass_size",
    "select_anchors",
]
