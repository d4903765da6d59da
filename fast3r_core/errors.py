"""Typed exceptions of fast3r_core.

Every error that a user can cause (bad input, a missing or corrupt checkpoint, no licence acceptance,
not enough memory) is a subclass of :class:`Fast3RError` with a message meant for people: the CLI prints
it as one line and the GUI shows it in a dialog. Anything else is a bug.
"""

from __future__ import annotations

__all__ = [
    "AlignmentError",
    "Cancelled",
    "CheckpointError",
    "ConfigError",
    "DownloadError",
    "EditsError",
    "EmptyExportError",
    "ExportError",
    "Fast3RError",
    "InputError",
    "InsufficientMemoryError",
    "IntrinsicsError",
    "LicenseNotAcceptedError",
    "MaskError",
    "ModelNotAvailableError",
    "NoImagesError",
    "ProjectFileError",
]


class Fast3RError(Exception):
    """Base class of all errors meant for the user."""


class InputError(Fast3RError, ValueError):
    """Bad input: a path that does not exist, an unreadable video, an invalid option."""


class NoImagesError(InputError):
    """No usable image was found in the given inputs."""


class IntrinsicsError(InputError):
    """An intrinsics file (JSON or COLMAP) that cannot be read or does not fit the photos; the message
    names the file (and the line or record where it applies)."""


class MaskError(InputError):
    """A mask image that cannot be read or does not match its photo's size; the message names the file."""


class ConfigError(Fast3RError):
    """A model config.json that is missing, does not parse, or has invalid values."""


class CheckpointError(Fast3RError):
    """A checkpoint that cannot be loaded: missing/unexpected keys, wrong shapes, truncated or corrupt."""


class ModelNotAvailableError(Fast3RError):
    """The model is neither local nor cached and cannot be downloaded (offline, unknown name)."""


class LicenseNotAcceptedError(Fast3RError):
    """Downloading a model whose licence the user has not accepted."""


class DownloadError(Fast3RError):
    """A download failed (network, checksum mismatch)."""


class InsufficientMemoryError(Fast3RError, MemoryError):
    """The run would not fit (or did not fit) in the device's memory."""


class Cancelled(Fast3RError):
    """The run was cancelled by the user; no partial result is kept."""


class ExportError(Fast3RError):
    """An export that cannot be written: unwritable or invalid destination, disk full, nothing to write."""


class EmptyExportError(ExportError):
    """An export asked to write zero points (the confidence filter or the view selection leaves none):
    refused rather than an empty file written silently."""


class ProjectFileError(Fast3RError):
    """A project file (.f3r) that cannot be read or written: not a project, corrupt, or from a newer app."""


class AlignmentError(Fast3RError):
    """The passes of a chunked run, or added views, cannot be brought into one frame: their shared anchor
    views have too few confident points in common."""


class EditsError(InputError):
    """Edits of a reconstruction (scale, level, crop, deletions, measurements) that are invalid: a degenerate
    operation (two coincident points), or an edits description in a project file that fails validation."""
