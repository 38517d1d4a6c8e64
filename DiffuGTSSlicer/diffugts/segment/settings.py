"""How hard the Segmenter works on a volume: quality presets and post-processing settings (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class SegmentSettings:
    """Everything a run needs besides the models, the volume and the prompts."""

    seeds: tuple[int, ...] = (0,)  # one inpainting sample per seed; their spread is the uncertainty
    steps: int = 5  # denoising steps per inpainting sample
    region_threshold: float | None = None  # attention above this is inpainted; None: the heads' threshold
    region_fraction: float = 0.05  # at least this fraction of the volume, the most suspicious part, is inpainted
    region_dilate: int = 1  # latent voxels added around the inpainted region
    min_component_mm3: float = 50.0  # smaller connected components are dropped
    fill_holes: bool = True
    restrict_to_organ: bool = True  # when an organ mask is given, findings stay inside it
    presence_volume_mm3: float = 500.0  # presence = mean probability of the most likely voxels of this volume

    def with_seed(self, seed: int) -> SegmentSettings:
        """The same settings with seeds counted from ``seed`` (as many as before)."""
        return replace(self, seeds=tuple(range(seed, seed + len(self.seeds))))


PRESETS: dict[str, SegmentSettings] = {
    "fast": SegmentSettings(seeds=(0,), steps=5),
    "balanced": SegmentSettings(seeds=(0, 1, 2), steps=10),
    "best": SegmentSettings(seeds=(0, 1, 2, 3, 4), steps=20),
}
