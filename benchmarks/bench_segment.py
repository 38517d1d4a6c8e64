"""End to end: `diffugts segment`'s pipeline (the Segmenter) with the shipped demo models on CPU, against the peers.

    python benchmarks/bench_segment.py [--sizes 128x128x128 256x256x128 512x512x300] [--presets fast best]
                                       [--threads 2] [--peer-repeats 2] [--no-peers] [--budget-gb 4]
                                       [--refine FILE] [--json OUT]

Per volume of peers.VOLUMES: a kidney-tumor CT phantom (diffugts.data.phantom, its random scanner grid
pinned to the volume's size and spacing, axial) written once to a temporary .nii.gz. Each (volume,
preset) then runs in a fresh process (this script with --one), so its peak RSS is its own: load the
models, read the NIfTI, segment with one prompt, write every output with write_result; for Fast, then
a second prompt on the same volume with the same Segmenter. Peak RSS comes from /proc/self/status
(VmHWM, reset with /proc/self/clear_refs between phases); network passes are counted by wrapping the
backbone's encode/decode/predict/features/encoder_features and hooking the heads' and refinement
head's forward. The memory estimate (diffugts.segment.memory.segmentation_bytes) is printed against the
measured growth. The largest volume is then run through `diffugts segment` under a small memory
budget (DIFFUGTS_MEMORY_BUDGET_GB) to show the refusal message, and the peers' network costs
(peers.peer_costs) are measured in the same run for the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from unittest import mock

from diffugts.io import atomic_output

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import VOLUMES, peer_costs  # noqa: E402

PROMPT = "kidney tumor"
SECOND_PROMPT = "liver tumor"
STAGES = ("encode", "attention", "inpaint", "decode", "refine", "restore", "postprocess")
PASSES = ("vae_encode_patches", "vae_decode_patches", "vae_encoder_feature_passes", "unet_passes",
          "unet_feature_passes", "attention_head_passes", "refine_patches")
# the bars (issue 7, item 5): (volume, preset) -> seconds end to end
BARS_S = {("256x256x128", "fast"): 60.0, ("256x256x128", "best"): 300.0}
SECOND_PROMPT_BAR_S, SECOND_PROMPT_VOLUME = 2.0, "256x256x128"
RSS_BAR_MB, RSS_BAR_VOLUME = 12 * 1024, "512x512x300"
CHILD_TIMEOUT_S = 1500
REFUSAL_TIMEOUT_S = 300  # a refusal comes before any network runs; running on past this is a failure
_STATUS = Path("/proc/self/status")


# -- measured inside one fresh process (--one) --------------------------------------------------------------
def _status_mb(key: str) -> float:
    """A /proc/self/status field (VmRSS, VmHWM) in MB."""
    return int(re.search(rf"{key}:\s+(\d+) kB", _STATUS.read_text()).group(1)) / 1024.0


def _reset_peak() -> float:
    """Reset the kernel's peak-RSS mark to the current RSS; return the current RSS in MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


class PassCounter:
    """Network passes from now on (the backbone's methods wrapped, the heads' forward hooked) and the
    model-grid size (the input of the whole-image VAE encoder feature pass)."""

    def __init__(self, segmenter) -> None:
        self.counts: Counter = Counter()
        self.model_grid: list[int] = []
        backbone = segmenter.backbone
        for method, label in (("encode", "vae_encode_patches"), ("decode", "vae_decode_patches"),
                              ("encoder_features", "vae_encoder_feature_passes"), ("predict", "unet_passes"),
                              ("features", "unet_feature_passes")):
            setattr(backbone, method, self._wrap(getattr(backbone, method), label))
        for module, label in ((segmenter.heads, "attention_head_passes"), (segmenter.refine, "refine_patches")):
            module.register_forward_hook(lambda _m, _inputs, output, label=label: self._add(label, output))

    def _add(self, label: str, x) -> None:
        self.counts[label] += int(x.shape[0])  # a batch of n patches is n passes
        if label == "vae_encoder_feature_passes":
            self.model_grid = [int(s) for s in x.shape[2:]]

    def _wrap(self, call, label: str):
        def counted(x, *args, **kwargs):
            self._add(label, x)
            return call(x, *args, **kwargs)
        return counted

    def snapshot(self) -> dict[str, int]:
        """Passes so far, by kind."""
        return {k: self.counts[k] for k in PASSES}


