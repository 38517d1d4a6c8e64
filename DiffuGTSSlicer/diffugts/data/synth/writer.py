"""Write a synthesized-in-real set: per case image, tumor mask and organ mask (.nii.gz on the host's grid), a
manifest.csv (the manifest columns plus organ_mask) and synth.json (settings and what each case drew)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ... import __version__
from ...errors import DiffuGTSError
from ...io import atomic_output, register_input, write_volume
from ...progress import ProgressCallback, silent
from ..categories import CATEGORIES, HEALTHY
from ..corpus import CorpusCase
from ..manifest import ORGAN_MASK_COLUMN, read_manifest_rows, write_manifest
from ..phantom.writer import case_seed
from .hosts import Host, fits, load_host, near, tumor_free_cases
from .lesion import Synthesized, synthesize
from .recipes import RECIPES

CACHED_HOSTS = 4  # loaded hosts (image, organ map, regions found) kept between cases
MANIFEST, SETTINGS = "manifest.csv", "synth.json"


class _Hosts:
    """Hosts loaded on demand, the last few kept (their regions are slow to find)."""

    def __init__(self) -> None:
        self.loaded: OrderedDict[str, Host] = OrderedDict()

    def get(self, case: CorpusCase) -> Host:
        if case.case_id not in self.loaded:
            for path in (case.image, case.organs):
                if path is not None:
                    register_input(path)
            self.loaded[case.case_id] = load_host(case)
            while len(self.loaded) > CACHED_HOSTS:
                self.loaded.popitem(last=False)
        self.loaded.move_to_end(case.case_id)
        return self.loaded[case.case_id]


def write_synth_set(corpus: str | Path, out: str | Path, n: int, categories: Sequence[str], seed: int = 0,
                    split: str = "validation", overwrite: bool = False,
                    progress: ProgressCallback = silent) -> Path:
    """``n`` cases cycling through ``categories`` (HEALTHY: an untouched host), from the corpus's tumor-free
    ``split`` hosts; returns the manifest path. The same seed gives the same cases, voxel for voxel."""
    corpus, out = Path(corpus), Path(out)
    _check_out(corpus, out, overwrite)
    if n < 1 or not categories:
        raise DiffuGTSError("nothing to write: give --n 1 or more and at least one category")
    cases = tumor_free_cases(corpus, split)
    tumors = [c for c in categories if c != HEALTHY]
    for category in tumors:
        if not any(fits(case, category) for case in cases):
            info = CATEGORIES[category]
            raise DiffuGTSError(f"no tumor-free {split} host in the corpus can show a {category} "
                                f"(it needs {info.organ} on {', '.join(info.modalities)})",
                                path=corpus, hint="Add such scans to the corpus, or leave the category out.")
    prompts = tumors or list(RECIPES)
    manifest = out / MANIFEST
    stale = _set_files(read_manifest_rows(manifest)) if manifest.exists() else set()
    manifest.unlink(missing_ok=True)  # without a manifest the folder reads as incomplete until the end
    hosts, rows, facts = _Hosts(), [], []
    # tumor-free cases take the hosts in turn (from a seeded order), so every host is a negative control
    healthy_order = np.random.default_rng(case_seed(seed, n)).permutation(len(cases))
    for index in range(n):
        progress("synthesizing", index / n)
        category = categories[index % len(categories)]
        rng = np.random.default_rng(case_seed(seed, index))
        case_id = f"synth_{index:04d}_{category.replace(' ', '_')}"
        order = (np.roll(healthy_order, -(index // len(categories))) if category == HEALTHY
                 else rng.permutation(len(cases)))
        host, prompt, made = _make_case(rng, cases, hosts, category, prompts, split, order)
        rows.append(_write_case(out, case_id, host, prompt, made, category, seed, index))
        facts.append({"case_id": case_id, "category": category, "prompt": prompt, "host": host.case.case_id,
                      **made.facts})
    settings = {"diffugts": __version__, "corpus": str(corpus), "split": split, "n": n, "seed": seed,
                "categories": list(categories), "cases": facts}
    with atomic_output(out / SETTINGS) as temp:
        temp.write_text(json.dumps(settings, indent=1), encoding="utf-8")
    write_manifest(rows, manifest, organ_masks=True)
    for name in stale - _set_files(rows):
        (out / name).unlink(missing_ok=True)
    progress("synthesizing", 1.0)
    return manifest


def _make_case(rng: np.random.Generator, cases: Sequence[CorpusCase], hosts: _Hosts, category: str,
               prompts: Sequence[str], split: str, order: np.ndarray) -> tuple[Host, str, Synthesized]:
    """The first host, in ``order``, that takes the category; for HEALTHY the host untouched, prompted
    with a category it could show (a negative control)."""
    for number in order:
        case = cases[int(number)]
        wanted = [c for c in (prompts if category == HEALTHY else [category]) if fits(case, c)]
        if not wanted:
            continue
        host = hosts.get(case)
        if category == HEALTHY:
            for prompt in [wanted[int(i)] for i in rng.permutation(len(wanted))]:
                found = host.region(RECIPES[prompt].host)
                if found is not None:
                    return host, prompt, _untouched(host, found[0], found[1])
            continue
        recipe = RECIPES[category]
        found = host.region(recipe.host)
        if found is None:
            continue
        region, how = found
        made = synthesize(rng, host.image, region, case.modality, recipe,
                          near(host, recipe.near, region) if recipe.near else None)
        if made is not None:
            made.facts["organ_from"] = how
            return host, category, made
    raise DiffuGTSError(f"no tumor-free {split} host in the corpus has room for a "
                        f"{'tumor-free case' if category == HEALTHY else category}",
                        hint="Add scans that show the organ, or leave the category out.")


def _untouched(host: Host, region: np.ndarray, how: str) -> Synthesized:
    image = host.image
    empty = np.zeros(image.array.shape, np.uint8)
    return Synthesized(image.like(image.array.copy()), image.like(empty, modality="mask"),
                       image.like(region.astype(np.uint8), modality="mask"), {"organ_from": how, "volume_ml": 0.0})


def _check_out(corpus: Path, out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DiffuGTSError("is a file, not a folder", path=out, hint="Give --out a folder (it is created if needed).")
    if out.resolve() == corpus.resolve():
        raise DiffuGTSError("is the corpus folder itself", path=out, hint="Write the set into another --out folder.")
    if (out / MANIFEST).exists() and not overwrite:
        raise DiffuGTSError("already holds a set (manifest.csv)", path=out,
                            hint="Choose another --out folder, or pass --overwrite to replace it.")


def _set_files(rows: Sequence[dict[str, str]]) -> set[str]:
    """The files a set's manifest rows name; only plain names inside the folder."""
    names = {row.get(column) or "" for row in rows for column in ("image", "mask", ORGAN_MASK_COLUMN)}
    return {name for name in names if name and Path(name).name == name and name not in ("..", ".")}


