"""Write a Result into a folder: label map, .seg.nrrd, per-prompt maps, pseudo-healthy, uncertainty, report, PNG,
or the kinds of these asked for (segment/outputs.py).

Every file is written to a temporary name and renamed, so a folder never holds a half-written file;
``report.json`` comes last: when it is there, the rest is complete (or, on a server, made on first download).
Maps in [0, 1] are 8-bit NIfTI with a header scale (io/compact.py), the pseudo-healthy scan is in the input's
pixel type; several maps are compressed at once (zlib lets other threads run).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from ..io import Segment, Volume, atomic_output, write_segmentation
from ..io.compact import GZIP_LEVEL, MASK_GZIP_LEVEL, in_pixel_type, write_compressed, write_unit_map
from ..io.dicom_seg import FILE_NAME as DICOM_SEG_FILE
from ..io.dicom_seg import dicom_seg_writers
from ..report_schema import REPORT_SCHEMA
from ..terminology import describe_all
from .outputs import KINDS, PER_PROMPT, kind_of, output_files, output_names
from .quicklook import write_quicklook
from .result import Result

__all__ = ["REPORT_SCHEMA", "build_report", "label_map", "output_names", "write_outputs", "write_result"]

NOTE = "Research software, not for clinical use. Check every result."
Writer = Callable[[], Path]  # writes one output file (atomically) and returns its path


def label_map(result: Result) -> np.ndarray:
    """uint8 [k, j, i]: prompt number n where prompt n's mask is set; overlaps go to the more probable prompt
    (the first on a tie). Built prompt by prompt: no stack of every map in memory."""
    labels = np.zeros(result.findings[0].mask.array.shape, np.uint8)
    best = np.zeros(labels.shape, np.float32)
    for number, finding in enumerate(result.findings, start=1):
        # a filled hole may have probability 0 but is still this prompt's when no other prompt claims it
        take = (finding.mask.array > 0) & ((finding.probability.array > best) | (labels == 0))
        labels[take] = number
        best[take] = finding.probability.array[take]
    return labels


def pseudo_healthy_pixels(result: Result, image: Volume) -> Volume:
    """The pseudo-healthy scan in the input's pixel type (a CT's int16 rounded to whole HU); float inputs get
    float32, the precision it is computed in."""
    dtype = image.array.dtype if np.issubdtype(image.array.dtype, np.integer) else np.float32
    return result.pseudo_healthy.like(in_pixel_type(result.pseudo_healthy.array, dtype))


def output_writers(result: Result, image: Volume, out: Path, outputs: Collection[str] = KINDS, *,
                   suffix: str = ".nii.gz", level: int = GZIP_LEVEL,
                   dicom_seg: str | None = None) -> dict[str, Writer]:
    """Output name -> the function writing that file into ``out``, for the ``outputs`` kinds (no report)."""
    paths = {name: out / file for name, file in output_files(len(result.findings), tuple(outputs), suffix).items()}
    descriptions = describe_all([f.prompt.text for f in result.findings])
    writers: dict[str, Writer] = {}
    if "segmentation" in outputs:
        segments = [Segment(d.name, f.mask.array, d.color, d.terminology)
                    for d, f in zip(descriptions, result.findings)]
        writers["segmentation"] = partial(write_segmentation, paths["segmentation"], image, segments, MASK_GZIP_LEVEL)
    if "labels" in outputs:
        writers["labels"] = lambda: write_compressed(image.like(label_map(result), modality="labels"), paths["labels"],
                                                     MASK_GZIP_LEVEL)
    for n, finding in enumerate(result.findings, start=1):
        for kind in PER_PROMPT:
            if kind in outputs:
                writers[f"{kind}_{n}"] = partial(write_unit_map, getattr(finding, kind), paths[f"{kind}_{n}"], level)
    if "pseudo_healthy" in outputs:
        writers["pseudo_healthy"] = lambda: write_compressed(pseudo_healthy_pixels(result, image),
                                                             paths["pseudo_healthy"], level)
    if "uncertainty" in outputs:
        writers["uncertainty"] = partial(write_unit_map, result.uncertainty, paths["uncertainty"], level)
    if "quicklook" in outputs:
        writers["quicklook"] = partial(write_quicklook, paths["quicklook"], image, [f.mask for f in result.findings],
                                       [d.color for d in descriptions])
    writers.update(dicom_seg_writers(out, image, result, lambda: label_map(result), dicom_seg))
    return writers


def write_outputs(result: Result, image: Volume, out: str | Path, *, image_path: str | Path | None = None,
                  outputs: Collection[str] = KINDS, later: Collection[str] = (), suffix: str = ".nii.gz",
                  level: int = GZIP_LEVEL, dicom_seg: str | None = None, modality: dict | None = None
                  ) -> tuple[dict[str, Path], dict[str, Writer]]:
    """Write the ``outputs`` kinds of ``result`` into ``out`` except those of the kinds in ``later``, then
    report.json (which names them all); returns (name -> path written, name -> writer of each file left for
    later). Files are written in parallel, one thread per CPU. ``modality``: what the image was segmented as
    (model_choice.ModalityChoice.to_json()); None: the image's guess."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writers = output_writers(result, image, out, outputs, suffix=suffix, level=level, dicom_seg=dicom_seg)
    deferred = {name: writer for name, writer in writers.items() if kind_of(name) in later}
    now = [name for name in writers if name not in deferred]
    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, min(len(now), os.cpu_count() or 1))) as pool:
        paths = list(pool.map(lambda name: writers[name](), now))
    written = dict(zip(now, paths))
    files = output_files(len(result.findings), tuple(outputs), suffix)
    files.update({"dicom_seg": DICOM_SEG_FILE} if "dicom_seg" in writers else {})
    report = build_report(result, image, image_path, describe_all([f.prompt.text for f in result.findings]), files,
                          modality)
    report["timings_s"]["write"] = round(time.perf_counter() - start, 3)  # the files before report.json
    with atomic_output(out / files["report"]) as temp:
        temp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    written["report"] = out / files["report"]
    return written, deferred


