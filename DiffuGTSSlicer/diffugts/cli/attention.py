"""``diffugts attention IMAGE --prompt ... --out DIR``: open-vocabulary attention maps on the input's grid."""

from __future__ import annotations

import argparse
import json

from ..errors import DiffuGTSError
from .options import add_image_options, output_folder, torch_device, warn


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "attention", help="write open-vocabulary attention maps for text prompts",
        description="Compute, for each prompt, where the frozen diffusion features look more like the abnormal "
        "description than like the normal anatomy (a map in [0, 1]), and write it on the input's exact grid. "
        "Research software, not for clinical use.")
    add_image_options(parser)
    parser.add_argument("--prompt", action="append", required=True, metavar="TEXT",
                        help='what to look for, e.g. "kidney tumor"; repeat for several prompts')
    parser.add_argument("--heads", metavar="FILE", help="attention heads (.safetensors); default: the bundled ones")
    parser.add_argument("--text-encoder", help="text encoder: 'minilm' or a local model folder "
                        "(default: the one the heads were trained with)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..attention.checkpoint import bundled_heads_path, load_heads
    from ..attention.encode import encode_for_attention
    from ..attention.infer import attention_map
    from ..backbone import build_backbone
    from ..io import atomic_output, read_volume, write_volume
    from ..paths import cache_dir
    from ..progress import for_mode
    from ..text import CachedTextEncoder, build_text_encoder, parse_prompt, relevance
    from ..text.prompts import RELEVANCE_THRESHOLD

    progress = for_mode(args.progress)
    image = read_volume(args.image)
    names = [f"attention_{n}.nii.gz" for n in range(1, len(args.prompt) + 1)] + ["attention.json"]
    out = output_folder(args.out, names)
    modality = args.modality or image.modality
    prompts = [parse_prompt(text, modality) for text in args.prompt]
    heads, _ = load_heads(args.heads or bundled_heads_path())
    text_encoder = CachedTextEncoder(build_text_encoder(args.text_encoder or heads.config.text_encoder),
                                     cache_dir() / "text")
    if text_encoder.dim != heads.config.text_dim:
        raise DiffuGTSError(f"the heads expect {heads.config.text_dim}-dimensional text embeddings, the text encoder "
                            f"gives {text_encoder.dim}", hint=f"Use --text-encoder {heads.config.text_encoder}.")
    backbone = build_backbone(heads.config.backbone, weights=args.weights, device=torch_device(args.device))
    encoded = encode_for_attention(backbone, image, timestep=heads.config.timestep, modality=modality,
                                   progress=progress)
    scores = relevance(text_encoder, prompts)
    report = []
    for number, (prompt, score) in enumerate(zip(prompts, scores), start=1):
        if score < RELEVANCE_THRESHOLD:
            warn(f"prompt {prompt.text!r} does not look like a finding (relevance {score:.2f}); "
                 "its map is not meaningful")
        volume = attention_map(heads, text_encoder, encoded, prompt)
        path = write_volume(volume, out / names[number - 1])
        progress("attention", number / len(prompts))
        report.append({"prompt": prompt.text, "file": path.name, "organ": prompt.organ_name,
                       "relevance": round(score, 3), "max": round(float(volume.array.max()), 4)})
        print(f"{path}  {prompt.text!r}  max {volume.array.max():.3f}")
    with atomic_output(out / "attention.json") as temp:
        temp.write_text(json.dumps({"image": str(args.image), "backbone": backbone.config.name,
                                    "heads": str(args.heads or bundled_heads_path()), "maps": report}, indent=1),
                        encoding="utf-8")
    return 0
