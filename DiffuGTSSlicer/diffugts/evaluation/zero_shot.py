"""The phantom set a zero-shot evaluation runs on: a split's seen and unseen categories, plus healthy negatives."""

from __future__ import annotations

from pathlib import Path

from ..data.categories import CATEGORIES, HEALTHY, PHANTOM_CATEGORIES
from ..data.phantom.writer import write_phantom_set
from ..data.splits import ZeroShotSplit
from ..errors import DiffuGTSError
from ..progress import ProgressCallback, silent

PHANTOM_FOLDER = "phantoms"
HEALTHY_PER_CATEGORY = 2  # healthy phantoms per n tumor phantoms of one category: negatives for seen and unseen
PHANTOM_MODALITY = "CT"  # the demo backbone models CT only


def split_categories(split: ZeroShotSplit, modality: str = PHANTOM_MODALITY) -> list[str]:
    """The split's seen then unseen categories that phantoms can show as ``modality``."""
    return [name for name in (*split.seen, *split.unseen)
            if modality in CATEGORIES[name].modalities and name in PHANTOM_CATEGORIES]


def phantom_set(split: ZeroShotSplit, out: str | Path, n: int, size: int, seed: int = 0,
                progress: ProgressCallback = silent) -> Path:
    """The manifest of ``out/phantoms``: written on first use, reused as it is afterwards."""
    folder = Path(out) / PHANTOM_FOLDER
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        return manifest
    categories = split_categories(split)
    if not categories:
        raise DiffuGTSError(f"split {split.name!r} has no {PHANTOM_MODALITY} category to make phantoms of")
    # cycling through this list gives n phantoms per category and HEALTHY_PER_CATEGORY * n healthy ones
    cycle = categories + [HEALTHY] * HEALTHY_PER_CATEGORY
    return write_phantom_set(folder, n * len(cycle), cycle, [PHANTOM_MODALITY], size, seed, progress=progress)
