"""Model registry, weight download and checkpoint loading.

Two models are registered (:data:`MODELS`): the published ``fast3r-vitl-512`` (downloaded from the
Hugging Face Hub into the user cache after the user accepts its licence) and ``demo`` (a small model
bundled in ``resources/models/demo``, trained by this project on synthetic scenes only).

A model is loaded from a folder with ``config.json`` + ``model.safetensors`` (the Hub layout; a
``.pth``/``.bin`` instead of the safetensors file is accepted), from a single weights file with
``config.json`` beside it, from a registered name or from a Hub repo id (``owner/name``).

A checkpoint is data, never code: ``.pth`` files are read with ``torch.load(weights_only=True)``.
Keys are checked strictly; every problem a user can cause is a typed error of
:mod:`fast3r_core.errors`.

Module-level imports are light on purpose (no torch, no huggingface_hub) so that the GUI can show the
registry and the cache state without importing torch; both are imported inside the functions that need
them.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import re
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .atomic import atomic_path
from .errors import (
    Cancelled,
    CheckpointError,
    ConfigError,
    DownloadError,
    InputError,
    InsufficientMemoryError,
    LicenseNotAcceptedError,
    ModelNotAvailableError,
)
from .progress import ProgressCallback, check_cancel, report

if TYPE_CHECKING:
    import torch

    from .model import Fast3R, Fast3RConfig

__all__ = [
    "CACHE_ENV",
    "CONFIG_NAME",
    "MODELS",
    "WEIGHTS_NAME",
    "ModelInfo",
    "ModelStatus",
    "check_config_matches_weights",
    "choose_device",
    "download_model",
    "is_cached",
    "list_models",
    "load_model",
    "model_cache_dir",
    "models_cache_dir",
    "read_state_dict",
    "resolve_model_dir",
    "resources_dir",
    "save_model",
]

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: Weight file names looked for in a model folder, in order of preference.
WEIGHT_CANDIDATES = ("model.safetensors", "model.pth", "model.pt", "pytorch_model.bin", "model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
#: Environment variable: root of the application cache (models go in ``$FAST3R_CACHE_DIR/models``).
CACHE_ENV = "FAST3R_CACHE_DIR"
HUB_URL = "https://huggingface.co"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
# DPT heads of the published module register their four layer convs a second time under this name;
# the safetensors file keeps only layer{1..4}_rn (spec section 1, fact 8).
_ALIAS = re.compile(r"(^|\.)scratch\.layer_rn\.\d+\.")
_HASH_BLOCK = 8 * 1024 * 1024


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    """A registered model.

    Attributes
    ----------
    name : str
        Registry name (also the folder name in the cache).
    description : str
        One line for the model manager.
    repo_id : str or None
        Hugging Face Hub repository, or None for a model that is only bundled.
    license_name, license_url : str
        Licence of the weights.
    license_summary : str
        One sentence on what the licence allows (shown before the user accepts it).
    approx_size_bytes : int or None
        Download size, None when unknown.
    files : tuple of str
        Files that make up the model folder.
    bundled_subdir : str or None
        Folder under :func:`resources_dir` holding a bundled copy.
    requires_license_acceptance : bool
        The user must accept the licence before the download.
    synthetic_only : bool
        Trained on synthetic scenes only: it does not reconstruct real photos (the UI says so).
    revision : str
        Hub revision (branch, tag or commit) to download.
    """

    name: str
    description: str
    repo_id: str | None
    license_name: str
    license_url: str
    license_summary: str = ""
    approx_size_bytes: int | None = None
    files: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME)
    bundled_subdir: str | None = None
    requires_license_acceptance: bool = False
    synthetic_only: bool = False
    revision: str = "main"

    @property
    def bundled_path(self) -> Path | None:
        """Folder of the bundled copy (it may not exist in this installation), or None."""
        return None if self.bundled_subdir is None else resources_dir() / self.bundled_subdir

    @property
    def hub_url(self) -> str | None:
        """Web page of the Hub repository, or None."""
        return None if self.repo_id is None else f"{HUB_URL}/{self.repo_id}"


MODELS: dict[str, ModelInfo] = {
    "fast3r-vitl-512": ModelInfo(
        name="fast3r-vitl-512",
        description="Published Fast3R ViT-Large, 512 px (CVPR 2025), for real photos",
        repo_id="jedyang97/Fast3R_ViT_Large_512",
        license_name="FAIR Noncommercial Research License",
        license_url="https://github.com/facebookresearch/fast3r/blob/main/LICENSE",
        license_summary="Non-commercial research use only; read the licence for the exact terms.",
        approx_size_bytes=2_590_300_000,  # 647,551,368 fp32 parameters + header
        requires_license_acceptance=True,
    ),
    "demo": ModelInfo(
        name="demo",
        description="Small demo model bundled with Fast3R Studio, trained on synthetic scenes only "
        "(it does not reconstruct real photos)",
        repo_id=None,
        license_name="Apache-2.0",
        license_url="https://www.apache.org/licenses/LICENSE-2.0",
        license_summary="Trained by the Fast3R Studio project; free to use.",
        bundled_subdir="models/demo",
        synthetic_only=True,
    ),
}


@dataclass(frozen=True)
class ModelStatus:
    """Local state of a registered model (for the model manager and ``fast3r download --list``).

    Attributes
    ----------
    info : ModelInfo
    available : bool
        Loadable without the network (bundled, or downloaded completely).
    bundled : bool
        ``local_path`` is the bundled copy in the resources.
    local_path : Path or None
        Folder holding config.json + weights when available, else None.
    size_on_disk : int
        Bytes of the complete files in ``local_path`` (0 when not available).
    partial_bytes : int
        Bytes of an interrupted download waiting to be resumed.
    """

    info: ModelInfo
    available: bool
    bundled: bool
    local_path: Path | None
    size_on_disk: int
    partial_bytes: int


def resources_dir() -> Path:
    """Folder of the application resources (icons, bundled demo model, samples).

    In a PyInstaller bundle this is ``<sys._MEIPASS>/resources``, else ``<repo>/resources``.
    """
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def models_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder where downloaded models live, one sub-folder per model.

    ``cache_dir`` if given; else ``$FAST3R_CACHE_DIR/models``; else
    ``platformdirs.user_cache_dir("fast3r-studio")/models``. Nothing is created.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("fast3r-studio", appauthor=False)) / "models"


def _lookup(source: str) -> ModelInfo | None:
    """The registered model with this name or Hub repo id (case-insensitive), or None."""
    if source in MODELS:
        return MODELS[source]
    low = source.lower()
    for info in MODELS.values():
        if info.repo_id is not None and info.repo_id.lower() == low:
            return info
    return None


def _info_for(source: str) -> ModelInfo:
    """ModelInfo of a registered name or repo id, or an ad-hoc one for any other Hub repo id."""
    info = _lookup(source)
    if info is not None:
        return info
    if _HUB_ID.match(source):
        return ModelInfo(
            name=source.replace("/", "--"),
            description=f"Hugging Face Hub repository {source}",
            repo_id=source,
            license_name="see the repository",
            license_url=f"{HUB_URL}/{source}",
        )
    raise ModelNotAvailableError(
        f"Unknown model {source!r}: it is not an existing folder or file, not a registered model "
        f"({', '.join(MODELS)}) and not a Hugging Face Hub repo id (owner/name)."
    )


def model_cache_dir(source: str, cache_dir: str | Path | None = None) -> Path:
    """Cache folder of a registered model or Hub repo id (whether or not it exists)."""
    return models_cache_dir(cache_dir) / _info_for(source).name


def _complete(folder: Path, files: tuple[str, ...]) -> bool:
    return all((folder / f).is_file() for f in files)


def _local_folder(info: ModelInfo, cache_dir: str | Path | None) -> tuple[Path, bool] | None:
    """(folder, is_bundled) of a complete local copy, or None."""
    bundled = info.bundled_path
    if bundled is not None and _complete(bundled, info.files):
        return bundled, True
    folder = models_cache_dir(cache_dir) / info.name
    if _complete(folder, info.files):
        return folder, False
    return None


def _partial_bytes(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.glob("*.part") if p.is_file())


def list_models(cache_dir: str | Path | None = None) -> list[ModelStatus]:
    """Status of every registered model (no network, no torch)."""
    out = []
    for info in MODELS.values():
        found = _local_folder(info, cache_dir)
        folder, bundled = found if found is not None else (None, False)
        size = sum((folder / f).stat().st_size for f in info.files) if folder is not None else 0
        partial = _partial_bytes(models_cache_dir(cache_dir) / info.name)
        out.append(ModelStatus(info, folder is not None, bundled, folder, size, partial))
    return out


def is_cached(name: str, cache_dir: str | Path | None = None) -> bool:
    """Whether a registered model (or Hub repo id) is available locally (bundled or downloaded)."""
    return _local_folder(_info_for(name), cache_dir) is not None


def _not_available(info: ModelInfo, cache_dir: str | Path | None, reason: str = "") -> ModelNotAvailableError:
    folder = models_cache_dir(cache_dir) / info.name
    files = " + ".join(info.files)
    if info.repo_id is None:
        where = info.bundled_path
        return ModelNotAvailableError(
            f"The model '{info.name}' is not in this installation (expected {files} in {where}). "
            f"Pass a local folder with {CONFIG_NAME} + {WEIGHTS_NAME} instead."
        )
    why = f" and cannot be downloaded ({reason})" if reason else ""
    return ModelNotAvailableError(
        f"The model '{info.name}' is not downloaded{why}. Get {files} from {info.hub_url} and put them "
        f"in {folder}, or pass a local folder with {CONFIG_NAME} + {WEIGHTS_NAME}."
    )


# ------------------------------------------------------------------------------------------------
# Locating files
# ------------------------------------------------------------------------------------------------
def _local_files(path: Path) -> tuple[Path, Path]:
    """(config.json, weights file) of a local model folder or weights file."""
    if path.is_file() and path.name == CONFIG_NAME:
        path = path.parent
    if path.is_dir():
        config = path / CONFIG_NAME
        if not config.is_file():
            raise ConfigError(f"No model config in {path}: looked for {config}")
        for name in WEIGHT_CANDIDATES:
            if (path / name).is_file():
                return config, path / name
        raise CheckpointError(f"No weights file in {path}: looked for {', '.join(WEIGHT_CANDIDATES)}")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise CheckpointError(f"{path} is not a weights file (expected {', '.join(WEIGHT_SUFFIXES)})")
    config = path.parent / CONFIG_NAME
    if not config.is_file():
        raise ConfigError(f"No model config beside {path}: looked for {config}")
    return config, path


def _as_local_path(source: str | Path) -> Path | None:
    """The local path ``source`` names, or None if it is not an existing file/folder."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    text = str(source)
    # Something that is clearly a path (not a name or owner/name) but does not exist.
    if isinstance(source, Path) or text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise ModelNotAvailableError(f"No such model file or folder: {path}")
    if path.suffix.lower() in WEIGHT_SUFFIXES:
        raise ModelNotAvailableError(f"No such model file or folder: {path}")
    return None


