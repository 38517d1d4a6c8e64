"""Receive an upload body into a file without ever holding more than one chunk, stopping at the size cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

# the ?format= values a client may send -> the suffix the server gives the stored file (never client text)
UPLOAD_FORMATS = {"nii.gz": ".nii.gz", "nii": ".nii", "nrrd": ".nrrd", "mha": ".mha"}


class TooLarge(Exception):
    """The body passed the size cap; nothing of it is left on disk."""


async def receive(chunks: AsyncIterator[bytes], path: Path, limit: int) -> int:
    """Write the chunks into ``path`` and return the byte count; over ``limit`` bytes the file is removed
    and TooLarge raised at once, before the rest of the body is read."""
    received = 0
    try:
        with path.open("xb") as file:
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise TooLarge(f"the upload is larger than this server's cap of {format_mb(limit)}")
                file.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return received


def format_mb(size: int) -> str:
    """Bytes as the MB figure given to --max-upload-mb."""
    return f"{size / 2**20:g} MB"
