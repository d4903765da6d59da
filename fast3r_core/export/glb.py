"""GLB (binary glTF 2.0) export: the coloured point cloud plus the cameras as line-drawn frusta.

Axis convention of the file: glTF is "+Y up, +Z toward the viewer" (right-handed). Positions are
those of the edited world (:mod:`fast3r_core.export.edited`, the user's edits applied) turned into glTF
axes by :func:`~fast3r_core.export.edited.gltf_rotation`. Without a levelling the world is the camera of
view 0 in OpenCV axes (x right, y down, z forward), so every position is written as ``(x, -y, -z)``: a
180° rotation about x (no mirroring); view 0's camera then sits at the origin looking down -Z with +Y
up, like a glTF camera, and the scene opens upright in Blender or a web viewer. A levelled world is Z
up and is written as ``(x, z, -y)``, which Blender's importer turns back into the PLY's coordinates.

Geometry (the layout trimesh writes, written here directly and in chunks so that a cloud of any size
needs little memory): a mesh "points" with one primitive of mode 0 (POINTS) carrying
POSITION and COLOR_0, and one mesh per view "camera_<v>" with a primitive of mode 1 (LINES) and a
per-view colour: 4 edges from the camera centre to the far-plane corners, the 4 far-plane edges, and a
small triangle on the far plane's top edge that shows which way is up in the image.
"""

from __future__ import annotations

import colorsys
import json
import logging
import os
import struct
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from fast3r_core.atomic import atomic_write
from fast3r_core.errors import EmptyExportError, InputError
from fast3r_core.export.edited import apply_edits, edits_summary_json, gltf_rotation, world_convention
from fast3r_core.export.ply import CHUNK_POINTS
from fast3r_core.export.selection import ExportReport, PointSelection, select_points
from fast3r_core.geometry import frustum_segments

if TYPE_CHECKING:
    from fast3r_core.edits import Edits
    from fast3r_core.result import Reconstruction

__all__ = ["export_glb"]

log = logging.getLogger(__name__)


def _view_palette(n: int) -> np.ndarray:
    """(n, 3) uint8 well-separated colours (golden-ratio hue steps), one per view.

    Colour, not geometry, so it lives here rather than in :mod:`fast3r_core.geometry`.
    """
    hues = (np.arange(n) * 0.618033988749895) % 1.0
    return np.array(
        [[round(255 * c) for c in colorsys.hsv_to_rgb(h, 0.75, 0.95)] for h in hues], dtype=np.uint8
    ).reshape(n, 3)


def _default_frustum_depth(rec: Reconstruction) -> float:
    """A frustum depth that reads well: 15 % of the median depth of the scene in the cameras.

    Uses every 8th pixel of the global pointmaps, seen from their own cameras (OpenCV z = depth);
    model-world units (times ``rec.edits.scale`` for the edited world).
    """
    w2c = rec.world_to_cam
    depths = []
    for v in range(rec.n_views):
        p = rec.pts3d[v][::8, ::8].reshape(-1, 3).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite points are filtered next
            z = p @ w2c[v, 2, :3] + w2c[v, 2, 3]
        z = z[np.isfinite(z) & (z > 0)]
        if z.size:
            depths.append(float(np.median(z)))
    return 0.15 * float(np.median(depths)) if depths else 0.1


