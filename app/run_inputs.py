"""The inputs part of a run (issue 19): known intrinsics, masks, video frames and views left out.

Turns the run options stored in :class:`~app.settings.Settings` into the ``intrinsics``, ``masks`` and
``frames`` keywords of :class:`fast3r_core.ReconstructOptions`, finds the ``masks/`` folder beside the
photos, and works out what "Re-run Without These" leaves out (``ReconstructOptions.exclude``).

Settings keys read here: ``intrinsics`` ("auto" | "estimate" | "file"), ``intrinsics_file``,
``masks`` ("auto" | "none" | "folder"), ``masks_folder`` and ``frames`` ("sharp" | "uniform").

Light on purpose (no numpy): the GUI thread builds the options of a run with it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.settings import Settings
from fast3r_core.errors import InputError

__all__ = [
    "FRAME_CHOICES",
    "INTRINSICS_CHOICES",
    "MASKS_CHOICES",
    "MASKS_FOLDER_NAME",
    "MIN_VIEWS_LEFT",
    "InputChoices",
    "auto_masks_folder",
    "input_choices",
    "views_to_exclude",
]

log = logging.getLogger(__name__)

#: The folder of masks looked for beside the photos (COLMAP's and Nerfstudio's name).
MASKS_FOLDER_NAME = "masks"
#: A re-run that leaves views out keeps at least this many (a pose needs a second view).
MIN_VIEWS_LEFT = 2

#: Settings value of ``intrinsics`` -> label of the run options' choice.
INTRINSICS_CHOICES: dict[str, str] = {
    "auto": "Auto (EXIF, else estimated)",
    "estimate": "Estimate (ignore EXIF)",
    "file": "From file...",
}
#: Settings value of ``masks`` -> label.
MASKS_CHOICES: dict[str, str] = {
    "auto": f"Automatic (a {MASKS_FOLDER_NAME}/ folder beside the photos)",
    "none": "None",
    "folder": "From folder...",
}
#: Settings value of ``frames`` (``ReconstructOptions.frames``) -> label.
FRAME_CHOICES: dict[str, str] = {
    "sharp": "Sharpest of each time span",
    "uniform": "Uniform (evenly spaced)",
}


def auto_masks_folder(inputs: Sequence[str | os.PathLike[str]]) -> Path | None:
    """The ``masks/`` folder beside the photos of ``inputs``, or None.

    The photos' folder is the folder given (a folder input), or the folder of the image files given
    (when they all share one). A video has none: its frames are made by the run, and no photo lies
    beside it. The folder must exist; its masks are matched by photo name by the core
    (:func:`fast3r_core.masks.find_mask`).
    """
    from fast3r_core import is_video

    folders: set[Path] = set()
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            folders.add(p.resolve())
        elif is_video(p):
            return None
        else:
            folders.add(p.resolve().parent)
    if len(folders) != 1:
        return None
    candidate = next(iter(folders)) / MASKS_FOLDER_NAME
    return candidate if candidate.is_dir() else None


@dataclass(frozen=True)
class InputChoices:
    """The input options of one run, from the settings.

    Attributes
    ----------
    intrinsics : str
        ``ReconstructOptions.intrinsics``: "auto", "estimate", or the path of an intrinsics file.
    masks : str or None
        ``ReconstructOptions.masks``: the masks folder, or None.
    frames : str
        ``ReconstructOptions.frames``: "sharp" or "uniform".
    masks_found : bool
        ``masks`` is the ``masks/`` folder found beside the photos (not one the user chose).
    """

    intrinsics: str = "auto"
    masks: str | None = None
    frames: str = "sharp"
    masks_found: bool = False

    def keywords(self) -> dict[str, Any]:
        """The :class:`~fast3r_core.ReconstructOptions` keywords."""
        return {"intrinsics": self.intrinsics, "masks": self.masks, "frames": self.frames}

    def describe(self) -> str:
        """One line for the log and the status bar ("" when the defaults apply)."""
        parts = []
        if self.masks is not None:
            how = "found beside the photos" if self.masks_found else "chosen in the run options"
            parts.append(f"masks from {self.masks} ({how})")
        if self.intrinsics not in ("auto", "estimate"):
            parts.append(f"intrinsics from {self.intrinsics}")
        elif self.intrinsics == "estimate":
            parts.append("intrinsics estimated (EXIF ignored)")
        return "; ".join(parts)


def input_choices(settings: Settings, inputs: Sequence[str | os.PathLike[str]]) -> InputChoices:
    """The input options of a run of ``inputs`` with the stored run options.

    A chosen file or folder is passed on as it is, even when it is missing: the core then names it in
    a clear error (:class:`~fast3r_core.errors.IntrinsicsError`, :class:`~fast3r_core.errors.MaskError`),
    which the window shows. "From file" / "From folder" without a path fall back to the automatic choice.
    """
    intrinsics = str(settings.get("intrinsics"))
    if intrinsics == "file":
        path = str(settings.get("intrinsics_file")).strip()
        if path:
            intrinsics = str(Path(path).expanduser())
        else:
            log.warning("intrinsics from a file, but no file chosen: using EXIF or the estimate")
            intrinsics = "auto"
    elif intrinsics not in ("auto", "estimate"):
        log.warning("ignoring the intrinsics setting %r", intrinsics)
        intrinsics = "auto"

    mode = str(settings.get("masks"))
    masks: str | None = None
    found = False
    if mode == "folder":
        folder = str(settings.get("masks_folder")).strip()
        if folder:
            masks = str(Path(folder).expanduser())
        else:
            log.warning("masks from a folder, but no folder chosen: looking for %s/", MASKS_FOLDER_NAME)
            mode = "auto"
    if mode == "auto":
        auto = auto_masks_folder(inputs)
        if auto is not None:
            masks, found = str(auto), True

    frames = str(settings.get("frames"))
    if frames not in FRAME_CHOICES:
        log.warning("ignoring the frames setting %r", frames)
        frames = "sharp"
    return InputChoices(intrinsics=intrinsics, masks=masks, frames=frames, masks_found=found)


def views_to_exclude(
    image_paths: Sequence[str], options: Mapping[str, Any], views: Sequence[int]
) -> tuple[str, ...]:
    """``ReconstructOptions.exclude`` of a re-run of a result without ``views``.

    Parameters
    ----------
    image_paths : sequence of str
        The result's photos, one per view (``Reconstruction.image_paths``).
    options : mapping
        The result's run options (``Reconstruction.options``): the views its run left out already
        (``exclude``) stay out.
    views : sequence of int
        Indices of the views to leave out.

    Returns
    -------
    tuple of str
        The file names to leave out: the earlier ones first, then the new ones in view order.

    Raises
    ------
    InputError
        No view is given, an index is out of range, or fewer than :data:`MIN_VIEWS_LEFT` views would
        remain.
    """
    n = len(image_paths)
    chosen = sorted(set(int(v) for v in views))
    if not chosen:
        raise InputError("Select the views to leave out first.")
    if chosen[0] < 0 or chosen[-1] >= n:
        raise InputError(f"There is no view {chosen[-1] if chosen[-1] >= n else chosen[0]}.")
    if n - len(chosen) < MIN_VIEWS_LEFT:
        raise InputError(
            f"Leaving out {len(chosen)} of the {n} views would leave "
            f"{'no view' if n == len(chosen) else 'one view'}: at least {MIN_VIEWS_LEFT} views must remain."
        )
    stored = options.get("exclude")  # a project's options: only a list of names is meaningful
    earlier = [x for x in stored if isinstance(x, str)] if isinstance(stored, list) else []
    # a file name, which the project and the log show; the path when another input has that name
    base = [os.path.basename(p) for p in image_paths]
    names = [*earlier, *(base[v] if base.count(base[v]) == 1 else str(image_paths[v]) for v in chosen)]
    return tuple(dict.fromkeys(names))  # in order, without repeats
