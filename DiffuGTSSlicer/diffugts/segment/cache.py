"""A small in-memory LRU cache with hit and miss counters (per-volume encodings, inpainting samples)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

from ..io import Volume

T = TypeVar("T")


class CountingCache(Generic[T]):
    """Keeps the ``capacity`` most recently used values; ``hits``/``misses`` say what was reused."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._values: OrderedDict[Hashable, T] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key``, or ``compute()`` stored under it."""
        if key in self._values:
            self.hits += 1
            self._values.move_to_end(key)
            return self._values[key]
        self.misses += 1
        value = compute()
        if self.capacity > 0:
            self._values[key] = value
            while len(self._values) > self.capacity:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        self._values.clear()


def volume_key(volume: Volume) -> tuple:
    """Identity of a volume's content and grid: equal keys mean the same voxels in the same place."""
    digest = hashlib.blake2b(np.ascontiguousarray(volume.array).view(np.uint8), digest_size=16).hexdigest()
    grid = volume.grid
    return digest, str(volume.array.dtype), grid.size, grid.spacing, grid.origin, grid.direction


def tensor_key(tensor) -> str:
    """Digest of a tensor's values (e.g. an inpainting mask)."""
    array = np.ascontiguousarray(tensor.detach().cpu().numpy())
    return hashlib.blake2b(array.view(np.uint8), digest_size=16).hexdigest()