def export_glb(
    rec: Reconstruction,
    path: str | os.PathLike[str],
    selection: PointSelection | None = None,
    *,
    cameras: bool = True,
    frustum_scale: float | None = None,
) -> ExportReport:
    """Export the point cloud (and the cameras) to a GLB file, in glTF axes (see the module docstring).

    Parameters
    ----------
    rec : Reconstruction
        The result to export.
    path : path-like
        Destination ``.glb`` file; written atomically.
    selection : PointSelection or None
        Which points (None: every global point); its views also choose the cameras drawn.
    cameras : bool
        Draw the cameras of the selected views as frusta (views whose pose estimation failed are
        left out).
    frustum_scale : float or None
        Depth of the frusta in (edited) world units; default 15 % of the scene's median depth.

    Returns
    -------
    ExportReport
        ``n_points`` points and ``n_cameras`` frusta written. A file of cameras only (no point
        selected) is written with a warning.

    Raises
    ------
    EmptyExportError
        Nothing at all is left to write: no point and no camera.
    ExportError
        The destination cannot be written.
    """
    points = select_points(rec, selection)
    if frustum_scale is not None and not frustum_scale > 0:
        raise InputError(f"frustum scale must be positive, got {frustum_scale}")

    # (name, positions (n, 3) float32 in glTF axes, RGBA (n, 4) uint8)
    cams: list[tuple[str, np.ndarray, np.ndarray]] = []
    skipped: list[int] = []
    scene = apply_edits(rec)  # the cameras in the edited world, as the points
    to_gltf = gltf_rotation(rec.edits)
    if cameras:
        depth = frustum_scale if frustum_scale is not None else _default_frustum_depth(rec) * scene.scale
        lut = rec.view_mask(selection.views if selection is not None else None)
        palette = _view_palette(rec.n_views)
        for v in range(rec.n_views):
            if lut is not None and not lut[v]:
                continue
            if not rec.pose_ok[v]:
                skipped.append(v)
                continue
            seg = frustum_segments(
                scene.cam_to_world[v],
                rec.intrinsics_original[v],
                int(rec.original_sizes[v, 0]),
                int(rec.original_sizes[v, 1]),
                depth,
            )
            verts = (seg.reshape(-1, 3) @ to_gltf.T).astype(np.float32)
            if not np.isfinite(verts).all():
                log.warning("view %d: its camera is not finite; no frustum drawn", v)
                skipped.append(v)
                continue
            colors = np.tile(np.append(palette[v], 255).astype(np.uint8), (len(verts), 1))
            cams.append((f"camera_{v:03d}", verts, colors))

    if not len(points) and not cams:
        raise EmptyExportError(
            f"Nothing to write to {str(path)!r}: no point passes the filter "
            f"({(selection or PointSelection()).describe()}) and no camera"
        )
    warnings: tuple[str, ...] = ()
    if not len(points):
        warnings = (f"no point passes the filter: {Path(path).name} holds the cameras only",)
        log.warning("%s", warnings[0])
    with atomic_write(Path(path), "wb") as f:
        _write_glb(f, points.xyz, points.rgb, cams, rec.model_name, to_gltf=to_gltf, edits=rec.edits)
    log.info("wrote %d points and %d cameras to %s", len(points), len(cams), path)
    return ExportReport(
        "glb",
        Path(path),
        files=(Path(path),),
        n_points=len(points),
        n_cameras=len(cams),
        skipped_views=tuple(skipped),
        warnings=warnings,
    )


def _gltf_convention(to_gltf: np.ndarray, edits: Edits) -> str:
    if edits.is_empty:  # the words of files written before edits existed
        return "glTF axes: (x, -y, -z) of the OpenCV world (camera of view 0)"
    axes = "(x, z, -y)" if to_gltf[1, 2] > 0 else "(x, -y, -z)"
    return f"glTF axes: {axes} of the {world_convention(edits).removeprefix('world = ')}"


