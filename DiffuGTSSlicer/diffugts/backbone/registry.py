"""Backbones by name: built-in configs under configs/, user configs by path, weights resolved safely."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DiffuGTSError
from .config import CONFIG_DIR, BackboneConfig
from .latent import LatentDiffusionBackbone

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
_BUILTIN: dict[str, Path] = {
    "demo-ct": CONFIG_DIR / "demo_ct.json",
    "demo-mr": CONFIG_DIR / "demo_mr.json",
    "maisi-ddpm-ct-v1": CONFIG_DIR / "maisi_ddpm_ct_v1.json",
    "maisi-rflow-v2": CONFIG_DIR / "maisi_rflow_v2.json",
    "maisi-rflow-v2-mr": CONFIG_DIR / "maisi_rflow_v2_mr.json",
}
ALIASES = {"demo": "demo-ct", "maisi": "maisi-rflow-v2", "maisi-v1": "maisi-ddpm-ct-v1", "maisi-v2": "maisi-rflow-v2",
           "maisi-mr": "maisi-rflow-v2-mr"}
DEFAULT = "demo-ct"


def available() -> list[str]:
    """Names of the registered backbones."""
    return sorted(_BUILTIN)


def register(name: str, config_path: str | Path) -> None:
    """Add a backbone config under ``name`` (for plug-ins and experiments)."""
    _BUILTIN[name] = Path(config_path)


def get_config(name_or_path: str | Path) -> BackboneConfig:
    """A config by registered name/alias, or from a JSON file path."""
    key = ALIASES.get(str(name_or_path), str(name_or_path))
    if key in _BUILTIN:
        return BackboneConfig.from_file(_BUILTIN[key])
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        return BackboneConfig.from_file(path)
    raise DiffuGTSError(f"unknown backbone {str(name_or_path)!r}",
                        hint=f"Known backbones: {', '.join(available())}; or pass a config .json file.")


def _find(folder: Path, relative: str) -> Path | None:
    for candidate in (folder / relative, folder / Path(relative).name):
        if candidate.is_file():
            return candidate
    return None


def weight_files(config: BackboneConfig, weights: str | Path | None = None) -> tuple[Path, Path]:
    """(autoencoder, unet) weight files: from ``weights`` DIR, the bundled demo, or an installed download."""
    spec = config.weights
    if weights is not None:
        folders, origin = [Path(weights)], f"--weights {weights}"
        if not Path(weights).is_dir():
            raise DiffuGTSError("weights folder not found", path=weights)
    elif spec.get("bundled"):
        folders, origin = [BUNDLED_DIR / spec["bundled"]], "the bundled demo weights"
    elif spec.get("package"):
        from ..weights import installed_dir

        folders, origin = [installed_dir(spec["package"])], f"downloaded package {spec['package']!r}"
    else:
        raise DiffuGTSError(f"backbone {config.name} names no weights", path=config.path)
    found = [next((f for f in (_find(d, spec[key]) for d in folders) if f), None) for key in ("autoencoder", "unet")]
    if None in found:
        missing = [spec[key] for key, f in zip(("autoencoder", "unet"), found) if f is None]
        package = spec.get("package")
        hint = (f"Run 'diffugts weights download {package}' (asks before downloading) or pass --weights DIR "
                "with these files." if package else "Reinstall the extension or retrain with 'diffugts train backbone'.")
        raise DiffuGTSError(f"{config.name} weights missing in {origin}: {', '.join(missing)}", hint=hint)
    return found[0], found[1]


def build_backbone(name_or_path: str | Path = DEFAULT, *, weights: str | Path | None = None,
                   device: str | torch.device = "cpu", random_init: bool = False,
                   trainable: bool = False) -> LatentDiffusionBackbone:
    """Build a backbone; ``random_init`` skips weights (tests and training only)."""
    from .checkpoint import load_into
    from .networks import build_autoencoder, build_unet

    config = get_config(name_or_path)
    device = torch.device(device)
    autoencoder, unet = build_autoencoder(config, device), build_unet(config, device)
    scale_factor = float(config.weights.get("scale_factor", 1.0))
    info: dict[str, str] = {"source": "random initialization"}
    if not random_init:
        ae_path, unet_path = weight_files(config, weights)
        ae_meta = load_into(autoencoder, ae_path, "autoencoder")
        unet_meta = load_into(unet, unet_path, "diffusion UNet")
        for meta in (ae_meta, unet_meta):
            if "scale_factor" in meta:
                scale_factor = float(meta["scale_factor"])
        info = {"source": str(ae_path.parent), "autoencoder": str(ae_path), "unet": str(unet_path)}
    return LatentDiffusionBackbone(config, autoencoder, unet, scale_factor=scale_factor, device=device,
                                   weights_info=info, trainable=trainable)
