"""Which files a segmentation run writes, and their names (plain Python: the client checks them without numpy).

report.json is always written (last); the other outputs are chosen by kind with ``--outputs``, each use with
its own default: ``diffugts segment`` writes every kind, ``diffugts batch`` the label map and .seg.nrrd, a
server job every kind (its maps made when first downloaded), the Slicer panel what it loads.
"""

from __future__ import annotations

from ..errors import DiffuGTSError

REPORT_NAME = "report.json"
KINDS = ("segmentation", "labels", "probability", "attention", "pseudo_healthy", "uncertainty", "quicklook")
PER_PROMPT = ("probability", "attention")  # one file per prompt
MAPS = ("probability", "attention", "pseudo_healthy", "uncertainty")  # the heavy ones: whole-volume intensities
DEFAULTS = {"segment": KINDS, "batch": ("segmentation", "labels"), "serve": KINDS}


def parse_outputs(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The kinds named in ``text`` ('segmentation,attention', 'all', or a list), in KINDS order; a one-line
    error names an unknown kind."""
    words = text.split(",") if isinstance(text, str) else list(text)
    if not all(isinstance(word, str) for word in words):
        raise DiffuGTSError("'outputs' must be a list of output kinds", hint=f"Choose from: {', '.join(KINDS)}.")
    chosen = {word.strip().lower().replace("-", "_") for word in words} - {""}
    if "all" in chosen:
        return KINDS
    unknown = sorted(chosen - set(KINDS))
    if unknown:
        raise DiffuGTSError(f"unknown output kind(s): {', '.join(unknown)}",
                            hint=f"Choose from: {', '.join(KINDS)} (or all); report.json is always written.")
    return tuple(kind for kind in KINDS if kind in chosen)


def kind_of(name: str) -> str:
    """The kind of an output name: 'probability_2' -> 'probability', 'labels' -> 'labels'."""
    return name.rpartition("_")[0] if name.startswith(tuple(f"{kind}_" for kind in PER_PROMPT)) else name


def output_files(prompts: int, outputs: tuple[str, ...] = KINDS, suffix: str = ".nii.gz") -> dict[str, str]:
    """Output name -> file name for a run with ``prompts`` prompts writing ``outputs`` (report last)."""
    files: dict[str, str] = {}
    for kind in (k for k in KINDS if k in outputs):
        if kind == "segmentation":
            files[kind] = "segmentation.seg.nrrd"
        elif kind == "quicklook":
            files[kind] = "quicklook.png"
        elif kind in PER_PROMPT:
            files.update({f"{kind}_{n}": f"{kind}_{n}{suffix}" for n in range(1, prompts + 1)})
        else:
            files[kind] = f"{kind}{suffix}"
    files["report"] = REPORT_NAME
    return files


def output_names(prompts: int, suffix: str = ".nii.gz", outputs: tuple[str, ...] = KINDS) -> list[str]:
    """The files a run with ``prompts`` prompts writes (checked against the inputs before any work)."""
    return list(output_files(prompts, outputs, suffix).values())
