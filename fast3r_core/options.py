"""Run options shared by the pipeline, the CLI and the GUI: :class:`ReconstructOptions`.

A light module on purpose: it imports no numpy, cv2, scipy or torch, so that the GUI thread can build
the options of a run (and the start-up path can import them) without loading the heavy stack, which
stays on the worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from fast3r_core.errors import InputError

__all__ = ["ANCHOR_METHODS", "FRAME_METHODS", "ReconstructOptions"]

#: How anchor views are chosen after view 0 (see :mod:`fast3r_core.chunking.anchors`).
ANCHOR_METHODS = ("coverage", "even")
FRAME_METHODS = ("sharp", "uniform")  #: video frame choice: sharpest per time bin, or evenly spaced


@dataclass(frozen=True)
class ReconstructOptions:
    """Options of a run (JSON-able; stored in the project file).

    Attributes
    ----------
    size : 512 or 224, the model input size (long side at 512; square crop at 224).
    device : "auto", "cpu", "cuda", "cuda:N" or "mps" (informational here: the model is already placed).
    precision : "auto" | "fp32" | "bf16" | "fp16" | "int8" (see ``InferenceOptions``; "int8" is the
        fast CPU mode).
    num_threads : CPU threads (None: all cores).
    seed : seed of the image-index draw; ``image_ids`` overrides it.
    max_views : keep at most this many images (evenly spaced over the sorted inputs).
    video_fps, video_max_frames : frame sampling of a video input.
    per_view_focal : estimate one focal per view (photos from different cameras).
    pnp_iterations, pnp_reproj_px : PnP-RANSAC settings (published: 100, 5 px).
    align_percentile : confidence percentile of the local->global alignment mask (published: 85).
    encoder_chunk, head_chunk : views per encoder / head chunk inside a pass (None: planned).
    max_views_per_pass : largest forward pass, anchor views included. None: automatic (one pass when
        the memory estimate fits the free memory of the device, else the largest pass that fits);
        0: always one pass; N >= 2: passes of at most N views.
    anchors : anchor views shared by every pass of a chunked run (None: a third of a pass, 1..8).
    anchor_method : how anchors are chosen after view 0: "coverage" (farthest-point sampling on a small
        image descriptor; when adding views: the existing views most like the new ones) or "even".
    intrinsics : "auto" (EXIF when every photo of a camera has it, else the estimate), "estimate"
        (ignore EXIF), or the path of an intrinsics file (JSON or a COLMAP model; see
        :mod:`fast3r_core.intrinsics`), in pixels of the original photos.
    masks : folder of per-image masks (``NAME.png`` or ``STEM.png``; 0 = ignore), or None.
    frames : how frames are taken from a video: "sharp" (the sharpest of each time bin, near-duplicates
        dropped) or "uniform" (evenly spaced).
    exclude : file names (or stems) of inputs to leave out of the run.
    exclude_missing_ok : a name of ``exclude`` that matches no input is ignored (and reported in the
        run report) instead of refused. For names taken from an earlier result (the app's re-runs),
        not typed ones: a video's frames chosen another way need not hold the frames left out before.
    """

    size: int = 512
    device: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None
    seed: int = 0
    image_ids: tuple[int, ...] | None = None
    max_views: int | None = None
    video_fps: float = 1.0
    video_max_frames: int = 100
    per_view_focal: bool = False
    pnp_iterations: int = 100
    pnp_reproj_px: float = 5.0
    align_percentile: float = 85.0
    encoder_chunk: int | None = None
    head_chunk: int | None = None
    max_views_per_pass: int | None = None
    anchors: int | None = None
    anchor_method: str = "coverage"
    intrinsics: str = "auto"
    masks: str | None = None
    frames: str = "sharp"
    exclude: tuple[str, ...] = ()
    exclude_missing_ok: bool = False

    def __post_init__(self) -> None:
        if self.max_views_per_pass is not None and (
            self.max_views_per_pass < 0 or self.max_views_per_pass == 1
        ):
            raise InputError(
                "max_views_per_pass must be 0 (one pass) or at least 2 (view 0 as the anchor and one more), "
                f"not {self.max_views_per_pass}"
            )
        if self.anchors is not None and self.anchors < 1:
            raise InputError(f"anchors must be at least 1 (view 0), not {self.anchors}")
        if self.frames not in FRAME_METHODS:
            raise InputError(f"frames must be one of {', '.join(FRAME_METHODS)}, not {self.frames!r}")
        object.__setattr__(self, "exclude", tuple(str(x) for x in self.exclude))
        if self.anchor_method not in ANCHOR_METHODS:
            raise InputError(
                f"anchor_method must be one of {', '.join(ANCHOR_METHODS)}, not {self.anchor_method!r}"
            )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReconstructOptions:
        """The options stored by :meth:`to_json` (unknown keys, from newer versions, are ignored)."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("exclude") is not None:
            kwargs["exclude"] = tuple(str(x) for x in kwargs["exclude"])
        if kwargs.get("image_ids") is not None:
            kwargs["image_ids"] = tuple(int(i) for i in kwargs["image_ids"])
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_ids"] = list(self.image_ids) if self.image_ids is not None else None
        d["exclude"] = list(self.exclude)
        return d
