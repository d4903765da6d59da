"""The edits description: frozen dataclasses, their invariants, and the length units.

Frames (the same words in every docstring of :mod:`fast3r_core.edits`):

* **model world**: the frame of the model's output as stored in a :class:`~fast3r_core.result.Reconstruction`
  (OpenCV axes, world = camera of view 0, arbitrary scale).
* **edited world**: the frame after the edits' similarity transform,
  ``x_edited = scale * rotation @ (x_model - origin)``. After levelling its +Z is up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from fast3r_core.errors import EditsError

Float64Array = NDArray[np.float64]
IdArray = NDArray[np.int64]
Vec3 = tuple[float, float, float]
Mat3 = tuple[Vec3, Vec3, Vec3]
SelectionMode = Literal["delete", "keep"]

#: Version of the edits description written by :func:`~fast3r_core.edits.edits_to_json`.
EDITS_VERSION = 1

#: Metres per unit of the length units a user can type or display.
UNITS: Mapping[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}

# Bounds that keep a hostile or corrupt description from exhausting memory or producing inf/NaN.
MAX_ABS_COORD = 1e12  #: largest absolute coordinate / translation accepted
MIN_SCALE, MAX_SCALE = 1e-12, 1e12  #: accepted range of the world scale
MAX_SELECTIONS = 4096  #: deleted/kept selections in one description
MAX_SELECTION_IDS = 1 << 30  #: ids in one selection
MAX_POINT_ID = (1 << 48) - 1  #: largest point id (ids are pixel ids, see :func:`point_ids`)
MAX_MEASUREMENTS = 10_000
MAX_NAME_CHARS = 200
ROTATION_TOL = 1e-6  #: max |R^T R - I| entry and |det R - 1| of a stored rotation

_IDENTITY: Mat3 = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def to_metres(value: float, unit: str) -> float:
    """``value`` expressed in ``unit`` (a key of :data:`UNITS`), in metres."""
    return float(value) * _unit(unit)


def from_metres(value_m: float, unit: str) -> float:
    """A length in metres expressed in ``unit`` (a key of :data:`UNITS`)."""
    return float(value_m) / _unit(unit)


def _unit(unit: str) -> float:
    try:
        return UNITS[unit]
    except (KeyError, TypeError):
        raise EditsError(f"unknown length unit {unit!r} (use one of {', '.join(UNITS)})") from None


# ------------------------------------------------------------------------------------------ checks


def _finite_vec3(name: str, value: object, *, bound: float = MAX_ABS_COORD) -> Vec3:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != (3,) or not np.isfinite(a).all() or np.abs(a).max() > bound:
        raise EditsError(f"{name} must be 3 finite numbers of magnitude <= {bound:g}, got {value!r}")
    return (float(a[0]), float(a[1]), float(a[2]))


def _rotation(name: str, value: object) -> Mat3:
    """A proper rotation as nested tuples; raises :class:`EditsError` if not orthonormal with det +1."""
    a = np.asarray(value, dtype=np.float64)
    if a.shape != (3, 3) or not np.isfinite(a).all():
        raise EditsError(f"{name} must be a finite 3x3 matrix")
    if np.abs(a.T @ a - np.eye(3)).max() > ROTATION_TOL or abs(np.linalg.det(a) - 1.0) > ROTATION_TOL:
        raise EditsError(f"{name} is not a rotation (orthonormal with determinant +1)")
    r0, r1, r2 = (tuple(float(x) for x in row) for row in a)
    return ((r0[0], r0[1], r0[2]), (r1[0], r1[1], r1[2]), (r2[0], r2[1], r2[2]))


def _positive(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise EditsError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not (np.isfinite(v) and lo <= v <= hi):
        raise EditsError(f"{name} must be finite and within [{lo:g}, {hi:g}], got {v!r}")
    return v


def _name(kind: str, value: object) -> str:
    """A name as given, without leading/trailing spaces; refused when blank or not printable."""
    if isinstance(value, str):
        value = value.strip()  # "  d1 " and "d1" are the same name; "   " is no name
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS or not value.isprintable():
        raise EditsError(f"{kind} name must be 1..{MAX_NAME_CHARS} printable characters, got {value!r}")
    return value


def rotation_array(rot: Mat3) -> Float64Array:
    """A stored rotation as a (3, 3) float64 array."""
    return np.array(rot, dtype=np.float64)


def orthonormalize(R: Float64Array) -> Float64Array:
    """The proper rotation nearest to ``R`` (3, 3) (SVD projection): keeps composed rotations exact to
    float64 precision however many edits are chained."""
    U, _, Vt = np.linalg.svd(R)
    if np.linalg.det(U @ Vt) < 0:
        U[:, -1] *= -1.0
    out: Float64Array = U @ Vt
    return out


# --------------------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class CropBox:
    """An oriented box in **edited-world** coordinates; points inside (boundary included) are kept.

    Attributes
    ----------
    center : (float, float, float)
        Centre of the box, edited world.
    rotation : 3x3 nested tuples
        Box-to-edited-world rotation: its columns are the box's axes in the edited world.
    half_extents : (float, float, float)
        Half sizes along the box's own axes, edited-world units, each > 0.
    """

    center: Vec3
    rotation: Mat3 = _IDENTITY
    half_extents: Vec3 = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _finite_vec3("crop centre", self.center))
        object.__setattr__(self, "rotation", _rotation("crop rotation", self.rotation))
        half = _finite_vec3("crop half-extents", self.half_extents)
        if min(half) <= 0:
            raise EditsError(f"crop half-extents must be > 0, got {half}")
        object.__setattr__(self, "half_extents", half)

    @classmethod
    def axis_aligned(cls, lo: object, hi: object) -> CropBox:
        """The box ``lo <= x <= hi`` (each (3,), edited world) with the edited world's axes."""
        a = np.asarray(_finite_vec3("crop minimum", lo))
        b = np.asarray(_finite_vec3("crop maximum", hi))
        if np.any(b <= a):
            axes = ", ".join("xyz"[i] for i in np.flatnonzero(b <= a))
            raise EditsError(
                f"crop box maximum ({', '.join(f'{x:g}' for x in b)}) must exceed its minimum "
                f"({', '.join(f'{x:g}' for x in a)}) on every axis (not on {axes})"
            )
        return cls(center=tuple((a + b) / 2.0), half_extents=tuple((b - a) / 2.0))

    def contains(self, xyz_edited: NDArray[np.floating]) -> NDArray[np.bool_]:
        """Which of the (N, 3) edited-world points lie inside or on the box: (N,) bool."""
        pts = np.asarray(xyz_edited)
        dtype = pts.dtype if pts.dtype in (np.float32, np.float64) else np.float64
        R = np.asarray(self.rotation, dtype=dtype)
        c = np.asarray(self.center, dtype=dtype)
        h = np.asarray(self.half_extents, dtype=dtype)
        local = (pts.astype(dtype, copy=False) - c) @ R  # rows: R^T (x - c), the box's own coordinates
        inside: NDArray[np.bool_] = (np.abs(local) <= h).all(axis=1)
        return inside


