"""Exporters of a :class:`~fast3r_core.result.Reconstruction` to files other tools read.

Every file is written atomically (a temporary file in the same folder, then a rename); an unwritable
destination raises :class:`~fast3r_core.errors.ExportError` naming the path and the reason.

``FORMATS`` lists them for the CLI and the GUI: name -> :class:`ExportFormat` (function, default file
name, description). Every function is called as ``function(rec, path, **options)``; a default name
ending in "/" means the destination is a folder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from fast3r_core.export.cameras_json import export_cameras_json
from fast3r_core.export.colmap import ColmapExportReport, export_colmap
from fast3r_core.export.glb import export_glb
from fast3r_core.export.nerfstudio import export_nerfstudio
from fast3r_core.export.ply import export_ply

__all__ = [
    "FORMATS",
    "ColmapExportReport",
    "ExportFormat",
    "export_cameras_json",
    "export_colmap",
    "export_glb",
    "export_nerfstudio",
    "export_ply",
]


class ExportFormat(NamedTuple):
    """One export format.

    Attributes
    ----------
    function : callable
        ``function(rec, path, **options)``.
    default_name : str
        Default file name; a trailing "/" marks a folder destination.
    description : str
        One line for menus and ``--help``.
    """

    function: Callable[..., Any]
    default_name: str
    description: str

    @property
    def is_folder(self) -> bool:
        """Whether the destination is a folder rather than a file."""
        return self.default_name.endswith("/")


FORMATS: dict[str, ExportFormat] = {
    "ply": ExportFormat(
        export_ply, "points.ply", "Point cloud (PLY) with colours and confidence: MeshLab, CloudCompare"
    ),
    "glb": ExportFormat(
        export_glb, "scene.glb", "Point cloud and camera frusta (glTF binary): Blender, web viewers"
    ),
    "colmap": ExportFormat(
        export_colmap, "colmap/", "COLMAP sparse model + images: Gaussian splatting, COLMAP"
    ),
    "nerfstudio": ExportFormat(
        export_nerfstudio, "nerfstudio/", "Nerfstudio transforms.json + points.ply + images"
    ),
    "cameras": ExportFormat(
        export_cameras_json, "cameras.json", "Camera intrinsics and poses (JSON) for scripts"
    ),
}
