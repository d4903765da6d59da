"""The one way fast3r_core and the app put a file (or a folder) into place atomically.

Every file is written to a temporary file in the destination's folder (same file system, so that the
final :func:`os.replace` is an atomic rename) and renamed over the destination only when the write
succeeded. On any failure the temporary file is removed and the destination keeps its old content (or
stays absent): a reader never sees a half-written file. Folders (:func:`atomic_dir`) are written into a
staging folder beside the destination and swapped in by two renames (:func:`replace_dir`).

Used by the exporters, the project file, saved models and training states, the video-frame cache, and
the app's screenshots and recordings. Temporary names (``.<name>.<pid>-<random>.tmp[<suffix>]``,
``.<name>.partial-<pid>-<random>``, ``.<name>.old-<pid>-<random>``) carry the writer's process id, so
:func:`clean_stale` can tell what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from fast3r_core.errors import ExportError, Fast3RError

__all__ = [
    "TMP_SUFFIX",
    "apply_folder_mode",
    "atomic_copy",
    "atomic_dir",
    "atomic_path",
    "atomic_write",
    "clean_stale",
    "ensure_dir",
    "pid_alive",
    "replace_dir",
]

TMP_SUFFIX = ".tmp"
"""Temporary files are named ``.<final name>.<pid>-<random>.tmp`` (plus an optional suffix, see
:func:`atomic_path`): the pid tells a stale one."""
_STALE_RE = re.compile(r"^\..+\.(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9]+)?$")

ErrorType = type[Fast3RError] | None
"""Exception raised for an ``OSError`` (naming the path and the reason); None lets the ``OSError``
propagate unchanged (callers that report OS errors themselves)."""
_STALE_DIR_RE = re.compile(r"^\..+\.(?P<kind>partial|old)-(?P<pid>\d+)-[A-Za-z0-9_]+$")

log = logging.getLogger(__name__)


def _fail(error: ErrorType, what: str, exc: OSError) -> BaseException:
    """The exception to raise for ``exc``: ``error(message)`` or, without an error type, ``exc`` itself."""
    if error is None:
        return exc
    return error(f"{what}: {exc.strerror or exc}")


def ensure_dir(folder: str | os.PathLike[str], error: ErrorType = ExportError) -> Path:
    """Create ``folder`` (and its parents) if needed.

    Parameters
    ----------
    folder : path-like
        Folder to create.
    error : type of Fast3RError or None
        Exception raised (with the path and the reason) when the folder cannot be created; None
        re-raises the ``OSError``.

    Returns
    -------
    Path
        The folder.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(error, f"Cannot create the folder {str(folder)!r}", exc) from exc
    return folder


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str],
    *,
    error: ErrorType = ExportError,
    fsync: bool = False,
    suffix: str = "",
    make_parents: bool = True,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    Use this with libraries that want a file name rather than a file object. The temporary file
    exists (empty) when the block starts.

    Parameters
    ----------
    path : path-like
        Final destination.
    error : type of Fast3RError or None
        Exception raised, naming the path and the reason, when an ``OSError`` happens while creating,
        writing or renaming; None lets the ``OSError`` propagate. Other exceptions propagate unchanged
        (after the clean-up).
    fsync : bool
        Flush the file to the disk before the rename (durable after a power cut, slower).
    suffix : str
        Appended to the temporary name (e.g. ".mp4": encoders pick the container from the suffix).
    make_parents : bool
        Create missing parent folders (else a missing folder is an error).

    Raises
    ------
    Fast3RError
        ``error`` for an unwritable destination (missing permission, a folder in the way, disk full).
    """
    dest = Path(path)
    parent = dest.parent if str(dest.parent) else Path(".")
    if make_parents:
        ensure_dir(parent, error)
    if dest.is_dir():
        exc = IsADirectoryError(21, "a folder of that name exists", str(dest))
        if error is None:
            raise exc
        raise error(f"Cannot write {str(dest)!r}: a folder of that name exists")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dest.name}.{os.getpid()}-", suffix=TMP_SUFFIX + suffix, dir=parent
        )
    except OSError as exc:
        raise _fail(error, f"Cannot write {str(dest)!r}", exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        # mkstemp creates 0600 files; give the result the usual permissions of a new file.
        _apply_default_mode(tmp, like=dest)
        os.replace(tmp, dest)
    except OSError as exc:
        _remove_quietly(tmp)
        if error is None:
            raise
        raise _fail(error, f"Cannot write {str(dest)!r}", exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    error: ErrorType = ExportError,
    fsync: bool = False,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` when the block succeeds.

    Parameters
    ----------
    path : path-like
        Final destination; parent folders are created when missing.
    mode : {"wb", "w"}
        Binary or text mode.
    error : type of Fast3RError or None
        Exception raised (with the path and the reason) for an ``OSError``; None re-raises it.
    fsync : bool
        Flush to the disk before the rename.
    encoding, newline : str or None
        Passed to :func:`open` in text mode (``encoding`` defaults to UTF-8 there).

    Yields
    ------
    file object
        The open temporary file. Do not close it yourself.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, error=error, fsync=False) as tmp:
        try:
            f = open(tmp, mode, encoding=encoding, newline=newline)
        except OSError as exc:
            raise _fail(error, f"Cannot write {str(path)!r}", exc) from exc
        try:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        finally:
            f.close()


def replace_dir(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Put the folder ``src`` at ``dest`` by renames: a reader sees the old folder or the new one.

    ``src`` and ``dest`` must be on the same file system (``src`` is normally a staging folder beside
    ``dest``). A non-empty ``dest`` is first renamed aside to ``.<name>.old-<pid>-<random>`` (put back
    if the second rename fails, restored by :func:`clean_stale` if the process is killed in between),
    then removed.

    Raises
    ------
    OSError
        A rename failed (``dest`` then holds its previous content).
    """
    src, dest = Path(src), Path(dest)
    aside = None
    if dest.is_dir() and any(dest.iterdir()):
        aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-{os.getpid()}-", dir=dest.parent))
        os.replace(dest, aside)  # onto the empty folder mkdtemp made
    elif dest.is_dir():
        dest.rmdir()
    try:
        os.replace(src, dest)
    except OSError:
        if aside is not None:
            os.replace(aside, dest)  # put the previous content back
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, error: ErrorType = ExportError) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; it replaces ``path`` when the block succeeds.

    On failure the staging folder is removed and ``path`` keeps its previous content.

    Parameters
    ----------
    path : path-like
        The folder to (re)write; its parent folders are created when missing.
    error : type of Fast3RError or None
        Exception raised for an ``OSError`` while staging or swapping; None re-raises it.
    """
    dest = Path(path)
    parent = ensure_dir(dest.parent if str(dest.parent) else Path("."), error)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise _fail(error, f"Cannot write {str(dest)!r}", exc) from exc
    apply_folder_mode(staging, like=dest)
    try:
        yield staging
        replace_dir(staging, dest)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if error is None:
            raise
        raise _fail(error, f"Cannot write {str(dest)!r}", exc) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def atomic_copy(src: str | os.PathLike[str], dest: str | os.PathLike[str], *, link: bool = False) -> str:
    """Put a copy of ``src`` at ``dest`` atomically (a hard link only when ``link`` asks for one).

    A hard link costs no space and no time, but it shares its content with the source: editing one
    edits the other, so it is never the default. It is not possible across file systems or on some
    (FAT, network shares), and then the file is copied.

    Parameters
    ----------
    src, dest : path-like
        Source file and destination file (replaced if it exists).
    link : bool
        Try a hard link first (default False: a real copy).

    Returns
    -------
    str
        "link" or "copy": what was done.

    Raises
    ------
    ExportError
        The source cannot be read or the destination cannot be written.
    """
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise ExportError(f"Cannot copy {str(src)!r}: the file does not exist")
    with atomic_path(dest) as tmp:
        if link:
            try:
                tmp.unlink()
                os.link(src, tmp)
                return "link"
            except OSError:
                # EXDEV (other file system), EPERM (FAT, some shares): fall back to a real copy.
                log.debug("hard link %s -> %s failed, copying", src, dest)
        shutil.copyfile(src, tmp)
    return "copy"


def pid_alive(pid: int) -> bool:
    """Whether a process of this id exists (on this machine). Errs on the side of "alive"."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell
    return True


