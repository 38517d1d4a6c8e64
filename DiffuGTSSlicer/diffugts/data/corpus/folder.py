"""The corpus folder on disk: refuse a foreign folder, write volumes atomically, reuse unchanged files.

A rerun into the same folder reuses every file whose recorded content fingerprint and byte size still
match (.corpus-files.json, updated after each case, so an interrupted run resumes), and removes files
the new corpus no longer lists: the result is the same as a clean build.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import DiffuGTSError
from ...io import Volume, atomic_output, write_volume
from .record import CORPUS_JSON

STATE = ".corpus-files.json"
DATA_FOLDERS = ("images", "masks", "organs")


class CorpusFolder:
    """DIR of ``diffugts data corpus``: its volume files and the record of what each holds."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if root.exists() and not root.is_dir():
            raise DiffuGTSError("--out is a file", path=root, hint="Choose a folder for the corpus.")
        if root.is_dir() and any(root.iterdir()) and not self.is_corpus(root):
            raise DiffuGTSError("--out is not empty and holds no corpus", path=root,
                                hint="Choose a new or empty folder, or one written by 'diffugts data corpus'.")
        self.files: dict[str, dict[str, object]] = {}
        if (root / STATE).is_file():
            try:
                self.files = dict(json.loads((root / STATE).read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                self.files = {}  # unreadable record: every file is written again
        self.save()

    @staticmethod
    def is_corpus(root: Path) -> bool:
        return (root / CORPUS_JSON).is_file() or (root / STATE).is_file()

    def write(self, volume: Volume, relative: str, fingerprint: str) -> bool:
        """Write ``volume`` to DIR/relative unless that file already holds it; True when written."""
        path = self.root / relative
        known = self.files.get(relative, {})
        if path.is_file() and known.get("sha256") == fingerprint and known.get("bytes") == path.stat().st_size:
            return False
        write_volume(volume, path)
        self.files[relative] = {"sha256": fingerprint, "bytes": path.stat().st_size}
        return True

    def save(self) -> None:
        with atomic_output(self.root / STATE) as temp:
            temp.write_text(json.dumps(self.files, indent=1, sort_keys=True), encoding="utf-8")

    def remove_unlisted(self, keep: set[str]) -> list[str]:
        """Delete volume files of an earlier run that the new corpus does not list."""
        removed = []
        for folder in DATA_FOLDERS:
            for path in sorted((self.root / folder).glob("*")) if (self.root / folder).is_dir() else []:
                relative = f"{folder}/{path.name}"
                if path.is_file() and relative not in keep:
                    path.unlink()
                    removed.append(relative)
        self.files = {name: facts for name, facts in self.files.items() if name in keep}
        self.save()
        return removed
