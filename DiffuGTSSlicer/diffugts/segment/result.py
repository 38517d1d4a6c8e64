"""What a Segmenter call returns: one Finding per prompt plus the volume-wide outputs, all on the input's grid."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..io import Volume
from ..text import Prompt
from .points import Guidance
from .settings import SegmentSettings


@dataclass(frozen=True)
class OrganSummary:
    """The organ a prompt was searched in and how its prior was made (see segment.organ_context)."""

    name: str
    method: str  # "user", "rule", "atlas", "template", "foreground" or "body"
    note: str


@dataclass
class Finding:
    """The answer to one prompt."""

    text: str  # the prompt as the user gave it
    prompt: Prompt
    probability: Volume  # float32 in [0, 1], refined
    mask: Volume  # uint8 {0, 1}, post-processed
    attention: Volume  # float32 in [0, 1], the attention map alone
    attention_threshold: float
    presence: float  # in [0, 1]: how likely the volume holds this finding at all
    volume_ml: float
    components: int
    relevance: float  # how much the prompt reads like a finding (text-only check)
    seed_spread: float  # mean standard deviation of the probability across inpainting seeds, inside the mask
    found: bool  # presence reached the calibrated threshold; when not, the mask is empty ("not found")
    organ: OrganSummary
    clicks: Guidance = Guidance()  # the points and box (RAS mm) that corrected it


@dataclass
class Result:
    findings: list[Finding]
    pseudo_healthy: Volume  # float32, input intensity units (e.g. HU), seeds averaged
    uncertainty: Volume  # float32 in [0, 1]: binary entropy of the seed-averaged probability, max over prompts
    settings: SegmentSettings
    models: dict[str, object]  # names, files and versions of the backbone and heads used
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    warnings: list[str] = field(default_factory=list)
    cache: dict[str, int] = field(default_factory=dict)  # the Segmenter's cache counters after this call
