"""Organ label maps from public legends (TotalSegmentator, FreeSurfer, written out) to the engine's vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...organs.labels import LABEL_OF, legend_to_vocabulary, organ_of_structure, parse_written_legend

TOTALSEGMENTATOR_MAPS = "totalsegmentator_label_maps.json"
_TOTALSEGMENTATOR_KEYS = {"totalsegmentator_total": "total", "totalsegmentator_total_mr": "total_mr"}
Legend = dict[int, str] | str  # value -> structure name, or one organ name for every nonzero value


def resolve_legend(text: str, folder: Path) -> Legend:
    """The legend an organ_legend cell names: a TotalSegmentator table (from the JSON beside the manifest),
    FreeSurfer (every nonzero label is brain) or a written-out legend such as '1=aorta'."""
    key = text.strip().lower()
    if key in _TOTALSEGMENTATOR_KEYS:
        path = folder / TOTALSEGMENTATOR_MAPS
        try:
            table = json.loads(path.read_text(encoding="utf-8"))[_TOTALSEGMENTATOR_KEYS[key]]
            return {int(value): str(name) for value, name in table.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            hint = f"Put {TOTALSEGMENTATOR_MAPS} (keys 'total', 'total_mr') beside the manifest."
            raise InputError(f"cannot read the {key} label table ({error})", path=path, hint=hint) from None
    if key.startswith("freesurfer"):
        return "brain"
    legend = parse_written_legend(text)
    if not legend:
        raise InputError(f"organ legend {text!r} is not understood",
                         hint="Write it as 'VALUE=structure; ...' or name totalsegmentator_total(_mr) or freesurfer.")
    return legend


def dataset_legend(known_labels: dict[int, str], organ: str) -> dict[int, str]:
    """A dataset label file's values that name an organ; when the case's own organ is labelled, its lesions
    (tumor, cyst: the other nonzero values) are inside it and count as the organ too (MSD liver, KiTS23)."""
    legend = {v: name for v, name in known_labels.items() if v != 0 and organ_of_structure(name)}
    if any(organ_of_structure(name) == organ for name in legend.values()):
        legend |= {v: organ for v in known_labels if v != 0 and v not in legend}
    return legend


def to_vocabulary(labels: np.ndarray, legend: Legend) -> tuple[np.ndarray, list[str]]:
    """The organ map in diffugts.organs.labels values (uint8), and notes on what was dropped."""
    labels = np.where(labels > 0, labels, 0).astype(np.int64)  # label maps hold no negative values
    present = [int(v) for v in np.unique(labels) if v != 0]
    if isinstance(legend, str):
        return (labels != 0).astype(np.uint8) * np.uint8(LABEL_OF[legend]), []
    mapping = legend_to_vocabulary(legend)
    lookup = np.zeros(max(present + [0]) + 1, dtype=np.uint8)
    for value in present:
        lookup[value] = mapping.get(value, 0)
    notes = []
    dropped = sorted({legend[v] for v in present if v in legend and v not in mapping})
    if dropped:
        notes.append(f"organ labels dropped (not in the organ vocabulary): {', '.join(dropped)}")
    unnamed = [v for v in present if v not in legend]
    if unnamed:
        notes.append(f"organ label values without a legend entry dropped: {', '.join(map(str, unnamed))}")
    return lookup[labels], notes
