"""The Fast3R network. ``Fast3RConfig`` is torch-free; ``Fast3R`` (and torch) load on first use."""

from __future__ import annotations

from typing import Any

from .config import DecoderArgs, EncoderArgs, Fast3RConfig, HeadArgs

__all__ = ["DecoderArgs", "EncoderArgs", "Fast3R", "Fast3RConfig", "HeadArgs", "draw_image_ids"]


def __getattr__(name: str) -> Any:
    if name in ("Fast3R", "draw_image_ids", "DEFAULT_SEED"):
        from . import fast3r

        return getattr(fast3r, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