def _timed(fn):
    """``fn()`` and the seconds it took."""
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def run_one(image_path: Path, preset: str, threads: int, refine: str | None, keep_freed: bool = False) -> dict:
    """One configuration in this (fresh) process: load, read, segment, write; for Fast a second prompt.
    ``keep_freed``: the process keeps what it frees, as the server does (diffugts.allocator)."""
    from diffugts.allocator import keep_freed_memory

    kept = keep_freed_memory() if keep_freed else False
    import torch

    torch.set_num_threads(threads)
    from diffugts.io import read_volume
    from diffugts.segment import PRESETS, Segmenter
    from diffugts.segment.memory import segmentation_bytes
    from diffugts.segment.write import write_result

    settings = PRESETS[preset]
    start_mb = _status_mb("VmRSS")
    segmenter, load_s = _timed(lambda: Segmenter.from_pretrained("demo-ct", refine=refine, device="cpu"))
    counter = PassCounter(segmenter)
    load_peak_mb = _status_mb("VmHWM")
    base_mb = _reset_peak()
    image, read_s = _timed(lambda: read_volume(image_path))
    result, segment_s = _timed(lambda: segmenter(image, [PROMPT], settings=settings))
    segment_peak_mb = _status_mb("VmHWM")
    _reset_peak()
    with tempfile.TemporaryDirectory(prefix="bench_segment_out_") as out:
        written, write_s = _timed(lambda: write_result(result, image, out, image_path=image_path))
    write_peak_mb = _status_mb("VmHWM")
    estimate = segmentation_bytes(image, segmenter.backbone.config, prompts=1, seeds=len(settings.seeds))
    row = {
        "preset": preset, "seeds": len(settings.seeds), "steps": settings.steps, "threads": threads, "keeps_freed_memory": kept,
        "input_size": list(image.size), "input_spacing_mm": list(image.spacing),
        "model_grid": counter.model_grid,
        "load_s": load_s, "read_s": read_s, "segment_s": segment_s, "write_s": write_s,
        "end_to_end_s": load_s + read_s + segment_s + write_s, "outputs": len(written),
        "timings": dict(result.timings), "passes": counter.snapshot(),
        "rss_mb": {"start": start_mb, "after_load": base_mb, "load_peak": load_peak_mb,
                   "segment_peak": segment_peak_mb, "write_peak": write_peak_mb,
                   "process_peak": max(load_peak_mb, segment_peak_mb, write_peak_mb),
                   "growth": max(segment_peak_mb, write_peak_mb) - base_mb},
        "estimate_mb": estimate / 2**20, "cache": dict(result.cache), "models": dict(result.models),
        "mask_ml": result.findings[0].volume_ml, "presence": result.findings[0].presence,
    }
    if preset == "fast":
        row["second_prompt"] = second_prompt(segmenter, image, counter, settings)
    return row


def second_prompt(segmenter, image, counter: PassCounter, settings) -> dict:
    """A new prompt on the volume just segmented: seconds, cache counters and passes it needed."""
    before_cache, before_passes = segmenter.cache_counters, counter.snapshot()
    result, seconds = _timed(lambda: segmenter(image, [SECOND_PROMPT], settings=settings))
    after_cache = segmenter.cache_counters
    return {"prompt": SECOND_PROMPT, "segment_s": seconds, "timings": dict(result.timings),
            "cache_delta": {k: after_cache[k] - before_cache[k] for k in after_cache},
            "passes": {k: v - before_passes[k] for k, v in counter.snapshot().items()}}


