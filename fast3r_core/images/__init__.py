"""Photos and videos in: input discovery, decoding and the model's exact resize + centre crop.

Inputs are a folder (non-recursive, entries sorted by file name), a single file, a list of files
(or folders), or a video. Images are decoded with Pillow, oriented by their EXIF tag, converted to
8-bit RGB, resized and centre-cropped exactly as the published preprocessing does (spec section 5),
and returned as :class:`ViewInput` objects in input order. Unreadable images are skipped and
reported, never fatal on their own.

Where each part lives:

* :mod:`.discovery`: image/video extensions and which files a folder or list designates;
* :mod:`.decoding`: one image -> :class:`ViewInput` (EXIF orientation, resize + crop geometry, the
  shared byte budget of full-resolution decodes); its docstring states the pixel conventions;
* :mod:`.video`: frames sampled from a video into JPEG files, and their cache folder;
* :mod:`.loading`: :func:`load_inputs` and friends, which put the three together (in parallel).

Importing this package loads neither torch (only :attr:`ViewInput.image` needs it) nor OpenCV (only
for videos). A test that replaces a function or constant replaces it in the module that uses it,
e.g. ``fast3r_core.images.decoding.FULL_DECODE_MAX_PIXELS``.
"""

from __future__ import annotations

from .decoding import ResizeCrop, ViewInput, load_image, resize_crop_geometry
from .discovery import (
    BASE_IMAGE_EXTENSIONS,
    HEIF_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Discovery,
    PathInput,
    SkippedFile,
    discover_inputs,
    heif_supported,
    image_extensions,
    is_image_file,
    is_video,
)
from .loading import LoadResult, load_images, load_inputs, load_video
from .video import VideoFrame, default_frames_root, extract_video_frames, prune_frames_cache

__all__ = [
    "BASE_IMAGE_EXTENSIONS",
    "HEIF_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Discovery",
    "LoadResult",
    "PathInput",
    "ResizeCrop",
    "SkippedFile",
    "VideoFrame",
    "ViewInput",
    "default_frames_root",
    "discover_inputs",
    "extract_video_frames",
    "heif_supported",
    "image_extensions",
    "is_image_file",
    "is_video",
    "load_image",
    "load_images",
    "load_inputs",
    "load_video",
    "prune_frames_cache",
    "resize_crop_geometry",
]