def write_result(result: Result, image: Volume, out: str | Path, *, image_path: str | Path | None = None,
                 outputs: Collection[str] = KINDS, suffix: str = ".nii.gz", level: int = GZIP_LEVEL) -> dict[str, Path]:
    """Write the ``outputs`` kinds (default every one) of ``result`` (for ``image``) into ``out``;
    returns name -> path."""
    written, _ = write_outputs(result, image, out, image_path=image_path, outputs=outputs, suffix=suffix, level=level)
    return written


def build_report(result: Result, image: Volume, image_path, descriptions, files: dict[str, str],
                 modality: dict | None = None) -> dict:
    """report.json: what was asked, what was found, with which models, how long it took, what to watch;
    ``files``: output name -> file name of every output of the run; ``modality``: what the image was segmented
    as (modality, sequence, source, given), default its guess."""
    used = modality or {"modality": image.modality, "sequence": None,
                        "source": image.metadata.get("modality_reason", ""), "given": False}
    import monai
    import torch

    from .clicks import to_report

    grid = image.grid
    prompts = []
    for n, (finding, description) in enumerate(zip(result.findings, descriptions), start=1):
        prompts.append({
            "prompt": finding.text, "segment": description.name, "label": n, "organ": finding.prompt.organ_name,
            "found": finding.found, "presence": round(finding.presence, 4), "volume_ml": round(finding.volume_ml, 3),
            "organ_prior": {"organ": finding.organ.name, "method": finding.organ.method, "note": finding.organ.note},
            "components": finding.components, "relevance": round(finding.relevance, 3),
            "seed_spread": round(finding.seed_spread, 4),
            "files": {kind: files[f"{kind}_{n}"] for kind in ("probability", "attention") if f"{kind}_{n}" in files},
            "clicks": to_report(finding.clicks, image),
        })
    return {
        "schema": REPORT_SCHEMA,
        "note": NOTE,
        "image": str(Path(image_path).resolve()) if image_path else image.source,
        "grid": {"size": list(grid.size), "spacing_mm": list(grid.spacing), "origin_lps_mm": list(grid.origin),
                 "direction_lps": list(grid.direction)},
        "modality": used["modality"],
        "modality_choice": {**used, "guessed": image.modality},
        "prompts": prompts,
        "settings": {"seeds": list(result.settings.seeds), "steps": result.settings.steps,
                     "min_component_mm3": result.settings.min_component_mm3,
                     "fill_holes": result.settings.fill_holes,
                     "restrict_to_organ": result.settings.restrict_to_organ},
        "models": result.models,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "monai": monai.__version__},
        "outputs": dict(files),
        "timings_s": {stage: round(seconds, 3) for stage, seconds in result.timings.items()},
        "cache": result.cache,
        "warnings": result.warnings,
    }
