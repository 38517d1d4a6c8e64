"""Keep freed memory in a long-lived process, so that the next job reuses it without page faults.

glibc hands every block over 32 MB (a volume's tensors) back to the system when it is freed, and the
next job pays a page fault per page to get it back. A warm server segments one new prompt after another
on the same volumes: there, keeping freed blocks (no mmap for large blocks, no trimming) made a new
prompt on a cached 256x256x128 CT 1.5-1.75 s instead of 2.2-2.8 s, for 1.16-1.6x the memory growth of
a job (benchmarks/README.md, "Second prompt on a cached volume"); the memory check counts that.
Every thread allocates from the one main arena: a thread's own arena cannot keep large blocks (its heaps
are at most 64 MB), so the server's worker thread paid the faults again (a new prompt's decode 1.4-2.9 s
in a thread, 0.75 s in the main thread; benchmarks/README.md, "What the user waits for").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8  # glibc's mallopt parameters (malloc.h)
HUGE_PAGES_VARIABLE = "THP_MEM_ALLOC_ENABLE"
_kept = False


def prefer_huge_pages() -> None:
    """Large CPU tensors on 2 MB transparent huge pages (Linux): one page fault per 2 MB instead of per 4 kB
    when a stage's big tensors are allocated afresh (measured: the demo VAE decode of the 256x256x128
    benchmark's latent, 1.55 -> 1.0 s). torch reads the variable at its first allocation, so this acts only
    before torch has allocated; it is for the engine's own processes (the command line, the server, batch
    workers), never an importing one such as Slicer, whose other extensions would inherit it.
    THP_MEM_ALLOC_ENABLE=0 turns it off."""
    os.environ.setdefault(HUGE_PAGES_VARIABLE, "1")


def keep_freed_memory() -> bool:
    """Make this process keep what it frees (glibc on Linux); whether it took effect."""
    global _kept
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    _kept = all(mallopt(option, value) == 1
                for option, value in ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1)))
    return _kept


def keeps_freed_memory() -> bool:
    return _kept
