"""Cases from a CSV manifest (the schema of ../shared/data/real/manifest.csv and of phantom sets)."""

from __future__ import annotations

from pathlib import Path

from ...errors import InputError
from ..case import Case, ImageRef
from ..categories import find_category
from ..manifest import ORGAN_MASK_COLUMN, read_manifest_rows, tumor_label_values


def read_manifest(path: str | Path) -> list[Case]:
    """One Case per row; image, mask and the optional organ_mask paths are relative to the manifest's folder."""
    path = Path(path)
    folder = path.parent
    cases = []
    for line, row in enumerate(read_manifest_rows(path), start=2):
        case_id = row["case_id"].strip()
        if not case_id or not row["image"].strip():
            raise InputError(f"row {line} has no case_id or no image", path=path,
                             hint="Every row needs a case_id and an image path.")
        tumor_labels = tumor_label_values(row["mask_labels"])
        mask = folder / row["mask"].strip() if row["mask"].strip() else None
        if mask is not None and not tumor_labels:
            raise InputError(f"row {line} (case {case_id}) has a mask but its mask_labels "
                             f"{row['mask_labels']!r} name no tumor value", path=path,
                             hint="Write the tumor value as 'VALUE=meaning', for example '1=tumor'.")
        category = find_category(row["tumor_prompt"])
        organ_mask = (row.get(ORGAN_MASK_COLUMN) or "").strip()
        case = Case(
            case_id=case_id,
            dataset="manifest",
            images={row["modality"].strip() or "image": ImageRef(folder / row["image"].strip())},
            mask=mask,
            tumor_labels=tumor_labels if mask else (),
            known_labels={value: row["mask_labels"].strip() for value in tumor_labels} if mask else {},
            prompt=row["tumor_prompt"].strip(),
            modality=row["modality"].strip(),
            organ=category.organ if category else row["body_region"].strip(),
            category=category.name if category else None,
            licence=row["licence"].strip(),
            notes={"source": row["source"], "notes": row["notes"], "body_region": row["body_region"]},
            organ_mask=folder / organ_mask if organ_mask else None,
        )
        case.check_files()
        cases.append(case)
    return cases