def _write_glb(
    f: IO[bytes],
    xyz: np.ndarray,
    rgb: np.ndarray,
    cams: list[tuple[str, np.ndarray, np.ndarray]],
    model_name: str,
    *,
    to_gltf: np.ndarray,
    edits: Edits,
) -> None:
    """Write a GLB: a POINTS mesh "points" (if any point) and a LINES mesh per camera.

    The points are converted to glTF axes and written in chunks of
    :data:`~fast3r_core.export.ply.CHUNK_POINTS`, so the working memory does not grow with the cloud.

    Parameters
    ----------
    f : binary file
        Destination, positioned at 0.
    xyz : np.ndarray, (N, 3) float32
        Points in the edited world; written as ``to_gltf @ x``.
    rgb : np.ndarray, (N, 3) uint8
        Their colours (written as RGBA, alpha 255).
    cams : list of (name, (n, 3) float32 positions in glTF axes, (n, 4) uint8 RGBA)
        Line segments of each camera (pairs of vertices).
    model_name : str
        Stored in the scene's extras.
    to_gltf : np.ndarray, (3, 3)
        Edited world -> glTF axes (:func:`~fast3r_core.export.edited.gltf_rotation`).
    edits : Edits
        Their similarity, units and measurements go into the scene's extras.
    """
    n = int(xyz.shape[0])
    flip = np.asarray(to_gltf, dtype=np.float32).T
    accessors: list[dict] = []
    views: list[dict] = []
    meshes: list[dict] = []
    offset = 0

    def add_view(length: int) -> int:
        nonlocal offset
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": length})
        offset += length + (-length % 4)  # 4-byte aligned
        return len(views) - 1

    def add_mesh(name: str, count: int, lo: list[float], hi: list[float], mode: int) -> None:
        pos = len(accessors)
        accessors.append(
            {"componentType": 5126, "type": "VEC3", "byteOffset": 0, "bufferView": add_view(12 * count),
             "count": count, "max": hi, "min": lo}
        )  # fmt: skip
        accessors.append(
            {"componentType": 5121, "normalized": True, "type": "VEC4", "byteOffset": 0,
             "bufferView": add_view(4 * count), "count": count}
        )  # fmt: skip
        prim = {"attributes": {"POSITION": pos, "COLOR_0": pos + 1}, "mode": mode, "material": 0}
        meshes.append({"name": name, "primitives": [prim]})

    chunks = range(0, n, CHUNK_POINTS)
    if n:
        lo = np.full(3, np.inf, np.float32)
        hi = np.full(3, -np.inf, np.float32)
        for start in chunks:
            part = xyz[start : start + CHUNK_POINTS] @ flip
            lo = np.minimum(lo, part.min(axis=0))
            hi = np.maximum(hi, part.max(axis=0))
        add_mesh("points", n, lo.tolist(), hi.tolist(), 0)
    for name, verts, _ in cams:
        add_mesh(name, len(verts), verts.min(axis=0).tolist(), verts.max(axis=0).tolist(), 1)

    doc = {
        "scene": 0,
        "scenes": [
            {
                "extras": {
                    "fast3r": {
                        "convention": _gltf_convention(to_gltf, edits),
                        "model_name": model_name,
                        **({} if edits.is_empty else {"edits": edits_summary_json(edits)}),
                    }
                },
                "nodes": list(range(len(meshes))),
            }
        ],
        "asset": {"version": "2.0", "generator": "Fast3R Studio"},
        "accessors": accessors,
        "meshes": meshes,
        "materials": [
            {
                "pbrMetallicRoughness": {
                    "baseColorFactor": [1, 1, 1, 1],
                    "metallicFactor": 0,
                    "roughnessFactor": 0,
                }
            }
        ],
        "nodes": [{"name": m["name"], "mesh": i} for i, m in enumerate(meshes)],
        "buffers": [{"byteLength": offset}],
        "bufferViews": views,
    }
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    f.write(struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(text) + 8 + offset))
    f.write(struct.pack("<I4s", len(text), b"JSON"))
    f.write(text)
    f.write(struct.pack("<I4s", offset, b"BIN\0"))

    def pad(length: int) -> None:
        f.write(b"\0" * (-length % 4))

    if n:
        for start in chunks:
            f.write(np.ascontiguousarray(xyz[start : start + CHUNK_POINTS] @ flip, dtype="<f4").tobytes())
        pad(12 * n)
        for start in chunks:
            part = rgb[start : start + CHUNK_POINTS]
            rgba = np.full((len(part), 4), 255, dtype=np.uint8)
            rgba[:, :3] = part
            f.write(rgba.tobytes())
        pad(4 * n)
    for _, verts, colors in cams:
        f.write(np.ascontiguousarray(verts, dtype="<f4").tobytes())
        pad(12 * len(verts))
        f.write(np.ascontiguousarray(colors, dtype=np.uint8).tobytes())
        pad(4 * len(verts))
