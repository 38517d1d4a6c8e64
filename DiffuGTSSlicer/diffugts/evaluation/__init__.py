"""Scoring segmentations and detections against expert masks."""

from .metrics import NSD_TOLERANCE_MM, SegmentationScores, auroc, segmentation_scores

__all__ = ["NSD_TOLERANCE_MM", "SegmentationScores", "auroc", "segmentation_scores"]