# -- the run: inputs, one process per configuration, the budget refusal, the peers ---------------------------
def phantom_ct(shape_xyz: tuple[int, int, int], spacing_mm: tuple[float, float, float]):
    """A kidney-tumor CT phantom (int16 HU) on an axial grid of this size and spacing, centred on the tumor."""
    import numpy as np

    from diffugts.data import phantom
    from diffugts.data.phantom.grid import PhantomGrid

    def pinned_grid(_rng, size, center, _fov_range_mm) -> PhantomGrid:
        extent = np.asarray(spacing_mm) * (np.asarray(size) - 1)
        return PhantomGrid(tuple(int(n) for n in size[::-1]), tuple(spacing_mm), np.asarray(center) - extent / 2,
                           np.eye(3))

    with mock.patch.object(phantom, "random_grid", pinned_grid):
        return phantom.make_phantom(PROMPT, "CT", size=shape_xyz, seed=0).image


def write_input(name: str, folder: Path) -> tuple[Path, float]:
    """The volume's phantom as .nii.gz in ``folder``; seconds it took to make (not part of any timing)."""
    from diffugts.io import write_volume

    shape, spacing = VOLUMES[name]
    volume, seconds = _timed(lambda: phantom_ct(shape, spacing))
    return write_volume(volume, folder / f"ct_{name}.nii.gz"), seconds


def run_child(args: list[str], env: dict | None = None,
              timeout: float = CHILD_TIMEOUT_S) -> subprocess.CompletedProcess:
    """This Python on ``args``, output captured, with ``env`` added to the environment."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def measure(image: Path, preset: str, threads: int, refine: str | None, keep_freed: bool = False) -> dict:
    """One configuration in a fresh process; its JSON row."""
    command = [__file__, "--one", str(image), preset, "--threads", str(threads)]
    command += (["--refine", refine] if refine else []) + (["--keep-freed-memory"] if keep_freed else [])
    done = run_child(command)
    if done.returncode != 0:
        raise RuntimeError(f"{preset} on {image.name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def budget_refusal(image: Path, budget_gb: float, refine: str | None) -> dict:
    """`diffugts segment` (Best) under a small memory budget: exit status, seconds and its error line (a
    run that does not stop within REFUSAL_TIMEOUT_S raises subprocess.TimeoutExpired)."""
    with tempfile.TemporaryDirectory(prefix="bench_segment_budget_") as out:
        command = ["-m", "diffugts", "segment", str(image), "--prompt", PROMPT, "--quality", "best",
                   "--threads", "2", "--out", str(Path(out) / "result"), *(["--refine", refine] if refine else [])]
        done, seconds = _timed(lambda: run_child(command, {"DIFFUGTS_MEMORY_BUDGET_GB": str(budget_gb)},
                                                 timeout=REFUSAL_TIMEOUT_S))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return {"budget_gb": budget_gb, "exit": done.returncode, "seconds": seconds, "stderr_lines": len(lines),
            "message": lines[-1] if lines else ""}


def machine() -> dict:
    """CPU, cores, memory and versions, for the report."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_gb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 2**20
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory_gb, 1), "python": platform.python_version(),
            "torch": torch.__version__}


def ratios(peers: list[dict], ours: dict[str, dict]) -> list[dict]:
    """Peer seconds (estimated) over ours (measured end to end) per preset, and passes of each."""
    rows = []
    for peer in peers:
        row = {"peer": peer["name"], "passes": peer["passes"], "s_per_volume": peer["s_per_volume"]}
        for preset, measured in ours.items():
            row[f"ratio_{preset}"] = peer["s_per_volume"] / measured["end_to_end_s"]
        rows.append(row)
    return rows