def _write_case(out: Path, case_id: str, host: Host, prompt: str, made: Synthesized, category: str, seed: int,
                index: int) -> dict[str, str]:
    image, mask, organ = f"{case_id}.nii.gz", f"{case_id}_mask.nii.gz", f"{case_id}_organ.nii.gz"
    write_volume(made.image, out / image)
    write_volume(made.mask, out / mask)
    write_volume(made.organ, out / organ)
    volume, case = made.image, host.case
    healthy = category == HEALTHY
    voxels = int(made.mask.array.sum())
    notes = ([f"tumor-free host, prompted for a {prompt} it does not show (negative control)"] if healthy else
             [f"synthetic {prompt} ({made.facts['diameter_mm']} mm) in a real scan",
              "compartments " + ", ".join(f"{k} {v:g}" for k, v in made.facts["compartments"].items()),
              f"host organ {made.facts['host_organ_value']:g} (noise SD {made.facts['host_noise_sd']:g})"])
    notes += [f"organ mask {organ} ({CATEGORIES[prompt].organ}: {made.facts['organ_from']})",
              f"mask {voxels} voxels = {voxels * volume.voxel_volume_ml:.2f} mL"]
    return {
        "case_id": case_id, "image": image, "mask": mask, "modality": case.modality, "body_region": case.body_region,
        "tumor_prompt": prompt,
        "mask_labels": "1=tumor (none present: tumor-free host, negative control)" if healthy else f"1={prompt}",
        "size_xyz": "x".join(str(v) for v in volume.size), "spacing_xyz": "x".join(f"{s:g}" for s in volume.spacing),
        "source": f"diffugts {__version__} synth (set seed {seed}, case {index}) into corpus case {case.case_id} "
                  f"({case.source_dataset})",
        "licence": case.licence, "notes": "; ".join(notes), ORGAN_MASK_COLUMN: organ,
    }
