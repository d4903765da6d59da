"""The Fast3R network (imports torch)."""

from .config import DecoderArgs, EncoderArgs, Fast3RConfig, HeadArgs
from .fast3r import Fast3R

__all__ = ["DecoderArgs", "EncoderArgs", "Fast3R", "Fast3RConfig", "HeadArgs"]
