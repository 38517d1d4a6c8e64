"""The images each SOURCE brings: manifest rows (and their extra MR sequences), MSD/KiTS23/BraTS cases, and
plain folders of images. Each image becomes one SourceRow: a one-image Case plus what the corpus records."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from ...errors import DiffuGTSError, InputError
from ...io import IMAGE_SUFFIXES
from ..case import Case, ImageRef
from ..categories import find_category
from ..manifest import read_manifest_rows, tumor_label_values
from ..readers import detect_layout, read_dataset
from ..readers.brats import SEQUENCE_TOKENS
from .describe import modality_of, sequence_from_name, tumor_status
from .organs import Legend, dataset_legend, resolve_legend
from .record import Exclusion

FOLDER = "folder"
BODY_REGION_OF_ORGAN = {"liver": "abdomen", "kidney": "abdomen", "pancreas": "abdomen", "colon": "abdomen",
                        "lung": "chest", "brain": "brain"}
_SEQUENCE_SUFFIX = re.compile(rf"[_-]({'|'.join(sorted(SEQUENCE_TOKENS, key=len, reverse=True))}|pd)$", re.I)
_LABEL_FILE = re.compile(r"[_-](mask|seg|segmentation|labels?)$", re.I)


@dataclass(frozen=True)
class SourceRow:
    """One image to bring into the corpus, with its tumor mask and organ map (both on its grid)."""

    case: Case  # exactly one image; the mask (if any) lies on its grid
    patient: str
    modality: str | None  # None: decided from the intensities when read (plain folders)
    body_region: str
    tumor: str
    organs: Path | None
    legend: Legend | None
    source_dataset: str
    notes: tuple[str, ...] = ()
    patient_declared: bool = False  # from a patient column, not derived from the case id

    @property
    def image(self) -> Path:
        return self.case.image.path

    def excluded(self, reason: str) -> Exclusion:
        return Exclusion(self.case.case_id, self.source_dataset, str(self.image), self.case.licence, reason)


@dataclass
class SourceContents:
    rows: list[SourceRow]
    excluded: list[Exclusion]
    notes: list[str]


def read_source(path: Path, licence_of: dict[Path, str]) -> SourceContents:
    """The rows of one SOURCE; a missing or unknown SOURCE raises a one-line InputError."""
    if not path.exists():
        raise InputError("SOURCE does not exist", path=path, hint="Check the path of each SOURCE.")
    layout = _layout(path)
    if path.resolve() in licence_of and layout != FOLDER:
        raise InputError(f"--licence-of is for plain image folders, but this SOURCE is a {layout} source "
                         "that states its own licences", path=path, hint="Drop --licence-of for it.")
    if layout == "manifest":
        return _manifest(path / "manifest.csv" if path.is_dir() else path)
    if layout == FOLDER:
        return _folder(path, licence_of.get(path.resolve(), ""))
    return _dataset(path, layout)


def _layout(path: Path) -> str:
    try:
        return detect_layout(path)
    except InputError:
        if path.is_dir() and _image_files(path):
            return FOLDER
        raise InputError("is not a manifest.csv, an MSD task, a KiTS23 or BraTS folder, nor a folder of images",
                         path=path, hint="Pass a manifest .csv or a folder holding one of those.") from None


def patient_of(case_id: str) -> str:
    """The patient of a row without a patient column: its case id less a trailing sequence token, so that
    co-registered sequences named like 'x_flair', 'x_t1' stay one patient."""
    return _SEQUENCE_SUFFIX.sub("", case_id) or case_id


def _manifest(path: Path) -> SourceContents:
    folder, dataset = path.parent, f"manifest:{path.parent.name}"
    contents = SourceContents([], [], [])
    for line, row in enumerate(read_manifest_rows(path), start=2):
        case_id, image = row["case_id"].strip(), row["image"].strip()
        mask = folder / row["mask"].strip() if row["mask"].strip() else None
        tumor_labels = tumor_label_values(row["mask_labels"]) if mask else ()
        if not case_id or not image or (mask and not tumor_labels):
            problem = (f"row {line} has no case_id or no image" if not case_id or not image else
                       f"row {line} has a mask but its mask_labels {row['mask_labels']!r} name no tumor value")
            contents.excluded.append(Exclusion(case_id or f"row {line}", dataset, str(path), row["licence"], problem))
            continue
        legend, organ_notes = _organ_legend(row.get("organ_legend", ""), folder, bool(row.get("organ_labels")))
        category = find_category(row["tumor_prompt"])
        base = Case(case_id, dataset, {}, mask, tumor_labels, {value: row["mask_labels"] for value in tumor_labels},
                    row["tumor_prompt"].strip(), row["modality"].strip(),
                    category.organ if category else row["body_region"].strip(),
                    category.name if category else None, row["licence"].strip(), {"notes": row["notes"]})
        common = dict(patient=row.get("patient", "").strip() or patient_of(case_id),
                      patient_declared=bool(row.get("patient", "").strip()),
                      body_region=row["body_region"].strip(),
                      tumor=tumor_status(mask is not None, row["tumor_prompt"], row["mask_labels"], row["notes"]),
                      organs=folder / row["organ_labels"].strip() if legend else None, legend=legend,
                      source_dataset=dataset,
                      notes=tuple(filter(None, [row["notes"].strip(), *organ_notes])))
        primary = modality_of(row["modality"], image)
        contents.rows.append(SourceRow(_one_image(base, case_id, folder / image, primary), modality=primary,
                                       **common))
        taken = {primary}
        for extra in filter(None, (part.strip() for part in row.get("extra_images", "").split(";"))):
            sequence = sequence_from_name(extra)
            if sequence is None or sequence in taken:
                why = "not an MR sequence" if sequence is None else f"a second {sequence} image"
                contents.notes.append(f"{case_id}: extra image {extra} skipped ({why})")
                continue
            taken.add(sequence)
            extra_id = f"{case_id}_{sequence.removeprefix('MR-').lower()}"
            contents.rows.append(SourceRow(_one_image(base, extra_id, folder / extra, sequence), modality=sequence,
                                           **common))
    return contents


def _organ_legend(text: str, folder: Path, has_map: bool) -> tuple[Legend | None, list[str]]:
    if not has_map or not text.strip():
        return None, []
    try:
        return resolve_legend(text, folder), []
    except DiffuGTSError as error:
        return None, [f"organ map left out: {error}"]


def _one_image(base: Case, case_id: str, path: Path, modality: str | None) -> Case:
    return replace(base, case_id=case_id, images={modality or "image": ImageRef(path)}, modality=modality or "")


def _dataset(path: Path, layout: str) -> SourceContents:
    rows = []
    for case in read_dataset(path, layout):
        legend = dataset_legend(case.known_labels, case.organ) if case.mask else {}
        for number, (name, ref) in enumerate(case.images.items()):
            modality = modality_of(name, ref.path) or "MR"
            case_id = case.case_id if number == 0 else f"{case.case_id}_{modality.removeprefix('MR-').lower()}"
            one = replace(case, case_id=case_id, images={name: ref}, modality=modality)
            rows.append(SourceRow(one, case.case_id, modality, BODY_REGION_OF_ORGAN.get(case.organ, case.organ),
                                  tumor_status(case.mask is not None, case.prompt), case.mask if legend else None,
                                  legend or None, case.dataset))
    return SourceContents(rows, [], [])


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(IMAGE_SUFFIXES))


def _folder(folder: Path, licence: str) -> SourceContents:
    dataset = f"{FOLDER}:{folder.name}"
    contents = SourceContents([], [], [])
    for path in _image_files(folder):
        case_id = re.sub(r"\.(nii\.gz|nii|nrrd|nhdr|mha|mhd)$", "", path.name, flags=re.I)
        if _LABEL_FILE.search(case_id):
            contents.notes.append(f"{path.name}: skipped (its name says it is a label file, not an image)")
            continue
        modality = modality_of("", path)
        case = Case(case_id, dataset, {modality or "image": ImageRef(path)}, None, (), {}, "", modality or "", "",
                    None, licence)
        contents.rows.append(SourceRow(case, patient_of(case_id), modality, "", "unknown", None, None, dataset,
                                       ("plain folder: no annotation, so a tumor cannot be ruled out",)))
    return contents
