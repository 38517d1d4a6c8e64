"""Receive an upload body into a file without ever holding more than one chunk, stopping at the size cap; a gate
that bounds how many uploads are received at once and reserves their disk space before the first byte."""

from __future__ import annotations

import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..client import UPLOAD_FORMATS as CLIENT_FORMATS
from ..units import format_bytes

# the ?format= values a client may send -> the suffix the server gives the stored file (never client text)
UPLOAD_FORMATS = {file_format: suffix for suffix, file_format in CLIENT_FORMATS.items()}
RETRY_AFTER_S = 2  # what a refused upload is told to wait before trying again


class TooLarge(Exception):
    """The body passed the size cap; nothing of it is left on disk."""


class Full(Exception):
    """No room for this upload now (uploads under way, disk or memory); it may be tried again shortly."""


class UploadGate:
    """At most ``max_uploads`` uploads received and read at once, each holding its declared size (or the cap)
    of disk while it lasts, so that concurrent uploads cannot together fill the disk; ``keep_free_bytes`` of
    disk are never given to uploads."""

    def __init__(self, folder: Path, max_uploads: int, keep_free_bytes: int) -> None:
        self.folder, self.max_uploads, self.keep_free_bytes = folder, max_uploads, keep_free_bytes
        self._active = 0
        self._disk_reserved = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, nbytes: int) -> Iterator[None]:
        """Hold one upload place and ``nbytes`` of disk for the block; Full (at once, never waiting) otherwise."""
        with self._lock:
            if self._active >= self.max_uploads:
                raise Full(f"{self.max_uploads} uploads are being received already")
            free = shutil.disk_usage(self.folder).free - self._disk_reserved - self.keep_free_bytes
            if nbytes > free:
                raise Full(f"not enough free disk space for {format_bytes(nbytes)} beside the uploads under way")
            self._active += 1
            self._disk_reserved += nbytes
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self._disk_reserved -= nbytes


async def receive(chunks: AsyncIterator[bytes], path: Path, limit: int) -> int:
    """Write the chunks into ``path`` and return the byte count; over ``limit`` bytes the file is removed
    and TooLarge raised at once, before the rest of the body is read."""
    received = 0
    try:
        with path.open("xb") as file:
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise TooLarge(f"the upload is larger than this server's cap of {format_bytes(limit)}")
                file.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return received