def resolve_model_dir(source: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The local folder of a model, without downloading anything and without torch.

    Parameters
    ----------
    source : str or Path
        A model folder, a weights file (its folder is returned), a registered name or a Hub repo id.
    cache_dir : path, optional
        Models cache folder (default :func:`models_cache_dir`).

    Raises
    ------
    ModelNotAvailableError
        Unknown source, or a registered/Hub model that is not available locally.
    """
    path = _as_local_path(source)
    if path is not None:
        return path if path.is_dir() else path.parent
    info = _info_for(str(source))
    found = _local_folder(info, cache_dir)
    if found is None:
        raise _not_available(info, cache_dir)
    return found[0]


# ------------------------------------------------------------------------------------------------
# Download
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# Reading checkpoints
# ------------------------------------------------------------------------------------------------
def _damaged(path: Path, exc: BaseException) -> CheckpointError:
    return CheckpointError(
        f"The weights file {path} is damaged or incomplete (a truncated download?): {exc}. "
        "Delete it and download it again."
    )


class _Reader:
    """Keys, shapes and tensors of a checkpoint, read lazily (safetensors) or from a loaded dict (.pth)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None
        self._tensors: dict[str, Any] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        # safetensors: key -> (dtype name, absolute byte offset, byte length) of its data in the file
        self._spans: dict[str, tuple[str, int, int]] = {}
        self._file: Any = None
        if path.suffix.lower() == ".safetensors":
            self._open_safetensors()
        else:
            self._open_pickle()

    def _open_safetensors(self) -> None:
        from safetensors import safe_open

        try:
            # header only: tensors are read one at a time later, so the peak memory stays ~1 model
            self._handle = safe_open(str(self.path), framework="pt", device="cpu")
            self.shapes = {k: tuple(self._handle.get_slice(k).get_shape()) for k in self._handle.keys()}
            self._spans = _safetensors_spans(self.path)
        except OSError as exc:
            raise CheckpointError(f"Cannot read {self.path}: {exc.strerror or exc}") from exc
        except Exception as exc:  # SafetensorError: bad header, file shorter than the header says
            raise _damaged(self.path, exc) from exc

    def _open_pickle(self) -> None:
        import torch

        try:
            # mmap only works for the zip format; it avoids a second copy of the weights in memory
            mmap = zipfile.is_zipfile(self.path)
            obj = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mmap)
        except OSError as exc:
            raise CheckpointError(f"Cannot read {self.path}: {exc.strerror or exc}") from exc
        except Exception as exc:
            if "Unsupported global" in str(exc):
                raise CheckpointError(
                    f"{self.path} contains Python objects, not only tensors; it was refused because a "
                    "checkpoint must be data, never code. Convert it to a plain state dict (or "
                    "model.safetensors) with the code that made it."
                ) from exc
            raise _damaged(self.path, exc) from exc
        if isinstance(obj, dict):
            # training checkpoints nest the weights next to optimizer state, epoch, ...
            for nest in ("model", "state_dict"):
                if isinstance(obj.get(nest), dict):
                    obj = obj[nest]
                    break
        if not isinstance(obj, dict):
            raise CheckpointError(f"{self.path} does not hold a state dict (found {type(obj).__name__})")
        bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(
                f"{self.path} is not a plain state dict: {len(bad)} entries are not tensors ({_first(bad)})"
            )
        self._tensors = obj
        self.shapes = {str(k): tuple(v.shape) for k, v in obj.items()}

    def get(self, key: str) -> torch.Tensor:
        if self._handle is not None:
            try:
                return self._handle.get_tensor(key)
            except Exception as exc:
                raise _damaged(self.path, exc) from exc
        return self._tensors[key]

    def read_into(self, key: str, target: torch.Tensor) -> None:
        """Copy the tensor ``key`` into ``target`` (same shape; any dtype and device).

        safetensors: the bytes are read with plain file reads straight into ``target``'s memory when
        it is a contiguous CPU tensor of the stored dtype, else into a temporary of this one tensor
        (then cast/moved by ``copy_``). Nothing is memory-mapped, so the file's pages stay in the
        page cache and the process holds the weights once (not the model plus the mapped file).
        """
        import torch

        span = self._spans.get(key)
        if span is None:  # .pth (already loaded or memory-mapped by torch.load) or unknown dtype
            target.copy_(self.get(key))
            return
        dtype_name, offset, nbytes = span
        dtype = _ST_DTYPES[dtype_name]
        direct = (
            target.device.type == "cpu"
            and target.dtype == dtype
            and target.is_contiguous()
            and target.numel() * target.element_size() == nbytes
        )
        dest = target if direct else torch.empty(tuple(target.shape), dtype=dtype)
        if dest.numel() * dest.element_size() != nbytes:
            raise _damaged(self.path, ValueError(f"{key}: {nbytes} bytes for shape {list(target.shape)}"))
        if nbytes:
            buf = memoryview((ctypes.c_char * nbytes).from_address(dest.data_ptr())).cast("B")
            if self._file is None:
                self._file = open(self.path, "rb", buffering=0)  # closed in close()
            try:
                self._file.seek(offset)
                done = 0
                while done < nbytes:
                    n = self._file.readinto(buf[done:])
                    if not n:
                        raise EOFError(f"the file ends inside tensor {key}")
                    done += n
            except OSError as exc:
                raise CheckpointError(f"Cannot read {self.path}: {exc.strerror or exc}") from exc
            except EOFError as exc:
                raise _damaged(self.path, exc) from exc
        if not direct:
            target.copy_(dest)  # casts fp16/bf16 to the model dtype, moves to the model device

    def close(self) -> None:
        self._handle = None
        self._tensors = {}
        if self._file is not None:
            self._file.close()
            self._file = None