def clean_stale(folder: str | os.PathLike[str], *, restore_to: Path | None = None) -> int:
    """Remove what killed runs of this program left in ``folder``: temporary files and staging folders.

    Only names this program makes are considered (``.<name>.<pid>-<random>.tmp`` files and
    ``.<name>.partial-<pid>-<random>`` / ``.<name>.old-<pid>-<random>`` folders), and only when the
    process ``<pid>`` no longer exists, so a run in progress is never disturbed. An ``.old-`` folder
    (the previous outputs, moved aside while new ones were moved in) is renamed back to
    ``restore_to`` when that is missing, else removed.

    Returns
    -------
    int
        Number of entries removed or restored. Errors are logged, never raised.
    """
    done = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        m_file = _STALE_RE.match(entry.name)
        m_dir = _STALE_DIR_RE.match(entry.name)
        try:
            if m_file and entry.is_file(follow_symlinks=False) and not pid_alive(int(m_file["pid"])):
                os.unlink(entry.path)
            elif m_dir and entry.is_dir(follow_symlinks=False) and not pid_alive(int(m_dir["pid"])):
                if m_dir["kind"] == "old" and restore_to is not None and not os.path.lexists(restore_to):
                    os.rename(entry.path, restore_to)
                    log.warning("restored %s, left aside by a run that was killed", restore_to)
                else:
                    shutil.rmtree(entry.path)
            else:
                continue
        except OSError as exc:
            log.debug("cannot clean %s: %s", entry.path, exc)
            continue
        log.info("removed %s, left behind by a run that was killed", entry.path)
        done += 1
    return done


@functools.cache
def _umask() -> int:
    """The process umask, read once (os.umask both sets and gets it, so do it only once)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _apply_default_mode(path: Path, like: Path | None = None) -> None:
    """chmod the new file ``path``: the permissions of the file ``like`` it replaces (a group-readable
    project stays group-readable), else 0666 minus the process umask (what open() would have given)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        # A hard link shares its inode with the source: do not change the source's mode.
        if os.stat(path).st_nlink == 1:
            os.chmod(path, _mode_like(like, 0o666))


def _mode_like(like: Path | None, default: int) -> int:
    """The permission bits of ``like`` when it is an existing file or folder of the same kind as the
    ``default`` (0666: a file, 0777: a folder), else ``default`` minus the umask."""
    if like is not None:
        with contextlib.suppress(OSError):
            st = os.stat(like, follow_symlinks=False)
            if (stat.S_ISDIR(st.st_mode) and default == 0o777) or (
                stat.S_ISREG(st.st_mode) and default == 0o666
            ):
                return stat.S_IMODE(st.st_mode)
    return default & ~_umask()


def apply_folder_mode(folder: str | os.PathLike[str], like: str | os.PathLike[str] | None = None) -> None:
    """chmod a folder made by :func:`tempfile.mkdtemp` (0700) that is to take the place of ``like``:
    ``like``'s permissions when it is a folder, else 0777 minus the umask (what mkdir would give)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        os.chmod(folder, _mode_like(Path(like) if like is not None else None, 0o777))


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
