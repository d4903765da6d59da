"""Exporters of a :class:`~fast3r_core.result.Reconstruction` to files other tools read.

Every file is written atomically (:mod:`fast3r_core.atomic`); an unwritable destination raises
:class:`~fast3r_core.errors.ExportError` naming the path and the reason, and an export asked to write
zero points raises :class:`~fast3r_core.errors.EmptyExportError` instead of writing an empty file.

Every exporter takes the reconstruction, a destination and (when it writes points) one
:class:`PointSelection`, and returns one :class:`ExportReport`. :data:`FORMATS` is the one table of
formats (key, menu text, file-dialog filter, default name, whether it takes a selection, writer,
summary) from which the CLI's options and output names, the GUI's Export menu and the controller's
messages are built. Every exporter writes the edited world: the reconstruction's
:class:`~fast3r_core.edits.Edits` applied by :func:`apply_edits` (:mod:`fast3r_core.export.edited`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fast3r_core.export.formats import FORMATS, ExportFormat

if TYPE_CHECKING:
    from fast3r_core.export.cameras_json import export_cameras_json
    from fast3r_core.export.colmap import export_colmap
    from fast3r_core.export.edited import EditedScene, apply_edits
    from fast3r_core.export.glb import export_glb
    from fast3r_core.export.nerfstudio import export_nerfstudio
    from fast3r_core.export.ply import export_ply
    from fast3r_core.export.selection import ExportReport, PointSelection, select_points

__all__ = [
    "FORMATS",
    "EditedScene",
    "ExportFormat",
    "ExportReport",
    "PointSelection",
    "apply_edits",
    "export_cameras_json",
    "export_colmap",
    "export_glb",
    "export_nerfstudio",
    "export_ply",
    "select_points",
]

# The exporters import numpy; the table does not. They are imported on first use so that the CLI's
# start (which reads FORMATS for its options) stays light.
_LAZY = {
    "EditedScene": "fast3r_core.export.edited",
    "apply_edits": "fast3r_core.export.edited",
    "ExportReport": "fast3r_core.export.selection",
    "PointSelection": "fast3r_core.export.selection",
    "select_points": "fast3r_core.export.selection",
    "export_cameras_json": "fast3r_core.export.cameras_json",
    "export_colmap": "fast3r_core.export.colmap",
    "export_glb": "fast3r_core.export.glb",
    "export_nerfstudio": "fast3r_core.export.nerfstudio",
    "export_ply": "fast3r_core.export.ply",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
