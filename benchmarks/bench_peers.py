"""Peers' network cost per volume on this CPU (random weights), as a markdown table.

    python benchmarks/bench_peers.py [--sizes 128x128x128 256x256x128 512x512x300] [--json OUT]
                                     [--threads 2] [--repeats 2]

A size listed in peers.VOLUMES gets that entry's spacing; any other size is taken as 1.5 mm
isotropic. --repeats 0 times only the first pass of each network (start-up costs included), the
quickest smoke run; every network is still run once at its published input size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from diffugts.io import atomic_output

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import VOLUMES, peer_costs  # noqa: E402

DEFAULT_SPACING = (1.5, 1.5, 1.5)


def parse_size(text: str) -> tuple[int, int, int]:
    """'256x256x128' -> (256, 256, 128)."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"size must look like 256x256x128, got {text!r}")
    return tuple(int(p) for p in parts)


def markdown(results: list[dict]) -> str:
    """One row per volume and peer."""
    lines = ["| volume (spacing mm) | peer | passes | s / pass | est. s / volume | est. h / volume "
             "| peak RSS MB (1 pass) | how |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for entry in results:
        volume = f"{'x'.join(map(str, entry['shape_xyz']))} ({'x'.join(f'{s:g}' for s in entry['spacing_mm'])})"
        for row in entry["peers"]:
            rss = "n/a" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:,.0f}"
            lines.append(f"| {volume} | {row['name']} | {row['passes']:,} | {row['s_per_pass']:.2f} "
                         f"| {row['s_per_volume']:,.0f} | {row['s_per_volume'] / 3600:,.2f} | {rss} | {row['how']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[v[0] for v in VOLUMES.values()])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per network after one warm-up")
    args = parser.parse_args()
    spacings = {shape: spacing for shape, spacing in VOLUMES.values()}
    load_before, results = os.getloadavg()[0], []
    for shape in args.sizes:
        spacing = spacings.get(shape, DEFAULT_SPACING)
        results.append({"shape_xyz": list(shape), "spacing_mm": list(spacing), "threads": args.threads,
                        "peers": peer_costs(shape, spacing, args.threads, args.repeats)})
    load = {"before": load_before, "after": os.getloadavg()[0], "cores": os.cpu_count()}
    print(markdown(results))
    print(f"\n{args.threads} torch threads; 1-minute load average {load['before']:.1f} before, "
          f"{load['after']:.1f} after, on {load['cores']} cores")
    if args.json:
        with atomic_output(args.json) as temp:
            temp.write_text(json.dumps({"load_average": load, "volumes": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
