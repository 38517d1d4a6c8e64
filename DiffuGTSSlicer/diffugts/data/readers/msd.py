"""Cases from a Medical Segmentation Decathlon task folder (dataset.json, imagesTr/, labelsTr/)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError
from ..case import Case, ImageRef
from ..categories import CATEGORIES


@dataclass(frozen=True)
class MsdTask:
    category: str
    tumor_labels: tuple[int, ...]
    modality: str


# The tumor tasks of the Decathlon; the others (heart, hippocampus, prostate, spleen) have no tumor label.
MSD_TASKS = {
    "Task01": MsdTask("brain glioma", (1, 2, 3), "MR"),
    "Task03": MsdTask("liver tumor", (2,), "CT"),
    "Task06": MsdTask("lung tumor", (1,), "CT"),
    "Task07": MsdTask("pancreatic tumor", (2,), "CT"),
    "Task08": MsdTask("hepatic vessel tumor", (2,), "CT"),
    "Task10": MsdTask("colon tumor", (1,), "CT"),
}
_BRAIN_CHANNELS = {"flair": "MR-FLAIR", "t1w": "MR-T1", "t1gd": "MR-T1c", "t2w": "MR-T2"}


def read_msd(folder: str | Path) -> list[Case]:
    """The labelled training cases of one task; the task comes from the folder name (Task03_Liver, ...)."""
    folder = Path(folder)
    description = folder / "dataset.json"
    try:
        config = json.loads(description.read_text(encoding="utf-8"))
        entries = config["training"]
        channel_names = {int(k): str(v) for k, v in config.get("modality", {"0": "CT"}).items()}
        label_names = {int(k): str(v) for k, v in config.get("labels", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"cannot read the Decathlon description ({error})", path=description,
                         hint="Use the dataset.json shipped with the task.") from None
    task = _task(folder, config)
    dataset = f"msd:{folder.name}"
    category = CATEGORIES[task.category]
    cases = []
    for entry in entries:
        try:
            image, label = folder / entry["image"], folder / entry["label"]
        except (KeyError, TypeError):
            raise InputError(f"a 'training' entry lacks image or label: {entry!r}", path=description) from None
        case_id = re.sub(r"\.nii(\.gz)?$", "", image.name)
        if len(channel_names) > 1:
            images = {_BRAIN_CHANNELS.get(name.lower(), name): ImageRef(image, index)
                      for index, name in sorted(channel_names.items())}
        else:
            images = {task.modality: ImageRef(image)}
        case = Case(case_id, dataset, images, label, task.tumor_labels, label_names, category.name,
                    next(iter(images)), category.organ, category.name, str(config.get("licence", "CC-BY-SA 4.0")))
        case.check_files()
        cases.append(case)
    return cases


def _task(folder: Path, config: dict) -> MsdTask:
    match = re.match(r"(Task\d\d)", folder.name)
    if match and match.group(1) in MSD_TASKS:
        return MSD_TASKS[match.group(1)]
    known = ", ".join(f"{key} ({task.category})" for key, task in MSD_TASKS.items())
    raise InputError(f"not a Decathlon tumor task (name {config.get('name', '?')!r})", path=folder,
                     hint=f"Point at one task folder named as downloaded, one of: {known}.")
