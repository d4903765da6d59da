"""The points as the user's edits leave them: their ids and which of them the edits keep. VisPy-free.

:class:`EditedPoints` computes, with caching, the point ids (:func:`fast3r_core.edits.point_ids`) and the
keep mask (crop box + deleted / kept selections, :func:`fast3r_core.edits.keep_mask`) of a
reconstruction's confidence-ordered points, for the display state (:class:`app.state.ViewerState`:
counts and the selection tools' candidates) and for the viewer, which hides the points the mask drops.
"""

from __future__ import annotations

import numpy as np

from fast3r_core.edits import Edits, apply_to_points, keep_mask, point_ids
from fast3r_core.point_set import PointSource
from fast3r_core.result import Reconstruction

__all__ = ["EditedPoints"]


class EditedPoints:
    """Ids and kept-mask of a reconstruction's points under some edits, cached for the last inputs.

    The ids of a (reconstruction, source) are computed once (5 M points: about 60 ms); the keep mask
    once per (reconstruction, source, edits).
    """

    def __init__(self) -> None:
        # the reconstruction itself (compared with ``is``), not its id(): an id can be reused
        self._rec: Reconstruction | None = None
        self._source = ""
        self._ids = np.zeros(0, np.int64)
        self._keep_edits: Edits | None = None
        self._keep: np.ndarray | None = None

    def ids(self, rec: Reconstruction, source: PointSource) -> np.ndarray:
        """(N,) int64 ids of ``rec.points(source)`` (pixel ids, the same for both sources)."""
        if rec is not self._rec or source != self._source:
            ps = rec.points(source)
            shapes = [rec.view_shape(v) for v in range(rec.n_views)]
            self._ids = point_ids(ps.view, ps.pixel, shapes)
            self._rec, self._source = rec, str(source)
            self._keep_edits = None
        return self._ids

    def keep(self, rec: Reconstruction, source: PointSource, edits: Edits) -> np.ndarray | None:
        """(N,) bool over ``rec.points(source)``: the points the crop and the selections keep.

        None when the edits remove no point (no crop, no selection).
        """
        if not edits.filters_points:
            return None
        ids = self.ids(rec, source)  # resets the cached mask when the points changed
        if self._keep is None or edits != self._keep_edits:
            # the points in the edited world only when a crop box needs them (selections are by id)
            xyz = apply_to_points(edits, rec.points(source).xyz) if edits.crop is not None else None
            self._keep = keep_mask(edits, xyz, ids)
            self._keep_edits = edits
        return self._keep
