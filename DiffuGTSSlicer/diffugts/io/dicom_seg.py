"""DICOM Segmentation (SEG) of a result, written with highdicom: it references the source series (study,
series, SOP instances, frame of reference), codes each prompt's segment with the SNOMED CT codes of the
engine's terminology table (diffugts.terminology), names the algorithm, and lies on the volume's grid
(for a gantry-tilted input: the orthogonal grid it was resampled onto, placed in the same frame of reference).

BINARY (default) stores the label map, one segment per prompt; FRACTIONAL stores each prompt's probability
in 1/255 steps. Segments with no voxels stay described, marked empty in their Segment Description (a SEG
may hold a segment without frames); a result with no voxels at all writes every frame, all empty, so the
file is still a valid SEG of the series.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DiffuGTSError
from ..terminology import SegmentDescription, describe_all
from .dicom_scan import scan_folder
from .safe_write import atomic_output
from .volume import Volume

MANUFACTURER = "DiffuGTS for 3D Slicer"
SERIES_NUMBER = 9901  # high, so viewers list the SEG after the scanner's series
DESCRIPTION = "DiffuGTS text-prompted segmentation (research, not for clinical use)"
EMPTY_NOTE = "empty: nothing was found for this prompt"
REFERENCED_UIDS = (("Study Instance UID", "StudyInstanceUID"), ("Series Instance UID", "SeriesInstanceUID"),
                   ("SOP Instance UID", "SOPInstanceUID"), ("Frame of Reference UID", "FrameOfReferenceUID"))


FILE_NAME = "segmentation.dcm"


def is_dicom_series(image: Volume) -> bool:
    """Whether ``image`` was read from a DICOM series (io.read_volume keeps the series UID)."""
    return "dicom_series_uid" in image.metadata


INSTALL_HINT = "Install it with: pip install 'diffugts[dicom]' (highdicom, which needs pydicom 3)."


def highdicom_installed() -> bool:
    """Whether highdicom, the optional DICOM SEG writer, can be imported (without importing it)."""
    return importlib.util.find_spec("highdicom") is not None


def check_dicom_seg(mode: str | None, image: Volume) -> None:
    """Refuse, before any work, a DICOM SEG asked for (``mode`` 'binary' or 'fractional') of a non-DICOM input,
    or without highdicom."""
    if mode not in ("binary", "fractional"):
        return
    if not is_dicom_series(image):
        raise DiffuGTSError(f"--dicom-seg {mode} needs a DICOM series as input, and {image.source} is not one",
                            hint="Run on the folder of DICOM slices, or leave out --dicom-seg.")
    if not highdicom_installed():
        raise DiffuGTSError(f"--dicom-seg {mode} needs the highdicom package", hint=INSTALL_HINT)
    source_series(image)  # UIDs emptied by a de-identification are refused now, not after the work


def dicom_seg_writers(out: Path, image: Volume, result, labels: Callable[[], np.ndarray],
                      mode: str | None) -> dict[str, Callable[[], Path]]:
    """{'dicom_seg': writer of out/segmentation.dcm} for a segmentation ``result`` of a DICOM input (``mode``
    None: BINARY; 'none' or a non-DICOM input: nothing); ``labels`` makes the label map. The default SEG is
    left out, with a warning on the result, without highdicom or when the series cannot be referenced."""
    if mode == "none" or not is_dicom_series(image):
        return {}
    if not highdicom_installed():
        result.warnings.append(f"{FILE_NAME} (DICOM SEG) not written: it needs the highdicom package. {INSTALL_HINT}")
        return {}
    try:
        sources = source_series(image)
    except DiffuGTSError as error:
        if mode is not None:
            raise
        result.warnings.append(f"{FILE_NAME} (DICOM SEG) not written: {error}")
        return {}
    descriptions = describe_all([finding.prompt.text for finding in result.findings])
    if mode == "fractional":
        maps = [finding.probability.array for finding in result.findings]
        return {"dicom_seg": lambda: write_dicom_seg(out / FILE_NAME, image, descriptions, probabilities=maps,
                                                     models=result.models, sources=sources)}
    return {"dicom_seg": lambda: write_dicom_seg(out / FILE_NAME, image, descriptions, labels=labels(),
                                                 models=result.models, sources=sources)}


def source_series(image: Volume) -> list:
    """The headers of the DICOM series ``image`` was read from (the one io.read_volume chose in its folder),
    or a DiffuGTSError when they cannot be referenced."""
    import pydicom

    uid = image.metadata.get("dicom_series_uid")
    folder = Path(image.source or "")
    if uid is None or not folder.is_dir():
        raise DiffuGTSError(f"a DICOM SEG needs a DICOM series as input, and {image.source} is not one",
                            hint="Run on the folder of DICOM slices, or leave out --dicom-seg.")
    stack = scan_folder(folder)
    if stack.series_uid != uid:
        raise DiffuGTSError("the DICOM folder changed since it was read: its series is no longer there", path=folder,
                            hint="Run the segmentation again on the folder as it is now.")
    sources = [pydicom.dcmread(path, stop_before_pixels=True) for path in dict.fromkeys(stack.files)]
    empty = [name for name, keyword in REFERENCED_UIDS if any(not str(ds.get(keyword, "")) for ds in sources)]
    if empty:
        raise DiffuGTSError(f"the series has no {', '.join(empty)} (emptied by a de-identification?), so a DICOM "
                            "SEG cannot reference it", path=folder,
                            hint="Use an export that keeps the UIDs, or leave out --dicom-seg.")
    return sources


def write_dicom_seg(path: str | Path, image: Volume, descriptions: list[SegmentDescription], *,
                    labels: np.ndarray | None = None, probabilities: list[np.ndarray] | None = None,
                    models: dict | None = None, sources: list | None = None) -> Path:
    """Write ``labels`` (uint8 [k, j, i], n = prompt n) as a BINARY SEG, or ``probabilities`` (one [k, j, i] map
    in [0, 1] per prompt) as a FRACTIONAL one, for ``image`` read from a DICOM series (``sources``: its headers,
    default read again from its folder); returns ``path``."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    from .. import __version__

    if (labels is None) == (probabilities is None):
        raise ValueError("give labels (BINARY) or probabilities (FRACTIONAL)")
    sources = sources or source_series(image)
    if labels is not None:
        pixels, kind = labels.astype(np.uint8), hd.seg.SegmentationTypeValues.BINARY
    else:
        pixels, kind = np.stack(probabilities, axis=-1).astype(np.float32), hd.seg.SegmentationTypeValues.FRACTIONAL
    algorithm = hd.AlgorithmIdentificationSequence(
        name="DiffuGTS", version=__version__, family=_ai_family(),
        parameters=_parameters(models or {}) or None)
    found = [np.any(pixels == n) if labels is not None else np.any(pixels[..., n - 1] > 0)
             for n in range(1, len(descriptions) + 1)]
    segments = [_segment(n, d, algorithm, has_voxels) for (n, d), has_voxels in
                zip(enumerate(descriptions, start=1), found)]
    channels = {"SegmentNumber": list(range(1, len(segments) + 1))} if pixels.ndim == 4 else None
    volume = hd.Volume(pixels, _affine(image), "PATIENT", frame_of_reference_uid=sources[0].FrameOfReferenceUID,
                       channels=channels)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=volume, segmentation_type=kind, segment_descriptions=segments,
        series_instance_uid=generate_uid(), series_number=SERIES_NUMBER, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name="diffugts",
        software_versions=__version__, device_serial_number="none", content_description=DESCRIPTION[:64],
        content_label="DIFFUGTS", series_description="DiffuGTS segmentation",
        omit_empty_frames=bool(np.any(pixels)))
    path = Path(path)
    with atomic_output(path) as temp:
        seg.save_as(temp)
    return path


