"""Developer tool: rebuild the shipped organ atlases (diffugts/organs/atlases/) from ../shared/data/train.

Run: python -m diffugts.organs.make_atlases [--data ../shared/data/train]
Each CT atlas is a labelled TotalSegmentator test CT resampled to :data:`ATLAS_MM` mm (box average, then
linear; int16 HU) with its organ labels mapped to the vocabulary of diffugts.organs.labels (each organ's
one-hot map resampled the same way, then the most probable label per voxel). The brain template is the
skull-stripped MNI152 2009a T1 at :data:`TEMPLATE_MM` mm. atlases.json lists them with source and licence.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..io import Volume, read_volume
from .grid import working_image
from .labels import ORGAN_LABELS, legend_to_vocabulary

ATLAS_DIR = Path(__file__).with_name("atlases")
ATLAS_MM = 4.0
TEMPLATE_MM = 3.0
TS_LICENCE = ("Apache-2.0 (TotalSegmentator repository, github wasserth/TotalSegmentator@0e65a448); the "
              "TotalSegmentator CT dataset is CC BY 4.0: Wasserthal et al., Radiology: AI 2023")
CT_ATLASES = (  # (atlas name, patient, image, labels) under the data folder
    ("ct_ts_p1", "ts_p1", "ct/ts_example_ct.nii.gz", "ct/ts_example_ct_labels.nii.gz"),
    ("ct_ts_p2", "ts_p2", "ct/ts_example_ct_dicom.nii.gz", "ct/ts_example_ct_dicom_labels.nii.gz"),
)
TEMPLATE = ("mr_mni152_brain", "mni152", "mr/mni152_2009a_gm.nii.gz")


def vocabulary_labels(labels: Volume, legend: dict[int, str]) -> Volume:
    """A TotalSegmentator label map in the engine's organ vocabulary (unknown structures -> 0)."""
    lookup = np.zeros(int(labels.array.max()) + 1, dtype=np.uint8)
    for source, target in legend_to_vocabulary(legend).items():
        if source < lookup.size:
            lookup[source] = target
    return labels.like(lookup[labels.array.astype(np.int64)])


def resample_labels(labels: Volume, spacing_mm: float) -> sitk.Image:
    """Each organ's one-hot map resampled to the working grid; the most probable label wins (0 below 0.5)."""
    values = [int(v) for v in np.unique(labels.array) if v]
    maps = [sitk.GetArrayFromImage(working_image(labels.like((labels.array == v).astype(np.float32)), spacing_mm, 0))
            for v in values]
    stack = np.stack(maps)
    best = np.asarray(values, dtype=np.uint8)[stack.argmax(axis=0)]
    best[stack.max(axis=0) < 0.5] = 0
    reference = working_image(labels.like(np.zeros(labels.array.shape, np.float32)), spacing_mm, 0)
    result = sitk.GetImageFromArray(best)
    result.CopyInformation(reference)
    return result


def _write(image: sitk.Image, name: str) -> str:
    path = ATLAS_DIR / name
    sitk.WriteImage(image, str(path), useCompression=True)
    return name


def build(data: Path) -> list[dict[str, object]]:
    legend = {int(k): v for k, v in json.loads((data / "totalsegmentator_label_maps.json").read_text())["total"].items()}
    entries: list[dict[str, object]] = []
    for name, patient, image_path, labels_path in CT_ATLASES:
        image = read_volume(data / image_path)
        ct = sitk.Cast(sitk.Round(working_image(image, ATLAS_MM, -1024.0)), sitk.sitkInt16)
        labels = resample_labels(vocabulary_labels(read_volume(data / labels_path), legend), ATLAS_MM)
        present = sorted(ORGAN_LABELS[int(v)] for v in np.unique(sitk.GetArrayViewFromImage(labels)) if v)
        entries.append({"name": name, "modality": "CT", "patient": patient, "image": _write(ct, f"{name}.nii.gz"),
                        "labels": _write(labels, f"{name}_labels.nii.gz"), "organs": present,
                        "spacing_mm": ATLAS_MM, "source": f"{image_path} + {labels_path} (shared/data/train)",
                        "licence": TS_LICENCE})
    name, patient, image_path = TEMPLATE
    template = read_volume(data / image_path)
    t1 = sitk.Cast(sitk.Round(working_image(template, TEMPLATE_MM, 0.0)), sitk.sitkUInt8)
    entries.append({"name": name, "modality": "MR", "patient": patient, "image": _write(t1, f"{name}.nii.gz"),
                    "labels": "", "organs": ["brain"], "spacing_mm": TEMPLATE_MM,
                    "source": "nilearn 0.14.1 mni_icbm152_t1_tal_nlin_sym_09a (skull-stripped; brain = voxels > 0)",
                    "licence": "BSD-3-Clause (nilearn); ICBM 2009a template: Copyright (C) 1993-2009 Louis Collins, "
                               "McConnell Brain Imaging Centre, Montreal Neurological Institute, McGill University "
                               "(redistribution with this notice; see README.md)"})
    (ATLAS_DIR / "atlases.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[4] / "shared/data/train")
    for entry in build(parser.parse_args().data):
        print(entry["name"], entry["organs"])


if __name__ == "__main__":
    main()