@dataclass(frozen=True, eq=False)
class Selection:
    """A set of points deleted (``mode="delete"``) or the only points kept (``mode="keep"``).

    Attributes
    ----------
    mode : "delete" or "keep"
    ids : np.ndarray, (K,) int64, strictly increasing, read-only
        Point ids (:func:`~fast3r_core.edits.point_ids`): ``offset(view) + row * width + column`` in
        model pixels. Pixel ids rather than indices into the confidence-ordered points because they are
        the same for the global and the local point sets, do not depend on the sort (its tie-breaking,
        the non-finite points left out) and stay valid when views are appended to a project.
    """

    mode: SelectionMode
    ids: IdArray = field(repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("delete", "keep"):
            raise EditsError(f"selection mode must be 'delete' or 'keep', got {self.mode!r}")
        ids = np.asarray(self.ids)
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise EditsError(f"selection ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        if ids.size > MAX_SELECTION_IDS:
            raise EditsError(f"a selection holds at most {MAX_SELECTION_IDS} ids, got {ids.size}")
        ids = np.array(ids, dtype=np.int64)  # a private copy: the caller's array may change later
        if ids.size and (ids[0] < 0 or ids[-1] > MAX_POINT_ID or np.any(np.diff(ids) <= 0)):
            raise EditsError(f"selection ids must be strictly increasing within 0..{MAX_POINT_ID}")
        ids.setflags(write=False)
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return int(self.ids.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selection):
            return NotImplemented
        return self.mode == other.mode and np.array_equal(self.ids, other.ids)

    def __hash__(self) -> int:
        return hash((self.mode, self.ids.size, self.ids.tobytes()))


@dataclass(frozen=True)
class Measurement:
    """A named distance between two points.

    The end points are stored in the **model world** so that a measurement stays on the same two
    points whatever is later done to the transform; :meth:`distance` is in edited-world units.

    Attributes
    ----------
    name : str
        1..200 printable characters, unique within an :class:`Edits`.
    a, b : (float, float, float)
        End points, model world.
    """

    name: str
    a: Vec3
    b: Vec3

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _name("measurement", self.name))
        object.__setattr__(self, "a", _finite_vec3("measurement point a", self.a))
        object.__setattr__(self, "b", _finite_vec3("measurement point b", self.b))

    def distance(self, edits: Edits) -> float:
        """Length in edited-world units (metres when ``edits.metres_per_unit == 1``)."""
        return edits.scale * float(np.linalg.norm(np.subtract(self.a, self.b, dtype=np.float64)))


@dataclass(frozen=True)
class Edits:
    """A user's edits of a reconstruction: frozen, hashable, comparable (exact equality).

    The model's output is never changed: exporters and the viewer apply the edits on the way out
    (:func:`~fast3r_core.edits.apply_to_points`, :func:`~fast3r_core.edits.apply_to_cameras`,
    :func:`~fast3r_core.edits.keep_mask`). ``Edits()`` is "no edits".

    Attributes
    ----------
    scale : float
        World scale ``s`` > 0.
    rotation : 3x3 nested tuples
        Proper rotation ``R`` (model world axes -> edited world axes).
    origin : (float, float, float)
        The model-world point that becomes the edited world's origin.
        Together: ``x_edited = s * R @ (x_model - origin)``.
    crop : CropBox or None
        Points outside it are left out (edited world).
    selections : tuple of Selection
        Applied in order after the crop: a "delete" removes its ids, a "keep" removes all others.
    measurements : tuple of Measurement
        Unique names.
    metres_per_unit : float or None
        Length of one edited-world unit in metres once a real scale is known (1.0 after a scale from
        a distance in metres), else None (arbitrary model units).
    display_unit : str
        Unit lengths are shown in when the scale is known: a key of :data:`UNITS`.
    """

    scale: float = 1.0
    rotation: Mat3 = _IDENTITY
    origin: Vec3 = (0.0, 0.0, 0.0)
    crop: CropBox | None = None
    selections: tuple[Selection, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    metres_per_unit: float | None = None
    display_unit: str = "m"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _positive("scale", self.scale, MIN_SCALE, MAX_SCALE))
        object.__setattr__(self, "rotation", _rotation("rotation", self.rotation))
        object.__setattr__(self, "origin", _finite_vec3("origin", self.origin))
        if self.crop is not None and not isinstance(self.crop, CropBox):
            raise EditsError(f"crop must be a CropBox or None, got {type(self.crop).__name__}")
        sels = tuple(self.selections)
        if len(sels) > MAX_SELECTIONS or not all(isinstance(s, Selection) for s in sels):
            raise EditsError(f"selections must be at most {MAX_SELECTIONS} Selection objects")
        object.__setattr__(self, "selections", sels)
        meas = tuple(self.measurements)
        if len(meas) > MAX_MEASUREMENTS or not all(isinstance(m, Measurement) for m in meas):
            raise EditsError(f"measurements must be at most {MAX_MEASUREMENTS} Measurement objects")
        names = [m.name for m in meas]
        if len(set(names)) != len(names):
            raise EditsError("measurement names must be unique")
        object.__setattr__(self, "measurements", meas)
        if self.metres_per_unit is not None:
            mpu = _positive("metres per unit", self.metres_per_unit, MIN_SCALE, MAX_SCALE)
            object.__setattr__(self, "metres_per_unit", mpu)
        if self.display_unit not in UNITS:
            raise EditsError(f"display unit must be one of {', '.join(UNITS)}, got {self.display_unit!r}")

    @property
    def has_transform(self) -> bool:
        """Whether the similarity transform is not the identity."""
        return self.scale != 1.0 or self.rotation != _IDENTITY or self.origin != (0.0, 0.0, 0.0)

    @property
    def is_empty(self) -> bool:
        """True for "no edits" (the same as ``Edits()`` apart from the display unit)."""
        return (
            not self.has_transform
            and self.crop is None
            and not self.selections
            and not self.measurements
            and self.metres_per_unit is None
        )

    @property
    def filters_points(self) -> bool:
        """Whether :func:`~fast3r_core.edits.keep_mask` can leave out any point (a crop or a selection)."""
        return self.crop is not None or bool(self.selections)

    def similarity_matrix(self) -> Float64Array:
        """The 4x4 float64 ``M`` with ``[x_edited, 1] = M @ [x_model, 1]``: ``[[sR, -sR o], [0, 1]]``."""
        sR = self.scale * rotation_array(self.rotation)
        M = np.eye(4)
        M[:3, :3] = sR
        M[:3, 3] = -sR @ np.asarray(self.origin)
        return M

    def measurement(self, name: str) -> Measurement:
        """The measurement called ``name``; :class:`EditsError` if there is none."""
        for m in self.measurements:
            if m.name == name:
                return m
        raise EditsError(f"no measurement named {name!r}")
