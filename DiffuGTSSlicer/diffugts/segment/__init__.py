"""The end-to-end Segmenter (DiffuGTS): text prompts in, masks, probabilities, pseudo-healthy scan out."""

from .pipeline import Segmenter
from .result import Finding, Result
from .settings import PRESETS, SegmentSettings

__all__ = ["PRESETS", "Finding", "Result", "SegmentSettings", "Segmenter"]
