"""Picking frusta with the mouse: project anchor points to the screen and take the nearest one.

Pure numpy. Screen coordinates are VisPy canvas coordinates: logical pixels, origin at the top-left
corner, y down (the coordinates of mouse events).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLICK_MAX_DRAG", "PICK_RADIUS", "homogeneous_to_screen", "is_click", "pick_nearest"]

PICK_RADIUS = 18.0
"""Largest distance in logical pixels between a click and a frustum anchor that still picks it."""
CLICK_MAX_DRAG = 4.0
"""A press and release farther apart than this (logical pixels) is a drag, not a click."""


def homogeneous_to_screen(mapped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide mapped homogeneous points by w.

    Parameters
    ----------
    mapped : np.ndarray, (M, 4)
        Points mapped to canvas coordinates by a VisPy transform (``tr.map(xyz)``), still homogeneous.

    Returns
    -------
    xy : np.ndarray, (M, 2) float64
        Canvas coordinates (meaningless where ``in_front`` is False).
    in_front : np.ndarray, (M,) bool
        Whether the point is in front of the eye (w > 0) and finite.
    """
    h = np.asarray(mapped, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != 4:
        raise ValueError(f"mapped must be (M, 4), got {h.shape}")
    w = h[:, 3]
    in_front = (w > 1e-12) & np.isfinite(h).all(axis=1)
    safe = np.where(in_front, w, 1.0)
    return h[:, :2] / safe[:, None], in_front


def pick_nearest(
    screen_xy: np.ndarray,
    owners: np.ndarray,
    click: tuple[float, float] | np.ndarray,
    *,
    valid: np.ndarray | None = None,
    radius: float = PICK_RADIUS,
) -> int:
    """The owner of the anchor nearest to ``click`` within ``radius``, or -1.

    Parameters
    ----------
    screen_xy : np.ndarray, (M, 2)
        Anchor positions on screen.
    owners : np.ndarray, (M,) int
        What each anchor belongs to (a view index); several anchors may share an owner.
    click : (x, y)
        Click position on screen.
    valid : np.ndarray, (M,) bool, optional
        Anchors that may be picked (e.g. in front of the eye, of a shown view).
    radius : float
        Largest accepted distance.
    """
    xy = np.asarray(screen_xy, dtype=np.float64).reshape(-1, 2)
    own = np.asarray(owners).reshape(-1)
    if len(own) != len(xy):
        raise ValueError(f"owners must have {len(xy)} entries, got {len(own)}")
    d = np.hypot(xy[:, 0] - float(click[0]), xy[:, 1] - float(click[1]))
    if valid is not None:
        d = np.where(np.asarray(valid, dtype=bool).reshape(-1), d, np.inf)
    if len(d) == 0:
        return -1
    i = int(np.argmin(d))
    return int(own[i]) if d[i] <= radius else -1


def is_click(press: tuple[float, float] | np.ndarray, release: tuple[float, float] | np.ndarray) -> bool:
    """Whether a press/release pair is a click (moved at most :data:`CLICK_MAX_DRAG` pixels)."""
    return bool(np.hypot(release[0] - press[0], release[1] - press[1]) <= CLICK_MAX_DRAG)
