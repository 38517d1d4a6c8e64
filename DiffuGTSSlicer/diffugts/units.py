"""Sizes as people read them, one formatter for the engine, the server and the Slicer module (no imports)."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """A human-readable size: 512 B, 3.2 MB, 1.5 GB."""
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
