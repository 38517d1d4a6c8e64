"""A whole batch: skip finished cases, run the rest on an executor, keep summary.csv current, report progress."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io import write_csv
from ..progress import ProgressCallback, silent
from ..segment.job import SegmentRequest
from .cases import BatchCase
from .layout import BatchFolder
from .local import local_outcomes
from .worker import CaseOutcome, ModelSpec

SUMMARY_COLUMNS = ("case_id", "image", "status", "presence", "volume_ml", "seconds", "error", "worker")
SUMMARY_EVERY_S = 2.0  # summary.csv is rewritten at most this often (and at the end); finished folders are the truth


@dataclass
class BatchTotals:
    done: int = 0  # finished in this run
    earlier: int = 0  # finished by an earlier run, skipped
    failed: int = 0


def run_batch(cases: Sequence[BatchCase], request: SegmentRequest, out: str | Path, spec: ModelSpec, *,
              devices: Sequence[str] = ("cpu",), threads: int | None = None, ray_address: str | None = None,
              ray_workers: int | None = None, progress: ProgressCallback = silent,
              on_outcome: Callable[[CaseOutcome], None] | None = None) -> BatchTotals:
    """Segment every case not already finished in ``out``; one failing case is recorded and the batch goes on."""
    folder = BatchFolder(out)
    folder.start({"request": request.to_json(),
                  "models": {"backbone": spec.backbone, "weights": spec.weights, "heads": spec.heads,
                             "refine": spec.refine}})
    rows = {case.case_id: _earlier_row(case, folder) for case in cases if folder.is_done(case.case_id)}
    totals = BatchTotals(earlier=len(rows))
    todo = [case for case in cases if case.case_id not in rows]
    _write_summary(folder, cases, rows)
    progress("batch", len(rows) / len(cases))
    body = request.to_json()
    if ray_address:
        from .ray_run import ray_outcomes

        outcomes = ray_outcomes(todo, body, out, spec, ray_address, ray_workers)
    else:
        outcomes = local_outcomes(todo, body, out, spec, devices, threads)
    written = time.monotonic()
    for outcome in outcomes:
        rows[outcome.case.case_id] = _row(outcome)
        totals.done += outcome.status == "done"
        totals.failed += outcome.status == "failed"
        if on_outcome:
            on_outcome(outcome)
        if time.monotonic() - written > SUMMARY_EVERY_S:
            _write_summary(folder, cases, rows)
            written = time.monotonic()
        progress("batch", len(rows) / len(cases))
    _write_summary(folder, cases, rows)
    folder.finish()
    return totals


def _row(outcome: CaseOutcome) -> dict[str, str]:
    return {"case_id": outcome.case.case_id, "image": outcome.case.image, "status": outcome.status,
            "presence": ";".join(f"{f['presence']:.4f}" for f in outcome.findings),
            "volume_ml": ";".join(f"{f['volume_ml']:.3f}" for f in outcome.findings),
            "seconds": f"{outcome.seconds:.1f}", "error": outcome.error, "worker": outcome.worker}


def _earlier_row(case: BatchCase, folder: BatchFolder) -> dict[str, str]:
    """A case finished by an earlier run, summarized from its report.json."""
    report = json.loads((folder.case(case.case_id) / "report.json").read_text(encoding="utf-8"))
    findings = [{"presence": p["presence"], "volume_ml": p["volume_ml"]} for p in report.get("prompts", [])]
    return _row(CaseOutcome(case, "done earlier", float(report.get("timings_s", {}).get("total", 0.0)),
                            findings=findings))


def _write_summary(folder: BatchFolder, cases: Sequence[BatchCase], rows: dict[str, dict[str, str]]) -> None:
    order = [rows[c.case_id] for c in cases if c.case_id in rows]
    order += [{"case_id": c.case_id, "image": c.image, "status": "to do"} for c in cases if c.case_id not in rows]
    write_csv(folder.summary, SUMMARY_COLUMNS, order)
