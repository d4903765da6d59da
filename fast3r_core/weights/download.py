"""Downloading a model from the Hugging Face Hub: resumable, verified against the Hub's checksums.

huggingface_hub is imported inside the functions that need it (not at import time).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fast3r_core.errors import Cancelled, DownloadError, LicenseNotAcceptedError, ModelNotAvailableError
from fast3r_core.progress import ProgressCallback, check_cancel, report

from .registry import ModelInfo, _info_for, _local_folder, _not_available, models_cache_dir

__all__ = ["download_model"]

log = logging.getLogger(__name__)

_HASH_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Remote:
    filename: str
    url: str
    headers: dict[str, str]
    size: int | None
    etag: str
    commit: str | None


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the Hub cannot be reached" for the installed huggingface_hub."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    errs: list[type[BaseException]] = [OfflineModeIsEnabled, LocalEntryNotFoundError]
    errs += [ConnectionError, TimeoutError]
    # the HTTP library depends on the huggingface_hub version (httpx2 in 2.x, requests before 1.0)
    candidates = (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
        ("requests", "Timeout"),
    )
    for mod, name in candidates:
        try:
            errs.append(getattr(__import__(mod), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


def _remote_file(info: ModelInfo, filename: str, revision: str, cache_dir: str | Path | None) -> _Remote:
    """Metadata (download URL, size, etag) of one file of a Hub repo: one HEAD request."""
    import huggingface_hub
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import build_hf_headers

    assert info.repo_id is not None
    url = huggingface_hub.hf_hub_url(info.repo_id, filename, revision=revision)
    try:
        meta = huggingface_hub.get_hf_file_metadata(url)
    except _network_errors() as exc:
        raise _not_available(info, cache_dir, f"the Hugging Face Hub cannot be reached: {exc}") from exc
    except GatedRepoError as exc:
        raise DownloadError(
            f"{info.hub_url} is gated: accept its conditions on the website and log in with "
            f"`hf auth login`, then retry ({exc})"
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError) as exc:
        raise ModelNotAvailableError(
            f"{filename} of {info.repo_id} (revision {revision}) was not found on the Hugging Face Hub "
            f"({info.hub_url}): {exc}"
        ) from exc
    except HfHubHTTPError as exc:
        raise DownloadError(f"The Hugging Face Hub refused {url}: {exc}") from exc
    if not meta.etag:
        raise DownloadError(f"The Hub sent no checksum (ETag) for {url}; cannot verify the download")
    headers = build_hf_headers()
    target = url
    # Plain files (not Xet) redirect to a signed CDN URL: go there directly and, as huggingface_hub
    # does, do not send the token to another host.
    if meta.xet_file_data is None and meta.location and meta.location != url:
        target = meta.location
        if urlparse(target).netloc != urlparse(url).netloc:
            headers.pop("authorization", None)
    return _Remote(filename, target, headers, meta.size, meta.etag, meta.commit_hash)


def _hasher(etag: str, size: int) -> tuple[Any, str] | None:
    """Hash object matching the Hub's etag: sha256 for LFS files, git blob sha1 for small files."""
    tag = etag.lower()
    if re.fullmatch(r"[0-9a-f]{64}", tag):
        return hashlib.sha256(), tag
    if re.fullmatch(r"[0-9a-f]{40}", tag):
        h = hashlib.sha1(usedforsecurity=False)
        h.update(f"blob {size}\0".encode())  # git hashes a header before the content
        return h, tag
    return None


def _verify(
    path: Path, remote: _Remote, progress: ProgressCallback | None, cancel: threading.Event | None
) -> None:
    """Compare the file against the Hub's checksum; on mismatch delete it and raise DownloadError."""
    size = path.stat().st_size
    made = _hasher(remote.etag, size)
    if made is None:
        log.warning("%s: the Hub's ETag %r is not a checksum; not verified", remote.filename, remote.etag)
        return
    h, expected = made
    done = 0
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
            done += len(block)
            report(progress, "verify", done, size, remote.filename)
            check_cancel(cancel)  # a complete .part is kept: the next call only re-verifies it
    if h.hexdigest() != expected:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{remote.filename} is corrupt: checksum {h.hexdigest()} does not match the Hub's {expected}. "
            "The bad file was removed; download again."
        )


