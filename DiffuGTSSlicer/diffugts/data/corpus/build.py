"""``diffugts data corpus``: real scans from manifests and dataset folders into one RAS training corpus.

Steps: read every SOURCE's rows; read each image once to fingerprint it (RAS voxels + grid) and to find
the bundled demo case inside it; drop exact duplicates (the most restrictive licence of a duplicate group
wins); join near-duplicates into one patient; leave out the demo case, its source and their patient, and
(``licence="permissive"``) every case whose licence does not allow shipping weights under Apache-2.0;
write the kept volumes; split patients into train and validation; write corpus.csv, excluded.csv and
corpus.json.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ...errors import DiffuGTSError
from ...io import atomic_output, write_csv
from ...io.sequence import family
from ...progress import ProgressCallback, silent
from .content import fingerprint
from .folder import CorpusFolder
from .licence import PERMISSIVE
from .load import load_row
from .patients import PatientGroups, link_near_duplicates
from .record import CORPUS_COLUMNS, CORPUS_CSV, CORPUS_JSON, EXCLUDED_COLUMNS, EXCLUDED_CSV, Exclusion
from .scan import Scan, drop_duplicates, scan_rows
from .sources import SourceRow, read_source
from .split import split_patients

LICENCE_CHOICES = ("permissive", "any")
DEMO_REASON = "bundled demo case (or its source volume): never trained on"


@dataclass
class CorpusResult:
    rows: list[dict[str, str]]
    excluded: list[Exclusion]
    summary: dict


def build_corpus(out: str | Path, sources: Sequence[str | Path], *, licence: str = "permissive",
                 validation_fraction: float = 0.25, seed: int = 0, licence_of: dict[str, str] | None = None,
                 validation_patients: Sequence[str] = (), progress: ProgressCallback = silent) -> CorpusResult:
    """Build (or bring up to date) the corpus in ``out``; see the module docstring."""
    if not sources:
        raise DiffuGTSError("no SOURCE given", hint="Name at least one manifest .csv or dataset folder.")
    if licence not in LICENCE_CHOICES:
        raise DiffuGTSError(f"unknown licence rule {licence!r}", hint="Use 'permissive' or 'any'.")
    if not 0 <= validation_fraction < 1:
        raise DiffuGTSError(f"validation fraction {validation_fraction} is not in [0, 1)")
    paths = sorted({Path(s).resolve() for s in sources}, key=str)
    licences = {Path(k).resolve(): v for k, v in (licence_of or {}).items()}
    stray = sorted(str(p) for p in licences if p not in paths)
    if stray:
        raise DiffuGTSError(f"--licence-of names {', '.join(stray)}, which is not a SOURCE",
                            hint="Give FOLDER=TEXT for a plain image folder that is also passed as a SOURCE.")
    folder = CorpusFolder(Path(out))
    rows, excluded, notes = [], [], []
    for path in paths:
        contents = read_source(path, licences)
        rows += contents.rows
        excluded += contents.excluded
        notes += contents.notes
    rows = _unique_ids(rows)

    scans = scan_rows(rows, excluded, progress)
    patients = PatientGroups({s.row.patient for s in scans if s.row.patient_declared})
    kept, duplicates = drop_duplicates(scans, excluded, patients)
    links = link_near_duplicates(kept, patients, progress)
    kept = _leave_out_demo(kept, excluded, patients)
    if licence == "permissive":
        kept = _permissive_only(kept, excluded)
    written, file_counts = _write(kept, folder, progress)
    known = {s.row.patient for s in kept} | {patients.find(s.row.patient) for s in kept}
    unknown = sorted(set(validation_patients) - known)
    if unknown:
        raise DiffuGTSError(f"--validation-patient names {', '.join(unknown)}, which is no patient of the corpus",
                            hint="Use ids from the patient column of corpus.csv (or a case id when the source has "
                                 "no patient column).")
    splits = split_patients(((patients.find(s.row.patient), family(s.modality)) for s in kept),
                            validation_fraction, seed, {patients.find(p) for p in validation_patients})
    table = sorted((_corpus_row(s, patients.find(s.row.patient), splits, written) for s in kept),
                   key=lambda r: r["case_id"])
    excluded.sort(key=lambda e: (e.case_id, e.source_file))
    write_csv(folder.root / CORPUS_CSV, CORPUS_COLUMNS, table)
    write_csv(folder.root / EXCLUDED_CSV, EXCLUDED_COLUMNS, [e.row() for e in excluded])
    removed = folder.remove_unlisted({r[key] for r in table for key in ("image", "tumor_mask", "organs") if r[key]})
    summary = _summary(paths, licence, validation_fraction, seed, licences, table, excluded, duplicates, links,
                       notes, file_counts, removed)
    summary["settings"]["validation_patients"] = sorted(set(validation_patients))
    with atomic_output(folder.root / CORPUS_JSON) as temp:
        temp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return CorpusResult(table, excluded, summary)


def _unique_ids(rows: list[SourceRow]) -> list[SourceRow]:
    """Rows in a fixed order (by case id, then file), each with a case id no other row has."""
    rows = sorted(rows, key=lambda r: (r.case.case_id, str(r.image), r.case.image.channel or 0))
    seen: set[str] = set()
    unique = []
    for row in rows:
        case_id = row.case.case_id
        if case_id in seen and row.modality:
            case_id = f"{case_id}_{row.modality.removeprefix('MR-').lower()}"
        base, number = case_id, 2
        while case_id in seen:
            case_id, number = f"{base}_{number}", number + 1
        seen.add(case_id)
        unique.append(row if case_id == row.case.case_id else replace(row, case=replace(row.case, case_id=case_id)))
    return unique


def _leave_out_demo(scans: list[Scan], excluded: list[Exclusion], patients: PatientGroups) -> list[Scan]:
    """Leave out every image holding the demo case, and every other image of the same patient."""
    demo_patients = {patients.find(s.row.patient): s.case_id for s in scans if s.demo}
    kept = []
    for scan in scans:
        source = demo_patients.get(patients.find(scan.row.patient))
        if scan.demo:
            excluded.append(scan.excluded(DEMO_REASON))
        elif source is not None:
            excluded.append(scan.excluded(f"same patient as the demo case's source {source}: never trained on"))
        else:
            kept.append(scan)
    return kept


def _permissive_only(scans: list[Scan], excluded: list[Exclusion]) -> list[Scan]:
    kept = []
    for scan in scans:
        if scan.licence_class == PERMISSIVE:
            kept.append(scan)
        else:
            excluded.append(scan.excluded(f"{scan.licence_class} licence: {scan.licence or '(none given)'}"))
    return kept


def _write(scans: list[Scan], folder: CorpusFolder,
           progress: ProgressCallback) -> tuple[dict[str, dict[str, str]], Counter]:
    """Second pass: write each kept image (and its mask and organ map) in RAS, reusing unchanged files.
    Returns the relative paths per case id, and how many files were written and reused."""
    written: dict[str, dict[str, str]] = {}
    counts: Counter = Counter()
    for number, scan in enumerate(scans):
        progress("writing corpus", number / max(len(scans), 1))
        loaded = load_row(scan.row)
        name = f"{_file_name(scan.case_id)}.nii.gz"
        paths = {}
        for key, volume, sub in (("image", loaded.image, "images"), ("tumor_mask", loaded.mask, "masks"),
                                 ("organs", loaded.organs, "organs")):
            if volume is None:
                paths[key] = ""
                continue
            relative = f"{sub}/{name}"
            counts["written" if folder.write(volume, relative, fingerprint(volume)) else "reused"] += 1
            paths[key] = relative
        folder.save()
        written[scan.case_id] = paths
    progress("writing corpus", 1.0)
    return written, counts


def _file_name(case_id: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in case_id)


def _corpus_row(scan: Scan, patient: str, splits: dict[str, str], written: dict[str, dict[str, str]]) -> dict[str, str]:
    row = scan.row
    paths = written[scan.case_id]
    return {"case_id": scan.case_id, "patient": patient, "split": splits[patient], "image": paths["image"],
            "modality": scan.modality, "body_region": row.body_region, "tumor": row.tumor,
            "tumor_mask": paths["tumor_mask"], "tumor_prompt": row.case.prompt, "organs": paths["organs"],
            "source_dataset": row.source_dataset, "source_file": str(row.image), "licence": scan.licence,
            "licence_class": scan.licence_class, "sha256": scan.sha256,
            "size_xyz": "x".join(str(n) for n in scan.grid.size),
            "spacing_xyz": "x".join(f"{s:g}" for s in scan.grid.spacing), "notes": "; ".join(scan.notes)}


def _summary(paths: list[Path], licence: str, fraction: float, seed: int, licences: dict[Path, str],
             table: list[dict[str, str]], excluded: list[Exclusion], duplicates: list[dict], links: list[dict],
             notes: list[str], file_counts: Counter, removed: list[str]) -> dict:
    """corpus.json: the settings, the counts, and what was dropped, linked and skipped."""
    counts: dict[str, dict[str, int]] = {"train": Counter(), "validation": Counter()}
    for row in table:
        counts[row["split"]][row["modality"]] += 1
    split_patients_count = {split: len({r["patient"] for r in table if r["split"] == split})
                            for split in ("train", "validation")}
    return {
        "kind": "diffugts corpus",
        "settings": {"sources": [str(p) for p in paths], "licence": licence, "validation_fraction": fraction,
                     "seed": seed, "licence_of": {str(k): v for k, v in sorted(licences.items(), key=str)}},
        "counts": {"images": len(table), "patients": len({r["patient"] for r in table}),
                   "patients_by_split": split_patients_count,
                   "images_by_split_and_modality": {k: dict(sorted(v.items())) for k, v in counts.items()},
                   "excluded": len(excluded),
                   "excluded_by_reason": dict(sorted(Counter(e.reason.split(":")[0] for e in excluded).items()))},
        "exact_duplicates": duplicates,
        "linked_patients": links,
        "notes": notes,
        "files": {"written": file_counts["written"], "reused": file_counts["reused"], "removed": len(removed)},
    }
