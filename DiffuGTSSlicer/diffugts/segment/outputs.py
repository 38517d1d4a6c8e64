"""The names of the files a segmentation run writes (plain Python: the client checks them without numpy)."""

from __future__ import annotations

REPORT_NAME = "report.json"


def output_names(prompts: int, suffix: str = ".nii.gz") -> list[str]:
    """The files a run with ``prompts`` prompts writes (checked against the inputs before any work)."""
    per_prompt = [f"{kind}_{n}{suffix}" for n in range(1, prompts + 1) for kind in ("probability", "attention")]
    return ["segmentation.seg.nrrd", f"labels{suffix}", *per_prompt, f"pseudo_healthy{suffix}",
            f"uncertainty{suffix}", "quicklook.png", REPORT_NAME]
