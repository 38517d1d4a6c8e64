"""A batch's output folder: one finished folder per case, in-progress work out of sight, the settings it was made with.

    OUT/<case_id>/...          a finished case (its report.json is written last, then the folder is renamed here)
    OUT/.partial/<case_id>.*   a case being written; left-overs of a killed run are removed at the next start
    OUT/batch.json             the request and models of the run that made OUT; a resume must match them
    OUT/summary.csv            one row per case, rewritten (atomically) after every case
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import DiffuGTSError
from ..io import atomic_output
from ..io.safe_write import current_umask

SETTINGS_NAME = "batch.json"
SUMMARY_NAME = "summary.csv"
PARTIAL_NAME = ".partial"


class BatchFolder:
    """Paths and moves of one batch output folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def case(self, case_id: str) -> Path:
        return self.root / case_id

    def is_done(self, case_id: str) -> bool:
        return (self.case(case_id) / "report.json").is_file()

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_NAME

    def start(self, settings: dict) -> None:
        """Create the folder, or resume it when it was made with the same ``settings``; drop left-over partials."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / SETTINGS_NAME
        if path.is_file():
            earlier = json.loads(path.read_text(encoding="utf-8"))
            if earlier != settings:
                changed = sorted(k for k in set(earlier) | set(settings) if earlier.get(k) != settings.get(k))
                raise DiffuGTSError(f"this output folder holds a batch made with other settings ({', '.join(changed)})",
                                    path=self.root, hint="Resume with the same options, or choose a new --out folder.")
        else:
            with atomic_output(path) as temp:
                temp.write_text(json.dumps(settings, indent=2, sort_keys=True), encoding="utf-8")
        shutil.rmtree(self.root / PARTIAL_NAME, ignore_errors=True)

    def partial(self, case_id: str) -> Path:
        """A fresh, private folder to write a case into."""
        (self.root / PARTIAL_NAME).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{case_id}.", dir=self.root / PARTIAL_NAME))

    def commit(self, partial: Path, case_id: str) -> Path:
        """Move a completely written case into place in one rename (a finished case is never replaced)."""
        target = self.case(case_id)
        os.chmod(partial, 0o777 & ~current_umask())  # mkdtemp makes 0700; a case folder gets the user's usual permissions
        try:
            os.rename(partial, target)
        except OSError:
            if not self.is_done(case_id):
                raise DiffuGTSError("a folder of this case's name is in the way", path=target,
                                    hint="Move it away (it is not a finished case: it has no report.json).") from None
            shutil.rmtree(partial, ignore_errors=True)  # another run finished it first: keep that one
        return target

    def finish(self) -> None:
        """Remove the in-progress folder once nothing is in it."""
        try:
            (self.root / PARTIAL_NAME).rmdir()
        except OSError:
            pass
