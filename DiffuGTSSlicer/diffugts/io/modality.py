"""Guess whether a volume is CT or MR (and which MR sequence), and say why.

The DICOM header decides when there is one, then the file name; the intensities last, by their histogram in
Hounsfield units: a CT shows air, lung or fat (-1000..-30 HU) and nothing far below -1024 but its padding, or,
cropped to soft tissue, a peak of water-like values (-150..250 HU) with some fat or CT noise below -30 HU; an
MR magnitude image has no such negative values (at most shallow interpolation ringing). Neither: the reason says
the guess is uncertain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .sequence import modality_in_name, sequence_in_text

SAMPLE = 2_000_000  # voxels looked at (evenly strided): the guess takes milliseconds on any volume
AIR_FAT_HU = (-1050.0, -30.0)
SOFT_TISSUE_HU = (-150.0, 250.0)
PADDING_HU = -1024.0  # values at or below this that fill a share of the volume are outside the scan's field


def _sample(array: np.ndarray) -> np.ndarray:
    flat = array.reshape(-1)
    step = max(1, flat.size // SAMPLE)
    return flat[::step].astype(np.float32, copy=False)


def hu_evidence(array: np.ndarray) -> tuple[str | None, str]:
    """('CT', why) when the histogram reads as Hounsfield units, ('MR', why) when it cannot, else (None, why)."""
    values = _sample(array)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, "no finite intensity"
    low = float(values.min())
    if low <= PADDING_HU and np.mean(values == low) >= 0.01:  # CT's out-of-field padding (-1024, -2048, -3024)
        values = values[values != low]
        if values.size == 0:
            return None, "a constant image"
    p01, p50, p999 = (float(v) for v in np.percentile(values, [0.1, 50, 99.9]))
    below = float(np.mean(values < AIR_FAT_HU[0]))
    air_fat = float(np.mean((values >= AIR_FAT_HU[0]) & (values <= AIR_FAT_HU[1])))
    if below <= 0.02 and air_fat >= 0.005 and p999 <= 4000:
        return "CT", f"Hounsfield-unit histogram: {air_fat:.1%} of voxels at air, lung or fat values (-1000..-30)"
    tissue = float(np.mean((values >= SOFT_TISSUE_HU[0]) & (values <= SOFT_TISSUE_HU[1])))
    spread = float(np.subtract(*np.percentile(values, [75, 25])))
    if tissue >= 0.9 and -100 <= p50 <= 150 and air_fat >= 0.001 and spread >= 5 and below <= 0.02:
        return "CT", (f"Hounsfield-unit histogram of soft tissue: median {p50:g} HU, {tissue:.0%} of voxels in "
                      f"-150..250 HU and {air_fat:.1%} at fat values or CT noise below -30")
    negative = float(np.mean(values < -5.0))
    if negative < 0.005:
        return "MR", f"no Hounsfield-unit pattern: intensities {p01:g}..{p999:g}, no air, lung or fat values"
    return None, (f"intensities {p01:g}..{p999:g} (median {p50:g}) fit neither Hounsfield units nor an MR "
                  "magnitude image")


def guess_modality(array: np.ndarray, *, path: str | None = None, dicom_modality: str | None = None,
                   dicom_sequence: tuple[str, str] | None = None) -> tuple[str, str]:
    """Return (modality, reason): 'CT', 'MR' or an MR sequence ('MR-T1c'), from the DICOM header, the file
    name, or the intensity histogram."""
    name = Path(path).name if path else ""
    named = modality_in_name(name) if name else None
    if dicom_modality and dicom_modality.strip().upper() in ("CT", "MR"):
        modality = dicom_modality.strip().upper()
        if modality == "MR" and dicom_sequence:
            return dicom_sequence[0], f"DICOM Modality tag; sequence from {dicom_sequence[1]}"
        if modality == "MR" and named and named.startswith("MR-"):
            return named, f"DICOM Modality tag; sequence from the name {name!r}"
        return modality, "DICOM Modality tag"
    if named:
        return named, f"file name {name!r}"
    guess, why = hu_evidence(array)
    if guess is None:
        return "MR", f"{why}; taken as MR (uncertain)"
    sequence = sequence_in_text(name) if guess == "MR" and name else None
    return sequence or guess, why


def with_prompt_sequence(modality: str, reason: str, prompts: list[str] | tuple[str, ...]) -> tuple[str, str]:
    """An MR modality without a sequence given the one the prompts name ('FLAIR hyperintensity' -> 'MR-FLAIR'),
    as the last resort; anything else unchanged."""
    if modality != "MR":
        return modality, reason
    found = {s for s in (sequence_in_text(p, contrast_alone=True) for p in prompts) if s}
    if len(found) == 1:
        sequence = found.pop()
        return sequence, f"{reason}; sequence from the prompt"
    return modality, reason
