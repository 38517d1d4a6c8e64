"""Atomic writes that never touch an input: write a temp file beside the target, then rename."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import DiffuGTSError

_INPUTS: set[Path] = set()


def register_input(path: str | Path) -> None:
    """Remember a file this process read as input, so that no writer ever replaces it."""
    _INPUTS.add(Path(path).resolve())


def is_input(path: str | Path) -> bool:
    return Path(path).resolve() in _INPUTS


def compound_suffix(path: str | Path) -> str:
    """The full extension that picks the format: '.nii.gz', '.seg.nrrd', '.nrrd', ..."""
    name = Path(path).name.lower()
    for suffix in (".seg.nrrd", ".nii.gz", ".tar.gz"):
        if name.endswith(suffix):
            return suffix
    return Path(path).suffix.lower()


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write to; on success it replaces ``path`` in one rename, on failure it is removed."""
    target = Path(path)
    if is_input(target):
        raise DiffuGTSError(
            "refusing to overwrite an input file",
            path=target,
            hint="Choose another output name or folder; inputs are never modified.",
        )
    suffix = compound_suffix(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".partial{suffix}", dir=target.parent)
    except OSError as error:
        raise DiffuGTSError(f"cannot write here ({error.strerror or error})", path=target,
                            hint="Choose an output folder you can write to.") from None
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs get the user's usual permissions
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def current_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_csv(path: str | Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> Path:
    """A CSV with exactly ``columns`` (header first), replaced in one rename: never half-written."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_output(path) as temp:
        temp.write_text(text.getvalue(), encoding="utf-8")
    return Path(path)
