"""Organ priors: Dice per organ against every reference organ mask we have, and time per organ.

Run: OMP_NUM_THREADS=2 python benchmarks/bench_organs.py [--data ../shared/data/train] [--threads 2]
Accuracy: each labelled scan of the training data (TotalSegmentator CT and MR label maps, FreeSurfer brain
masks, the MNI152 GM+WM maps) against the prior of each organ its labels hold, at the prior's 0.5 level.
Atlas organs are leave-one-patient-out: a scan is never given its own patient's atlas (ts_example_ct and
ts_example_ct_sm are patient ts_p1, whose atlas is ct_ts_p1; ts_example_ct_dicom is ts_p2 = ct_ts_p2), and
the table says which atlases were used. The brain's template registration is also measured on the
skull-stripped subjects by forcing it (their own method is the foreground). Speed: each organ from a fresh
start (registration included) on a 256x256x128 CT resampled from ts_example_ct, beside the body mask of
diffugts.evaluation.baselines on the same grid as the baseline.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from diffugts.evaluation.baselines import body_mask
from diffugts.io import Volume, read_volume
from diffugts.organs import organ_priors
from diffugts.organs.atlas import atlases
from diffugts.organs.brain import foreground, template_brain
from diffugts.organs.grid import to_input_grid, working_image
from diffugts.organs.labels import LABEL_OF
from diffugts.organs.make_atlases import vocabulary_labels

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"
CT_CASES = (("ts_example_ct", "ts_p1"), ("ts_example_ct_sm", "ts_p1"), ("ts_example_ct_dicom", "ts_p2"))
CT_ORGANS = ("lung", "bone", "liver", "spleen", "kidney", "pancreas", "stomach", "colon", "urinary bladder",
             "gallbladder", "aorta")
CROPS = (("ts_aorta_crop", "ts_p3", "aorta"),)
MR_ORGANS = ("liver", "spleen", "kidney")
SPEED_ORGANS = ("body", "lung", "bone", "liver", "kidney", "pancreas", "brain (MR rule: n/a)")


def dice(mask: np.ndarray, reference: np.ndarray) -> float:
    total = int(mask.sum()) + int(reference.sum())
    return 2.0 * float((mask & reference).sum()) / total if total else 1.0


def _row(case: str, organ: str, prior, reference: np.ndarray, atlas_names: str, volume_ml: float) -> dict:
    mask = prior.mask().array > 0
    return {"case": case, "organ": organ, "method": prior.method, "atlases": atlas_names if prior.method == "atlas"
            else "", "dice": dice(mask, reference), "ref_ml": float(reference.sum()) * volume_ml,
            "prior_ml": float(mask.sum()) * volume_ml, "seconds": prior.seconds}


def accuracy(data: Path) -> list[dict]:
    legends = json.loads((data / "totalsegmentator_label_maps.json").read_text())
    rows = []
    for case, patient in CT_CASES:
        image = read_volume(data / "ct" / f"{case}.nii.gz")
        legend = {int(k): v for k, v in legends["total"].items()}
        labels = vocabulary_labels(read_volume(data / "ct" / f"{case}_labels.nii.gz"), legend).array
        others = [a for a in atlases("CT") if a.patient != patient]
        organs = [o for o in CT_ORGANS if (labels == LABEL_OF[o]).any()]
        skipped = [o for o in organs if o not in ("lung", "bone") and not any(o in a.organs for a in others)]
        organs = [o for o in organs if o not in skipped]
        if skipped:
            print(f"{case}: not evaluated (no other patient's atlas labels it): {', '.join(skipped)}", flush=True)
        used = ", ".join(a.name for a in others)
        for organ, prior in zip(organs, organ_priors(image, organs, exclude_patients={patient})):
            rows.append(_row(case, organ, prior, labels == LABEL_OF[organ], used, image.voxel_volume_ml))
        raw = read_volume(data / "ct" / f"{case}_labels.nii.gz").array
        for side in ("left", "right"):
            values = [int(k) for k, name in legend.items() if name.startswith("lung_") and name.endswith(side)]
            reference = np.isin(raw, values)
            if reference.any():
                prior = organ_priors(image, [f"{side} lung"])[0]
                rows.append(_row(case, f"{side} lung", prior, reference, "", image.voxel_volume_ml))
    for case, patient, organ in CROPS:
        image = read_volume(data / "ct" / f"{case}.nii.gz")
        reference = read_volume(data / "ct" / f"{case}_labels.nii.gz").array > 0
        used = ", ".join(a.name for a in atlases("CT") if a.patient != patient)
        prior = organ_priors(image, [organ], exclude_patients={patient})[0]
        rows.append(_row(case, organ, prior, reference, used, image.voxel_volume_ml))
    image = read_volume(data / "mr" / "ts_example_mr_sm.nii.gz")
    legend = {int(k): v for k, v in legends["total_mr"].items()}
    labels = vocabulary_labels(read_volume(data / "mr" / "ts_example_mr_sm_labels.nii.gz"), legend).array
    for organ, prior in zip(MR_ORGANS, organ_priors(image, MR_ORGANS)):
        rows.append(_row("ts_example_mr_sm", organ, prior, labels == LABEL_OF[organ], "", image.voxel_volume_ml))
    for case, image, reference in _brains(data):
        prior = organ_priors(image, ["brain"])[0]
        rows.append(_row(case, "brain", prior, reference, "", image.voxel_volume_ml))
        if case.startswith("mni152"):
            continue  # the template is this very image: registering it to itself says nothing
        start = time.perf_counter()
        working = working_image(image, 3.0, float(image.array.min()))
        forced = to_input_grid(template_brain(working, foreground(working)), image)
        forced_prior = type(prior)("brain", forced, "template (forced)", "", time.perf_counter() - start)
        rows.append(_row(case, "brain", forced_prior, reference, "", image.voxel_volume_ml))
    return rows


def _brains(data: Path):
    """(case, image, brain reference) for every brain we have a reference for (not the template itself)."""
    mr = data / "mr"
    yield "fs_subject_brainmask", read_volume(mr / "fs_subject_brainmask.nii.gz"), \
        read_volume(mr / "fs_subject_brainmask_labels.nii.gz").array > 0
    yield "fs_subject_aparc", read_volume(mr / "fs_subject_aparc.nii.gz"), \
        read_volume(mr / "fs_subject_aparc_labels.nii.gz").array > 0
    tissue = sum(read_volume(mr / f"mni152_2009a_gm_{kind}_prob.nii.gz").array.astype(np.float32)
                 for kind in ("gm", "wm"))
    yield "mni152_2009a_gm (GM+WM > 0.5)", read_volume(mr / "mni152_2009a_gm.nii.gz"), tissue > 127.5


def ct_256(data: Path) -> Volume:
    """ts_example_ct resampled (linear) onto a 256x256x128 grid over the same field of view."""
    source = sitk.ReadImage(str(data / "ct" / "ts_example_ct.nii.gz"), sitk.sitkFloat32)
    size = (256, 256, 128)
    spacing = [s * n / m for s, n, m in zip(source.GetSpacing(), source.GetSize(), size)]
    resampled = sitk.Resample(source, size, sitk.Transform(), sitk.sitkLinear, source.GetOrigin(), spacing,
                              source.GetDirection(), -1024.0)
    array = np.round(sitk.GetArrayFromImage(resampled)).astype(np.int16)
    return Volume(array, spacing, source.GetOrigin(), np.asarray(source.GetDirection()).reshape(3, 3), modality="CT")


def speed(data: Path) -> list[dict]:
    image = ct_256(data)
    start = time.perf_counter()
    body_mask(image)
    rows = [{"organ": "baseline: body_mask (full grid)", "method": "threshold", "seconds": time.perf_counter() - start}]
    for organ in [o for o in SPEED_ORGANS if "(" not in o]:
        prior = organ_priors(image, [organ])[0]
        rows.append({"organ": organ, "method": prior.method, "seconds": prior.seconds})
    start = time.perf_counter()
    priors = organ_priors(image, ["liver", "kidney", "spleen", "pancreas", "colon"])
    rows.append({"organ": "liver+kidney+spleen+pancreas+colon (one call)", "method": priors[0].method,
                 "seconds": time.perf_counter() - start})
    for row in rows:
        row["ratio"] = row["seconds"] / rows[0]["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2, help="SimpleITK threads (default 2)")
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    rows = accuracy(args.data)
    print("\n| case | organ | method | atlases (leave-one-patient-out) | Dice | reference mL | prior mL | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['case']} | {r['organ']} | {r['method']} | {r['atlases']} | {r['dice']:.3f} | {r['ref_ml']:.0f} "
              f"| {r['prior_ml']:.0f} | {r['seconds']:.1f} |", flush=True)
    print(f"\nSpeed on a 256x256x128 CT, {args.threads} SimpleITK threads:\n")
    print("| organ | method | seconds | x baseline |")
    print("| --- | --- | --- | --- |")
    for r in speed(args.data):
        print(f"| {r['organ']} | {r['method']} | {r['seconds']:.2f} | {r['ratio']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
