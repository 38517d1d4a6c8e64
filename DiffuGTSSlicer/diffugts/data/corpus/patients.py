"""Which rows are one patient: the sources' patient ids, joined by exact duplicates and near-duplicates."""

from __future__ import annotations


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