def _parameters(models: dict) -> dict[str, str]:
    """The model names for the SEG's algorithm parameters: file names only (no folders of this machine)."""
    keys = ("backbone", "text_encoder", "attention_heads", "refinement_head")
    return {key: Path(str(models[key])).name[:64] for key in keys if key in models}


def _ai_family():
    from pydicom.sr.codedict import codes

    return codes.cid7162.ArtificialIntelligence


def _affine(image: Volume) -> np.ndarray:
    """highdicom's affine: array index (k, j, i) -> LPS mm, for the [k, j, i] array on ``image``'s grid."""
    lps = image.grid.ijk_to_lps
    affine = np.eye(4)
    affine[:3, :3] = lps[:3, 2::-1]
    affine[:3, 3] = lps[:3, 3]
    return affine


def _code(text: str):
    """A Slicer terminology code 'SCT^108369006^Neoplasm' as a DICOM coded concept (SCT = SNOMED CT)."""
    from highdicom.sr import CodedConcept

    scheme, value, meaning = text.split("^")
    return CodedConcept(value, scheme, meaning)


def _segment(number: int, description: SegmentDescription, algorithm, has_voxels: bool):
    """One segment's description; a segment without voxels says so in its Segment Description."""
    import highdicom as hd
    from highdicom.color import CIELabColor

    fields = description.terminology.split("~")  # context~category~type~modifier~anatomic context~region~modifier
    region = fields[5] if len(fields) > 5 and fields[5].strip("^") else None
    segment = hd.seg.SegmentDescription(
        segment_number=number, segment_label=description.name[:64], segmented_property_category=_code(fields[1]),
        segmented_property_type=_code(fields[2]), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, tracking_uid=hd.UID(), tracking_id=description.name[:64],
        anatomic_regions=[_code(region)] if region else None,
        display_color=CIELabColor.from_rgb(*(round(c * 255) for c in description.color)))
    if not has_voxels:
        segment.SegmentDescription = EMPTY_NOTE
    return segment
