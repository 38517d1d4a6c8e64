"""An evaluation run: every case through every method, one row per case and method in ``cases.csv``.

The run is resumable: ``cases.csv`` is rewritten whole (temp file + rename) after each case, so it is
always complete, and a rerun into the same folder skips the cases it already holds. The folder's
``evaluation.json`` records the run's settings; a run with other settings is refused there.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..data.case import Case
from ..errors import DiffuGTSError
from ..io import atomic_output, write_csv
from ..progress import ProgressCallback, silent
from .metrics import segmentation_scores
from .organs import organ_mask
from .predictors import Predictor
from .summary import case_key, write_summary

CASES_CSV, SETTINGS_JSON = "cases.csv", "evaluation.json"
OK, SKIPPED_MODALITY, ERROR = "ok", "skipped: modality not supported", "error"
COLUMNS = ("case_id", "image", "dataset", "category", "split", "modality", "prompt", "has_tumor", "method",
           "status", "region", "dice", "nsd", "hd95_mm", "presence", "predicted_ml", "true_ml", "seconds")


@dataclass(frozen=True)
class RunSettings:
    """What makes two runs comparable: the same cases, methods, quality and models."""

    dataset: str
    layout: str
    methods: tuple[str, ...]
    quality: str | None = None  # Segmenter preset; None when no Segmenter method runs
    models: dict[str, object] = field(default_factory=dict)
    phantom_split: str | None = None
    split: str | None = None  # the zero-shot split that labels a dataset's cases seen or unseen
    phantoms: dict[str, int] = field(default_factory=dict)  # n per category, size, seed

    @property
    def title(self) -> str:
        what = f"phantom zero-shot split {self.phantom_split}" if self.phantom_split else self.dataset
        what += f", zero-shot split {self.split}" if self.split else ""
        return f"{what}, {self.quality} preset" if self.quality else what

    def to_dict(self) -> dict:
        """Plain JSON data (lists, not tuples), so it compares equal to the saved evaluation.json."""
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass(frozen=True)
class RunOutcome:
    evaluated: int  # cases run now
    reused: int  # cases found in cases.csv from an earlier run
    rows: list[dict[str, str]]
    folder: Path


def with_file_hashes(models: dict[str, object]) -> dict[str, object]:
    """``models`` plus the SHA-256 of every model file it names, so a retrained head counts as other settings."""
    hashes = {name: hashlib.sha256(Path(value).read_bytes()).hexdigest()[:16] for name, value in models.items()
              if isinstance(value, str) and Path(value).is_file()}
    return {**models, "file_sha256": hashes}


def check_run_folder(out: Path, settings: RunSettings) -> None:
    """Refuse ``out`` when it holds a run with other settings; record the settings when it holds none."""
    path = out / SETTINGS_JSON
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved != settings.to_dict():
            changed = sorted(k for k in set(saved) | set(settings.to_dict()) if saved.get(k) != settings.to_dict()[k])
            raise DiffuGTSError(f"the output folder holds an evaluation with other settings ({', '.join(changed)})",
                                path=out, hint="Use a new --out folder, or the same options as that run.")
        return
    if (out / CASES_CSV).exists():
        raise DiffuGTSError(f"the output folder has a {CASES_CSV} but no {SETTINGS_JSON}", path=out,
                            hint="Use a new --out folder; this one was not written by 'diffugts evaluate'.")
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(settings.to_dict(), indent=1), encoding="utf-8")


def evaluate(cases: Sequence[Case], predictors: Sequence[Predictor], out: str | Path, settings: RunSettings, *,
             split=None, progress: ProgressCallback = silent) -> RunOutcome:
    """Run every case not yet in ``out/cases.csv``, then write the summary; ``split`` labels seen/unseen."""
    out = Path(out)
    check_run_folder(out, settings)
    rows = read_rows(out / CASES_CSV)
    done = {case_key(row) for row in rows} - {case_key(row) for row in rows if row["status"].startswith(ERROR)}
    todo = [case for case in cases if _key(case) not in done]
    for number, case in enumerate(todo, start=1):
        stage = f"case {number}/{len(todo)} {case.case_id}"
        progress(stage, 0.0)
        new = case_rows(case, predictors, split, lambda fraction: progress(stage, fraction))
        rows = [row for row in rows if case_key(row) != _key(case)] + new
        write_rows(out / CASES_CSV, rows)
    write_summary(out, rows, title=settings.title)
    return RunOutcome(len(todo), len(cases) - len(todo), rows, out)


def case_rows(case: Case, predictors: Sequence[Predictor], split=None,
              report=lambda fraction: None) -> list[dict[str, str]]:
    """One row per method for ``case``; a method whose model cannot read the modality is marked skipped."""
    base = {"case_id": case.case_id, "image": case.image.path.name, "dataset": case.dataset,
            "category": case.category or case.prompt, "split": (split.role(case.prompt) or "") if split else "",
            "modality": case.modality, "prompt": case.prompt}
    methods = [method for predictor in predictors for method in predictor.methods]
    try:
        images, truth = case.load()
    except DiffuGTSError as error:
        return [{**base, "method": m, "status": f"{ERROR}: {error}"} for m in methods]
    image = images[next(iter(images))]
    has_tumor = truth is not None and bool(truth.array.any())
    base["has_tumor"] = "yes" if has_tumor else "no"
    if truth is None:
        truth = image.like(np.zeros(image.array.shape, dtype=np.uint8), modality="mask")
    organ = organ_mask(case, image)
    rows = []
    for number, predictor in enumerate(predictors, start=1):
        if not predictor.supports(case.modality):
            rows += [{**base, "method": m, "status": SKIPPED_MODALITY} for m in predictor.methods]
            continue
        try:
            predictions = predictor.predict(image, case.prompt, organ)
        except DiffuGTSError as error:
            rows += [{**base, "method": m, "status": f"{ERROR}: {error}"} for m in predictor.methods]
            continue
        for method, prediction in predictions.items():
            scores = segmentation_scores(prediction.mask, truth)
            metrics = dict(dice=scores.dice, nsd=scores.nsd, hd95_mm=scores.hd95_mm) if has_tumor else {}
            rows.append({**base, "method": method, "status": OK, "region": prediction.region,
                         **{k: _number(v) for k, v in metrics.items()}, "presence": _number(prediction.presence),
                         "predicted_ml": _number(scores.predicted_ml), "true_ml": _number(scores.true_ml),
                         "seconds": _number(prediction.seconds)})
        report(number / len(predictors))
    return [{column: row.get(column, "") for column in COLUMNS} for row in rows]


def _key(case: Case) -> tuple[str, str]:
    return case.case_id, case.image.path.name


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a cases.csv, or none when it does not exist yet; a file of another shape is refused."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise DiffuGTSError(f"{path.name} has other columns than this version writes", path=path,
                                hint="Use a new --out folder.")
        return list(reader)


def write_rows(path: Path, rows: Sequence[dict[str, str]]) -> None:
    """Replace the CSV in one rename, so an interrupted run never leaves a half-written file."""
    write_csv(path, COLUMNS, rows)
