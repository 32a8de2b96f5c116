"""The server's memory allocator, told to give freed memory back to the system.

A comparison's temporaries (maps, the grid's canvas, JPEG buffers) are freed when it answers, but
glibc's malloc keeps freed memory for reuse: one heap (arena) per thread that ever allocated
concurrently, and large blocks on the heap once a first one was freed (its mmap threshold rises).
With 16 requests in progress at once that kept ~1 GB more after a classroom's 60 comparisons
than before (``python -m cam_studio bench --classroom 30``, BENCHMARKS.md). So the server caps
the arenas and trims what is left free every ``TRIM_EVERY_S`` seconds. It leaves glibc's mmap
threshold to adjust itself: fixed at 256 kB (and fixing the trim threshold fixes it too), every
tensor of a forward pass was mapped, faulted in page by page and unmapped again, and a
comparison took 1.75× as long (385 → 672 ms, Lite0 A vs B on chelsea). On a system without
glibc nothing changes.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time

M_ARENA_MAX = -8  # glibc's <malloc.h>
ARENAS = 2  # heaps shared by the server's threads (glibc's default: 8 per core)
TRIM_EVERY_S = 5.0

log = logging.getLogger("cam_studio.page")


def glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (both exist: glibc)
    except (OSError, AttributeError):
        return None
    return libc


def give_memory_back() -> bool:
    """Cap the arenas (call it before the server's threads start), then trim the heaps every few
    seconds in a thread of its own; False where there is no glibc."""
    libc = glibc()
    if libc is None:
        return False
    if libc.mallopt(M_ARENA_MAX, ARENAS) != 1:
        log.warning("glibc refused a malloc setting: the server keeps what it frees")
        return False

    def trim_forever() -> None:
        while True:
            time.sleep(TRIM_EVERY_S)
            libc.malloc_trim(0)

    threading.Thread(target=trim_forever, daemon=True, name="memory-trimmer").start()
    return True
