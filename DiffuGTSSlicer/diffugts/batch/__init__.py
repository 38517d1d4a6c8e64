"""Resumable batch segmentation of many volumes: on this machine (processes, one per GPU) or on a Ray cluster."""

from .cases import BatchCase, list_cases
from .run import BatchTotals, run_batch
from .worker import CaseOutcome, ModelSpec

__all__ = ["BatchCase", "BatchTotals", "CaseOutcome", "ModelSpec", "list_cases", "run_batch"]
