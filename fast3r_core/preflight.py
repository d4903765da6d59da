"""Checks before a run, shared by the CLI and the GUI: the model's licence and the run's peak memory.

The memory check reads only the image headers (no decoding) and the model's ``config.json`` (no
torch), and plans the passes as the run will (:func:`fast3r_core.chunking.plan.plan_passes`), so a
front-end can warn before the model is loaded. The run itself still checks the memory before it starts.

Image header sizes are cached per (path, modification time, file size): a re-run of the same inputs
opens no file, and :func:`headers_cached` tells a GUI whether a check would read files (then it runs
the check off its UI thread).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fast3r_core.errors import Fast3RError

if TYPE_CHECKING:
    from fast3r_core.model.config import Fast3RConfig
    from fast3r_core.weights import ModelInfo

__all__ = [
    "VIDEO_FRAME_SIZE",
    "MemoryCheck",
    "estimate_memory",
    "estimate_run_memory",
    "headers_cached",
    "image_sizes",
    "license_to_accept",
    "model_config",
]

log = logging.getLogger(__name__)

#: (width, height) a video frame is assumed to have before the video is read (typical; the run reads
#: the real size).
VIDEO_FRAME_SIZE = (1280, 720)
#: Header sizes remembered (a few folders of photos; each entry is a few hundred bytes).
_CACHE_ENTRIES = 20_000

_HeaderKey = tuple[str, int, int]  # (path, st_mtime_ns, st_size)
_header_lock = threading.Lock()
_header_cache: OrderedDict[_HeaderKey, tuple[int, int] | None] = OrderedDict()


@dataclass(frozen=True)
class MemoryCheck:
    """Peak-memory estimate of a run against the memory available.

    Attributes
    ----------
    n_views : int
        Number of images found (a video counts as its maximum number of frames).
    size : int
        Model resolution the estimate is for.
    need, available : int
        Bytes.
    fits : bool
        ``need <= available``.
    need_224 : int or None
        The estimate at 224 px (when ``size`` is 512).
    passes : int
        Forward passes the run is expected to take (more than 1: chunked, ``need`` is one pass's).
    """

    n_views: int
    size: int
    need: int
    available: int
    fits: bool
    need_224: int | None = None
    passes: int = 1

    def describe(self) -> str:
        """One sentence for people: views, size, need (per pass), available, the 224 px alternative."""
        gib = 1024**3
        how = f" in {self.passes} passes" if self.passes > 1 else ""
        text = (
            f"{self.n_views} views at {self.size} px need about {self.need / gib:.1f} GiB{how}; "
            f"{self.available / gib:.1f} GiB is available."
        )
        if not self.fits and self.need_224 is not None:
            text += f" At 224 px they would need about {self.need_224 / gib:.1f} GiB."
        return text


# -- licence ------------------------------------------------------------------------------------------
def license_to_accept(model: str, accepted: bool = False) -> ModelInfo | None:
    """The registered model whose licence must be accepted before ``model`` can be used, else None.

    That is a registered model that requires the acceptance, is not available locally (so it must be
    downloaded) and whose licence was not ``accepted``. None for a local or bundled model, a path, a Hub
    repo id or an unknown name (loading those fails or succeeds with its own message).
    """
    from fast3r_core.weights import MODELS, is_cached

    info = MODELS.get(model)
    if info is None or not info.requires_license_acceptance or accepted:
        return None
    return None if is_cached(model) else info


# -- model config -------------------------------------------------------------------------------------
def model_config(model: str) -> Fast3RConfig | None:
    """The config of a model that is available locally (its ``config.json``), else None (no torch)."""
    from fast3r_core.model.config import Fast3RConfig
    from fast3r_core.weights import CONFIG_NAME, resolve_model_dir

    try:
        folder = resolve_model_dir(model)
        return Fast3RConfig.from_json(folder / CONFIG_NAME)
    except (Fast3RError, OSError, ValueError):
        return None


# -- image headers ------------------------------------------------------------------------------------
def _header_key(path: Path) -> _HeaderKey | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_mtime_ns, st.st_size)


def _read_header(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header, None when the file cannot be read as an image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception:  # unreadable: the run skips it and says so
        return None
    return int(w), int(h)


def _header_size(path: Path) -> tuple[int, int] | None:
    key = _header_key(path)
    if key is None:
        return None
    with _header_lock:
        if key in _header_cache:
            _header_cache.move_to_end(key)
            return _header_cache[key]
    size = _read_header(path)
    with _header_lock:
        _header_cache[key] = size
        while len(_header_cache) > _CACHE_ENTRIES:
            _header_cache.popitem(last=False)
    return size


def headers_cached(inputs: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether :func:`image_sizes` of ``inputs`` would open no file (every image header was read before).

    Lists the given folders (as the run does) and stats the files; True as well when the inputs cannot
    be listed (nothing to read: the estimate is None at once).
    """
    from fast3r_core.images import discover_inputs, is_video

    try:
        found = discover_inputs(list(inputs))
    except Fast3RError:
        return True
    with _header_lock:
        for f in found.files:
            if is_video(f):
                continue
            key = _header_key(f)
            if key is not None and key not in _header_cache:
                return False
    return True


def image_sizes(
    inputs: Sequence[str | os.PathLike[str]], *, video_max_frames: int = 100
) -> list[tuple[int, int]]:
    """(width, height) of every image the inputs hold, in the run's order, from the headers (cached).

    A video counts as ``video_max_frames`` frames of :data:`VIDEO_FRAME_SIZE`; files that cannot be
    read are left out (the run skips them and says so).

    Raises
    ------
    Fast3RError
        The inputs cannot be listed (a missing path, no image at all).
    """
    from fast3r_core.images import discover_inputs, is_video

    found = discover_inputs(list(inputs))
    sizes: list[tuple[int, int]] = []
    for f in found.files:
        if is_video(f):
            sizes.extend([VIDEO_FRAME_SIZE] * video_max_frames)
            continue
        size = _header_size(f)
        if size is not None:
            sizes.append(size)
    return sizes


# -- memory -------------------------------------------------------------------------------------------
def _model_shapes(sizes: Sequence[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """(H, W) at model resolution ``size`` of images of (width, height) ``sizes`` (unusable ones out)."""
    from fast3r_core.images import resize_crop_geometry

    shapes = []
    for w, h in sizes:
        try:
            ow, oh = resize_crop_geometry(w, h, size).output_size
        except Fast3RError:
            continue
        shapes.append((oh, ow))
    return shapes


def _run_need(
    cfg: Fast3RConfig,
    shapes: list[tuple[int, int]],
    available: int,
    max_views_per_pass: int | None,
    anchors: int | None,
    int8: bool,
) -> tuple[int, int]:
    """(passes, peak bytes incl. the weights) of a run over ``shapes``, planned as the core plans it."""
    from fast3r_core.chunking.plan import plan_passes
    from fast3r_core.forward_memory import estimate_peak_memory

    single = estimate_peak_memory(cfg, shapes, int8=int8)
    if not (max_views_per_pass or (max_views_per_pass is None and single.total > available)):
        return 1, single.total
    try:
        plan = plan_passes(
            shapes,
            cfg,
            # the run plans with its weights (and the int8 copy) already loaded
            available=max(0, available - single.weights),
            max_views_per_pass=max_views_per_pass,
            anchors=anchors,
        )
    except Fast3RError:  # an override the run will refuse with its own message
        return 1, single.total
    if len(plan.passes) == 1:
        return 1, single.total
    largest = max(shapes, key=lambda s: s[0] * s[1])
    per_pass = max(len(p) for p in plan.passes)
    est = estimate_peak_memory(cfg, [largest] * per_pass, encoder_chunk=1, head_chunk=1, int8=int8)
    return len(plan.passes), est.total


def estimate_run_memory(
    cfg: Fast3RConfig,
    sizes: Sequence[tuple[int, int]],
    size: int,
    *,
    max_views: int | None = None,
    max_views_per_pass: int | None = 0,
    anchors: int | None = None,
    int8: bool = False,
    available: int | None = None,
) -> MemoryCheck | None:
    """Estimate a run's peak memory (CPU) from the input images' sizes and the model's config.

    Parameters
    ----------
    cfg : the model's config.
    sizes : (width, height) of every input image, in input order (:func:`image_sizes`).
    size : model resolution (224 or 512).
    max_views : the run keeps the first ``max_views`` images (None: all).
    max_views_per_pass, anchors : as in ``ReconstructOptions``: 0 = one pass, None = passes planned
        from the available memory (the estimate is then one pass's), N = passes of N views.
    int8 : the fast CPU mode, which keeps an int8 copy of the linear weights beside the fp32 model.
    available : bytes available (default: the available RAM, measured now).

    Returns None when nothing can be estimated (no usable image).
    """
    from fast3r_core.forward_memory import available_memory, estimate_peak_memory

    sizes = list(sizes)[:max_views] if max_views else list(sizes)
    shapes = _model_shapes(sizes, size)
    if not sizes or not shapes:
        return None
    avail = available_memory("cpu") if available is None else available
    passes, need = _run_need(cfg, shapes, avail, max_views_per_pass, anchors, int8)
    need_224 = None
    if size != 224:
        shapes_224 = _model_shapes(sizes, 224)
        need_224 = estimate_peak_memory(cfg, shapes_224, int8=int8).total if shapes_224 else 0
    return MemoryCheck(
        n_views=len(sizes),
        size=size,
        need=need,
        available=avail,
        fits=need <= avail,
        need_224=need_224,
        passes=passes,
    )


def estimate_memory(
    inputs: Sequence[str | os.PathLike[str]],
    model: str,
    size: int,
    *,
    max_views: int | None = None,
    video_max_frames: int = 100,
    max_views_per_pass: int | None = 0,
    anchors: int | None = None,
    int8: bool = False,
) -> MemoryCheck | None:
    """Estimate a run's peak memory from the image headers and the model's config (no torch).

    :func:`image_sizes` + :func:`model_config` + :func:`estimate_run_memory`. It opens every image
    header not read before (see :func:`headers_cached`): a GUI calls it off its UI thread.

    Returns None when it cannot be estimated (model not local, inputs unreadable); the run itself
    still checks the memory before it starts.
    """
    cfg = model_config(model)
    if cfg is None:
        return None
    try:
        sizes = image_sizes(inputs, video_max_frames=video_max_frames)
    except Fast3RError:
        return None
    return estimate_run_memory(
        cfg,
        sizes,
        size,
        max_views=max_views,
        max_views_per_pass=max_views_per_pass,
        anchors=anchors,
        int8=int8,
    )