def _bar_class(on_update: Callable[[int, int], None]) -> type:
    """A tqdm stand-in for huggingface_hub's ``tqdm_class``: forwards byte counts to ``on_update``.

    ``on_update(bytes_in_file, delta)`` may raise (Cancelled) to stop the download.
    """

    class _Bar:
        def __init__(self, *args: Any, initial: int = 0, total: int | None = None, **kwargs: Any) -> None:
            # ``initial`` is what is on disk after a resume (0 if the server ignored the Range)
            self.n = int(initial or 0)
            self.total = total
            on_update(self.n, 0)

        def update(self, n: int | float | None = 1) -> None:
            delta = int(n or 0)
            self.n += delta
            on_update(self.n, delta)

        def close(self) -> None:
            pass

        def refresh(self, *args: Any, **kwargs: Any) -> None:
            pass

        def set_description(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __enter__(self) -> _Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    return _Bar


def _fetch(
    remote: _Remote,
    folder: Path,
    on_bytes: Callable[[int], None],
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> None:
    """Download one file into ``folder``, resumable.

    Bytes go to ``<file>.<etag>.part`` (kept on cancel or network failure), which is renamed to
    ``<file>`` once its checksum matches.
    """
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.file_download import http_get

    dest = folder / remote.filename
    part = folder / f"{remote.filename}.{remote.etag[:16]}.part"
    for stale in folder.glob(f"{remote.filename}.*.part"):
        if stale != part:  # left by a download of another revision
            stale.unlink(missing_ok=True)
    if part.exists() and remote.size is not None and part.stat().st_size > remote.size:
        part.unlink()

    def on_update(in_file: int, delta: int) -> None:
        on_bytes(in_file)
        if delta:
            check_cancel(cancel)

    with part.open("r+b" if part.exists() else "wb") as f:
        f.seek(0, os.SEEK_END)
        resume = f.tell()
        if resume:
            log.info("Resuming %s at %d bytes", remote.filename, resume)
        try:
            http_get(
                remote.url,
                f,
                resume_size=resume,
                headers=remote.headers,
                expected_size=remote.size,
                displayed_filename=remote.filename,
                tqdm_class=_bar_class(on_update),
            )
        except Cancelled:
            raise
        except _network_errors() as exc:
            raise DownloadError(
                f"Download of {remote.filename} interrupted ({exc}); run it again to resume."
            ) from exc
        except HfHubHTTPError as exc:
            raise DownloadError(f"Download of {remote.filename} failed: {exc}") from exc
        except OSError as exc:
            if exc.errno is not None:  # disk full, permissions: keep what we have
                raise DownloadError(f"Cannot write {part}: {exc.strerror or exc}") from exc
            f.close()
            part.unlink(missing_ok=True)  # size check of huggingface_hub failed: start over next time
            msg = f"Download of {remote.filename} is inconsistent ({exc}); download again."
            raise DownloadError(msg) from exc
    _verify(part, remote, progress, cancel)
    # Not fast3r_core.atomic: the ".part" file must outlive a failed run (the next one resumes it), so
    # it is a named download, not a temporary file; once verified it is renamed into place.
    os.replace(part, dest)


def download_model(
    name: str,
    *,
    accept_license: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """Make a registered model (or any Hub repo id) available locally and return its folder.

    Already available models (bundled or downloaded) return at once without network access. Otherwise
    each file is downloaded into ``<models cache>/<name>/`` with byte progress
    (``report(progress, "download", done, total, filename)`` over all files, then ``"verify"``),
    checked against the Hub's checksum and renamed into place. An interrupted or cancelled download
    keeps its ``.part`` file and the next call resumes it.

    Parameters
    ----------
    name : str
        Registered name (see :data:`MODELS`) or Hub repo id ``owner/name``.
    accept_license : bool
        The user accepted the model's licence (CLI ``--accept-license``, GUI licence dialog).
    progress : callable, optional
        Receives :class:`~fast3r_core.progress.ProgressEvent`.
    cancel : threading.Event, optional
        Set it to stop the download (raises :class:`Cancelled`).
    cache_dir : path, optional
        Models cache folder (default :func:`models_cache_dir`).

    Raises
    ------
    LicenseNotAcceptedError, ModelNotAvailableError, DownloadError, Cancelled
    """
    info = _info_for(name)
    found = _local_folder(info, cache_dir)
    if found is not None:
        return found[0]
    if info.repo_id is None:
        raise _not_available(info, cache_dir)
    if info.requires_license_acceptance and not accept_license:
        raise LicenseNotAcceptedError(
            f"The weights of '{info.name}' ({info.hub_url}) are under the {info.license_name} "
            f"({info.license_url}). {info.license_summary} To accept it and download, pass "
            "--accept-license (CLI) or accept it in the model manager's licence dialog (GUI)."
        )
    check_cancel(cancel)
    from huggingface_hub import constants

    folder = models_cache_dir(cache_dir) / info.name
    if getattr(constants, "HF_HUB_OFFLINE", False):
        raise _not_available(info, cache_dir, "HF_HUB_OFFLINE is set")
    log.info("Downloading %s from %s into %s", info.name, info.hub_url, folder)

    revision = info.revision
    remotes: list[_Remote] = []
    for filename in info.files:
        remotes.append(_remote_file(info, filename, revision, cache_dir))
        # pin the commit of the first file so that all files come from the same revision
        revision = remotes[0].commit or revision
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Cannot create the model cache folder {folder}: {exc.strerror or exc}") from exc

    total = sum(r.size or 0 for r in remotes)
    finished = 0
    for remote in remotes:
        dest = folder / remote.filename
        if dest.is_file():  # complete from an earlier, interrupted run (verified then)
            finished += dest.stat().st_size
            continue
        base = finished

        def on_bytes(in_file: int, base: int = base, remote: _Remote = remote) -> None:
            report(progress, "download", base + in_file, total, remote.filename)

        _fetch(remote, folder, on_bytes, progress, cancel)
        finished += dest.stat().st_size
    report(progress, "download", finished, max(total, finished), "done")
    log.info("Downloaded %s (%d bytes) into %s", info.name, finished, folder)
    return folder
