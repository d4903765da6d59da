"""The shown points as the user's edits leave them: ids, kept mask, and the edited world's place in the scene.

VisPy-free (the edit tools and the viewer both use it). This is the one seam between the crop / lasso
tools and the way the viewer draws edits:

* The viewer's scene is the **model world** today (it uploads ``PointSet.xyz`` as it is); the tools
  work in the **edited world** (``x_edited = scale * R @ (x_model - origin)``, see
  :mod:`fast3r_core.edits`). :func:`scene_from_edited` maps one to the other. When the viewer draws
  the edited world itself (``edit_points`` on upload), set :data:`SCENE_IS_EDITED_WORLD` to True and
  :func:`scene_from_edited` becomes the identity; nothing else changes.
* :class:`EditedPoints` computes, with caching, the point ids (:func:`fast3r_core.edits.point_ids`) and
  the keep mask (crop box + deleted / kept selections, :func:`fast3r_core.edits.edit_points`) of a
  reconstruction's confidence-ordered points. The viewer hides the points the mask drops until its own
  drawing of the edits replaces that.
"""

from __future__ import annotations

import numpy as np

from fast3r_core.edits import Edits, apply_inverse_to_points, edit_points, point_ids
from fast3r_core.point_set import PointSource
from fast3r_core.result import Reconstruction

__all__ = ["SCENE_IS_EDITED_WORLD", "EditedPoints", "scene_from_edited", "to_scene"]

#: Whether the viewer's scene coordinates are the edited world (True) or the model world (False).
SCENE_IS_EDITED_WORLD = False


def scene_from_edited(edits: Edits) -> np.ndarray:
    """(4, 4) float64 ``S`` with ``[x_scene, 1] = S @ [x_edited, 1]`` (the inverse similarity today)."""
    if SCENE_IS_EDITED_WORLD or not edits.has_transform:
        return np.eye(4)
    inv: np.ndarray = np.linalg.inv(edits.similarity_matrix())
    return inv


def to_scene(edits: Edits, xyz_edited: np.ndarray) -> np.ndarray:
    """Edited-world points (N, 3) in scene coordinates (float32, for upload)."""
    pts = np.asarray(xyz_edited, dtype=np.float64).reshape(-1, 3)
    if not SCENE_IS_EDITED_WORLD:
        pts = np.asarray(apply_inverse_to_points(edits, pts))
    return np.ascontiguousarray(pts, dtype=np.float32)


class EditedPoints:
    """Ids and kept-mask of a reconstruction's points under some edits, cached for the last inputs.

    The ids of a (reconstruction, source) are computed once (5 M points: about 60 ms); the keep mask
    once per (reconstruction, source, edits) (it is ``edit_points``'s second output).
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
            _, self._keep = edit_points(edits, rec.points(source).xyz, ids)
            self._keep_edits = edits
        return self._keep
