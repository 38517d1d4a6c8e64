"""The first pass over the rows: each image read once, fingerprinted and searched for the demo case; then
exact duplicates dropped."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ...demo import DEMO_IMAGE
from ...errors import DiffuGTSError
from ...io import Grid, read_volume, to_ras
from ...progress import ProgressCallback
from .content import find_block, fingerprint
from .licence import licence_class, most_restrictive
from .load import load_row
from .patients import PatientGroups
from .record import Exclusion
from .sources import SourceRow


@dataclass
class Scan:
    """One readable image after the first pass: what it is, without its voxels."""

    row: SourceRow
    sha256: str
    grid: Grid  # of the RAS volume
    modality: str
    has_mask: bool
    has_organs: bool
    demo: bool
    licence: str
    licence_class: str
    notes: list[str] = field(default_factory=list)

    @property
    def case_id(self) -> str:
        return self.row.case.case_id

    def excluded(self, reason: str) -> Exclusion:
        return Exclusion(self.case_id, self.row.source_dataset, str(self.row.image), self.licence, reason)


NOT_HU_MINIMUM = 0.0  # a CT with nothing below this has no air or fat in HU: rescaled (8-bit) or offset values


def scan_rows(rows: list[SourceRow], excluded: list[Exclusion], progress: ProgressCallback) -> list[Scan]:
    """First pass: fingerprint every image and look for the demo case in it; unreadable cases are left out."""
    demo = to_ras(read_volume(DEMO_IMAGE))[0].array
    scans = []
    for number, row in enumerate(rows):
        progress("reading sources", number / len(rows))
        try:
            loaded = load_row(row)
        except DiffuGTSError as error:
            excluded.append(row.excluded(f"cannot be used: {error}"))
            continue
        image = loaded.image
        if loaded.modality == "CT" and float(image.array.min()) >= NOT_HU_MINIMUM:
            excluded.append(row.excluded(f"CT intensities are not Hounsfield units (lowest value "
                                         f"{float(image.array.min()):g}; air is about -1000 HU): "
                                         "unusable by models that read HU"))
            continue
        contains_demo = find_block(demo, image.array) is not None
        scans.append(Scan(row, fingerprint(image), image.grid, loaded.modality, loaded.mask is not None,
                          loaded.organs is not None, contains_demo, row.case.licence,
                          licence_class(row.case.licence), list(row.notes) + loaded.notes))
    progress("reading sources", 1.0)
    return scans


def drop_duplicates(scans: list[Scan], excluded: list[Exclusion],
                     patients: PatientGroups) -> tuple[list[Scan], list[dict]]:
    """One scan per fingerprint: the one with a tumor mask or organ map, else the first case id. The group's
    most restrictive licence class stays with it, and all its patients become one."""
    groups: dict[str, list[Scan]] = defaultdict(list)
    for scan in scans:
        groups[scan.sha256].append(scan)
    kept, report = [], []
    for group in groups.values():
        keep = min(group, key=lambda s: (not s.has_mask, not s.has_organs, s.case_id))
        strictest = most_restrictive([s.licence_class for s in group])
        for other in sorted(group, key=lambda s: s.case_id):
            if other is keep:
                continue
            patients.join(keep.row.patient, other.row.patient)
            differs = (f" (its licence here, {other.licence_class}, gives way to the group's most restrictive, "
                       f"{strictest})" if other.licence_class != strictest else "")
            excluded.append(other.excluded(f"exact duplicate: same voxels and grid as {keep.case_id}{differs}"))
            report.append({"kept": keep.case_id, "dropped": other.case_id, "licence_class": other.licence_class,
                           "source_file": str(other.row.image)})
            keep.notes.append(f"exact duplicate {other.case_id} ({other.row.source_dataset}) dropped")
        if strictest != keep.licence_class:
            source = min((s for s in group if s.licence_class == strictest), key=lambda s: s.case_id)
            keep.notes.append(f"licence class {strictest} (not {keep.licence_class}) from its exact duplicate "
                              f"{source.case_id}: the most restrictive licence wins")
            keep.licence, keep.licence_class = source.licence, strictest
        keep.demo = any(s.demo for s in group)
        kept.append(keep)
    return kept, report
