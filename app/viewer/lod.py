"""Level of detail: a fixed random subsample of the confidence-ordered points for a point budget.

Each point gets a random *level* once (per reconstruction and source): ``P(level >= k) = 2**(-k/2)``.
The points of level >= k, kept in increasing index order, form a uniform random subsample of a fraction
``2**(-k/2)`` (steps of sqrt(2), so the drawn count is between 71 % and 100 % of the budget).

Because the points are in confidence order and the subsample keeps that order, the part of a
subsample that lies within a confidence prefix ``[0, n)`` is again a prefix of the subsample
(``searchsorted(subset, n)`` elements). So while the camera moves, the viewer draws a prefix of a
subset index buffer that was computed and uploaded once; the confidence slider still only changes a
count.

A view/sky mask (``base``: the sorted indices of the points that pass it) combines the same way: the
subset is ``base[level[base] >= k]``.

Pure numpy, no GL.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DEFAULT_BUDGET",
    "SOFTWARE_BUDGET",
    "SOFTWARE_IDLE_BUDGET",
    "LevelOfDetail",
    "is_software_renderer",
    "prefix_count",
]

DEFAULT_BUDGET = 1_000_000
"""Points drawn while the camera moves, on a GPU (even an integrated one draws 1 M points in a few ms)."""
SOFTWARE_BUDGET = 200_000
"""Points drawn while the camera moves on a software renderer: Mesa llvmpipe on 2 cores draws about
2 M points per second, so about 100 ms per frame (see bench/results/viewer.json)."""

SOFTWARE_IDLE_BUDGET = 300_000
"""Points drawn by a resting frame on a software renderer: at about 2 M points per second a frame then
blocks input for about 150 ms. A 6.9 M-point full-density frame blocked the GUI for 3.5-3.9 s at every
pause of a drag. Screenshots and renders still draw every point."""

_MAX_LEVEL = 48
_SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "swiftshader", "software", "lavapipe")


def is_software_renderer(renderer: str) -> bool:
    """Whether a ``GL_RENDERER`` string names a CPU rasteriser (Mesa llvmpipe, SwiftShader, ...)."""
    r = renderer.lower()
    return any(name in r for name in _SOFTWARE_RENDERERS)


def prefix_count(index: np.ndarray | None, n: int) -> int:
    """How many elements of a sorted index array are < ``n`` (``n`` itself when ``index`` is None)."""
    if index is None:
        return int(n)
    if n <= 0:
        return 0
    if np.issubdtype(index.dtype, np.unsignedinteger) and n > np.iinfo(index.dtype).max:
        return len(index)
    # Same dtype as the array: a Python int would make numpy cast (copy) the whole array first.
    return int(np.searchsorted(index, index.dtype.type(n), side="left"))


class LevelOfDetail:
    """Random levels of ``n_points`` confidence-ordered points and the subsets they define.

    Parameters
    ----------
    n_points : int
        Number of points N.
    seed : int
        Seed of the random levels (fixed: the same subsample every time the camera moves).

    Attributes
    ----------
    levels : np.ndarray, (N,) uint8
        ``floor(-2 log2(u))`` for ``u`` uniform in (0, 1], capped at 48.
    """

    def __init__(self, n_points: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        u = 1.0 - rng.random(n_points, dtype=np.float32)  # (0, 1]
        lv = np.floor(-2.0 * np.log2(u))
        self.levels: np.ndarray = np.minimum(lv, _MAX_LEVEL).astype(np.uint8)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.levels.shape[0])

    def subset(self, k: int, base: np.ndarray | None = None, base_key: int = 0) -> np.ndarray:
        """Sorted uint32 indices of the points of level >= ``k`` (within ``base`` if given).

        Parameters
        ----------
        k : int
            Level (0 = every point).
        base : np.ndarray, (M,) sorted uint32/int, optional
            Indices of the points that pass the view/sky mask; None for every point.
        base_key : int
            Identifies ``base`` in the cache (change it whenever ``base`` changes; see
            :meth:`clear`).
        """
        key = (int(k), int(base_key) if base is not None else -1)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if base is None:
            out = np.flatnonzero(self.levels >= k).astype(np.uint32)
        else:
            out = np.asarray(base)[self.levels[base] >= k].astype(np.uint32, copy=False)
        self._cache[key] = out
        return out

    def clear(self) -> None:
        """Forget cached subsets (call when the mask changes)."""
        self._cache.clear()

    def choose(
        self, n: int, budget: int, base: np.ndarray | None = None, base_key: int = 0
    ) -> tuple[int, np.ndarray | None, int]:
        """The subset to draw for a confidence prefix ``[0, n)`` under a point budget.

        Returns
        -------
        k : int
            Chosen level (0 when every shown point fits the budget).
        index : np.ndarray or None
            Sorted indices to draw a prefix of; None means "draw points 0..count-1 directly" (k = 0
            without a mask). With k = 0 and a mask, ``base`` itself.
        count : int
            How many elements of ``index`` (or points) to draw: at most ``budget`` when k > 0.
        """
        shown = prefix_count(base, n)
        if shown <= budget or budget <= 0:
            return 0, base, shown
        k = max(1, math.ceil(2.0 * math.log2(shown / budget)))
        while True:
            idx = self.subset(k, base, base_key)
            count = prefix_count(idx, n)
            if count <= budget or k >= _MAX_LEVEL:
                return k, idx, count
            k += 1
