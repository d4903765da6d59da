"""The one table of export formats (:data:`FORMATS`), light enough for ``fast3r --help``.

Importing this module imports neither numpy nor an exporter: each format names its writer as
``"module:function"``, imported on first use (:attr:`ExportFormat.writer`). The CLI's ``--format``
choices and output names, the GUI's Export menu and the controller's messages are built from it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fast3r_core.export.selection import ExportReport, PointSelection
    from fast3r_core.result import Reconstruction

__all__ = ["FORMATS", "ExportFormat"]


@dataclass(frozen=True)
class ExportFormat:
    """One export format: everything the CLI and the GUI need to offer it.

    Attributes
    ----------
    key : str
        Name on the command line (``--format``) and in :data:`FORMATS`.
    label : str
        Short name in messages ("PLY", "COLMAP").
    menu_text : str
        Text of the GUI's menu entry, with its ``&`` accelerator.
    description : str
        One line for ``--help``.
    file_filter : str or None
        Filter of the save-file dialog; None when the destination is a folder.
    default_name : str
        Default file or folder name of a standalone export.
    takes_selection : bool
        The writer takes a :class:`PointSelection` (it writes points or chooses views).
    writer_name : str
        ``"module:function"`` of the writer, ``writer(rec, path, [selection,] **options) ->
        ExportReport`` (see :attr:`writer`).
    summarize : callable
        ``summarize(report) -> str``: the short summary shown after an export.
    output_name : str or None
        Name inside ``fast3r reconstruct --out DIR`` when it differs from ``default_name``.
    copies_images : bool
        Puts the photos into its ``images/`` folder (takes ``link_images``).
    """

    key: str
    label: str
    menu_text: str
    description: str
    file_filter: str | None
    default_name: str
    takes_selection: bool
    writer_name: str
    summarize: Callable[[ExportReport], str]
    output_name: str | None = None
    copies_images: bool = False

    @property
    def writer(self) -> Callable[..., ExportReport]:
        """The exporter function (imported on first use)."""
        module, _, name = self.writer_name.partition(":")
        writer: Callable[..., ExportReport] = getattr(importlib.import_module(module), name)
        return writer

    @property
    def is_folder(self) -> bool:
        """Whether a standalone export's destination is a folder rather than a file."""
        return self.file_filter is None

    @property
    def title(self) -> str:
        """The menu text without its accelerator and ellipsis: "Export PLY"."""
        return self.menu_text.replace("&", "").rstrip(".")

    @property
    def reconstruct_name(self) -> str:
        """Name of this output inside ``fast3r reconstruct --out DIR``."""
        return self.output_name or self.default_name

    def export(
        self,
        rec: Reconstruction,
        path: str | os.PathLike[str],
        selection: PointSelection | None = None,
        **options: Any,
    ) -> ExportReport:
        """Write ``rec`` to ``path`` in this format.

        ``selection`` is passed to writers that take one and ignored by the others (cameras.json
        holds every view's camera). ``options`` are the writer's own keyword arguments.
        """
        if self.takes_selection:
            return self.writer(rec, path, selection, **options)
        return self.writer(rec, path, **options)


def _points(report: ExportReport) -> str:
    return f"{report.n_points} points"


def _glb_summary(report: ExportReport) -> str:
    return f"{report.n_points} points, {report.n_cameras} cameras"


def _colmap_summary(report: ExportReport) -> str:
    return f"{report.n_points} points, {report.n_images} images"


def _nerfstudio_summary(report: ExportReport) -> str:
    return f"{report.path.name} in {report.path.parent}"


def _cameras_summary(report: ExportReport) -> str:
    return f"{report.n_cameras} cameras"


FORMATS: dict[str, ExportFormat] = {
    f.key: f
    for f in (
        ExportFormat(
            key="ply",
            label="PLY",
            menu_text="Export &PLY...",
            description="Point cloud (PLY) with colours and confidence: MeshLab, CloudCompare",
            file_filter="PLY point cloud (*.ply)",
            default_name="points.ply",
            takes_selection=True,
            writer_name="fast3r_core.export.ply:export_ply",
            summarize=_points,
        ),
        ExportFormat(
            key="glb",
            label="GLB",
            menu_text="Export &GLB...",
            description="Point cloud and camera frusta (glTF binary): Blender, web viewers",
            file_filter="glTF binary (*.glb)",
            default_name="scene.glb",
            takes_selection=True,
            writer_name="fast3r_core.export.glb:export_glb",
            summarize=_glb_summary,
        ),
        ExportFormat(
            key="colmap",
            label="COLMAP",
            menu_text="Export &COLMAP...",
            description="COLMAP sparse model + images: Gaussian splatting, COLMAP",
            file_filter=None,
            default_name="colmap",
            takes_selection=True,
            writer_name="fast3r_core.export.colmap:export_colmap",
            summarize=_colmap_summary,
            copies_images=True,
        ),
        ExportFormat(
            key="nerfstudio",
            label="Nerfstudio",
            menu_text="Export &Nerfstudio...",
            description="Nerfstudio transforms.json + points.ply + images",
            file_filter=None,
            default_name="nerfstudio",
            takes_selection=True,
            writer_name="fast3r_core.export.nerfstudio:export_nerfstudio",
            summarize=_nerfstudio_summary,
            # inside a reconstruct output folder the dataset is the folder itself
            output_name="transforms.json",
            copies_images=True,
        ),
        ExportFormat(
            key="cameras",
            label="cameras JSON",
            menu_text="Export Cameras &JSON...",
            description="Camera intrinsics and poses (JSON) for scripts",
            file_filter="JSON (*.json)",
            default_name="cameras.json",
            takes_selection=False,
            writer_name="fast3r_core.export.cameras_json:export_cameras_json",
            summarize=_cameras_summary,
        ),
    )
}
"""Every export format, in menu order (key -> :class:`ExportFormat`)."""
