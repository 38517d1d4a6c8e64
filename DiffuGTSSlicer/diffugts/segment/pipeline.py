"""The Segmenter: frozen backbone, text encoder, attention heads and refinement head behind one call.

    segmenter = Segmenter.from_pretrained("demo-ct")
    result = segmenter(volume, ["kidney tumor"], settings=PRESETS["fast"])

A call runs named stages, each a method with explicit inputs and outputs; the cached ones go through one
:class:`~.cache.Stages`, keyed by every input of the stage (so a second prompt, or anything else that changes
one input, reruns only the stages downstream of it):
  encode      volume, modality          -> model grid, latent, frozen features, VAE reconstruction
  priors      volume, modality, atlases left out -> the volume's organ priors, made on demand and kept (so
              the atlases are registered to a scan once, not once per organ; none with a user's organ mask)
  organ       volume, organ, organ mask, priors -> the organ context (prior, search region, organ z-score)
  attention   encoding, prompt, context -> the prompt's attention map gated by the search region
  sample      encoding, latent mask, steps, seed -> one pseudo-healthy sample (the mask: the union of the
              prompts' attention above threshold, keyed by its content)
  refine      encoding, attention, samples, context -> the seed-averaged probability and its spread
With points and boxes (:mod:`.clicks`), two more, after attention and after refine:
  guide       encoding, attention, context, the prompt's clicks -> attention and search region as the clicks
              have them (what inpainting and refinement read is raised by positive points only, so a negative
              point reuses the samples and the refinement)
  click       encoding, refined probability, the prompt's clicks -> the probability raised and lowered
So a negative point on a cached volume reruns guide and click for its prompt, a positive one refine too (and
sample whenever it changes the latent inpainting mask), then restore and postprocess.
Then, per call: restore (back to the input's grid, out of the ROI) and postprocess (presence test: below the
calibrated threshold, "not found" and an empty mask; mask, components, uncertainty).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..attention.encode import EncodedVolume, encode_for_attention
from ..attention.heads import AttentionHeads
from ..attention.infer import attention_logits, prompt_embeddings
from ..backbone.grid import from_model_grid
from ..backbone.inpaint import latent_mask, sample_seed
from ..backbone.sliding import decode_latent
from ..errors import DiffuGTSError
from ..io import Volume
from ..io.crop import Box, crop, uncrop
from ..organs.prior import OrganPriors
from ..progress import ProgressCallback, silent
from ..text import parse_prompt, relevance
from ..text.prompts import RELEVANCE_THRESHOLD
from ..timing import timed
from .cache import Keyed, Stages
from .clicks import TOUCH_MM, check_inside, guide, modulate, near, touched_components
from .memory import check_memory
from .preflight import check_input
from .organ_context import OrganContext, organ_context, prompt_organ
from .points import ClickBox, Guidance, Point, guidance_per_prompt
from .postprocess import binary_entropy, binary_mask, presence_score
from .refine import RefineHead, feature_residual, refine_inputs, refine_logits
from .result import Finding, OrganSummary, Result
from .settings import PRESETS, SegmentSettings


@dataclass
class VolumeState:
    """What a volume costs once, whatever the prompts: its encoding (with frozen features) and reconstruction."""

    encoded: EncodedVolume
    reconstruction: torch.Tensor  # [1, 1, X, Y, Z], VAE decode of the input latent


@dataclass
class Sample:
    """One pseudo-healthy sample: the decoded image and its feature residual to the input."""

    image: torch.Tensor
    feature_distance: torch.Tensor


class Segmenter:
    """Models plus the stage caches; ``__call__`` segments one volume for one or several prompts."""

    def __init__(self, backbone, text_encoder, heads: AttentionHeads, refine: RefineHead, *,
                 attention_threshold: float, models: dict[str, object] | None = None, cache_volumes: int = 2,
                 cache_samples: int = 8, cache_organs: int = 8, cache_maps: int = 8) -> None:
        self.backbone = backbone
        self.text_encoder = text_encoder
        self.heads = heads.eval()
        self.refine = refine.eval().to(backbone.device)
        self.attention_threshold = float(attention_threshold)
        self.models = models or {}
        self.stages = Stages({"encode": cache_volumes, "priors": cache_volumes, "organ": cache_organs,
                              "attention": cache_maps, "sample": cache_samples, "refine": cache_maps, "guide": 0,
                              "click": 0})
        self.volumes, self.organs, self.samples = (self.stages.caches[n] for n in ("encode", "organ", "sample"))
        self.exclude_atlas_patients: tuple[str, ...] = ()  # evaluation on an atlas patient's scans leaves it out
        if text_encoder.dim != heads.config.text_dim:
            raise DiffuGTSError(f"the attention heads expect {heads.config.text_dim}-dimensional text embeddings, "
                                f"the text encoder gives {text_encoder.dim}",
                                hint=f"Use the text encoder the heads were trained with ({heads.config.text_encoder}).")

    @classmethod
    def from_pretrained(cls, backbone: str = "demo-ct", *, weights: str | Path | None = None,
                        heads: str | Path | None = None, refine: str | Path | RefineHead | None = None,
                        text_encoder: str | None = None, device: str | torch.device = "cpu") -> Segmenter:
        """The bundled heads and refinement head for ``backbone`` unless files (or, for training, a refinement
        head being trained) are given."""
        from .. import __version__
        from ..attention.checkpoint import bundled_heads_path, load_heads
        from ..backbone import build_backbone, get_config
        from ..paths import cache_dir
        from ..text import CachedTextEncoder, build_text_encoder
        from .checkpoint import bundled_refine_path, load_refine

        get_config(backbone)  # an unknown name is said as such, not as "no attention heads for backbone ..."
        heads_path = Path(heads) if heads else bundled_heads_path(backbone)
        attention_heads, heads_facts = load_heads(heads_path)
        if isinstance(refine, RefineHead):
            refine_head, refine_path = refine, "(in training)"
        else:
            refine_path = Path(refine) if refine else bundled_refine_path(backbone)
            refine_head, _ = load_refine(refine_path)
        for name, config in (("attention heads", attention_heads.config), ("refinement head", refine_head.config)):
            if config.backbone != backbone:
                raise DiffuGTSError(f"the {name} were trained for backbone {config.backbone}, not {backbone}",
                                    hint=f"Use --backbone {config.backbone} or heads trained for {backbone}.")
        encoder_name = text_encoder or attention_heads.config.text_encoder
        encoder = CachedTextEncoder(build_text_encoder(encoder_name), cache_dir() / "text")
        model = build_backbone(backbone, weights=weights, device=device)
        models = {"diffugts": __version__, "backbone": model.config.name, "backbone_weights": model.weights_info,
                  "attention_heads": str(heads_path), "refinement_head": str(refine_path),
                  "text_encoder": encoder_name}
        return cls(model, encoder, attention_heads, refine_head,
                   attention_threshold=float(heads_facts.get("threshold", 0.5)), models=models)

    @property
    def cache_counters(self) -> dict[str, int]:
        return {"volume_hits": self.volumes.hits, "volume_misses": self.volumes.misses,
                "sample_hits": self.samples.hits, "sample_misses": self.samples.misses,
                "text_hits": getattr(self.text_encoder, "hits", 0), "text_misses": getattr(self.text_encoder, "misses", 0)}

    def __call__(self, volume: Volume, prompts: str | Sequence[str], *, settings: SegmentSettings | None = None,
                 organ_mask: Volume | None = None, modality: str | None = None, roi: Box | None = None,
                 points: Sequence[Point] = (), box: ClickBox | Sequence[ClickBox] | None = None,
                 progress: ProgressCallback = silent) -> Result:
        """Segment ``volume`` for each prompt; ``points`` and ``box``: clicks in RAS mm, each naming the prompt it
        corrects (or none, with a single prompt), see :mod:`.clicks`."""
        settings = settings or PRESETS["balanced"]
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not texts:
            raise DiffuGTSError("no prompt given", hint='Give at least one prompt, e.g. "kidney tumor".')
        modality = modality or volume.modality
        parsed = [parse_prompt(text, modality) for text in texts]
        timings: dict[str, float] = {}
        warnings = list(volume.warnings)
        check_organ_grid(organ_mask, volume)
        guidance = guidance_per_prompt(texts, points, box)
        box = roi.fit(volume.size) if roi else None  # from here on, the ROI
        work = crop(volume, box) if box else volume
        work_organ = crop(organ_mask, box) if box and organ_mask is not None else organ_mask
        check_input(work, self.backbone, prompts=len(texts), seeds=len(settings.seeds))
        check_inside(texts, guidance, volume, work)

        image = Keyed.by_content(work, "volume")
        user_organ = Keyed.by_content(work_organ, "organ mask") if work_organ is not None else None
        run = self.stages.run
        with timed(timings, "encode"):
            state = run("encode", partial(self.encode, prompts=len(texts), seeds=len(settings.seeds),
                                          progress=progress), volume=image, modality=modality)
        with timed(timings, "organ"):
            priors = (run("priors", OrganPriors, image=image, modality=modality,
                          exclude_patients=self.exclude_atlas_patients) if user_organ is None else None)
            contexts = [run("organ", self._organ, volume=image, state=state, organ=prompt_organ(prompt),
                            organ_mask=user_organ, priors=priors)
                        for prompt in parsed]
        for prompt, context in zip(parsed, contexts):
            if context.value.note:
                warnings.append(f"prompt {prompt.text!r}: {context.value.note}")
        with timed(timings, "attention"):
            attention = [run("attention", self._attention, state=state, prompt=prompt, heads=self.heads,
                             context=context if settings.restrict_to_organ else None)
                         for prompt, context in zip(parsed, contexts)]
            scores = relevance(self.text_encoder, parsed)
        for prompt, score in zip(parsed, scores):
            if score < RELEVANCE_THRESHOLD:
                warnings.append(f"prompt {prompt.text!r} does not look like a finding (relevance {score:.2f}); "
                                "its result is not meaningful")
        with timed(timings, "attention"):
            guided = [run("guide", guide, state=state, attention=a, context=c, guidance=g)
                      for a, c, g in zip(attention, contexts, guidance)]
        samples = self._samples(state, [g.value.inpaint for g in guided], settings, timings, progress)
        with timed(timings, "refine"):
            # attention and context as guided, keyed by content: a negative point leaves both as they were
            refined = [run("refine", self._refine, state=state,
                           attention=Keyed.by_content(g.value.attention, "attention"), samples=tuple(samples),
                           context=Keyed.by_content(g.value.context, "context"),
                           gate=settings.restrict_to_organ, head=self.refine)
                       for g in guided]
            refined = [run("click", modulate, state=state, refined=r, guidance=g) for r, g in zip(refined, guidance)]
            progress("refine", 1.0)
        with timed(timings, "restore"):
            maps, regions, pseudo = self.restore(state.value, [r.value for r in refined],
                                                 [g.value.shown for g in guided],
                                                 [g.value.context for g in guided], [s.value for s in samples],
                                                 work_organ, settings.restrict_to_organ, guidance)
        with timed(timings, "postprocess"):
            findings = [self._finding(text, prompt, p, a, region, g.value.context, settings, score, spread.value[1],
                                      clicks, work, before)
                        for text, prompt, (p, a, before), region, g, score, spread, clicks
                        in zip(texts, parsed, maps, regions, guided, scores, refined, guidance)]
            uncertainty = work.like(_uncertainty(findings))
            if box is not None:
                findings, pseudo, uncertainty = _uncrop_all(findings, pseudo, uncertainty, volume, box)
            progress("postprocess", 1.0)
        timings["total"] = sum(timings.values())
        return Result(findings, pseudo.like(pseudo.array.astype(np.float32, copy=False)), uncertainty, settings,
                      dict(self.models), timings, warnings, self.cache_counters)

    def encode(self, volume: Volume, modality: str, *, mask: Volume | None = None, prompts: int = 1, seeds: int = 1,
               progress: ProgressCallback = silent) -> VolumeState:
        """Stage encode: the per-volume work (``mask``: a reference mask carried onto the model grid, for
        training; ``prompts``, ``seeds``: for the memory check only)."""
        check_memory(volume, self.backbone.config, prompts=prompts, seeds=seeds)
        encoded = encode_for_attention(self.backbone, volume, timestep=self.heads.config.timestep,
                                       modality=modality, mask=mask, progress=progress)
        reconstruction = decode_latent(self.backbone, encoded.latent, progress=progress, stage="reconstruct")
        return VolumeState(encoded, reconstruction)

    @staticmethod
    def _organ(volume: Volume, state: VolumeState, organ: str, organ_mask: Volume | None,
               priors: OrganPriors | None) -> OrganContext:
        """Stage organ: ``organ``'s context on this volume (from the user's organ mask when given, else from
        ``priors``, the volume's: stage priors, keyed by the volume, modality and atlases left out)."""
        encoded = state.encoded
        return organ_context(volume, organ, encoded.image, encoded.grid, organ_mask=organ_mask, priors=priors)

    def _attention(self, state: VolumeState, prompt, heads: AttentionHeads,
                   context: OrganContext | None) -> torch.Tensor:
        """Stage attention (``heads``: this Segmenter's, an input so that their weights are in the key)."""
        return self.attention(state.encoded, prompt, context)

    def attention(self, encoded: EncodedVolume, prompt, context: OrganContext | None = None) -> torch.Tensor:
        """The prompt's attention probability [1, 1, X, Y, Z] on the (padded) model grid, zero outside the
        organ's search region when a context is given (the words choose the organ, the organ gates the map)."""
        abnormal, normal = prompt_embeddings(self.text_encoder, prompt)
        with torch.no_grad():
            attention = torch.sigmoid(attention_logits(self.heads, encoded, abnormal, normal)).clamp(0, 1)
        return attention * context.region if context is not None else attention

    def inpainting_region(self, attention: list[torch.Tensor], settings: SegmentSettings) -> torch.Tensor:
        """Where to inpaint: every prompt's attention above the threshold, and at least the most suspicious
        ``settings.region_fraction`` of the volume (weak maps would otherwise leave nothing to compare)."""
        threshold = settings.region_threshold if settings.region_threshold is not None else self.attention_threshold
        strongest = torch.stack(attention).amax(0)
        if settings.region_fraction > 0:
            threshold = min(threshold, float(torch.quantile(strongest.flatten()[::max(1, strongest.numel() // 500_000)],
                                                            1.0 - settings.region_fraction)))
        return (strongest > threshold).float()

    def pseudo_healthy(self, volume: tuple, state: VolumeState, attention: list[torch.Tensor],
                       settings: SegmentSettings, timings: dict[str, float] | None = None,
                       progress: ProgressCallback = silent) -> list[Sample]:
        """One pseudo-healthy sample per seed (cached by ``volume``, a key naming the encoded volume, the
        inpainting region and the seed); with no region to inpaint, the reconstruction itself."""
        return [s.value for s in self._samples(Keyed(("given", volume), state), attention, settings, timings,
                                                progress)]

    def _samples(self, state: Keyed[VolumeState], attention: list[torch.Tensor], settings: SegmentSettings,
                 timings: dict[str, float] | None = None, progress: ProgressCallback = silent) -> list[Keyed[Sample]]:
        """Stage sample, once per seed, on the latent mask of the inpainting region (keyed by its content)."""
        timings = {} if timings is None else timings
        region = self.inpainting_region(attention, settings)
        if not region.any():
            reconstruction = state.value.reconstruction
            zero = Sample(reconstruction, torch.zeros_like(reconstruction))
            return [Keyed(("reconstruction", state.key), zero) for _ in settings.seeds]
        mask = Keyed.by_content(latent_mask(region, self.backbone.factor, settings.region_dilate), "latent mask")
        total = len(settings.seeds)
        samples = []
        for n, seed in enumerate(settings.seeds):
            def report(stage: str, fraction: float, n: int = n) -> None:
                progress(stage, (n + fraction) / total)

            samples.append(self.stages.run("sample", partial(self._sample, timings=timings, progress=report),
                                           state=state, mask=mask, steps=settings.steps, seed=int(seed)))
        return samples

    def _sample(self, state: VolumeState, mask: torch.Tensor, steps: int, seed: int, timings: dict[str, float],
                progress: ProgressCallback) -> Sample:
        """Stage sample: inpaint the latent where ``mask`` is set with ``seed``, decode, read its features."""
        encoded = state.encoded
        drawn = sample_seed(self.backbone, encoded.latent, mask, encoded.conditioning, seed=seed,
                            num_steps=steps, features_timestep=self.heads.config.timestep, timings=timings,
                            progress=progress)
        with timed(timings, "decode"):
            distance = feature_residual(encoded.unet_features, drawn.features, drawn.image.shape[2:])
        return Sample(drawn.image, distance)

    def _refine(self, state: VolumeState, attention: torch.Tensor, samples: tuple[Sample, ...],
                context: OrganContext, gate: bool, head: RefineHead) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage refine: the prompt's seed-averaged probability (zero outside the search region when ``gate``)
        and its per-voxel spread across seeds."""
        patch = tuple(self.backbone.config.patch_size)
        per_seed = torch.stack([
            torch.sigmoid(refine_logits(head, refine_inputs(state.encoded.image, state.reconstruction, s.image,
                                                            attention, s.feature_distance, context,
                                                            head.config.inputs), patch))
            * (context.region if gate else 1.0)
            for s in samples])
        spread = per_seed.std(0, unbiased=False) if len(samples) > 1 else torch.zeros_like(per_seed[0])
        return per_seed.mean(0), spread

    @staticmethod
    def restore(state: VolumeState, refined: list[tuple], attention: list[torch.Tensor],
                contexts: list[OrganContext], samples: list[Sample], organ_mask: Volume | None, gate: bool,
                guidance: Sequence[Guidance]) -> tuple[list[tuple], list[np.ndarray | None], Volume]:
        """Stage restore: per prompt, (probability, attention, probability before negative points or None) and
        the search region on the (cropped) input's grid (a prompt with clicks: its model-grid region, which they
        changed), and the seed-averaged pseudo-healthy scan."""
        grid = state.encoded.grid

        def back(tensor: torch.Tensor | None) -> Volume | None:
            return from_model_grid(tensor, grid, intensities=False) if tensor is not None else None

        maps = [(back(p), back(a), back(before)) for (p, _, before), a in zip(refined, attention)]
        regions = [search_region(c, None if g else organ_mask, grid) if gate else None
                   for c, g in zip(contexts, guidance)]
        return maps, regions, from_model_grid(_mean([s.image for s in samples]), grid)

    def _finding(self, text: str, prompt, probability: Volume, attention: Volume, region: np.ndarray | None,
                 context: OrganContext, settings: SegmentSettings, score: float, spread: torch.Tensor,
                 guidance: Guidance = Guidance(), work: Volume | None = None, before: Volume | None = None) -> Finding:
        """Stage postprocess for one prompt: presence, mask (with positive points, the components they touch and
        no other; those a negative one touched in ``before``, the probability before it lowered it, removed)."""
        for restored in (probability, attention):  # float32 maps of this call's own: clipped in place
            np.clip(restored.array, 0, 1, out=restored.array)
        presence = presence_score(probability, settings.presence_volume_mm3, region)
        found = presence >= self.refine.config.presence_threshold or bool(guidance.positive)  # a click finds
        threshold = self.refine.config.threshold if found else 1.0  # not found: an empty mask, maps kept
        keep = near(work, guidance.positive, TOUCH_MM) if work is not None else None
        remove = None
        if before is not None and work is not None:
            np.clip(before.array, 0, 1, out=before.array)
            earlier, _ = binary_mask(before, threshold, organ=region, fill_holes=settings.fill_holes)
            remove = touched_components(earlier.array > 0, near(work, guidance.negative, TOUCH_MM), keep)
        mask, components = binary_mask(probability, threshold, organ=region, fill_holes=settings.fill_holes,
                                       min_component_mm3=settings.min_component_mm3, keep=keep, remove=remove,
                                       keep_only=bool(guidance.positive))
        found = found and components > 0  # nothing above the mask threshold is nothing found
        inside = spread[spread > 0]
        return Finding(text, prompt, probability, mask, attention, self.attention_threshold, presence,
                       float(mask.array.sum()) * probability.voxel_volume_ml, components, float(score),
                       float(inside.mean()) if inside.numel() else 0.0, found,
                       OrganSummary(context.organ, context.method, context.note), guidance)


def _mean(images: list[torch.Tensor]) -> torch.Tensor:
    """The per-voxel mean of the seeds' images (one seed: its image, not a copy)."""
    return images[0] if len(images) == 1 else torch.stack(images).mean(0)


def _uncertainty(findings: list[Finding]) -> np.ndarray:
    """The binary entropy of each finding's probability, the maximum over findings."""
    uncertainty = binary_entropy(findings[0].probability.array)
    for finding in findings[1:]:
        np.maximum(uncertainty, binary_entropy(finding.probability.array), out=uncertainty)
    return uncertainty


def check_organ_grid(organ_mask: Volume | None, volume: Volume) -> None:
    """Refuse an organ mask that does not lie on ``volume``'s grid."""
    if organ_mask is not None and not organ_mask.grid.matches(volume.grid, tolerance=1e-3):
        raise DiffuGTSError("the organ mask is not on the image's grid (size, spacing, origin or direction differ)",
                            path=organ_mask.source, hint="Resample the organ mask onto the image first.")


def search_region(context: OrganContext, organ_mask: Volume | None, grid) -> np.ndarray:
    """Where a finding may lie, as booleans [k, j, i] on the input's grid: the user's organ mask exactly, else
    the organ context's region brought back from the model grid."""
    if organ_mask is not None:
        return organ_mask.array > 0
    return from_model_grid(context.region, grid, intensities=False).array >= 0.5


def _uncrop_all(findings: list[Finding], pseudo: Volume, uncertainty: Volume, volume: Volume,
                box: Box) -> tuple[list[Finding], Volume, Volume]:
    """Every output from the ROI back onto the whole input grid (outside the ROI: nothing found, input kept)."""
    for finding in findings:
        finding.probability = uncrop(finding.probability, volume, box)
        finding.mask = uncrop(finding.mask, volume, box)
        finding.attention = uncrop(finding.attention, volume, box)
    full = volume.like(volume.array.astype(np.float32))
    full.array[box.slices] = pseudo.array
    return findings, full, uncrop(uncertainty, volume, box)
