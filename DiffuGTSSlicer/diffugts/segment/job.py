"""One segmentation job, from files to a folder: the single path `segment`, `batch` and `serve` share.

    request = SegmentRequest(("kidney tumor",), quality="fast")
    job = prepare("ct.nii.gz", request)            # reads and checks the inputs: no model needed yet
    result, written = run(segmenter, job, "out/")  # segments and writes every output on the input's grid
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DiffuGTSError
from ..io.box import Box
from ..progress import ProgressCallback, silent
from .outputs import DEFAULTS, parse_outputs
from .settings import PRESETS, SegmentSettings

if TYPE_CHECKING:
    from ..io import Volume
    from .model_choice import ModalityChoice

MAX_PROMPTS = 16
MAX_PROMPT_CHARS = 200
DICOM_SEG_MODES = ("binary", "fractional", "none")


@dataclass(frozen=True)
class SegmentRequest:
    """What to find and how hard to look: everything of a job but the image and the models (plain data, JSON-able)."""

    prompts: tuple[str, ...]
    quality: str = "balanced"
    seed: int = 0
    roi: str | None = None  # 'i0:i1,j0:j1,k0:k1' voxel indices of the input grid
    min_component_mm3: float | None = None  # None: the settings' default
    modality: str | None = None  # 'CT', 'MR', 'MR-T1c', ... (spellings like 't1c' are normalized); None: guessed
    dicom_seg: str | None = None  # a DICOM SEG: 'binary', 'fractional' or 'none'; None: binary for DICOM inputs
    outputs: tuple[str, ...] | None = None  # the kinds of file to write (segment/outputs.py); None: the use's default
    points: tuple = ()  # clicks: [{"prompt": ..., "position": [x, y, z], "positive": true}] or Points (RAS)
    boxes: tuple = ()  # [{"prompt": ..., "min": [x, y, z], "max": [x, y, z]}] or ClickBoxes (RAS)
    coordinates: str = "RAS"  # of the positions given as JSON: "RAS" (Slicer's world) or "LPS"; kept as RAS

    def __post_init__(self) -> None:
        prompts = (self.prompts,) if isinstance(self.prompts, str) else tuple(self.prompts)
        if not all(isinstance(p, str) for p in prompts):
            raise DiffuGTSError("every prompt must be a text", hint='Give e.g. ["kidney tumor", "liver tumor"].')
        prompts = tuple(p.strip() for p in prompts)
        object.__setattr__(self, "prompts", prompts)
        if not prompts:
            raise DiffuGTSError("no prompt given", hint='Give at least one prompt, e.g. "kidney tumor".')
        if any(not p for p in prompts):
            raise DiffuGTSError("the prompt is empty", hint='Describe the finding, e.g. "kidney tumor".')
        if len(prompts) > MAX_PROMPTS or any(len(p) > MAX_PROMPT_CHARS for p in prompts):
            raise DiffuGTSError(f"at most {MAX_PROMPTS} prompts of at most {MAX_PROMPT_CHARS} characters each",
                                hint="Split the work into several runs; describe each finding in a few words.")
        if self.quality not in PRESETS:
            raise DiffuGTSError(f"unknown quality {self.quality!r}", hint=f"Use one of {', '.join(PRESETS)}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise DiffuGTSError(f"the seed must be a whole number of 0 or more, not {self.seed!r}")
        if self.min_component_mm3 is not None and not self.min_component_mm3 >= 0:
            raise DiffuGTSError(f"the minimum component must be 0 or more mm³, not {self.min_component_mm3}")
        if self.roi is not None:
            Box.parse(self.roi)
        if self.dicom_seg is not None and self.dicom_seg not in DICOM_SEG_MODES:
            raise DiffuGTSError(f"unknown DICOM SEG type {self.dicom_seg!r}",
                                hint=f"Use one of {', '.join(DICOM_SEG_MODES)}.")
        if self.outputs is not None:
            object.__setattr__(self, "outputs", parse_outputs(self.outputs))
        self._read_clicks()

    def _read_clicks(self) -> None:
        """Points and boxes as RAS Point and ClickBox objects, each tied to a prompt (checked now)."""
        from .points import COORDINATES, ClickBox, Point, boxes_from_json, guidance_per_prompt, points_from_json

        if self.coordinates not in COORDINATES:
            raise DiffuGTSError(f"unknown coordinates {self.coordinates!r}",
                                hint='Use "RAS" (Slicer\'s world, the default) or "LPS".')
        for name in ("points", "boxes"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise DiffuGTSError(f"'{name}' must be a list of objects")
        points = tuple(p for p in self.points if isinstance(p, Point))
        points += points_from_json([p for p in self.points if not isinstance(p, Point)], self.coordinates)
        boxes = tuple(b for b in self.boxes if isinstance(b, ClickBox))
        boxes += boxes_from_json([b for b in self.boxes if not isinstance(b, ClickBox)], self.coordinates)
        guidance_per_prompt(self.prompts, points, boxes)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "coordinates", "RAS")
        if self.modality is not None:
            from ..io.sequence import normalize_modality

            if not isinstance(self.modality, str):
                raise DiffuGTSError(f"the modality must be a text such as 'CT' or 'MR-T1c', not {self.modality!r}")
            object.__setattr__(self, "modality", normalize_modality(self.modality) if self.modality.strip() else None)

    @property
    def settings(self) -> SegmentSettings:
        settings = PRESETS[self.quality].with_seed(self.seed)
        if self.min_component_mm3 is not None:
            settings = dataclasses.replace(settings, min_component_mm3=float(self.min_component_mm3))
        return settings

    def to_json(self) -> dict:
        """The request as JSON; ``outputs`` only when chosen (a request of an earlier version reads the same)."""
        from .points import boxes_to_json, points_to_json

        data = {**dataclasses.asdict(self), "prompts": list(self.prompts), "points": points_to_json(self.points),
                "boxes": boxes_to_json(self.boxes)}
        for name in ("points", "boxes", "coordinates"):  # no clicks: read as before by a server of an earlier version
            if name == "coordinates" or not data[name]:
                del data[name]
        if self.dicom_seg is None:
            del data["dicom_seg"]  # a server of an earlier version reads the request as before
        if self.outputs is None:
            del data["outputs"]
        else:
            data["outputs"] = list(self.outputs)
        return data

    def outputs_or(self, use: str) -> tuple[str, ...]:
        """The kinds to write: those asked for, else the default of ``use`` ('segment', 'batch', 'serve')."""
        return self.outputs if self.outputs is not None else DEFAULTS[use]

    @classmethod
    def from_json(cls, data: object) -> SegmentRequest:
        """A request from decoded JSON (a server body, a batch manifest row); unknown fields are an error."""
        if not isinstance(data, dict):
            raise DiffuGTSError("a segmentation request must be a JSON object with at least 'prompts'")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DiffuGTSError(f"unknown request field(s): {', '.join(unknown)}",
                                hint=f"Known fields: {', '.join(sorted(known))}.")
        if "prompts" not in data:
            raise DiffuGTSError("the request has no 'prompts'", hint='Give e.g. {"prompts": ["kidney tumor"]}.')
        try:
            return cls(**data)
        except TypeError as error:
            raise DiffuGTSError(f"the request has a field of the wrong type: {error}") from None


@dataclass(frozen=True)
class ModelSpec:
    """Which models to load, and on which device (plain data: it travels to batch worker processes and Ray actors)."""

    backbone: str = "auto"  # 'auto': demo-ct for CT images, demo-mr for MR (segment.model_choice)
    weights: str | None = None
    heads: str | None = None
    refine: str | None = None
    device: str = "cpu"

    def load(self, on_choice=None):
        """The Segmenter with these models (the bundled heads unless files are named); for 'auto', a ModelChooser
        that loads each modality's backbone on first use (``on_choice`` hears which)."""
        from .model_choice import AUTO, ModelChooser
        from .pipeline import Segmenter

        if self.backbone == AUTO:
            return ModelChooser(self, on_choice)
        return Segmenter.from_pretrained(self.backbone, weights=self.weights, heads=self.heads, refine=self.refine,
                                         device=self.device)

    def with_device(self, device: str) -> ModelSpec:
        return dataclasses.replace(self, device=device)


