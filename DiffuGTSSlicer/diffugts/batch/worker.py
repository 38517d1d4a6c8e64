"""One case from image to finished folder, as every executor runs it: in this process, a worker process, a Ray actor."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DiffuGTSError
from ..segment.job import ModelSpec
from .cases import BatchCase
from .layout import BatchFolder


@dataclass
class CaseOutcome:
    """What became of one case: 'done' or 'failed' (with a one-line error)."""

    case: BatchCase
    status: str
    seconds: float = 0.0
    error: str = ""
    findings: list[dict] = field(default_factory=list)  # report.json's per-prompt entries
    worker: str = ""


__all__ = ["CaseOutcome", "ModelSpec", "segment_case"]


def segment_case(segmenter, case: BatchCase, request: dict, out: str | Path, worker: str = "") -> CaseOutcome:
    """Segment ``case`` into ``out``/<case_id> through a private folder renamed when complete; never raises for a
    bad case (its error is the outcome), so one unreadable file does not stop a batch."""
    from ..segment import job

    folder = BatchFolder(out)
    start = time.perf_counter()
    partial = None
    try:
        request = job.SegmentRequest.from_json({**request, "modality": case.modality or request.get("modality")})
        prepared = job.prepare(case.image, request, case.organ_mask)
        partial = folder.partial(case.case_id)
        result, _ = job.run(segmenter, prepared, partial, use="batch")
        folder.commit(partial, case.case_id)
    except Exception as error:  # noqa: BLE001 - a case's failure is its outcome; the batch goes on
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        message = str(error) if isinstance(error, DiffuGTSError) else f"{type(error).__name__}: {error}"
        return CaseOutcome(case, "failed", time.perf_counter() - start, " ".join(message.split()), worker=worker)
    findings = [{"prompt": f.text, "presence": round(f.presence, 4), "volume_ml": round(f.volume_ml, 3)}
                for f in result.findings]
    return CaseOutcome(case, "done", time.perf_counter() - start, findings=findings, worker=worker)
