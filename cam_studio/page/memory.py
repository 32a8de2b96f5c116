"""The server's memory allocator: freed blocks reused, given back to the system every few seconds.

A comparison's temporaries (maps, the grid's canvas, JPEG buffers) are freed when it answers, but
glibc's malloc keeps freed memory for reuse: one heap (arena) per thread that ever allocated
concurrently. With 16 requests in progress at once that kept ~1 GB more after a classroom's 60
comparisons than before (``python -m cam_studio bench --classroom 30``, BENCHMARKS.md). So the
server caps the arenas and trims what is left free every ``TRIM_EVERY_S`` seconds. Between trims
blocks up to 64 MB are reused from the heaps (``cams.allocator.reuse_freed_memory``, as the
command lines do): the page's faithfulness rows for A and B took 16–17 s instead of 19–20 s; the
classroom's burst was no faster nor slower within this VM's spread (BENCHMARKS.md, 2026-12-07).
(A threshold fixed low, 256 kB, once sent every tensor to a mapping of its own: a comparison
took 1.75× as long.) On a system without glibc nothing changes.
"""

from __future__ import annotations

import logging
import threading
import time

from cams.allocator import glibc, reuse_freed_memory

M_ARENA_MAX = -8  # glibc's <malloc.h>
ARENAS = 2  # heaps shared by the server's threads (glibc's default: 8 per core)
TRIM_EVERY_S = 5.0

log = logging.getLogger("cam_studio.page")


def give_memory_back() -> bool:
    """Cap the arenas (call it before the server's threads start), reuse freed blocks, then trim
    the heaps every few seconds in a thread of its own; False where there is no glibc."""
    libc = glibc()
    if libc is None:
        return False
    if libc.mallopt(M_ARENA_MAX, ARENAS) != 1:
        log.warning("glibc refused a malloc setting: the server keeps what it frees")
        return False
    if not reuse_freed_memory():
        log.warning("glibc refused its thresholds: each pass faults in fresh pages (slower)")

    def trim_forever() -> None:
        while True:
            time.sleep(TRIM_EVERY_S)
            libc.malloc_trim(0)

    threading.Thread(target=trim_forever, daemon=True, name="memory-trimmer").start()
    return True
