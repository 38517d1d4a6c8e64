"""The small real case bundled with the engine, so the demo needs nothing outside the repository."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).parent
DEMO_IMAGE = DEMO_DIR / "lung1_crop_ct.nii.gz"
DEMO_MASK = DEMO_DIR / "lung1_crop_ct_mask.nii.gz"
DEMO_PROMPT = "lung tumor"
