"""Which rows are one patient: the sources' patient ids, joined by exact duplicates and near-duplicates."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ...io import read_volume, to_ras
from ...progress import ProgressCallback
from .content import NEAR_DUPLICATE_CORRELATION, correlation, find_block, fits_inside

if TYPE_CHECKING:
    from .scan import Scan


class PatientGroups:
    """Union-find over patient ids; a group is named by its smallest declared id (a manifest's patient
    column), else its smallest id."""

    def __init__(self, declared: set[str]) -> None:
        self._parent: dict[str, str] = {}
        self._declared = declared

    def find(self, patient: str) -> str:
        parent = self._parent.setdefault(patient, patient)
        if parent != patient:
            parent = self._parent[patient] = self.find(parent)
        return parent

    def join(self, a: str, b: str) -> bool:
        """Make ``a`` and ``b`` one patient; False when they already were."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        keep, other = sorted((root_a, root_b), key=lambda p: (p not in self._declared, p))
        self._parent[other] = keep
        return True


def link_near_duplicates(scans: list[Scan], patients: PatientGroups, progress: ProgressCallback) -> list[dict]:
    """Join the patients of two images when one is a voxel-exact block of the other on the same lattice, or
    both lie on the same grid and their voxels correlate above NEAR_DUPLICATE_CORRELATION."""

    @lru_cache(maxsize=4)
    def voxels(index: int) -> np.ndarray:
        return to_ras(read_volume(scans[index].row.image, channel=scans[index].row.case.image.channel))[0].array

    # (small, big): small on big's lattice and no larger on any axis; a pair of equal sizes is tried once
    pairs = [(a, b) for a in range(len(scans)) for b in range(len(scans)) if a != b
             and fits_inside(scans[a].grid, scans[b].grid) and (a < b or scans[a].grid.size != scans[b].grid.size)]
    links = []
    for number, (a, b) in enumerate(pairs):
        progress("linking patients", number / max(len(pairs), 1))
        small, big = scans[a], scans[b]
        if patients.find(small.row.patient) == patients.find(big.row.patient):
            continue
        if small.grid.matches(big.grid, 1e-3):
            value = correlation(voxels(a), voxels(b))
            why = f"same grid, voxel correlation {value:.4f}" if value > NEAR_DUPLICATE_CORRELATION else None
        else:
            offset = find_block(voxels(a), voxels(b))
            why = f"a block of {big.case_id} at voxel (i, j, k) {offset[::-1]}" if offset else None
        if why and patients.join(small.row.patient, big.row.patient):
            links.append({"cases": [small.case_id, big.case_id],
                          "patients": [small.row.patient, big.row.patient], "why": why})
            small.notes.append(f"same patient as {big.case_id} ({why})")
    progress("linking patients", 1.0)
    return links
