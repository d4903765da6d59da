"""Operations: each takes an :class:`Edits` and returns a new one (undo = keep the old one).

Inputs the user picks or types (points, boxes, translations) are in the **edited** world as it is
before the operation, i.e. what the viewer shows; whole reconstruction arrays (``cam_to_world``,
``xyz``, ``conf`` of a :class:`~fast3r_core.result.Reconstruction`) are in the **model** world and are
mapped by the function itself. Scaling and rotations are about the edited world's origin, so a point
chosen with :func:`set_origin` stays at 0 through later scaling and levelling.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike

from fast3r_core.errors import EditsError

from ._apply import apply_inverse_to_points, apply_to_cameras, apply_to_points
from ._level import estimate_up, rotation_to_z
from ._model import (
    UNITS,
    CropBox,
    Edits,
    Float64Array,
    Measurement,
    Selection,
    _finite_vec3,
    _name,
    _positive,
    _rotation,
    from_metres,
    orthonormalize,
    rotation_array,
)


def _vec(name: str, p: ArrayLike) -> Float64Array:
    return np.asarray(_finite_vec3(name, p), dtype=np.float64)


def compose_similarity(
    e: Edits, scale: float = 1.0, rotation: ArrayLike | None = None, translation: ArrayLike | None = None
) -> Edits:
    """Follow the current edits by a similarity of the edited world: ``x -> k * Q @ x + t``.

    Every other operation is this one. The crop box moves with the points (it stays on the same part
    of the scene); measurements are unaffected (their distances scale); ``metres_per_unit`` is divided
    by ``k``.

    Parameters
    ----------
    scale : float
        ``k`` > 0.
    rotation : array_like, (3, 3), optional
        Proper rotation ``Q``; identity if None.
    translation : array_like, (3,), optional
        ``t`` in edited-world units after the scaling; zero if None.
    """
    k = _positive("scale factor", scale, 1e-12, 1e12)
    Q = np.eye(3) if rotation is None else rotation_array(_rotation("rotation", rotation))
    t = np.zeros(3) if translation is None else _vec("translation", translation)
    s_new = e.scale * k
    R_new = orthonormalize(Q @ rotation_array(e.rotation))
    # s' R' (x - o') = k Q s R (x - o) + t  <=>  o' = o - R'^T t / s'
    o_new = np.asarray(e.origin) - R_new.T @ t / s_new
    crop = e.crop
    if crop is not None:
        crop = CropBox(
            center=tuple(k * Q @ np.asarray(crop.center) + t),
            rotation=orthonormalize(Q @ rotation_array(crop.rotation)),  # type: ignore[arg-type]
            half_extents=tuple(k * np.asarray(crop.half_extents)),
        )
    mpu = None if e.metres_per_unit is None else e.metres_per_unit / k
    return dataclasses.replace(
        e,
        scale=s_new,
        rotation=R_new,  # type: ignore[arg-type]
        origin=tuple(o_new),
        crop=crop,
        metres_per_unit=mpu,
    )


def scale_by(e: Edits, factor: float) -> Edits:
    """Scale the edited world by ``factor`` > 0 about its origin (the CLI's ``--scale``)."""
    return compose_similarity(e, scale=factor)


def rotate(e: Edits, rotation: ArrayLike) -> Edits:
    """Rotate the edited world about its origin by the proper rotation (3, 3)."""
    return compose_similarity(e, rotation=rotation)


def translate(e: Edits, translation: ArrayLike) -> Edits:
    """Move the edited world by ``translation`` (3,), edited-world units."""
    return compose_similarity(e, translation=translation)


def scale_from_distance(e: Edits, a: ArrayLike, b: ArrayLike, distance_m: float) -> Edits:
    """Scale so that the edited-world points ``a`` and ``b`` (3,) end up ``distance_m`` metres apart.

    The edited world's unit becomes the metre (``metres_per_unit = 1``). Convert other units with
    :func:`~fast3r_core.edits.to_metres`. :class:`EditsError` if ``a`` and ``b`` coincide.
    """
    d_m = _positive("distance", distance_m, 1e-9, 1e9)
    d = float(np.linalg.norm(_vec("point a", a) - _vec("point b", b)))
    if not d > 1e-12 * max(1.0, float(np.abs(_vec("point a", a)).max())):
        raise EditsError("the two points coincide: pick two distinct points to set the scale")
    out = compose_similarity(e, scale=d_m / d)
    return dataclasses.replace(out, metres_per_unit=1.0)


def scale_from_cameras(e: Edits, cam_to_world: ArrayLike, i: int, j: int, distance_m: float) -> Edits:
    """Scale so that the centres of views ``i`` and ``j`` end up ``distance_m`` metres apart.

    ``cam_to_world`` is (V, 4, 4), model world, OpenCV camera axes (``Reconstruction.cam_to_world``).
    """
    T = np.asarray(cam_to_world, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise EditsError(f"cam_to_world must be (V, 4, 4), got shape {T.shape}")
    for v in (i, j):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < len(T):
            raise EditsError(f"view index {v!r} is out of range 0..{len(T) - 1}")
    if i == j:
        raise EditsError("scale from cameras needs two different views")
    centres = apply_to_cameras(e, T[[i, j]])[:, :3, 3]
    try:
        return scale_from_distance(e, centres[0], centres[1], distance_m)
    except EditsError as exc:
        if "coincide" in str(exc):
            raise EditsError(f"the centres of views {i} and {j} coincide: cannot set the scale") from None
        raise


def cameras_up(e: Edits, cam_to_world: ArrayLike) -> Float64Array:
    """The cameras' mean up vector (3,) in the edited world (a hint for :func:`level_from_points`)."""
    from ._level import cameras_mean_up

    return cameras_mean_up(apply_to_cameras(e, cam_to_world))


def level_auto(
    e: Edits, cam_to_world: ArrayLike, xyz: ArrayLike | None = None, conf: ArrayLike | None = None
) -> Edits:
    """Level the world: rotate about the edited origin so that the scene's up becomes +Z.

    Up is the cameras' mean up vector, refined by the dominant roughly horizontal plane when there is
    a large one (:func:`~fast3r_core.edits.estimate_up`). The heading changes as little as possible.

    Parameters
    ----------
    cam_to_world : array_like, (V, 4, 4)
        Model world, OpenCV camera axes.
    xyz : array_like, (N, 3), optional
        Model-world points (e.g. the confidence-ordered global points); None: cameras only.
    conf : array_like, (N,), optional
        Their confidences.
    """
    cams = apply_to_cameras(e, cam_to_world)
    pts = None if xyz is None else apply_to_points(e, xyz)
    up = estimate_up(cams, pts, conf).up
    return compose_similarity(e, rotation=rotation_to_z(up))


def level_from_points(
    e: Edits,
    p1: ArrayLike,
    p2: ArrayLike,
    p3: ArrayLike,
    *,
    up_hint: ArrayLike | None = None,
    floor_at_zero: bool = False,
) -> Edits:
    """Level the world from three edited-world points on the floor: their plane becomes horizontal.

    The plane's normal is oriented along ``up_hint`` (3,) when given (e.g. :func:`cameras_up`), else by
    the right-hand rule (``p1, p2, p3`` counter-clockwise seen from above). With ``floor_at_zero`` the
    world is also moved along Z so that the floor is at ``z = 0``.
    """
    a, b, c = _vec("p1", p1), _vec("p2", p2), _vec("p3", p3)
    n = np.cross(b - a, c - a)
    size = max(float(np.linalg.norm(b - a)), float(np.linalg.norm(c - a)), 1e-300)
    norm = float(np.linalg.norm(n))
    if not norm > 1e-9 * size * size:
        raise EditsError("the three floor points are on one line: pick three points that span the floor")
    n /= norm
    if up_hint is not None and float(n @ _vec("up hint", up_hint)) < 0:
        n = -n
    Q = rotation_to_z(n)
    out = compose_similarity(e, rotation=Q)
    if floor_at_zero:
        out = compose_similarity(out, translation=(0.0, 0.0, -float((Q @ a)[2])))
    return out


def set_origin(e: Edits, point: ArrayLike) -> Edits:
    """Move the edited world so that ``point`` (3,), edited world, becomes its origin."""
    return compose_similarity(e, translation=-_vec("origin point", point))


def set_crop(e: Edits, box: CropBox | None) -> Edits:
    """Replace the crop box (edited world), or remove it with None."""
    if box is not None and not isinstance(box, CropBox):
        raise EditsError(f"crop must be a CropBox or None, got {type(box).__name__}")
    return dataclasses.replace(e, crop=box)


def crop_box(e: Edits, lo: ArrayLike, hi: ArrayLike) -> Edits:
    """Crop to the axis-aligned box ``lo <= x <= hi`` (each (3,), edited world; the CLI's ``--crop-box``)."""
    return set_crop(e, CropBox.axis_aligned(lo, hi))


def _ids(ids: ArrayLike) -> np.ndarray:
    a = np.asarray(ids)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise EditsError(f"point ids must be integers, got {a.dtype}")
    flat = a.reshape(-1).astype(np.int64)
    if flat.size < 2 or bool((flat[1:] > flat[:-1]).all()):
        return flat  # already sorted and unique (a selection from the viewer): skip the sort
    return np.unique(flat)


def delete_points(e: Edits, ids: ArrayLike) -> Edits:
    """Delete the points with these ids (:func:`~fast3r_core.edits.point_ids`; any order, repeats ok).

    An empty selection changes nothing (the same object is returned).
    """
    sel = _ids(ids)
    if sel.size == 0:
        return e
    return dataclasses.replace(e, selections=(*e.selections, Selection("delete", sel)))


def keep_only(e: Edits, ids: ArrayLike) -> Edits:
    """Keep only the points with these ids (among those kept so far); delete every other point.

    An empty selection changes nothing (the same object is returned), rather than deleting everything.
    """
    sel = _ids(ids)
    if sel.size == 0:
        return e
    return dataclasses.replace(e, selections=(*e.selections, Selection("keep", sel)))


def with_appended_points(e: Edits, start: int, stop: int) -> Edits:
    """The edits after views are appended to the reconstruction (their point ids are ``start`` to
    ``stop - 1``): a "keep" selection, made before those points existed, keeps them too (deletions and
    the crop apply to them as they are). ``start`` is the old views' pixel count, ``stop`` the new one."""
    if not 0 <= start <= stop:
        raise EditsError(f"appended point ids must be a range 0 <= start <= stop, got {start}..{stop}")
    if start == stop or not any(s.mode == "keep" for s in e.selections):
        return e
    new = np.arange(start, stop, dtype=np.int64)
    sels = tuple(
        Selection("keep", np.concatenate([s.ids[s.ids < start], new])) if s.mode == "keep" else s
        for s in e.selections
    )
    return dataclasses.replace(e, selections=sels)


def add_measurement(e: Edits, name: str, a: ArrayLike, b: ArrayLike) -> Edits:
    """Add a measurement between the edited-world points ``a`` and ``b`` (3,).

    They are stored in the model world, so the measurement stays on the same points through later
    edits. :class:`EditsError` if ``name`` is taken (see :func:`unique_measurement_name`).
    """
    name = _name("measurement", name)
    if any(m.name == name for m in e.measurements):
        raise EditsError(f"there is already a measurement named {name!r}")
    ends = apply_inverse_to_points(e, np.stack([_vec("point a", a), _vec("point b", b)]))
    m = Measurement(name, tuple(ends[0]), tuple(ends[1]))
    return dataclasses.replace(e, measurements=(*e.measurements, m))


def remove_measurement(e: Edits, name: str) -> Edits:
    """Remove the measurement called ``name`` (:class:`EditsError` if there is none)."""
    e.measurement(name)
    return dataclasses.replace(e, measurements=tuple(m for m in e.measurements if m.name != name))


def unique_measurement_name(e: Edits, prefix: str = "d") -> str:
    """The first of ``prefix1``, ``prefix2``, ... that no measurement of ``e`` uses."""
    taken = {m.name for m in e.measurements}
    k = 1
    while f"{prefix}{k}" in taken:
        k += 1
    return f"{prefix}{k}"


def set_display_unit(e: Edits, unit: str) -> Edits:
    """Show lengths in ``unit`` (a key of :data:`~fast3r_core.edits.UNITS`)."""
    if unit not in UNITS:
        raise EditsError(f"unknown length unit {unit!r} (use one of {', '.join(UNITS)})")
    return dataclasses.replace(e, display_unit=unit)


def clear() -> Edits:
    """No edits (the CLI's ``--clear``)."""
    return Edits()


def format_length(e: Edits, value: float) -> str:
    """An edited-world length for people: ``"1.234 m"`` in the display unit once the scale is known,
    else ``"1.234 units"``."""
    if e.metres_per_unit is None:
        return f"{value:.4g} units"
    return f"{from_metres(value * e.metres_per_unit, e.display_unit):.4g} {e.display_unit}"


def describe(e: Edits) -> list[str]:
    """One line a part of the edits, for ``fast3r info`` and logs (empty list for no edits)."""
    lines: list[str] = []
    if e.has_transform:
        angle = np.degrees(np.arccos(np.clip((np.trace(rotation_array(e.rotation)) - 1) / 2, -1, 1)))
        origin = ", ".join(f"{x:.4g}" for x in e.origin)
        lines.append(f"transform: scale {e.scale:.6g}, rotation {angle:.2f} deg, origin ({origin})")
    if e.metres_per_unit is not None:
        lines.append(f"units: {e.metres_per_unit:.6g} m per unit (shown in {e.display_unit})")
    if e.crop is not None:
        c = ", ".join(f"{x:.4g}" for x in e.crop.center)
        h = ", ".join(f"{2 * x:.4g}" for x in e.crop.half_extents)
        lines.append(f"crop box: centre ({c}), size ({h})")
    for sel in e.selections:
        lines.append(f"{sel.mode} selection: {len(sel)} points")
    for m in e.measurements:
        lines.append(f"measurement {m.name}: {format_length(e, m.distance(e))}")
    return lines
