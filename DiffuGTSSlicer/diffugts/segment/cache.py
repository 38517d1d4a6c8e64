"""In-memory LRU caches with hit and miss counters, and the keyed stages of the Segmenter's pipeline.

A stage's value comes back as :class:`Keyed`: the value and the key of everything it was computed from. A stage
is keyed by all of its named inputs (a Keyed input by its key, plain data by its value, a volume or tensor by
a digest of its content), so an input added to a stage is in its key by construction.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch

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


@dataclass(frozen=True)
class Keyed(Generic[T]):
    """A stage's value and the key of the inputs it was computed from."""

    key: Hashable
    value: T

    @classmethod
    def by_content(cls, value: Any, name: str = "") -> Keyed:
        """A value keyed by its own content (equal content, equal key, whatever made it)."""
        return cls((name, key_of(value)), value)


def key_of(value: Any) -> Hashable:
    """A hashable key for a stage input: a Keyed value's key, plain data as it is, volumes, tensors and arrays by
    content, dataclasses field by field, a module by identity and weight version. Anything else is an error, so
    an input cannot silently stay out of a key."""
    if isinstance(value, Keyed):
        return value.key
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(key_of(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), key_of(v)) for k, v in value.items()))
    if isinstance(value, Volume):
        return volume_key(value)
    if isinstance(value, torch.nn.Module):  # in-place weight updates (an optimizer step) bump the version
        return ("module", id(value), sum(p._version for p in value.parameters()))
    if isinstance(value, torch.Tensor):
        return tensor_key(value)
    if isinstance(value, np.ndarray):
        return hashlib.blake2b(np.ascontiguousarray(value).view(np.uint8), digest_size=16).hexdigest()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__qualname__, *((f.name, key_of(getattr(value, f.name))) for f in dataclasses.fields(value)))
    raise TypeError(f"a stage input of type {type(value).__name__} has no cache key")


class Stages:
    """One counting cache per pipeline stage; :meth:`run` computes a stage or reuses it for equal inputs."""

    def __init__(self, capacities: dict[str, int]) -> None:
        self.caches: dict[str, CountingCache] = {name: CountingCache(n) for name, n in capacities.items()}

    def run(self, stage: str, compute: Callable[..., T], /, **inputs: Any) -> Keyed[T]:
        """``compute(**inputs)`` (Keyed inputs unwrapped), keyed by the stage and every input."""
        key = hashlib.blake2b(repr((stage, sorted((n, key_of(v)) for n, v in inputs.items()))).encode(),
                              digest_size=16).hexdigest()
        value = self.caches[stage].get(key, lambda: compute(**{n: unwrap(v) for n, v in inputs.items()}))
        return Keyed((stage, key), value)

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """stage -> {"hits": n, "misses": n}."""
        return {name: {"hits": c.hits, "misses": c.misses} for name, c in self.caches.items()}

    def clear(self) -> None:
        for cache in self.caches.values():
            cache.clear()


def unwrap(value: Any) -> Any:
    """A Keyed value's value (also inside a list or tuple); anything else as it is."""
    if isinstance(value, Keyed):
        return value.value
    if isinstance(value, (list, tuple)) and any(isinstance(v, Keyed) for v in value):
        return type(value)(unwrap(v) for v in value)
    return value
