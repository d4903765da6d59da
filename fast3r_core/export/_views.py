"""Which views a camera export (COLMAP, Nerfstudio) writes: the selected ones that have a pose."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fast3r_core.errors import ExportError

if TYPE_CHECKING:
    from fast3r_core.result import Reconstruction

__all__ = ["PosedViews", "posed_views"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PosedViews:
    """The views a camera export writes.

    Attributes
    ----------
    mask : np.ndarray, (V,) bool
        Selected views whose pose estimation succeeded (usable as ``views=`` of a point selection).
    views : list of int
        The same views as increasing indices.
    skipped : tuple of int
        Selected views left out because their pose estimation failed.
    """

    mask: np.ndarray
    views: list[int]
    skipped: tuple[int, ...]


def posed_views(rec: Reconstruction, views: Iterable[int] | np.ndarray | None) -> PosedViews:
    """Split the selected views into those with an estimated pose and those without.

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    views : iterable of int, (V,) bool array, or None
        The user's selection, as in :meth:`Reconstruction.view_mask` (None = every view).

    Returns
    -------
    PosedViews
        A warning is logged when selected views are left out for lack of a pose.

    Raises
    ------
    ExportError
        No selected view has a pose.
    """
    mask = rec.view_mask(views)
    selected = np.ones(rec.n_views, dtype=bool) if mask is None else mask
    used = selected & rec.pose_ok
    skipped = tuple(int(v) for v in np.flatnonzero(selected & ~rec.pose_ok))
    if skipped:
        log.warning("leaving out views %s: their pose estimation failed", list(skipped))
    if not used.any():
        raise ExportError("No view to export: no selected view has an estimated pose")
    return PosedViews(mask=used, views=[int(v) for v in np.flatnonzero(used)], skipped=skipped)
