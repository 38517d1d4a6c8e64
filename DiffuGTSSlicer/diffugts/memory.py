"""Memory budget: refuse work that cannot fit before starting it, instead of being OOM-killed (the estimate of\nwhat a segmentation needs is diffugts.segment.memory's; reading a file needs twice its voxels' bytes)."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from .units import format_bytes

BUDGET_ENV = "DIFFUGTS_MEMORY_BUDGET_GB"
_reserved = 0  # bytes held by reserve() blocks now, in every thread of this process
_reserved_lock = threading.Lock()


class MemoryBusy(Exception):
    """The memory asked for is taken by work already under way; it may fit once that ends."""


def budget_bytes() -> int:
    """The memory the engine may use: $DIFFUGTS_MEMORY_BUDGET_GB, else 80% of what is available now."""
    value = os.environ.get(BUDGET_ENV)
    if value:
        try:
            gigabytes = float(value)
        except ValueError:
            gigabytes = math.nan
        if not (math.isfinite(gigabytes) and gigabytes > 0):
            from .errors import DiffuGTSError

            raise DiffuGTSError(f"{BUDGET_ENV}={value!r} is not a positive number of GB",
                                hint="Set it to a size in GB, for example 8, or unset it.")
        return int(gigabytes * 1024**3)
    return int(psutil.virtual_memory().available * 0.8)


@contextmanager
def reserve(nbytes: int) -> Iterator[None]:
    """Hold ``nbytes`` of the budget for the block, so that concurrent work (uploads read at once) cannot each
    see the same free memory; MemoryBusy when the budget less what others hold is smaller."""
    global _reserved
    with _reserved_lock:
        free = budget_bytes() - _reserved
        if nbytes > free:
            raise MemoryBusy(f"{format_bytes(nbytes)} of memory is needed and {format_bytes(max(free, 0))} is "
                             "free beside the work under way")
        _reserved += nbytes
    try:
        yield
    finally:
        with _reserved_lock:
            _reserved -= nbytes
