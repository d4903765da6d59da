"""Fast3R model configuration: a typed mirror of the published ``config.json``.

The published file has three dicts, ``encoder_args``, ``decoder_args`` and ``head_args`` (see
fast3r-spec section 1) and contains the non-standard JSON tokens ``Infinity`` / ``-Infinity``, so it is
read and written with Python's :mod:`json`. Keys of ours (``dpt_layer_dims``, ``dpt_feature_dim``,
``dpt_last_dim`` in ``head_args``) are optional and default to the published values, so a published
config and one of ours load the same way.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fast3r_core.errors import ConfigError

__all__ = ["DecoderArgs", "EncoderArgs", "Fast3RConfig", "HeadArgs"]

log = logging.getLogger(__name__)


@dataclass
class EncoderArgs:
    """CroCo ViT encoder. Defaults are the published ViT-L/16 with RoPE base 100."""

    encoder_type: str = "croco"
    img_size: int = 512
    patch_size: int = 16
    patch_embed_cls: str = "PatchEmbedDust3R"
    embed_dim: int = 1024
    num_heads: int = 16
    depth: int = 24
    mlp_ratio: float = 4
    pos_embed: str = "RoPE100"
    attn_implementation: str = "flash_attention"

    @property
    def rope_base(self) -> float:
        """The RoPE frequency base, the number after "RoPE" in ``pos_embed``."""
        if not self.pos_embed.startswith("RoPE"):
            raise ConfigError(f"pos_embed {self.pos_embed!r} is not supported (only 'RoPE<base>')")
        try:
            return float(self.pos_embed[4:])
        except ValueError as exc:
            raise ConfigError(f"pos_embed {self.pos_embed!r}: no number after 'RoPE'") from exc


@dataclass
class DecoderArgs:
    """Fusion decoder. Defaults are the published release (ViT-L sized, scale switch off)."""

    decoder_type: str = "fast3r"
    enc_embed_dim: int = 1024
    embed_dim: int = 1024
    num_heads: int = 16
    depth: int = 24
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop: float = 0.0
    attn_drop: float = 0.0
    random_image_idx_embedding: bool = True
    attn_bias_for_inference_enabled: bool = False
    attn_implementation: str = "flash_attention"


@dataclass
class HeadArgs:
    """The two DPT heads. ``dpt_*`` keys are ours (absent from the published file)."""

    head_type: str = "dpt"
    output_mode: str = "pts3d"
    depth_mode: list[Any] = field(default_factory=lambda: ["exp", -math.inf, math.inf])
    conf_mode: list[Any] = field(default_factory=lambda: ["exp", 1, math.inf])
    patch_size: int = 16
    landscape_only: bool = False
    with_local_head: bool = True
    dpt_layer_dims: list[int] = field(default_factory=lambda: [96, 192, 384, 768])
    dpt_feature_dim: int = 256
    dpt_last_dim: int = 128


_OUR_HEAD_KEYS = ("dpt_layer_dims", "dpt_feature_dim", "dpt_last_dim")


def _build(cls: type, name: str, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"config.json: {name} must be an object, got {type(raw).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        log.warning("config.json: ignoring unknown keys in %s: %s", name, ", ".join(unknown))
    try:
        return cls(**{k: v for k, v in raw.items() if k in known})
    except TypeError as exc:  # pragma: no cover - dataclass init only fails on bad keys, filtered above
        raise ConfigError(f"config.json: {name}: {exc}") from exc


@dataclass
class Fast3RConfig:
    """The whole model configuration (``config.json``)."""

    encoder_args: EncoderArgs = field(default_factory=EncoderArgs)
    decoder_args: DecoderArgs = field(default_factory=DecoderArgs)
    head_args: HeadArgs = field(default_factory=HeadArgs)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the values cannot build a model (or are absurdly large)."""
        _check_bounds(self)
        e, d, h = self.encoder_args, self.decoder_args, self.head_args
        if e.encoder_type != "croco":
            raise ConfigError(f"encoder_type {e.encoder_type!r} is not supported (only 'croco')")
        if e.patch_embed_cls not in ("PatchEmbedDust3R", "ManyAR_PatchEmbed"):
            raise ConfigError(f"patch_embed_cls {e.patch_embed_cls!r} is not supported")
        if d.decoder_type != "fast3r":
            raise ConfigError(f"decoder_type {d.decoder_type!r} is not supported (only 'fast3r')")
        if h.head_type != "dpt" or h.output_mode != "pts3d":
            raise ConfigError(f"head {h.head_type!r}/{h.output_mode!r} is not supported (only dpt/pts3d)")
        if not h.with_local_head:
            raise ConfigError("with_local_head=false is not supported: the app needs the local head")
        if h.depth_mode[0] != "exp" or h.conf_mode[0] != "exp":
            raise ConfigError(f"depth_mode/conf_mode {h.depth_mode}/{h.conf_mode}: only 'exp' is supported")
        for name, dim, heads in (
            ("encoder", e.embed_dim, e.num_heads),
            ("decoder", d.embed_dim, d.num_heads),
        ):
            if dim <= 0 or heads <= 0 or dim % heads:
                raise ConfigError(f"{name} embed_dim {dim} is not divisible by num_heads {heads}")
        if (e.embed_dim // e.num_heads) % 4:
            raise ConfigError("encoder head dim must be a multiple of 4 for 2-D RoPE")
        if d.enc_embed_dim != e.embed_dim:
            raise ConfigError(f"decoder enc_embed_dim {d.enc_embed_dim} != encoder embed_dim {e.embed_dim}")
        if e.depth < 1 or d.depth < 4:
            raise ConfigError(f"depths too small: encoder {e.depth}, decoder {d.depth} (needs >= 4)")
        if h.patch_size != e.patch_size:
            raise ConfigError(f"head patch_size {h.patch_size} != encoder patch_size {e.patch_size}")
        if len(h.dpt_layer_dims) != 4:
            raise ConfigError(f"dpt_layer_dims must have 4 entries, got {h.dpt_layer_dims}")
        _ = e.rope_base

    @property
    def hooks(self) -> tuple[int, int, int, int]:
        """Decoder layer indices read by the DPT heads (0 = encoder output before ``decoder_embed``)."""
        n = self.decoder_args.depth
        return (0, n * 2 // 4, n * 3 // 4, n)

    @property
    def hook_dims(self) -> tuple[int, int, int, int]:
        """Channels of the four hooked maps the DPT heads read (fast3r-spec section 4).

        Hook 0 is the encoder output before ``decoder_embed`` (encoder width); hooks 1-3 are fusion
        decoder layers (decoder width). The published training config has (1024, 768, 768, 768).
        """
        c_dec = self.decoder_args.embed_dim
        return (self.encoder_args.embed_dim, c_dec, c_dec, c_dec)

    def describe(self) -> str:
        """One line for people: depths, widths and heads of the encoder and the fusion decoder."""
        e, d = self.encoder_args, self.decoder_args
        return (
            f"encoder {e.depth}x{e.embed_dim} ({e.num_heads} heads), "
            f"decoder {d.depth}x{d.embed_dim} ({d.num_heads} heads), patch {e.patch_size}"
        )

    # -- (de)serialisation -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fast3RConfig:
        if not isinstance(raw, dict):
            raise ConfigError("config.json must hold an object with encoder_args, decoder_args, head_args")
        missing = [k for k in ("encoder_args", "decoder_args", "head_args") if k not in raw]
        if missing:
            raise ConfigError(f"config.json lacks {', '.join(missing)}")
        return cls(
            _build(EncoderArgs, "encoder_args", raw["encoder_args"]),
            _build(DecoderArgs, "decoder_args", raw["decoder_args"]),
            _build(HeadArgs, "head_args", raw["head_args"]),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> Fast3RConfig:
        """Read a published-format ``config.json`` (Python json: ``Infinity`` allowed)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"Cannot read model config {path}: {exc.strerror or exc}") from exc
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Model config {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        """The published layout. Our optional head keys are written only when not the defaults."""
        head = asdict(self.head_args)
        defaults = HeadArgs()
        for k in _OUR_HEAD_KEYS:
            if head[k] == getattr(defaults, k):
                del head[k]
        return {
            "decoder_args": asdict(self.decoder_args),
            "encoder_args": asdict(self.encoder_args),
            "head_args": head,
        }

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True), encoding="utf-8")


# Upper bounds of every numeric value: a config.json is untrusted input, and a depth of 10**6 would
# otherwise build for minutes. They are far above any real model (the published one: depth 24, width
# 1024, 16 heads, 512 px).
_INT_BOUNDS: dict[str, dict[str, tuple[int, int]]] = {
    "encoder_args": {
        "img_size": (16, 8192),
        "patch_size": (1, 64),
        "embed_dim": (4, 16384),
        "num_heads": (1, 256),
        "depth": (1, 256),
    },
    "decoder_args": {
        "enc_embed_dim": (4, 16384),
        "embed_dim": (4, 16384),
        "num_heads": (1, 256),
        "depth": (4, 256),
    },
    "head_args": {"patch_size": (1, 64), "dpt_feature_dim": (1, 4096), "dpt_last_dim": (1, 4096)},
}
_RATIO_BOUNDS = (0.0, 16.0)


def _check_bounds(cfg: Fast3RConfig) -> None:
    """Types and ranges of every numeric value, naming the first one out of bounds."""
    for part, bounds in _INT_BOUNDS.items():
        args = getattr(cfg, part)
        for name, (lo, hi) in bounds.items():
            v = getattr(args, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"config.json: {part}.{name} must be an integer in {lo}..{hi}, got {v!r}")
    for part in ("encoder_args", "decoder_args"):
        v = getattr(cfg, part).mlp_ratio
        r_lo, r_hi = _RATIO_BOUNDS
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (r_lo < v <= r_hi):
            raise ConfigError(
                f"config.json: {part}.mlp_ratio must be a number in ({r_lo:g}, {r_hi:g}], got {v!r}"
            )
    dims = cfg.head_args.dpt_layer_dims
    if not isinstance(dims, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 16384 for x in dims
    ):
        raise ConfigError(f"config.json: head_args.dpt_layer_dims must be integers in 1..16384, got {dims!r}")
    for name in ("depth_mode", "conf_mode"):
        mode = getattr(cfg.head_args, name)
        if not isinstance(mode, list) or len(mode) != 3:
            raise ConfigError(f"config.json: head_args.{name} must be [kind, min, max], got {mode!r}")
    if not isinstance(cfg.encoder_args.pos_embed, str) or len(cfg.encoder_args.pos_embed) > 64:
        raise ConfigError("config.json: encoder_args.pos_embed must be a short string like 'RoPE100'")
