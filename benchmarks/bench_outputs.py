"""Output files: bytes and seconds of each map at each gzip level, 8-bit against float32, to choose the levels.

    python benchmarks/bench_outputs.py [--size 256x256x128] [--levels 1 3 6 9] [--threads 2] [--json OUT]

The kidney-tumor CT phantom of bench_segment (int16) is segmented once with "liver tumor", Fast, with the
shipped demo models; each map of the result is then written at each level: probability, attention and
uncertainty as 8-bit NIfTI with a header scale (io.compact.write_unit_map) and, for comparison, as float32;
the pseudo-healthy scan in the input's pixel type; the label map and the .seg.nrrd (masks). Seconds are the
median of three writes (one thread; the machine's load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _written(write, path: Path) -> tuple[int, float]:
    """Bytes of the file ``write(path)`` makes, and the median seconds of three writes."""
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        write(path)
        seconds.append(time.perf_counter() - start)
    return path.stat().st_size, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256x256x128")
    parser.add_argument("--levels", nargs="+", type=int, default=[1, 3, 6, 9])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from bench_segment import write_input

    from diffugts.io import Segment, read_volume, write_segmentation
    from diffugts.io.compact import write_compressed, write_unit_map
    from diffugts.segment import PRESETS, Segmenter
    from diffugts.segment.write import label_map, pseudo_healthy_pixels

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_outputs_") as temp:
        folder = Path(temp)
        image = read_volume(write_input(args.size, folder)[0])
        result = Segmenter.from_pretrained("demo-ct", device="cpu")(image, ["liver tumor"], settings=PRESETS["fast"])
        finding = result.findings[0]
        maps = {"probability": finding.probability, "attention": finding.attention, "uncertainty": result.uncertainty}
        labels = image.like(label_map(result), modality="labels")
        pseudo = pseudo_healthy_pixels(result, image)
        load = os.getloadavg()[0]
        for level in args.levels:
            for name, volume in maps.items():
                for kind, write in (("8-bit", lambda p, v=volume: write_unit_map(v, p, level)),
                                    ("float32", lambda p, v=volume: write_compressed(v, p, level))):
                    size, seconds = _written(write, folder / f"{name}_{kind}_{level}.nii.gz")
                    rows.append({"file": name, "stored": kind, "level": level, "mb": size / 1e6, "s": seconds})
            size, seconds = _written(lambda p: write_compressed(pseudo, p, level), folder / f"pseudo_{level}.nii.gz")
            rows.append({"file": "pseudo_healthy", "stored": str(pseudo.array.dtype), "level": level,
                         "mb": size / 1e6, "s": seconds})
            size, seconds = _written(lambda p: write_compressed(labels, p, level), folder / f"labels_{level}.nii.gz")
            rows.append({"file": "labels", "stored": "uint8", "level": level, "mb": size / 1e6, "s": seconds})
            segment = [Segment("liver tumor", finding.mask.array, (1.0, 0.0, 0.0))]
            size, seconds = _written(lambda p: write_segmentation(p, image, segment, level),
                                     folder / f"seg_{level}.seg.nrrd")
            rows.append({"file": "segmentation", "stored": "uint8 (.seg.nrrd)", "level": level, "mb": size / 1e6,
                         "s": seconds})
    print(f"{args.size}, load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print("| file | stored as | " + " | ".join(f"level {n}: MB, s" for n in args.levels) + " |")
    print("| --- | --- |" + " ---: |" * len(args.levels))
    for file, stored in dict.fromkeys((r["file"], r["stored"]) for r in rows):
        cells = [f"{r['mb']:.2f}, {r['s']:.2f}" for r in rows if (r["file"], r["stored"]) == (file, stored)]
        print(f"| {file} | {stored} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"size": args.size, "load": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
