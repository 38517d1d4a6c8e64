"""Write a Result into a folder: label map, .seg.nrrd, per-prompt maps, pseudo-healthy, uncertainty, report, PNG.

Every file is written to a temporary name and renamed, so a folder never holds a half-written file;
``report.json`` comes last: when it is there, the rest is complete.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

from ..io import Segment, Volume, atomic_output, write_segmentation, write_volume
from ..terminology import describe_all
from .outputs import output_names
from .quicklook import write_quicklook
from .result import Result

__all__ = ["REPORT_SCHEMA", "build_report", "label_map", "output_names", "write_result"]

REPORT_SCHEMA = "diffugts.segment.report/1"
NOTE = "Research software, not for clinical use. Check every result."


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


def write_result(result: Result, image: Volume, out: str | Path, *, image_path: str | Path | None = None,
                 suffix: str = ".nii.gz") -> dict[str, Path]:
    """Write every output of ``result`` (for ``image``) into ``out``; returns name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    descriptions = describe_all([f.prompt.text for f in result.findings])
    written: dict[str, Path] = {}
    segments = [Segment(d.name, f.mask.array, d.color, d.terminology) for d, f in zip(descriptions, result.findings)]
    written["segmentation"] = write_segmentation(out / "segmentation.seg.nrrd", image, segments)
    written["labels"] = write_volume(image.like(label_map(result), modality="labels"), out / f"labels{suffix}")
    for n, finding in enumerate(result.findings, start=1):
        written[f"probability_{n}"] = write_volume(finding.probability, out / f"probability_{n}{suffix}")
        written[f"attention_{n}"] = write_volume(finding.attention, out / f"attention_{n}{suffix}")
    written["pseudo_healthy"] = write_volume(result.pseudo_healthy, out / f"pseudo_healthy{suffix}")
    written["uncertainty"] = write_volume(result.uncertainty, out / f"uncertainty{suffix}")
    written["quicklook"] = write_quicklook(out / "quicklook.png", image, [f.mask for f in result.findings],
                                           [d.color for d in descriptions])
    report = build_report(result, image, image_path, descriptions, written)
    with atomic_output(out / "report.json") as temp:
        temp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    written["report"] = out / "report.json"
    return written


def build_report(result: Result, image: Volume, image_path, descriptions, written: dict[str, Path]) -> dict:
    """report.json: what was asked, what was found, with which models, how long it took, what to watch."""
    import monai
    import torch

    grid = image.grid
    prompts = []
    for n, (finding, description) in enumerate(zip(result.findings, descriptions), start=1):
        prompts.append({
            "prompt": finding.text, "segment": description.name, "label": n, "organ": finding.prompt.organ_name,
            "presence": round(finding.presence, 4), "volume_ml": round(finding.volume_ml, 3),
            "components": finding.components, "relevance": round(finding.relevance, 3),
            "seed_spread": round(finding.seed_spread, 4),
            "files": {"probability": written[f"probability_{n}"].name, "attention": written[f"attention_{n}"].name},
        })
    return {
        "schema": REPORT_SCHEMA,
        "note": NOTE,
        "image": str(Path(image_path).resolve()) if image_path else image.source,
        "grid": {"size": list(grid.size), "spacing_mm": list(grid.spacing), "origin_lps_mm": list(grid.origin),
                 "direction_lps": list(grid.direction)},
        "modality": image.modality,
        "prompts": prompts,
        "settings": {"seeds": list(result.settings.seeds), "steps": result.settings.steps,
                     "min_component_mm3": result.settings.min_component_mm3,
                     "fill_holes": result.settings.fill_holes,
                     "restrict_to_organ": result.settings.restrict_to_organ},
        "models": result.models,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "monai": monai.__version__},
        "outputs": {name: path.name for name, path in written.items()},
        "timings_s": {stage: round(seconds, 3) for stage, seconds in result.timings.items()},
        "cache": result.cache,
        "warnings": result.warnings,
    }