@dataclass
class PreparedJob:
    """A request with its inputs read and checked against each other; nothing has run yet."""

    request: SegmentRequest
    image: Volume
    image_path: Path
    organ_mask: Volume | None = None
    roi: Box | None = None
    modality: ModalityChoice | None = None  # what the image is segmented as, and why (None: its guess)


def prepare(image_path: str | Path, request: SegmentRequest, organ_mask: str | Path | None = None, *,
            name_hint: bool = True, image: Volume | None = None) -> PreparedJob:
    """Read the image (and organ mask) and check the ROI, the organ mask's grid and the clicks: seconds, before
    any model.
    ``name_hint``: whether the image's file name may say its modality (see io.read_volume); ``image``: the
    file's volume when it was read already (a server's next job on the same upload)."""
    from ..io import read_volume
    from ..io.dicom_seg import check_dicom_seg
    from .model_choice import resolve_modality
    from .pipeline import check_organ_grid

    image = read_volume(image_path, name_hint=name_hint) if image is None else image
    check_dicom_seg(request.dicom_seg, image)
    roi = Box.parse(request.roi).fit(image.size) if request.roi else None
    organ = read_volume(organ_mask) if organ_mask else None
    check_organ_grid(organ, image)
    if request.points or request.boxes:  # a click outside the image: refused before any model runs
        from ..io.crop import crop
        from .clicks import check_inside
        from .points import guidance_per_prompt

        check_inside(request.prompts, guidance_per_prompt(request.prompts, request.points, request.boxes), image,
                     crop(image, roi) if roi else image)
    return PreparedJob(request, image, Path(image_path), organ, roi,
                       resolve_modality(request.modality, image, request.prompts))


def run(segmenter, job: PreparedJob, out: str | Path, progress: ProgressCallback = silent, *, use: str = "segment"):
    """Segment ``job`` with ``segmenter`` and write its outputs (those asked for, else ``use``'s default) into
    ``out``; returns (Result, name -> path)."""
    result, written, _ = run_deferred(segmenter, job, out, progress, use=use)
    return result, written


def run_deferred(segmenter, job: PreparedJob, out: str | Path, progress: ProgressCallback = silent, *,
                 use: str = "segment", later: tuple[str, ...] = ()):
    """:func:`run`, but the files of the kinds in ``later`` are not written yet (report.json names them);
    returns (Result, name -> path, name -> function writing each file left)."""
    from .model_choice import resolve_modality
    from .write import write_outputs

    request = job.request
    choice = job.modality or resolve_modality(request.modality, job.image, request.prompts)
    chosen = getattr(segmenter, "segmenter_for", None)  # a ModelChooser picks the backbone for the modality
    model = chosen(choice) if chosen else segmenter
    result = model(job.image, list(request.prompts), settings=request.settings, organ_mask=job.organ_mask,
                   modality=choice.modality, roi=job.roi, points=request.points, box=request.boxes,
                   progress=progress)
    written, deferred = write_outputs(result, job.image, out, image_path=job.image_path,
                                      outputs=request.outputs_or(use), later=later,
                                      dicom_seg=request.dicom_seg, modality=choice.to_json())
    return result, written, deferred
