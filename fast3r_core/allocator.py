"""Host (CPU) memory allocator tuning for the forward pass: reuse large freed blocks, then give them back.

Why: glibc serves every allocation above ``M_MMAP_THRESHOLD`` (dynamic, at most 32 MiB on 64-bit) with
a fresh ``mmap`` and unmaps it on free. A forward pass allocates and frees activations of 25-800 MB in
turn (13 GB in all at 4 x 512x384), so the kernel faults in and zeroes every one of them anew: 5-9 % of
the pass's CPU time went to system time (``bench/README.md``, "host allocator"). With the threshold at
256 MiB those blocks come from the heap and freed ones are reused; the trim threshold stays low
(128 MiB) and :func:`release_free_memory` is called between stages and after the pass, so freed holes
do not pile up and the peak resident memory stays where it was.

Only glibc (Linux) is tuned; elsewhere (macOS, Windows, musl) every function here does nothing.
Set ``FAST3R_MALLOC_TUNING=0`` to leave the allocator alone (the benchmark does, to measure the gain).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
import threading

__all__ = ["glibc", "release_free_memory", "tune_allocator"]

log = logging.getLogger(__name__)

# from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024**2  # bytes: blocks up to this size come from the heap (and are reused)
TRIM_THRESHOLD = 128 * 1024**2  # bytes of free heap top kept before glibc returns it to the OS

_lock = threading.Lock()
_tuned = False


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (has ``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname on every Linux architecture
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only (not musl)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def _enabled() -> bool:
    return os.environ.get("FAST3R_MALLOC_TUNING", "1").strip().lower() not in ("0", "false", "no", "off")


def tune_allocator() -> bool:
    """Raise glibc's mmap threshold to 256 MiB and set the trim threshold to 128 MiB, once per process.

    Returns True if the allocator is tuned (now or before). Process-wide and harmless for other code:
    blocks below 256 MiB are served from the heap as small blocks always are.
    """
    global _tuned
    libc = glibc()
    if libc is None or not _enabled():
        return False
    with _lock:
        if not _tuned:
            # mallopt returns 1 on success; setting either value also ends glibc's dynamic threshold
            ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
            if not ok:
                log.warning("mallopt refused the allocator settings; the allocator is left as it is")
                return False
            _tuned = True
            log.debug(
                "glibc malloc: mmap threshold %d MiB, trim threshold %d MiB",
                MMAP_THRESHOLD >> 20,
                TRIM_THRESHOLD >> 20,
            )
    return True


def release_free_memory() -> None:
    """Return the heap's free pages to the OS (``malloc_trim(0)``); a no-op unless the allocator is tuned."""
    libc = glibc()
    if libc is not None and _tuned:
        libc.malloc_trim(0)