def bars(results: dict[str, dict]) -> list[dict]:
    """The issue's bars and the memory estimate's calibration, each pass or fail."""
    checks = []
    for (name, preset), limit in BARS_S.items():
        row = results.get(name, {}).get("ours", {}).get(preset)
        if row:
            checks.append({"bar": f"{name} {preset.capitalize()} end to end <= {limit:g} s",
                           "measured": f"{row['end_to_end_s']:.1f} s", "pass": row["end_to_end_s"] <= limit})
    fast = results.get(SECOND_PROMPT_VOLUME, {}).get("ours", {}).get("fast")
    if fast:
        seconds = fast["second_prompt"]["segment_s"]
        checks.append({"bar": f"{SECOND_PROMPT_VOLUME} second prompt <= {SECOND_PROMPT_BAR_S:g} s",
                       "measured": f"{seconds:.2f} s", "pass": seconds <= SECOND_PROMPT_BAR_S})
    for preset, row in results.get(RSS_BAR_VOLUME, {}).get("ours", {}).items():
        peak = row["rss_mb"]["process_peak"]
        checks.append({"bar": f"{RSS_BAR_VOLUME} {preset.capitalize()} completes with peak RSS < 12 GB",
                       "measured": f"{peak:,.0f} MB", "pass": peak < RSS_BAR_MB})
    for name, entry in results.items():
        for preset, row in entry.get("ours", {}).items():
            ratio = row["estimate_mb"] / row["rss_mb"]["growth"]
            checks.append({"bar": f"memory estimate {name} {preset.capitalize()}: >= measured growth, within 1.5x",
                           "measured": f"{ratio:.2f}x", "pass": 1.0 <= ratio <= 1.5})
        refusal = entry.get("budget_refusal")
        if refusal:
            clear = refusal["exit"] == 2 and refusal["stderr_lines"] == 1 and "--roi" in refusal["message"]
            checks.append({"bar": f"{name} under a {refusal['budget_gb']:g} GB budget: one-line refusal, not killed",
                           "measured": f"exit {refusal['exit']} after {refusal['seconds']:.1f} s", "pass": clear})
    return checks


def _volume(name: str) -> str:
    return f"{name} ({'x'.join(f'{s:g}' for s in VOLUMES[name][1])})"