_ST_DTYPES_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


class _LazyDtypes(dict[str, Any]):
    """safetensors dtype name -> torch dtype, resolved on first use (no torch at import)."""

    def __missing__(self, name: str) -> Any:
        import torch

        value = getattr(torch, _ST_DTYPES_NAMES[name])
        self[name] = value
        return value


_ST_DTYPES: dict[str, Any] = _LazyDtypes()


def _safetensors_spans(path: Path) -> dict[str, tuple[str, int, int]]:
    """Where each tensor's bytes are in a safetensors file: key -> (dtype, absolute offset, length).

    The format: an 8-byte little-endian header length N, N bytes of JSON (``{key: {"dtype", "shape",
    "data_offsets": [begin, end]}}``, offsets relative to the end of the header), then the data.
    Tensors of a dtype we do not read directly are left out (they go through safetensors).
    """
    import json
    import struct

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    start = 8 + n
    spans = {}
    for key, entry in header.items():
        if key == "__metadata__" or entry.get("dtype") not in _ST_DTYPES_NAMES:
            continue
        begin, end = entry["data_offsets"]
        spans[key] = (entry["dtype"], start + int(begin), int(end) - int(begin))
    return spans


def _first(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def _normalise_keys(keys: list[str], expected: set[str] | None) -> dict[str, str]:
    """Map model key -> checkpoint key: strip a ``module.``/``model.`` prefix all keys share, drop aliases."""
    names = {k: k for k in keys}
    for prefix in ("module.", "model."):
        if names and all(k.startswith(prefix) for k in names):
            names = {k[len(prefix) :]: v for k, v in names.items()}
    dropped = [k for k in names if _ALIAS.search(k) and (expected is None or k not in expected)]
    if dropped:
        log.debug("Ignoring %d duplicate scratch.layer_rn.* alias keys", len(dropped))
    return {k: v for k, v in names.items() if k not in dropped}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors``/``.pth`` checkpoint into a CPU state dict with normalised key names.

    Prefixes shared by all keys (``module.``, ``model.``) and the ``scratch.layer_rn.*`` aliases are
    removed; a dict nested under ``"model"``/``"state_dict"`` is unwrapped. No model is needed.

    Raises
    ------
    CheckpointError
        Damaged file, pickled Python objects, or not a state dict.
    """
    reader = _Reader(Path(path))
    try:
        mapping = _normalise_keys(list(reader.shapes), None)
        return {k: reader.get(v) for k, v in mapping.items()}
    finally:
        reader.close()


def _check_keys(
    reader: _Reader, mapping: dict[str, str], expected: dict[str, tuple[int, ...]], config_path: Path
) -> None:
    missing = sorted(set(expected) - set(mapping))
    unexpected = sorted(mapping[k] for k in set(mapping) - set(expected))
    wrong = sorted(
        f"{k}: file {list(reader.shapes[mapping[k]])} vs model {list(expected[k])}"
        for k in set(expected) & set(mapping)
        if reader.shapes[mapping[k]] != expected[k]
    )
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_first(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_first(unexpected)}")
    if wrong:
        parts.append(f"{len(wrong)} wrong shape(s): {_first(wrong, 3)}")
    raise CheckpointError(
        f"The weights {reader.path} do not fit the model described by {config_path}: " + "; ".join(parts)
    )


_BLOCK_RE = re.compile(r"^(encoder\.enc_blocks|decoder\.dec_blocks)\.(\d+)\.")


def check_config_matches_weights(
    config: Fast3RConfig, shapes: dict[str, tuple[int, ...]], config_path: Path, weights_path: Path
) -> None:
    """Check a config against a weights file's header (key names and shapes) before building anything.

    A config is as untrusted as the weights beside it: an absurd depth or width would otherwise build
    a model for minutes and take gigabytes before the key check could say they do not match. The
    depths are checked against the numbered blocks in the file, the widths against the shapes of the
    patch embedding, the decoder input projection and the first MLP of each stack.

    Parameters
    ----------
    config : Fast3RConfig
        The parsed (and bounded, see :meth:`Fast3RConfig.validate`) config.
    shapes : dict of str to tuple of int
        Tensor name -> shape, from the weights file's header.
    config_path, weights_path : Path
        For the message.

    Raises
    ------
    CheckpointError
        Naming each disagreement.
    """
    mapping = _normalise_keys(list(shapes), None)
    blocks: dict[str, set[int]] = {"encoder.enc_blocks": set(), "decoder.dec_blocks": set()}
    for key in mapping:
        m = _BLOCK_RE.match(key)
        if m:
            blocks[m.group(1)].add(int(m.group(2)))
    e, d = config.encoder_args, config.decoder_args
    problems = []
    for prefix, name, depth in (
        ("encoder.enc_blocks", "encoder", e.depth),
        ("decoder.dec_blocks", "decoder", d.depth),
    ):
        found = len(blocks[prefix])
        if found != depth:
            problems.append(f"{name} depth {depth} in the config, {found} blocks in the weights")

    def shape(key: str) -> tuple[int, ...] | None:
        return tuple(shapes[mapping[key]]) if key in mapping else None

    expected = {
        "encoder.patch_embed.proj.weight": (e.embed_dim, 3, e.patch_size, e.patch_size),
        "decoder.decoder_embed.weight": (d.embed_dim, d.enc_embed_dim),
        "encoder.enc_blocks.0.mlp.fc1.weight": (int(e.embed_dim * e.mlp_ratio), e.embed_dim),
        "decoder.dec_blocks.0.mlp.fc1.weight": (int(d.embed_dim * d.mlp_ratio), d.embed_dim),
    }
    for key, want in expected.items():
        got = shape(key)
        if got is not None and got != want:
            problems.append(f"{key}: {list(got)} in the weights, {list(want)} from the config")
    if problems:
        raise CheckpointError(
            f"The weights {weights_path} do not fit the model described by {config_path}: "
            + "; ".join(problems)
        )


# ------------------------------------------------------------------------------------------------
# Device and dtype
# ------------------------------------------------------------------------------------------------
def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to run on.

    ``None`` or ``"auto"``: CUDA if available, else Apple MPS if available, else CPU. Anything else is
    checked: an unknown name or an unavailable device raises :class:`InputError`.
    """
    import torch

    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if device is None or str(device).lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("CUDA was requested but no CUDA GPU is available (use --device cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"{dev} was requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type == "mps" and not mps_ok:
        raise InputError("Apple MPS was requested but is not available (use --device cpu or auto)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"Device type {dev.type!r} is not supported: use auto, cpu, cuda, cuda:N or mps")
    return dev


_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def _as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise InputError(f"Unknown dtype {dtype!r}: use float32, float16 or bfloat16")
    return getattr(torch, name)


# ------------------------------------------------------------------------------------------------
# Load / save
# ------------------------------------------------------------------------------------------------
def load_model(
    source: str | Path,
    device: str | torch.device | None = None,
    *,
    accept_license: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    dtype: torch.dtype | str | None = None,
    cache_dir: str | Path | None = None,
) -> Fast3R:
    """Build a Fast3R model from a checkpoint, in eval mode, on ``device``.

    Parameters
    ----------
    source : str or Path
        A folder with ``config.json`` + ``model.safetensors`` (or ``model.pth``/``.pt``/``.bin``); a
        weights file with ``config.json`` beside it; a registered name (:data:`MODELS`); or a Hub repo
        id ``owner/name``, downloaded into the cache if needed (see :func:`download_model`).
    device : str or torch.device, optional
        See :func:`choose_device` (default: auto).
    accept_license : bool
        Needed to download a model whose licence requires acceptance (not to load a cached copy).
    progress, cancel
        Progress (stages "download", "verify", then "load" per tensor) and cancellation.
    dtype : torch.dtype or str, optional
        Parameter dtype (default float32). Stored fp16/bf16 weights are cast to it.
    cache_dir : path, optional
        Models cache folder (default :func:`models_cache_dir`).

    Raises
    ------
    ConfigError
        config.json missing or invalid.
    CheckpointError
        Weights missing, damaged, not plain data, or not matching the config (keys named).
    ModelNotAvailableError, LicenseNotAcceptedError, DownloadError, Cancelled
        From the download.
    """
    path = _as_local_path(source)
    if path is None:
        folder = download_model(
            str(source), accept_license=accept_license, progress=progress, cancel=cancel, cache_dir=cache_dir
        )
        path = folder
    config_path, weights_path = _local_files(path)
    torch_device = choose_device(device)
    torch_dtype = _as_dtype(dtype)

    import torch

    from .model import Fast3R, Fast3RConfig

    config = Fast3RConfig.from_json(config_path)
    reader = _Reader(weights_path)  # reads and checks the header before the (slow) model build
    no_memory = InsufficientMemoryError(
        f"Not enough memory on {torch_device} for the model {weights_path}: use another device "
        "(--device cpu) or half precision"
    )
    try:
        check_config_matches_weights(config, reader.shapes, config_path, weights_path)
        try:
            # built on the meta device: no time and no memory spent on a random init that the weights
            # overwrite; the parameters get memory (uninitialised) on the target device only below
            with torch.device("meta"):
                model = Fast3R(config)
        except ValueError as exc:  # a combination of values the config validation does not cover
            raise ConfigError(f"Cannot build a model from {config_path}: {exc}") from exc
        if torch_dtype is not None:
            model = model.to(dtype=torch_dtype)
        targets = model.state_dict()
        mapping = _normalise_keys(list(reader.shapes), set(targets))
        _check_keys(reader, mapping, {k: tuple(v.shape) for k, v in targets.items()}, config_path)
        try:
            model = model.to_empty(device=torch_device)
        except torch.cuda.OutOfMemoryError as exc:  # = torch.OutOfMemoryError
            raise no_memory from exc
        model.reset_buffers()
        targets = model.state_dict()
        with torch.no_grad():
            for i, (key, target) in enumerate(targets.items()):
                check_cancel(cancel)
                # each tensor is read from the file straight into its parameter: the process holds the
                # weights once while loading (no second copy, no mapped file pages)
                reader.read_into(mapping[key], target)
                report(progress, "load", i + 1, len(targets), weights_path.name)
    finally:
        reader.close()
    try:
        model = model.to(torch_device).eval()
    except torch.cuda.OutOfMemoryError as exc:  # = torch.OutOfMemoryError
        raise no_memory from exc
    model.name = _display_name(source, path)
    log.info("Loaded %s (%s) on %s", weights_path, model.__class__.__name__, torch_device)
    return model


def _display_name(source: str | Path, path: Path) -> str:
    """A registered name or hub id as given; else the local folder or file name."""
    text = str(source)
    if text in MODELS or _as_local_path(source) is None:
        return text
    return path.name if path.name not in (CONFIG_NAME, WEIGHTS_NAME) else path.parent.name


def _unique_storage(state: dict[str, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor]]:
    """CPU contiguous tensors; ones sharing memory are cloned (safetensors refuses shared storage)."""
    seen: set[tuple[int, int]] = set()
    for key, value in state.items():
        t = value.detach().to("cpu").contiguous()
        # int(): storage_offset is typed int | SymInt (symbolic only under torch.compile tracing)
        ident = (t.untyped_storage().data_ptr(), int(t.storage_offset()))
        if t.numel() and ident in seen:
            t = t.clone()
        seen.add((t.untyped_storage().data_ptr(), int(t.storage_offset())))
        yield key, t


def save_model(model: Fast3R, folder: str | Path) -> Path:
    """Write ``config.json`` (published format) + ``model.safetensors`` into ``folder``, atomically.

    Each file is written to a temporary name in ``folder`` and renamed into place, so a crash never
    leaves a half-written file under the final name. Returns the folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = dict(_unique_storage(model.state_dict()))
    # error=None: an OSError (disk full) reaches the caller as it is
    with atomic_path(folder / WEIGHTS_NAME, error=None) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    with atomic_path(folder / CONFIG_NAME, error=None) as tmp:
        model.config.to_json(tmp)
    log.info("Saved model to %s", folder)
    return folder
