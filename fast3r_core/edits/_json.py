"""The JSON form of :class:`Edits` (stored in ``.f3r`` projects) and its strict reader.

Layout (version 1)::

    {"format": "fast3r-edits", "version": 1,
     "transform": {"scale": s, "rotation": [[3], [3], [3]], "origin": [3]},   # x_e = s R (x - origin)
     "crop": null | {"center": [3], "rotation": [[3], [3], [3]], "half_extents": [3]},  # edited world
     "selections": [{"mode": "delete" | "keep", "count": K,
                     "encoding": "zlib-runs-int64-base64", "data": "..."}],
     "measurements": [{"name": str, "a": [3], "b": [3], "distance": d}],  # a, b model world; d edited
     "units": {"metres_per_unit": null | m, "display": "m" | "cm" | "mm" | "in" | "ft"}}

A selection's ids (strictly increasing) are stored exactly as runs of consecutive ids: little-endian
int64 pairs ``(gap, length)`` (``gap`` from the end of the previous run, exclusive, or from 0 for the
first), zlib-compressed, base64. A lasso over an image selects whole stretches of pixel rows, so this
is a few bytes a row of the selection, and the decoder can bound its memory by ``count``. Floats
round-trip exactly (Python's json writes the shortest repr). ``distance`` is for other programs
reading the file; it is checked against the end points on reading.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from fast3r_core.errors import EditsError

from ._model import (
    EDITS_VERSION,
    MAX_MEASUREMENTS,
    MAX_POINT_ID,
    MAX_SCALE,
    MAX_SELECTION_IDS,
    MAX_SELECTIONS,
    MIN_SCALE,
    CropBox,
    Edits,
    Measurement,
    Selection,
    _finite_vec3,
    _positive,
    _rotation,
)

FORMAT_NAME = "fast3r-edits"
_ENCODING = "zlib-runs-int64-base64"


def _encode_ids(ids: np.ndarray) -> str:
    if ids.size == 0:
        runs = np.zeros((0, 2), dtype="<i8")
    else:
        breaks = np.flatnonzero(np.diff(ids) != 1) + 1  # where a run of consecutive ids ends
        starts = ids[np.concatenate([[0], breaks])]
        lengths = np.diff(np.concatenate([[0], breaks, [ids.size]]))
        ends = starts + lengths  # exclusive
        gaps = starts - np.concatenate([[0], ends[:-1]])
        runs = np.column_stack([gaps, lengths]).astype("<i8")
    return base64.b64encode(zlib.compress(runs.tobytes(), 6)).decode("ascii")


def _decode_ids(data: str, count: int, where: str) -> np.ndarray:
    if len(data) > 24 * count + 1024:  # longer than any encoding of `count` ids: not our data
        raise EditsError(f"{where}: encoded ids are longer than {count} ids can be")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
        inflater = zlib.decompressobj()
        # max_length bounds the memory a decompression bomb could take: at most one run an id
        payload = inflater.decompress(raw, 16 * count + 1)
    except (binascii.Error, UnicodeEncodeError, zlib.error) as exc:
        raise EditsError(f"{where}: ids are not valid {_ENCODING} data ({exc})") from None
    if len(payload) % 16 or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise EditsError(f"{where}: ids are not valid {_ENCODING} data (truncated or trailing bytes)")
    runs = np.frombuffer(payload, dtype="<i8").astype(np.int64).reshape(-1, 2)
    gaps, lengths = runs[:, 0], runs[:, 1]
    # canonical runs: lengths >= 1, the first gap >= 0, the others >= 1 (else two runs would touch)
    if len(runs) and (gaps[0] < 0 or (gaps[1:] < 1).any() or (lengths < 1).any()):
        raise EditsError(f"{where}: ids must be strictly increasing within 0..{MAX_POINT_ID}")
    if runs.astype(np.float64).sum() > MAX_POINT_ID + 1:
        raise EditsError(f"{where}: ids must be strictly increasing within 0..{MAX_POINT_ID}")
    if int(lengths.sum()) != count:
        raise EditsError(f"{where}: ids do not decode to exactly {count} values")
    starts = np.cumsum(gaps) + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    first_index = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ids: np.ndarray = np.arange(count, dtype=np.int64) + np.repeat(starts - first_index, lengths)
    return ids


def _rows(m: Any) -> list[list[float]]:
    return [[float(x) for x in row] for row in m]


def edits_to_json(e: Edits) -> dict[str, Any]:
    """The JSON-ready dict of ``e`` (plain dicts, lists, str, float, int, None)."""
    crop = None
    if e.crop is not None:
        crop = {
            "center": list(e.crop.center),
            "rotation": _rows(e.crop.rotation),
            "half_extents": list(e.crop.half_extents),
        }
    return {
        "format": FORMAT_NAME,
        "version": EDITS_VERSION,
        "transform": {"scale": e.scale, "rotation": _rows(e.rotation), "origin": list(e.origin)},
        "crop": crop,
        "selections": [
            {"mode": s.mode, "count": len(s), "encoding": _ENCODING, "data": _encode_ids(s.ids)}
            for s in e.selections
        ],
        "measurements": [
            {"name": m.name, "a": list(m.a), "b": list(m.b), "distance": m.distance(e)}
            for m in e.measurements
        ],
        "units": {"metres_per_unit": e.metres_per_unit, "display": e.display_unit},
    }


# ----------------------------------------------------------------------------------------- reading


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _obj(where: str, value: object, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise EditsError(f"{where} must be an object, got {type(value).__name__}")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(map(str, set(value) - keys))
        raise EditsError(f"{where}: missing keys {missing}, unexpected keys {extra}")
    return value


def _num(where: str, value: object) -> float:
    if not _is_number(value):
        raise EditsError(f"{where} must be a number, got {type(value).__name__}")
    v = float(value)  # type: ignore[arg-type]
    if not np.isfinite(v):
        raise EditsError(f"{where} must be finite, got {v!r}")
    return v


def _vec(where: str, value: object) -> list[float]:
    if not isinstance(value, list) or len(value) != 3:
        raise EditsError(f"{where} must be a list of 3 numbers")
    return [_num(f"{where}[{i}]", x) for i, x in enumerate(value)]


def _mat(where: str, value: object) -> list[list[float]]:
    if not isinstance(value, list) or len(value) != 3:
        raise EditsError(f"{where} must be a 3x3 list of lists")
    return [_vec(f"{where}[{i}]", row) for i, row in enumerate(value)]


def _int(where: str, value: object, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
        raise EditsError(f"{where} must be an integer within 0..{hi}, got {value!r}")
    return value


def _list(where: str, value: object, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise EditsError(f"{where} must be a list of at most {limit} entries")
    return value


def edits_from_json(obj: object, *, n_points: int | None = None) -> Edits:
    """Read and validate the dict written by :func:`edits_to_json` (e.g. from an untrusted file).

    Every field is checked: types (a bool is not a number), finite numbers, bounded sizes, orthonormal
    rotations, strictly increasing ids, unique measurement names, no unknown or missing keys.

    Parameters
    ----------
    obj : object
        The parsed JSON.
    n_points : int, optional
        Number of point ids of the reconstruction the edits belong to (its total model pixels, see
        :func:`~fast3r_core.edits.point_ids`). When given, every id must be below it, and decoding a
        selection never takes more than 16 bytes a point however the data was crafted.

    Raises
    ------
    EditsError
        Naming the first problem (e.g. ``edits.transform.rotation is not a rotation``).
    """
    max_ids = MAX_SELECTION_IDS if n_points is None else min(MAX_SELECTION_IDS, max(0, int(n_points)))
    top = _obj(
        "edits",
        obj,
        {"format", "version", "transform", "crop", "selections", "measurements", "units"},
    )
    if top["format"] != FORMAT_NAME:
        raise EditsError(f"edits: format must be {FORMAT_NAME!r}, got {top['format']!r}")
    version = top["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise EditsError(f"edits: version must be a positive integer, got {version!r}")
    if version > EDITS_VERSION:
        raise EditsError(
            f"edits: version {version} was written by a newer Fast3R Studio (this reads {EDITS_VERSION})"
        )

    tr = _obj("edits.transform", top["transform"], {"scale", "rotation", "origin"})
    kwargs: dict[str, Any] = {  # the checks of the dataclasses, under the names of the fields
        "scale": _positive(
            "edits.transform.scale", _num("edits.transform.scale", tr["scale"]), MIN_SCALE, MAX_SCALE
        ),
        "rotation": _rotation("edits.transform.rotation", _mat("edits.transform.rotation", tr["rotation"])),
        "origin": _finite_vec3("edits.transform.origin", _vec("edits.transform.origin", tr["origin"])),
    }
    if top["crop"] is not None:
        c = _obj("edits.crop", top["crop"], {"center", "rotation", "half_extents"})
        try:
            kwargs["crop"] = CropBox(
                center=_vec("edits.crop.center", c["center"]),  # type: ignore[arg-type]
                rotation=_mat("edits.crop.rotation", c["rotation"]),  # type: ignore[arg-type]
                half_extents=_vec("edits.crop.half_extents", c["half_extents"]),  # type: ignore[arg-type]
            )
        except EditsError as exc:
            raise EditsError(f"edits.crop: {exc}") from None
    selections = []
    # every selection is bounded by the point count, but 4096 of them could still decode to far more
    # ids than any editing session makes (each one a short string: a memory bomb); bound their sum too
    budget = MAX_SELECTION_IDS if n_points is None else 8 * n_points + 1_000_000
    for i, s in enumerate(_list("edits.selections", top["selections"], MAX_SELECTIONS)):
        where = f"edits.selections[{i}]"
        s = _obj(where, s, {"mode", "count", "encoding", "data"})
        if s["mode"] not in ("delete", "keep"):
            raise EditsError(f"{where}.mode must be 'delete' or 'keep', got {s['mode']!r}")
        if s["encoding"] != _ENCODING:
            raise EditsError(f"{where}.encoding must be {_ENCODING!r}, got {s['encoding']!r}")
        if not isinstance(s["data"], str):
            raise EditsError(f"{where}.data must be a string")
        count = _int(f"{where}.count", s["count"], max_ids)
        budget -= count
        if budget < 0:
            raise EditsError(f"{where}: the selections hold more point ids in all than these edits can")
        ids = _decode_ids(s["data"], count, where)
        if n_points is not None and ids.size and ids[-1] >= n_points:
            raise EditsError(f"{where}: id {int(ids[-1])} is out of range for {n_points} points")
        selections.append(Selection(s["mode"], ids))
    kwargs["selections"] = tuple(selections)

    u = _obj("edits.units", top["units"], {"metres_per_unit", "display"})
    if u["metres_per_unit"] is not None:
        kwargs["metres_per_unit"] = _num("edits.units.metres_per_unit", u["metres_per_unit"])
    if not isinstance(u["display"], str):
        raise EditsError("edits.units.display must be a string")
    kwargs["display_unit"] = u["display"]

    measurements = []
    raw_distances = []
    for i, m in enumerate(_list("edits.measurements", top["measurements"], MAX_MEASUREMENTS)):
        where = f"edits.measurements[{i}]"
        m = _obj(where, m, {"name", "a", "b", "distance"})
        raw_distances.append(_num(f"{where}.distance", m["distance"]))
        a, b = _vec(f"{where}.a", m["a"]), _vec(f"{where}.b", m["b"])
        measurements.append(Measurement(m["name"], a, b))  # type: ignore[arg-type]
    kwargs["measurements"] = tuple(measurements)

    try:
        e = Edits(**kwargs)  # the dataclasses check ranges, rotations, names
    except EditsError as exc:
        raise EditsError(f"edits: {exc}") from None
    for i, (m, d) in enumerate(zip(e.measurements, raw_distances, strict=True)):
        if abs(m.distance(e) - d) > 1e-6 * max(1.0, abs(d)):
            raise EditsError(
                f"edits.measurements[{i}].distance {d!r} does not match its end points ({m.distance(e)!r})"
            )
    return e
