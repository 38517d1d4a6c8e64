"""Which modality an image is segmented as, and with which models: the user's word first, else the image's.

The modality (and MR sequence) comes from ``--modality``, else the image's guess (DICOM header, file name,
Hounsfield-unit histogram: see io.modality), with the prompts naming a sequence as the last resort. Unless the
user names a backbone, CT goes to ``demo-ct`` and MR to ``demo-mr``; a family without shipped models is refused
with what to do, never run on the other family's models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import DiffuGTSError
from ..io.modality import with_prompt_sequence
from ..io.sequence import family, normalize_modality, sequence_of

if TYPE_CHECKING:
    from ..io import Volume
    from .job import ModelSpec

AUTO = "auto"
BACKBONE_FOR = {"CT": "demo-ct", "MR": "demo-mr"}


@dataclass(frozen=True)
class ModalityChoice:
    """The modality an image is segmented as ('CT', 'MR', 'MR-T1c', ...) and why."""

    modality: str
    reason: str
    given: bool = False  # named by the user (--modality, a request or a batch row), not guessed

    @property
    def family(self) -> str:
        return family(self.modality)

    @property
    def sequence(self) -> str | None:
        return sequence_of(self.modality)

    def to_json(self) -> dict[str, object]:
        return {"modality": self.modality, "sequence": self.sequence, "source": self.reason, "given": self.given}

    def describe(self) -> str:
        """'MR-T1c (file name 'x_t1c.nii.gz')', for messages."""
        return f"{self.modality} ({self.reason})"


def resolve_modality(requested: str | None, image: Volume, prompts: tuple[str, ...] | list[str]) -> ModalityChoice:
    """The user's modality when given (normalized: 't1c' -> 'MR-T1c'), else the image's guess, with the sequence
    the prompts name when nothing else said one."""
    if requested:
        return ModalityChoice(normalize_modality(requested), "given with --modality", given=True)
    reason = image.metadata.get("modality_reason") or "the image's default"
    modality, reason = with_prompt_sequence(image.modality, reason, list(prompts))
    return ModalityChoice(modality, reason)


def auto_backbone(choice: ModalityChoice) -> str:
    """The shipped backbone for a modality family (demo-ct for CT, demo-mr for MR)."""
    if choice.family not in BACKBONE_FOR:
        raise DiffuGTSError(f"no backbone is chosen for modality {choice.modality!r}",
                            hint="Pass --modality CT or MR, or name a backbone with --backbone.")
    return BACKBONE_FOR[choice.family]


def check_reads(backbone: str, choice: ModalityChoice, image: Volume) -> None:
    """Refuse, before any model loads, a named backbone that cannot read ``choice``'s modality (an MR to a CT-only
    MAISI package), naming the backbone and package that can."""
    from ..backbone import get_config
    from ..backbone.grid import modality_hint
    from ..backbone.intensity import convention_for

    config = get_config(backbone)
    if convention_for(config.intensity, choice.modality) is None:
        raise DiffuGTSError(f"backbone {config.name} does not model {choice.modality} images", path=image.source,
                            hint=modality_hint(config, choice.modality, None if choice.given else choice.reason))


def missing_parts(spec: ModelSpec, backbone: str) -> list[str]:
    """The files ``spec`` would need for ``backbone`` that are not there (weights, heads, refinement head)."""
    from ..attention.checkpoint import bundled_heads_path
    from ..backbone import get_config, weight_files
    from .checkpoint import bundled_refine_path

    missing = []
    try:
        weight_files(get_config(backbone), spec.weights)
    except DiffuGTSError:
        missing.append("backbone weights")
    if not Path(spec.heads or bundled_heads_path(backbone)).is_file():
        missing.append("attention heads")
    if not Path(spec.refine or bundled_refine_path(backbone)).is_file():
        missing.append("refinement head")
    return missing


def check_shipped(spec: ModelSpec, backbone: str, choice: ModalityChoice) -> None:
    """Refuse, saying what to do, when the automatically chosen backbone's models are not all there."""
    missing = missing_parts(spec, backbone)
    if not missing:
        return
    other = "CT" if choice.family == "MR" else "MR"
    train = (f"'diffugts train backbone --config train_{backbone.replace('-', '_')}.json --corpus DIR --out DIR', "
             f"then 'diffugts train attention' and 'diffugts train refine' with --backbone {backbone}")
    guessed = "" if choice.given else f" If it is a {other}, pass --modality {other}."
    raise DiffuGTSError(
        f"the image {'is' if choice.given else 'was taken for'} {choice.describe()} and no {choice.family} model "
        f"ships yet: {backbone} lacks "
        f"{', '.join(missing)}",
        hint=f"Train one ({train}; see README 'Modality, sequence and model choice'), or pass --backbone with a "
             f"backbone that models {choice.family} and its --weights, --heads and --refine.{guessed}")


class ModelChooser:
    """Callable like a Segmenter: segments each image with the backbone of its modality family, loading each
    backbone's models once (``on_choice`` hears 'MR-T1c (...) -> demo-mr' when a family is first used)."""

    def __init__(self, spec: ModelSpec, on_choice: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.on_choice = on_choice
        self.loaded: dict[str, object] = {}

    def segmenter_for(self, choice: ModalityChoice):
        """The Segmenter for ``choice``'s family (loaded on first use)."""
        import dataclasses

        backbone = auto_backbone(choice)
        if backbone not in self.loaded:
            check_shipped(self.spec, backbone, choice)
            if self.on_choice:
                self.on_choice(f"{choice.describe()}: segmenting with backbone {backbone} (--backbone to choose "
                               "another, --modality if the modality is wrong)")
            self.loaded[backbone] = dataclasses.replace(self.spec, backbone=backbone).load()
        return self.loaded[backbone]

    def __call__(self, volume: Volume, prompts, *, modality: str | None = None, **kwargs):
        choice = resolve_modality(modality, volume, [prompts] if isinstance(prompts, str) else list(prompts))
        return self.segmenter_for(choice)(volume, prompts, modality=choice.modality, **kwargs)
