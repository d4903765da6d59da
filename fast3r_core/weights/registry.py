"""The model registry and where a model's files are: names, cache folders, local state.

Two models are registered (:data:`MODELS`): the published ``fast3r-vitl-512`` (downloaded from the
Hugging Face Hub into the user cache after the user accepts its licence) and ``demo`` (a small model
bundled in ``resources/models/demo``, trained by this project on synthetic scenes only).

A model is found as a folder with ``config.json`` + ``model.safetensors`` (the Hub layout; a
``.pth``/``.bin`` instead of the safetensors file is accepted), a single weights file with
``config.json`` beside it, a registered name or a Hub repo id (``owner/name``).

No torch and no huggingface_hub here: the GUI shows the registry and the cache state at start-up.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from fast3r_core.errors import CheckpointError, ConfigError, ModelNotAvailableError

__all__ = [
    "CACHE_ENV",
    "CONFIG_NAME",
    "HUB_URL",
    "MODELS",
    "WEIGHTS_NAME",
    "WEIGHT_CANDIDATES",
    "WEIGHT_SUFFIXES",
    "ModelInfo",
    "ModelStatus",
    "is_cached",
    "list_models",
    "model_cache_dir",
    "models_cache_dir",
    "resolve_model_dir",
    "resources_dir",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: Weight file names looked for in a model folder, in order of preference.
WEIGHT_CANDIDATES = ("model.safetensors", "model.pth", "model.pt", "pytorch_model.bin", "model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
#: Environment variable: root of the application cache (models go in ``$FAST3R_CACHE_DIR/models``).
CACHE_ENV = "FAST3R_CACHE_DIR"
HUB_URL = "https://huggingface.co"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


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


#: Registered models by name. Each entry starts with what identifies it (name, one-line description,
#: Hub repository or None), then its licence and where its files come from.
MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo(
            "fast3r-vitl-512",
            "Published Fast3R ViT-Large, 512 px (CVPR 2025), for real photos",
            "jedyang97/Fast3R_ViT_Large_512",
            license_name="FAIR Noncommercial Research License",
            license_url="https://github.com/facebookresearch/fast3r/blob/main/LICENSE",
            license_summary="Non-commercial research use only; read the licence for the exact terms.",
            approx_size_bytes=2_590_300_000,  # 647,551,368 fp32 parameters + header
            requires_license_acceptance=True,
        ),
        ModelInfo(
            "demo",
            "Small demo model bundled with Fast3R Studio, trained on synthetic scenes only "
            "(it does not reconstruct real photos)",
            None,  # bundled only, not on the Hub
            license_name="Apache-2.0",
            license_url="https://www.apache.org/licenses/LICENSE-2.0",
            license_summary="Trained by the Fast3R Studio project; free to use.",
            bundled_subdir="models/demo",
            synthetic_only=True,
        ),
    )
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
    return Path(__file__).resolve().parents[2] / "resources"


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
