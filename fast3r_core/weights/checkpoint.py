"""Reading checkpoint files and checking them against a model, without building it.

A checkpoint is data, never code: ``.safetensors`` files are read tensor by tensor with plain file
reads, ``.pth`` files with ``torch.load(weights_only=True)``. Keys are normalised (shared
``module.``/``model.`` prefixes, the DPT alias keys) and checked strictly; every problem a user can
cause is a :class:`~fast3r_core.errors.CheckpointError`.

torch and safetensors are imported inside the functions that need them.
"""

from __future__ import annotations

import ctypes
import logging
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fast3r_core.errors import CheckpointError

if TYPE_CHECKING:
    import torch

    from fast3r_core.model import Fast3RConfig

__all__ = ["check_config_matches_weights", "read_state_dict"]

log = logging.getLogger(__name__)

# DPT heads of the published module register their four layer convs a second time under this name;
# the safetensors file keeps only layer{1..4}_rn (spec section 1, fact 8).
_ALIAS = re.compile(r"(^|\.)scratch\.layer_rn\.\d+\.")


def _damaged(path: Path, exc: BaseException) -> CheckpointError:
    return CheckpointError(
        f"The weights file {path} is damaged or incomplete (a truncated download?): {exc}. "
        "Delete it and download it again."
    )


def _weights_only_refusal(exc: BaseException) -> str:
    """What ``torch.load(weights_only=True)`` refused: "global" (the pickle names a global such as
    ``os.system``: code), "other" (an instruction its safe unpickler does not run: garbage, or a pickle
    not written by torch.save), or "" (not a refusal)."""
    import pickle

    if not isinstance(exc, pickle.UnpicklingError):
        return ""
    text = str(exc).lower()
    if "unsupported global" in text:
        return "global"
    return "other" if "weights only load failed" in text else ""


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
            with warnings.catch_warnings():  # torch's note on a pickle protocol is not the user's concern
                warnings.simplefilter("ignore", UserWarning)
                obj = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mmap)
        except OSError as exc:
            raise CheckpointError(f"Cannot read {self.path}: {exc.strerror or exc}") from exc
        except Exception as exc:
            # never torch's own text for a refusal: it suggests weights_only=False, which would run
            # the file's code
            refusal = _weights_only_refusal(exc)
            if refusal == "global":
                raise CheckpointError(
                    f"{self.path} holds Python objects, not only tensors; it was refused because a "
                    "checkpoint must be data, never code. Convert it to a plain state dict (or "
                    "model.safetensors) with the code that made it."
                ) from exc
            if refusal == "other":
                raise CheckpointError(
                    f"The weights file {self.path} cannot be read as data only: it is damaged (a truncated "
                    "download?) or was not written by torch.save. Delete it and download it again, or "
                    "convert it to model.safetensors."
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
            src = self.get(key)
            self._check_kind(key, src.dtype, target)
            target.copy_(src)
            self._check_finite(key, target)
            return
        dtype_name, offset, nbytes = span
        dtype = _ST_DTYPES[dtype_name]
        self._check_kind(key, dtype, target)
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
        self._check_finite(key, target)

    def _check_kind(self, key: str, stored: torch.dtype, target: torch.Tensor) -> None:
        """A floating-point weight stored as integers (or booleans) is not a model's weight: refused
        rather than cast (the run would give noise)."""
        if target.is_floating_point() and not stored.is_floating_point:
            raise CheckpointError(
                f"{self.path}: the weight {key} is stored as {str(stored).removeprefix('torch.')}, not as "
                "floating-point numbers: this is not a Fast3R checkpoint"
            )

    def _check_finite(self, key: str, target: torch.Tensor) -> None:
        """NaN or infinite weights would make every output NaN: refused when read, naming the tensor
        (a pass over memory just written: about 0.1 s per GB)."""
        import torch

        if target.is_floating_point() and not bool(torch.isfinite(target).all()):
            raise CheckpointError(f"{self.path}: the weight {key} holds NaN or infinite values; refused")

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
