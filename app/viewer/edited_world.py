"""How the viewer shows the edited world: the display frame, and the point filter of the edits.

Pure numpy (no GL). Three frames:

* **model world**: the reconstruction's arrays (OpenCV axes, up is -y). The point cloud and the frusta
  are uploaded once in it; a node transform ``M`` (the edits' similarity) maps them to
* **edited world**: :mod:`fast3r_core.edits` (``x_e = s R (x - o)``; Z up once levelled). The edit
  overlays (measurements, crop box) live in it; a node rotation ``D`` maps it to
* **display**: where the navigation camera lives. Its up is always -y (the turntable orbits about it),
  so ``D`` turns the edited world's up to -y: identity without a rotation edit (the viewer is then
  exactly as before edits existed), ``Z -> -y`` for a levelled world.

Changing the transform only changes the two node matrices: nothing is uploaded again.
"""

from __future__ import annotations

import math

import numpy as np

from fast3r_core.edits import Edits, cameras_up
from fast3r_core.errors import EditsError

__all__ = [
    "LEVEL_TO_DISPLAY",
    "display_rotation",
    "filter_key",
    "model_to_display",
    "similarity_change",
    "transform_pose",
]

#: Edited world (Z up) to display (-y up): x stays, z -> -y, y -> z (a proper rotation).
LEVEL_TO_DISPLAY = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

#: Cameras whose mean up is within this angle of +Z count as levelled.
LEVELLED_MAX_TILT_DEG = 45.0


def display_rotation(edits: Edits, cam_to_world: np.ndarray | None) -> np.ndarray:
    """The (3, 3) rotation ``D`` from the edited world to the display frame.

    Identity when the edits have no rotation; :data:`LEVEL_TO_DISPLAY` when the cameras' mean up in
    the edited world is within 45 degrees of +Z (a levelled world); else ``R^T`` (the model's
    orientation, as before the rotation).
    """
    R = np.asarray(edits.rotation, dtype=np.float64)
    if np.array_equal(R, np.eye(3)):
        return np.eye(3)
    if cam_to_world is not None and len(cam_to_world):
        try:
            up = cameras_up(edits, cam_to_world)
        except EditsError:  # the cameras' ups cancel out: no up to go by
            up = np.zeros(3)
        if float(up[2]) >= math.cos(math.radians(LEVELLED_MAX_TILT_DEG)):
            return LEVEL_TO_DISPLAY.copy()
    out: np.ndarray = R.T
    return out


def model_to_display(edits: Edits, D: np.ndarray) -> np.ndarray:
    """(4, 4) column-form similarity ``[x_display, 1] = T @ [x_model, 1]``."""
    T = np.eye(4)
    T[:3, :3] = D
    return T @ edits.similarity_matrix()


def similarity_change(t_old: np.ndarray, t_new: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The display-space similarity ``x -> k Q x + t`` that takes ``t_old``'s display to ``t_new``'s.

    Returns ``(k, Q (3, 3), t (3,))`` of ``t_new @ inv(t_old)`` (both (4, 4) similarities).
    """
    delta = t_new @ np.linalg.inv(t_old)
    A = delta[:3, :3]
    k = float(np.cbrt(abs(np.linalg.det(A))))
    return k, A / k, delta[:3, 3].copy()


def transform_pose(
    k: float, Q: np.ndarray, t: np.ndarray, center: np.ndarray, forward: np.ndarray, up: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A look-at pose carried along a display similarity: (centre, forward, up) -> new ones."""
    return k * Q @ center + t, Q @ forward, Q @ up


def filter_key(edits: Edits) -> tuple[object, ...]:
    """What the edits' point filter depends on (equal keys: the same kept points)."""
    if not edits.filters_points:
        return ()
    transform = (edits.scale, edits.rotation, edits.origin) if edits.crop is not None else ()
    return (edits.crop, edits.selections, transform)
