"""From what a user typed to the abnormal and normal descriptions the attention module contrasts."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..errors import DiffuGTSError
from ..terminology import Organ, find_organ
from .encoders import TextEncoder

MAX_PROMPT_CHARACTERS = 200
# A prompt whose best cosine similarity to every finding below stays under this is not a finding.
# Measured with all-MiniLM-L6-v2: everyday phrases 0.14-0.42 ("pizza" highest), finding phrasings
# 0.56 and up ("enhancing lesion in the left frontal lobe" lowest). A heuristic, not a guarantee.
RELEVANCE_THRESHOLD = 0.45
FINDINGS = (
    "tumor", "tumour", "cancer", "carcinoma", "neoplasm", "malignant lesion", "mass", "lesion", "nodule", "cyst",
    "metastasis", "glioma", "abnormal growth", "liver tumor", "kidney tumor", "lung tumor", "pancreatic tumor",
    "colon tumor", "brain tumor", "bone lesion", "breast tumor", "hepatic vessel tumor", "lymphoma", "sarcoma",
    "polyp", "ground glass opacity", "bowel wall thickening", "enlarged lymph node", "hypodense lesion",
    "enhancing lesion", "lytic lesion", "abnormal tissue",
)
_MODALITY_WORDS = {"CT": "CT", "MR": "MRI"}


@dataclass(frozen=True)
class Prompt:
    """A cleaned-up prompt, the organ it names (if any), and its abnormal and normal description sets."""

    text: str
    organ: Organ | None
    abnormal: tuple[str, ...]
    normal: tuple[str, ...]

    @property
    def organ_name(self) -> str | None:
        return _organ_name(self.organ)


def _organ_name(organ: Organ | None) -> str | None:
    return organ.name if organ else None


def normalize(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation: 'Kidney  Tumor!' -> 'kidney tumor'."""
    return re.sub(r"\s+", " ", text.lower()).strip(" \t\n.,;:!?\"'()[]{}")


def parse_prompt(text: str, modality: str = "CT") -> Prompt:
    """Check a prompt and build its description sets; empty or overlong prompts raise a DiffuGTSError."""
    cleaned = normalize(text)
    if not cleaned:
        raise DiffuGTSError("the prompt is empty", hint='Describe the finding in a few words, e.g. "kidney tumor".')
    if len(cleaned) > MAX_PROMPT_CHARACTERS:
        raise DiffuGTSError(
            f"the prompt has {len(cleaned)} characters (at most {MAX_PROMPT_CHARACTERS})",
            hint='Describe one finding in a few words, e.g. "mass in the pancreatic head"; '
            "give several findings as several prompts.",
        )
    organ = find_organ(cleaned)
    scan = _MODALITY_WORDS.get(modality.upper()[:2], "scan")
    organ_name = _organ_name(organ)
    abnormal = [cleaned, f"{cleaned} on {scan}", f"a {scan} scan showing {cleaned}"]
    if organ_name and organ_name not in cleaned:
        abnormal.append(f"{cleaned} in the {organ_name}")
    if organ_name:
        normal = [f"normal {organ_name} on {scan}", f"healthy {organ_name} tissue", f"{organ_name} without lesions"]
    else:
        normal = [f"normal tissue on {scan}", f"healthy anatomy on {scan}", "no abnormality"]
    return Prompt(cleaned, organ, tuple(abnormal), tuple(normal))


def relevance(encoder: TextEncoder, prompts: list[Prompt]) -> list[float]:
    """Each prompt's best cosine similarity to known finding descriptions: low means 'not a finding'."""
    vectors = encoder.embed([p.text for p in prompts] + list(FINDINGS))
    scores = vectors[: len(prompts)] @ vectors[len(prompts):].T
    return [float(s) for s in torch.amax(scores, dim=1)]
