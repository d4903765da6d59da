"""The outputs of ``fast3r reconstruct`` and ``fast3r export``: their names, and the output folder.

An output folder is checked before the model runs (it can be written; it is new, empty or a previous
output of this program, listed in its manifest) and filled atomically through a staging folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from fast3r_core.errors import ExportError, InputError
from fast3r_core.export.formats import FORMATS

__all__ = [
    "DEFAULT_CONF_PERCENTILE",
    "MANIFEST_NAME",
    "OUTPUT_NAMES",
    "RECONSTRUCT_FORMATS",
    "WRITE_ORDER",
    "OutputFolder",
    "discard_on_failure",
    "display_name",
    "top_percent_of",
]

log = logging.getLogger(__name__)

#: Default of ``--conf-percentile``: drop the lowest 10 % of the points (by confidence) from exports.
DEFAULT_CONF_PERCENTILE = 10.0

#: What ``reconstruct --formats`` accepts.
RECONSTRUCT_FORMATS: tuple[str, ...] = ("ply", "glb", "cameras", "nerfstudio", "colmap", "project")
#: Writing order: nerfstudio writes points.ply for its own use, the "ply" output then replaces it.
WRITE_ORDER: tuple[str, ...] = ("nerfstudio", "ply", "glb", "cameras", "colmap", "project")
#: Name of each output inside ``reconstruct --out DIR`` (``nerfstudio`` also writes points.ply and images/),
#: from the export table (:data:`fast3r_core.export.FORMATS`) plus the project file.
OUTPUT_NAMES: dict[str, str] = {
    **{key: fmt.reconstruct_name for key, fmt in FORMATS.items()},
    "project": "project.f3r",
}


def display_name(fmt: str) -> str:
    """Output name of a format in ``reconstruct --out DIR`` (folders end in "/")."""
    folder = fmt in FORMATS and FORMATS[fmt].is_folder and FORMATS[fmt].output_name is None
    return OUTPUT_NAMES[fmt] + ("/" if folder else "")


def top_percent_of(conf_percentile: float) -> float:
    """``--conf-percentile P`` drops the lowest P % of the points: keep the top (100 - P) %."""
    return 100.0 - conf_percentile


# ------------------------------------------------------------------------------------------------
# Output folder: checked before the model runs, filled atomically
# ------------------------------------------------------------------------------------------------
MANIFEST_NAME = ".fast3r-outputs.json"
"""File in an output folder listing the files this program wrote there (so a later run may replace
them, and only them)."""
_MANIFEST_FORMAT = "fast3r-outputs"


def _read_manifest(folder: Path) -> set[str] | None:
    """Relative paths (forward slashes) listed in ``folder``'s manifest; None when there is none."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT:
        return None
    files = data.get("files")
    if not isinstance(files, list):
        return None
    return {f for f in files if isinstance(f, str)}


