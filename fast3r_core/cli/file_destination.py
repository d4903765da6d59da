"""Where ``fast3r`` writes one file: refusing to replace what the user did not ask to replace.

An existing file is replaced only when this program wrote it (recognised by its content) or when
``--overwrite`` says so; something that is not a regular file (a device, a pipe, a folder) never is.
A project updated in place through a symlink is written where the link points (the link stays).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from fast3r_core.errors import InputError

__all__ = ["check_file_destination", "project_destination"]

log = logging.getLogger(__name__)

_SIGNATURES: dict[str, bytes] = {
    "ply": b"comment Fast3R Studio point cloud",
    "glb": b'"generator":"Fast3R Studio"',
    "cameras": b'"convention": "cam_to_world maps camera coordinates',
}


def _refuse_special(dest: Path) -> None:
    """A destination that exists and is neither a regular file nor a link (a device such as /dev/null,
    a pipe, a socket) is refused whatever ``--overwrite`` says: the atomic rename would replace it."""
    try:
        st = os.lstat(dest)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{str(dest)!r} is a folder; give a file name")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise InputError(
            f"{str(dest)!r} is not a regular file (a device, pipe or socket): it is never replaced"
        )


def check_file_destination(dest: Path, fmt: str, overwrite: bool) -> None:
    """Refuse to replace an existing file that this program did not write (unless ``overwrite``).

    A file of ours is recognised by its content (the PLY header comment, the GLB generator, the
    cameras.json convention), read from its first 64 kB.
    """
    _refuse_special(dest)
    if overwrite or not (dest.exists() or dest.is_symlink()):
        return
    if dest.is_file() and not dest.is_symlink():
        try:
            with open(dest, "rb") as f:
                head = f.read(65536)
        except OSError:
            head = b""
        if _SIGNATURES.get(fmt, b"\0never") in head:
            return
    raise InputError(
        f"{dest} already exists and was not written by this program; choose another name, or pass "
        "--overwrite to replace it"
    )


def project_destination(
    project: str | os.PathLike[str], out: str | os.PathLike[str] | None, overwrite: bool
) -> Path:
    """The file ``fast3r edit`` / ``fast3r add`` writes their project to.

    Parameters
    ----------
    project : path-like
        The project read (``PROJECT.f3r``).
    out : path-like or None
        ``--out``; None updates ``project`` in place.
    overwrite : bool
        ``--overwrite``: an existing ``--out`` file that is not a Fast3R project may be replaced.

    Returns
    -------
    Path
        The file to write: ``project`` itself (the file a symlink names, so that the link stays and
        the real project is updated), or ``out``.

    Raises
    ------
    InputError
        ``out`` is a folder, a device or pipe, lies in a missing folder, or is an existing file that is
        not a Fast3R project (or a link) and ``overwrite`` is not given.
    """
    from fast3r_core.project_file import is_project_file

    src = Path(project)
    dest = Path(out) if out is not None else src
    if out is not None and dest.exists() and src.exists() and os.path.samefile(dest, src):
        dest = src  # --out names the project itself: an update in place
    if dest == src:
        real = Path(os.path.realpath(src))
        if real != Path(os.path.abspath(src)):
            log.info("%s is a link to %s: updating that file", src, real)
        _refuse_special(real)
        return real
    _refuse_special(dest)
    if not dest.parent.is_dir():
        raise InputError(f"the folder of --out {str(dest)!r} does not exist")
    if overwrite or not (dest.exists() or dest.is_symlink()) or is_project_file(dest):
        return dest
    what = "a link" if dest.is_symlink() else "not a Fast3R Studio project"
    raise InputError(
        f"{dest} already exists and is {what}; choose another name, or pass --overwrite to replace it"
    )
