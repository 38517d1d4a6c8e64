"""Deterministic train/validation split by patient, within each modality family (CT, MR)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

TRAIN, VALIDATION = "train", "validation"


def split_patients(patient_families: Iterable[tuple[str, str]], fraction: float, seed: int,
                   designated: Iterable[str] = ()) -> dict[str, str]:
    """patient -> "train" or "validation".

    ``patient_families`` pairs each patient with a family ("CT", "MR"; a patient with both is its own family
    "CT+MR"). Within a family, patients are ranked by sha256 of a salt (from ``seed``) and their id, and the
    first round(n * fraction) go to validation: at least one when the family has two or more patients, never
    all. The ranking depends on the ids only, so the order of the inputs does not matter. ``designated``
    patients are in validation whatever their rank, and count towards their family's validation share.
    """
    designated = set(designated)
    families: dict[str, set[str]] = defaultdict(set)
    for patient, family in patient_families:
        families[patient].add(family)
    members: dict[str, list[str]] = defaultdict(list)
    for patient, names in families.items():
        members["+".join(sorted(names))].append(patient)
    splits = {}
    for patients in members.values():
        count = len(patients)
        n_validation = min(max(round(count * fraction), 1), count - 1) if count >= 2 and fraction > 0 else 0
        chosen = [p for p in patients if p in designated]
        ranked = sorted((p for p in patients if p not in designated),
                        key=lambda p: hashlib.sha256(f"diffugts-corpus:{seed}:{p}".encode()).hexdigest())
        for rank, patient in enumerate(ranked):
            splits[patient] = VALIDATION if rank < n_validation - len(chosen) else TRAIN
        splits.update({patient: VALIDATION for patient in chosen})
    return splits
