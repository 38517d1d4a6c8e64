"""Stand-in for the planned `diffugts segment` (run as a script): writes what its contract says, with the
engine's own readers, writers, terminology table and progress lines, so the module's success path is tested
before the real Segmenter exists. Each prompt's mask is a box in the image centre, its attention a ramp."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from diffugts.io import Segment, read_volume, write_segmentation, write_volume
from diffugts.progress import for_mode
from diffugts.terminology import describe_all


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("--prompt", action="append", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device"), parser.add_argument("--quality"), parser.add_argument("--seed")
    parser.add_argument("--modality")
    args = parser.parse_args(argv[argv.index("segment") + 1:])
    report = for_mode("json")
    volume = read_volume(args.image)
    out = Path(args.out)
    out.mkdir(parents=True)
    k, j, i = volume.array.shape
    masks = []
    for number, _ in enumerate(args.prompt, start=1):
        mask = np.zeros(volume.array.shape, bool)
        mask[k // 4: k // 4 + number, j // 4: 3 * j // 4, i // 4: 3 * i // 4] = True
        masks.append(mask)
        write_volume(volume.like(np.linspace(0, 1, mask.size, dtype=np.float32).reshape(mask.shape)),
                     out / f"attention_{number}.nii.gz")
        report("refine", number / len(args.prompt))
    segments = [Segment(d.name, m, d.color, d.terminology) for d, m in zip(describe_all(args.prompt), masks)]
    write_segmentation(out / "segmentation.seg.nrrd", volume, segments)
    (out / "report.json").write_text(json.dumps({"prompts": [{"prompt": p, "presence": 0.5} for p in args.prompt]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
