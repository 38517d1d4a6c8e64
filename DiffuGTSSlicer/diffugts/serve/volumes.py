"""Uploaded volumes on the server's disk: server-made ids, pins while jobs use them, oldest evicted first."""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

ID_PATTERN = r"^[0-9a-f]{32}$"
_ID = re.compile(ID_PATTERN)


def new_id() -> str:
    """A fresh server-made id: 32 random hex digits."""
    return secrets.token_hex(16)


def valid_id(text: str) -> bool:
    return bool(_ID.fullmatch(text))


class Busy(Exception):
    """The volume is used by a queued or running job, or every volume is."""


@dataclass
class StoredVolume:
    id: str
    path: Path
    size: tuple[int, int, int]
    pins: int = 0

    def public(self) -> dict:
        return {"id": self.id, "size": list(self.size), "bytes": self.path.stat().st_size}


class VolumeStore:
    """Volumes in ``folder``, at most ``capacity`` of them; a pinned volume is never evicted, and one deleted
    while pinned is gone from the store at once and from the disk when its last job ends."""

    def __init__(self, folder: Path, capacity: int) -> None:
        self.folder = folder
        self.capacity = capacity
        self._volumes: OrderedDict[str, StoredVolume] = OrderedDict()
        self._leaving: dict[str, StoredVolume] = {}  # deleted while pinned: the file goes at the last unpin
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def new_path(self, suffix: str) -> tuple[str, Path]:
        """A fresh id and the file it will live in (the suffix is one of the server's own formats)."""
        volume_id = new_id()
        return volume_id, self.folder / f"{volume_id}{suffix}"

    def add(self, volume_id: str, path: Path, size: tuple[int, int, int]) -> StoredVolume:
        """Keep an uploaded (and successfully read) volume, evicting the oldest unpinned ones beyond capacity."""
        with self._lock:
            unpinned = [v for v in self._volumes.values() if v.pins == 0]
            if len(self._volumes) >= self.capacity and not unpinned:
                path.unlink(missing_ok=True)
                raise Busy(f"all {self.capacity} stored volumes are in use by jobs")
            for old in unpinned[: max(0, len(self._volumes) + 1 - self.capacity)]:
                self._remove(old)
            stored = self._volumes[volume_id] = StoredVolume(volume_id, path, size)
            return stored

    def __contains__(self, volume_id: str) -> bool:
        with self._lock:
            return volume_id in self._volumes

    def pin(self, volume_id: str) -> Path:
        """Keep the volume while a job needs it; returns its file. KeyError when unknown."""
        with self._lock:
            stored = self._volumes[volume_id]
            stored.pins += 1
            return stored.path

    def unpin(self, volume_id: str) -> None:
        with self._lock:
            stored = self._volumes.get(volume_id) or self._leaving.get(volume_id)
            if stored is None:
                return
            stored.pins -= 1
            if stored.pins == 0 and self._leaving.pop(volume_id, None) is not None:
                stored.path.unlink(missing_ok=True)

    def delete(self, volume_id: str) -> None:
        """Remove the volume (KeyError when unknown); its file goes now, or when the jobs using it have ended
        (a client that cancels a running job cannot wait for its next progress report)."""
        with self._lock:
            stored = self._volumes[volume_id]
            if stored.pins:
                del self._volumes[volume_id]
                self._leaving[volume_id] = stored
            else:
                self._remove(stored)

    def _remove(self, stored: StoredVolume) -> None:
        del self._volumes[stored.id]
        stored.path.unlink(missing_ok=True)
