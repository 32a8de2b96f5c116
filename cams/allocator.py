"""glibc's malloc, told to keep large freed blocks for reuse instead of handing them back.

By default glibc serves a block above its mmap threshold (128 kB at first, raised as such blocks
are freed) from a mapping of its own, and gives heap memory above its trim threshold back as
soon as it is freed. A forward pass allocates and frees tensors of a few MB each, so the next
pass finds new pages, which the kernel faults in one by one and zeroes: on a 2-core CPU a Lite0
A-vs-B comparison took 5300–5800 page faults and a quarter to a third of its time there
(BENCHMARKS.md, "The allocator, keeping what it frees"). ``reuse_freed_memory`` fixes the mmap
threshold at 64 MB and the trim threshold at its maximum, so blocks up to 64 MB are reused from
the heap; the process keeps what it freed (up to its peak) until it calls ``malloc_trim``.

The command lines call it (``python -m cam_studio``: explain, training, evaluation, benchmarks),
so do the app's server (which also trims its heaps every few seconds, ``cam_studio.page.memory``)
and the test suite; a script or a notebook may too. It changes nothing where the C library is not
glibc.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
# The largest mmap threshold glibc accepts is half its heap's maximum size: 32 MB on older
# 64-bit builds, more on newer ones (the first one taken wins).
MMAP_THRESHOLDS = (64 << 20, 32 << 20)
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: never trim by itself


def glibc() -> ctypes.CDLL | None:
    """The process's glibc, or None where the C library is another."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (both exist: glibc)
    except (OSError, AttributeError):
        return None
    return libc


def reuse_freed_memory() -> bool:
    """Keep freed blocks up to 64 MB for the next allocation (see the module); True if glibc
    took the settings."""
    libc = glibc()
    if libc is None:
        return False
    if not any(libc.mallopt(M_MMAP_THRESHOLD, size) == 1 for size in MMAP_THRESHOLDS):
        return False
    return libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
