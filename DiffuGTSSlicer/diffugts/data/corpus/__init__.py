"""The training corpus: real scans gathered from manifests and dataset folders, reoriented to RAS, with
licence, modality, tumor status and a patient-wise train/validation split (``diffugts data corpus``)."""

from __future__ import annotations

from .build import DEMO_REASON, LICENCE_CHOICES, CorpusResult, build_corpus
from .record import CORPUS_COLUMNS, EXCLUDED_COLUMNS, CorpusCase, Exclusion, read_corpus

__all__ = ["CORPUS_COLUMNS", "DEMO_REASON", "EXCLUDED_COLUMNS", "LICENCE_CHOICES", "CorpusCase", "CorpusResult",
           "Exclusion", "build_corpus", "read_corpus"]