def markdown(results: dict[str, dict], checks: list[dict]) -> str:
    """The README's tables."""
    totals = ["| volume (spacing mm) | model grid | preset | load s | read s | segment s | write s | end to end s "
              "| peak RSS MB | growth MB | estimate MB | estimate / growth |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    stages = ["| volume | preset | " + " | ".join(STAGES) + " |", "| --- | --- |" + " ---: |" * len(STAGES)]
    passes = ["| volume | preset | VAE encode patches | VAE encoder feature passes | VAE decode patches "
              "| UNet passes (of which features) | attention head passes | refine patches |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    second = ["| volume | first prompt s (Fast, segment) | second prompt s | its passes: VAE encode / decode / UNet "
              "/ refine | cache: volume hits / misses | samples hits / misses |",
              "| --- | ---: | ---: | --- | --- | --- |"]
    peers = ["| volume | peer | passes | est. s / volume | peer / ours Fast | peer / ours Best |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for name, entry in results.items():
        for preset, r in entry.get("ours", {}).items():
            rss, p = r["rss_mb"], r["passes"]
            totals.append(f"| {_volume(name)} | {'x'.join(map(str, r['model_grid']))} | {preset} | {r['load_s']:.1f} "
                          f"| {r['read_s']:.1f} | {r['segment_s']:.1f} | {r['write_s']:.1f} | {r['end_to_end_s']:.1f} "
                          f"| {rss['process_peak']:,.0f} | {rss['growth']:,.0f} | {r['estimate_mb']:,.0f} "
                          f"| {r['estimate_mb'] / rss['growth']:.2f} |")
            stages.append(f"| {name} | {preset} | " + " | ".join(f"{r['timings'].get(s, 0.0):.1f}" for s in STAGES)
                          + " |")
            passes.append(f"| {name} | {preset} | {p['vae_encode_patches']} | {p['vae_encoder_feature_passes']} "
                          f"| {p['vae_decode_patches']} | {p['unet_passes']} ({p['unet_feature_passes']}) "
                          f"| {p['attention_head_passes']} | {p['refine_patches']} |")
            if "second_prompt" in r:
                s2, c = r["second_prompt"], r["second_prompt"]["cache_delta"]
                q = s2["passes"]
                second.append(f"| {name} | {r['segment_s']:.1f} | {s2['segment_s']:.2f} "
                              f"| {q['vae_encode_patches']} / {q['vae_decode_patches']} / {q['unet_passes']} "
                              f"/ {q['refine_patches']} | {c['volume_hits']} / {c['volume_misses']} "
                              f"| {c['sample_hits']} / {c['sample_misses']} |")
        for row in entry.get("peer_ratios", []):
            cells = " | ".join(f"{row[f'ratio_{p}']:,.1f}" if f"ratio_{p}" in row else "n/a" for p in ("fast", "best"))
            peers.append(f"| {name} | {row['peer']} | {row['passes']:,} | {row['s_per_volume']:,.0f} | {cells} |")
    lines = ["\n".join(totals), "\n".join(stages), "\n".join(passes), "\n".join(second)]
    if len(peers) > 2:
        lines.append("\n".join(peers))
    lines.append("\n".join(f"- {'PASS' if c['pass'] else 'FAIL'}: {c['bar']} (measured {c['measured']})"
                           for c in checks))
    refusals = [e["budget_refusal"] for e in results.values() if "budget_refusal" in e]
    lines += [f"Under DIFFUGTS_MEMORY_BUDGET_GB={r['budget_gb']:g}: `{r['message']}`" for r in refusals]
    return "\n\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=tuple(VOLUMES), default=list(VOLUMES))
    parser.add_argument("--presets", nargs="+", choices=("fast", "balanced", "best"), default=["fast", "best"])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--peer-repeats", type=int, default=2, help="timed passes per peer network after a warm-up")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers' networks")
    parser.add_argument("--budget-gb", type=float, default=4.0,
                        help="memory budget for the refusal check on the largest volume (0: skip it)")
    parser.add_argument("--refine", help="refinement head file (default: the bundled one)")
    parser.add_argument("--json", type=Path, help="write everything as JSON here")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="each measured process keeps what it frees, as `diffugts serve` does")
    parser.add_argument("--one", nargs=2, metavar=("IMAGE", "PRESET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one[0]), args.one[1], args.threads, args.refine, args.keep_freed_memory)))
        return 0

    load = {"start": os.getloadavg()}
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; torch {info['torch']}, {args.threads} "
          f"threads; load average {'/'.join(f'{x:.2f}' for x in load['start'])} (1/5/15 min)", flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_segment_in_") as folder:
        for name in args.sizes:
            image, made_s = write_input(name, Path(folder))
            entry = results.setdefault(name, {"shape_xyz": list(VOLUMES[name][0]),
                                              "spacing_mm": list(VOLUMES[name][1]), "phantom_s": made_s, "ours": {}})
            for preset in args.presets:
                before = os.getloadavg()[0]
                row = measure(image, preset, args.threads, args.refine, args.keep_freed_memory)
                row["load_average_1min"] = [before, os.getloadavg()[0]]
                entry["ours"][preset] = row
                print(f"{name} {preset}: {row['end_to_end_s']:.1f} s end to end, peak RSS "
                      f"{row['rss_mb']['process_peak']:,.0f} MB, estimate {row['estimate_mb']:,.0f} MB for "
                      f"{row['rss_mb']['growth']:,.0f} MB growth (load {before:.1f})", flush=True)
            if args.budget_gb > 0 and name == RSS_BAR_VOLUME:
                entry["budget_refusal"] = budget_refusal(image, args.budget_gb, args.refine)
                print(f"budget {args.budget_gb:g} GB: {entry['budget_refusal']['message']}", flush=True)
    if not args.no_peers:
        for name in args.sizes:
            shape, spacing = VOLUMES[name]
            results[name]["peers"] = peer_costs(shape, spacing, threads=args.threads, repeats=args.peer_repeats)
            results[name]["peer_ratios"] = ratios(results[name]["peers"], results[name]["ours"])
    load["end"] = os.getloadavg()
    checks = bars(results)
    print("\n" + markdown(results, checks))
    print(f"\nload average {'/'.join(f'{x:.2f}' for x in load['end'])} (1/5/15 min) at the end")
    if args.json:
        with atomic_output(args.json) as temp:
            temp.write_text(json.dumps({"machine": info, "load_average": load, "threads": args.threads,
                                        "prompt": PROMPT, "second_prompt": SECOND_PROMPT, "volumes": results,
                                        "bars": checks}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
