"""Data: synthetic tumor phantoms, readers for public dataset layouts, and the zero-shot split protocol."""

from .case import Case, ImageRef
from .categories import CATEGORIES, HEALTHY, TumorCategory, find_category
from .manifest import MANIFEST_COLUMNS
from .readers import LAYOUTS, detect_layout, read_dataset
from .splits import ZeroShotSplit, load_splits, zero_shot_split

__all__ = [
    "CATEGORIES",
    "HEALTHY",
    "LAYOUTS",
    "MANIFEST_COLUMNS",
    "Case",
    "ImageRef",
    "TumorCategory",
    "ZeroShotSplit",
    "detect_layout",
    "find_category",
    "load_splits",
    "read_dataset",
    "zero_shot_split",
]