def _files_under(folder: Path) -> list[str]:
    """Every file and symlink under ``folder`` (relative, forward slashes), without the manifest."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            p = (rel / name).as_posix()
            if p != MANIFEST_NAME:
                out.append(p)
    return sorted(out)


class OutputFolder:
    """An output folder (``reconstruct --out``, ``export`` to a folder), written through a staging folder.

    Creation checks that the folder can be created and written (before anything slow runs) and that
    it is new, empty, or a previous output of this program (its manifest lists every file in it);
    a folder holding anything else is refused unless ``overwrite``. Stale staging folders and
    temporary files of killed runs are removed first.

    Outputs are written into a hidden staging folder beside it (inside it when its parent is
    read-only), then moved into place by :meth:`commit`: when the folder holds only our files, it is
    swapped with the staging folder by two renames, so a reader (or a killed run) never sees old and
    new outputs mixed (``replace_all``: earlier outputs this run does not write again go too, as a
    result folder holds one result). Otherwise (files of the user's there with ``overwrite``, or
    earlier outputs of another command) the staged files are moved in one by one: files of the same
    names are replaced, the others kept. :meth:`discard` removes the staging
    folder and the folders this run created, so a failed or cancelled run leaves nothing behind.
    """

    def __init__(
        self, out: str | os.PathLike[str], *, overwrite: bool = False, replace_all: bool = False
    ) -> None:
        self.replace_all = replace_all
        from fast3r_core.atomic import clean_stale

        given = Path(os.path.abspath(os.fspath(out)))
        # a symlink to a folder: the outputs go into the folder it names (what the user asked), and the
        # staging folder beside that one, so that the final renames stay on one file system
        self.out = Path(os.path.realpath(given)) if given.is_symlink() else given
        if self.out != given:
            log.info("output folder %s is a link to %s: writing there", given, self.out)
        self._created: list[Path] = []
        missing = []
        p = self.out
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"The output folder {self.out} is a file, not a folder")
        clean_stale(self.out.parent, restore_to=self.out)
        if self.out.is_dir():
            clean_stale(self.out)
        self.previous = _read_manifest(self.out) if self.out.is_dir() else None
        present = _files_under(self.out) if self.out.is_dir() else []
        self.foreign = [f for f in present if f not in (self.previous or set())]
        if self.foreign and not overwrite:
            shown = ", ".join(self.foreign[:5]) + (
                f" and {len(self.foreign) - 5} more" if len(self.foreign) > 5 else ""
            )
            raise InputError(
                f"The output folder {self.out} holds files this program did not write ({shown}). "
                "Choose a new or empty folder, or pass --overwrite to write into it anyway (files of the "
                "same names are then replaced, the others kept)."
            )
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"Cannot create the output folder {self.out}: {exc.strerror or exc}") from exc
        self._created = list(reversed(missing))  # shallowest first
        try:
            fd, probe = tempfile.mkstemp(prefix=".fast3r-write-test-", dir=self.out)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            self._remove_created()
            reason = exc.strerror or exc
            raise InputError(f"Cannot write into the output folder {self.out}: {reason}") from exc
        prefix = f".{self.out.name or 'out'}.partial-{os.getpid()}-"
        self._beside = True
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=prefix, dir=self.out.parent))
        except OSError:
            self.staging = Path(tempfile.mkdtemp(prefix=prefix, dir=self.out))
            self._beside = False
        from fast3r_core.atomic import apply_folder_mode

        apply_folder_mode(self.staging, like=self.out)  # it may become the folder: not mkdtemp's 0700
        log.debug("staging outputs in %s", self.staging)

    def refuse_inputs_inside(self, inputs: Iterable[str | os.PathLike[str]]) -> None:
        """Refuse an output folder that holds any of ``inputs`` (the photos or videos a run reads).

        Outputs replace files of their names (the ``images/`` copies of COLMAP and Nerfstudio exports)
        and a re-written output folder replaces the earlier one whole: either could replace or remove
        the user's originals. Whatever ``--overwrite`` says, the inputs are never written over.

        Raises
        ------
        InputError
            An input lies inside the output folder (links resolved).
        """
        out = Path(os.path.realpath(self.out))
        inside = []
        for p in inputs:
            real = Path(os.path.realpath(p))
            if real == out or out in real.parents:
                inside.append(str(p))
        if inside:
            self.discard()
            shown = ", ".join(inside[:3]) + (f" and {len(inside) - 3} more" if len(inside) > 3 else "")
            raise InputError(
                f"The output folder {self.out} holds input files ({shown}): outputs written there could "
                "replace them. Choose an output folder outside the inputs, e.g. a new folder beside them."
            )

    def commit(self) -> list[Path]:
        """Move the staged outputs into the output folder; return the top-level outputs.

        Conflicts (a file where a folder goes or the reverse) are found before anything is moved.
        """
        entries = sorted(self.staging.iterdir())
        written = _files_under(self.staging)
        replaced = self.replace_all or (self.previous or set()) <= set(written)
        if self._beside and not self.foreign and replaced:
            # everything there is ours and is replaced: swap the folders, no mixed state ever
            self._write_manifest(self.staging, written)
            self._swap()
        else:
            for entry in entries:
                self._check_merge(entry, self.out / entry.name)
            for entry in entries:
                self._merge(entry, self.out / entry.name)
            shutil.rmtree(self.staging, ignore_errors=True)
            self._write_manifest(self.out, sorted((self.previous or set()) | set(written)))
        return [self.out / e.name for e in entries]

    def _swap(self) -> None:
        """Replace the folder by the staging folder: two renames (a previous output is moved aside)."""
        from fast3r_core.atomic import replace_dir

        replace_dir(self.staging, self.out)

    @staticmethod
    def _write_manifest(folder: Path, files: list[str]) -> None:
        from fast3r_core.atomic import atomic_write

        with atomic_write(folder / MANIFEST_NAME, "w") as f:
            json.dump({"format": _MANIFEST_FORMAT, "files": files}, f, indent=0)

    @staticmethod
    def _is_dir(p: Path) -> bool:
        return p.is_dir() and not p.is_symlink()

    def _check_merge(self, src: Path, dest: Path) -> None:
        if not dest.exists() and not dest.is_symlink():
            return
        if self._is_dir(src) != self._is_dir(dest):
            what = "file" if self._is_dir(src) else "folder"
            raise ExportError(f"Cannot write {dest}: a {what} of that name is in the way")
        if self._is_dir(src):
            for child in src.iterdir():
                self._check_merge(child, dest / child.name)

    def _merge(self, src: Path, dest: Path) -> None:
        if self._is_dir(src) and self._is_dir(dest):
            for child in sorted(src.iterdir()):
                self._merge(child, dest / child.name)
        else:
            self._move(src, dest)

    @staticmethod
    def _move(src: Path, dest: Path) -> None:
        try:
            os.replace(src, dest)
        except OSError:  # another file system (the output folder is a mount point)
            shutil.move(os.fspath(src), os.fspath(dest))

    def discard(self) -> None:
        """Remove the staged outputs and the folders this run created (if still empty)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self._remove_created()

    def _remove_created(self) -> None:
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty


@contextlib.contextmanager
def discard_on_failure(out: OutputFolder) -> Iterator[OutputFolder]:
    """Discard the staged outputs when the block fails (including Ctrl-C)."""
    try:
        yield out
    except BaseException:
        out.discard()
        raise
