"""Persistent settings: window geometry, last folders, options, recent files, accepted licences.

An ini file (``settings.ini``) in ``$FAST3R_CONFIG_DIR`` if set (tests, portable installs), else in the
user config folder (``platformdirs.user_config_dir("fast3r-studio")``), read and written through
``QSettings`` in ini format. Values are converted back to the type of their default, because an ini file
stores everything as text.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from app.state import DISPLAY_DEFAULTS, SAVED_DISPLAY_OPTIONS

__all__ = ["CONFIG_DIR_ENV", "DEFAULTS", "MAX_RECENT", "Settings", "config_dir"]

log = logging.getLogger(__name__)

#: Environment variable: folder of settings.ini.
CONFIG_DIR_ENV = "FAST3R_CONFIG_DIR"
MAX_RECENT = 10

#: Options and their defaults (the type of the default is the type read back).
DEFAULTS: dict[str, Any] = {
    "model": "",  # "" = the bundled demo model if present, else the published model
    "device": "auto",  # auto | cuda | mps | cpu
    "size": 512,  # 512 | 224
    "theme": "dark",  # dark | light
    # the viewport's saved display options: their defaults live with the state
    **{name: getattr(DISPLAY_DEFAULTS, name) for name in SAVED_DISPLAY_OPTIONS},
    "camera_mode": "turntable",
    "playback_fps": 2.0,
    "max_views": 0,  # 0 = all
    "chunking": "auto",  # auto (passes from the free memory) | single (one pass) | fixed
    "views_per_pass": 16,  # largest pass with "fixed", anchors included
    "anchors": 0,  # anchor views per pass of a chunked run; 0 = automatic
    "precision": "auto",  # auto | fp32 | bf16 | fp16 | int8 (fast CPU mode)
    # inputs (issue 19): ReconstructOptions.intrinsics / masks / frames, made by app.run_inputs
    "intrinsics": "auto",  # auto (EXIF, else estimated) | estimate | file (intrinsics_file)
    "intrinsics_file": "",  # JSON or COLMAP model used with intrinsics = file
    "masks": "auto",  # auto (a masks/ folder beside the photos) | none | folder (masks_folder)
    "masks_folder": "",  # folder of NAME.png / STEM.png masks used with masks = folder
    "frames": "sharp",  # video frames: sharp (sharpest per time bin) | uniform
}


def config_dir() -> Path:
    """``$FAST3R_CONFIG_DIR``, else the user config folder of fast3r-studio (nothing is created)."""
    root = os.environ.get(CONFIG_DIR_ENV)
    if root:
        return Path(root).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("fast3r-studio", appauthor=False))


def _coerce(value: Any, default: Any) -> Any:
    """Convert a value read from the ini file to the type of ``default``."""
    if value is None:
        return default
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(default, int):
            return int(float(value))
        if isinstance(default, float):
            return float(value)
        if isinstance(default, list):
            if isinstance(value, str):
                return [value] if value else []
            return [str(v) for v in value]
        return str(value)
    except (TypeError, ValueError):
        log.warning("ignoring the invalid setting value %r (default %r)", value, default)
        return default


class Settings:
    """Typed access to the app's settings file.

    Parameters
    ----------
    path : Path, optional
        The ini file (default ``config_dir() / "settings.ini"``).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir() / "settings.ini"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("cannot create the settings folder %s: %s", self.path.parent, exc)
        self._q = QSettings(str(self.path), QSettings.Format.IniFormat)

    # -- options ------------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        """An option of :data:`DEFAULTS` (its default when unset or invalid)."""
        default = DEFAULTS[key]
        return _coerce(self._q.value(f"options/{key}"), default)

    def set(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        self._q.setValue(f"options/{key}", value)

    def start_session(self) -> None:
        """At launch: a masks folder or an intrinsics file chosen in an earlier session belongs to that
        session's photos; applied silently to the next photos they would drop or skew points. Back to
        the automatic choice (the paths stay, for the dialog to offer again)."""
        for key, specific in (("masks", "folder"), ("intrinsics", "file")):
            if self.get(key) == specific:
                log.info("run option %s: back to automatic (the %s was for the last session)", key, specific)
                self.set(key, DEFAULTS[key])

    # -- window -------------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self._q.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        value = self._q.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._q.setValue("window/geometry", geometry)
        self._q.setValue("window/state", state)

    # -- folders and recent files -------------------------------------------------------------------
    def last_dir(self, kind: str) -> str:
        """Last folder used for ``kind`` ("open", "project", "export", "render"), else the home folder."""
        value = self._q.value(f"folders/{kind}")
        if isinstance(value, str) and value and os.path.isdir(value):
            return value
        return str(Path.home())

    def set_last_dir(self, kind: str, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        folder = p if p.is_dir() else p.parent
        self._q.setValue(f"folders/{kind}", str(folder))

    def recent_files(self) -> list[str]:
        """Recently opened inputs and projects, most recent first (missing ones are dropped)."""
        value = _coerce(self._q.value("recent/files"), [])
        return [p for p in value if p and os.path.exists(p)][:MAX_RECENT]

    def add_recent(self, path: str | os.PathLike[str]) -> None:
        p = str(Path(path).resolve())
        items = [x for x in _coerce(self._q.value("recent/files"), []) if x != p]
        self._q.setValue("recent/files", [p, *items][:MAX_RECENT])

    def clear_recent(self) -> None:
        self._q.setValue("recent/files", [])

    # -- licences -----------------------------------------------------------------------------------
    def license_accepted(self, model: str) -> bool:
        return model in _coerce(self._q.value("licenses/accepted"), [])

    def accept_license(self, model: str) -> None:
        items = _coerce(self._q.value("licenses/accepted"), [])
        if model not in items:
            self._q.setValue("licenses/accepted", [*items, model])

    # -- misc ---------------------------------------------------------------------------------------
    def sync(self) -> None:
        """Write pending changes to the file."""
        self._q.sync()
        if self._q.status() != QSettings.Status.NoError:
            log.warning("could not write the settings file %s (%s)", self.path, self._q.status())
