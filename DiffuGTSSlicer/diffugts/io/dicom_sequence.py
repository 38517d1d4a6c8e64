"""The MR sequence a DICOM header says: its descriptions first, then the image type and the timing parameters."""

from __future__ import annotations

from .sequence import sequence_in_text

_DESCRIPTIONS = ("SeriesDescription", "ProtocolName", "SequenceName")


def _number(ds, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _image_type(ds) -> set[str]:
    value = ds.get("ImageType", [])
    words = value.split("\\") if isinstance(value, str) else [str(v) for v in value]
    return {w.strip().upper() for w in words}


def dicom_sequence(ds) -> tuple[str, str] | None:
    """(sequence, why) for an MR header, e.g. ('MR-T1c', "Series Description 'AX T1 POST GD'"), or None."""
    contrast = bool(str(ds.get("ContrastBolusAgent", "") or "").strip())
    for keyword in _DESCRIPTIONS:
        text = str(ds.get(keyword, "") or "").strip()
        sequence = sequence_in_text(text) if text else None
        if sequence == "MR-T1" and contrast:
            return "MR-T1c", f"{keyword} {text!r} and a Contrast/Bolus Agent"
        if sequence:
            return sequence, f"{keyword} {text!r}"
    image_type = _image_type(ds)
    if "ADC" in image_type:
        return "MR-ADC", "Image Type ADC"
    if image_type & {"DIFFUSION", "TRACEW"} or _number(ds, "DiffusionBValue"):
        return "MR-DWI", "Image Type or b-value of a diffusion image"
    return _from_timing(ds, contrast)


def _from_timing(ds, contrast: bool) -> tuple[str, str] | None:
    """The weighting the echo, repetition and inversion times imply (spin and gradient echo at usual fields)."""
    tr, te, ti = (_number(ds, k) for k in ("RepetitionTime", "EchoTime", "InversionTime"))
    if tr is None or te is None:
        return None
    timing = f"TR {tr:g} ms, TE {te:g} ms" + (f", TI {ti:g} ms" if ti else "")
    if ti and ti >= 1500 and te >= 70:
        return "MR-FLAIR", timing
    if tr <= 1000 and te <= 30 or ti and 500 <= ti < 1500 and te <= 10:  # spin echo T1, or an MPRAGE
        return ("MR-T1c" if contrast else "MR-T1"), timing + (" and a Contrast/Bolus Agent" if contrast else "")
    if tr >= 2000 and te >= 70:
        return "MR-T2", timing
    if tr >= 1500 and te <= 40 and not ti:
        return "MR-PD", timing
    return None
