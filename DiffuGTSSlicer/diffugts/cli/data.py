"""``diffugts data ...``: write phantom sets, list and check datasets, build the training corpus,
synthesize tumors into its scans, show the zero-shot splits."""

from __future__ import annotations

import argparse
import json

from ..errors import DiffuGTSError
from ..progress import for_mode


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..data.categories import CATEGORIES, HEALTHY, MR_SEQUENCES, PHANTOM_CATEGORIES

    data = subparsers.add_parser("data", help="phantoms, public datasets and zero-shot splits",
                                 description="Synthetic phantoms, public dataset layouts and zero-shot splits.")
    commands = data.add_subparsers(dest="data_command", metavar="ACTION")
    data.set_defaults(func=lambda args: data.print_help() or 2)

    phantom = commands.add_parser(
        "phantom", help="write synthetic CT/MR tumor phantoms and a manifest.csv",
        description="Write N phantoms (image, tumor mask, organ labels as .nii.gz) and a manifest.csv in the "
                    f"schema of the real data. Categories: {', '.join(PHANTOM_CATEGORIES)}.")
    phantom.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    phantom.add_argument("--n", type=int, default=8, help="number of cases (default 8)")
    phantom.add_argument("--categories", nargs="+", metavar="NAME", default=None,
                         help="tumor categories to cycle through, quoted or comma-separated "
                              "(default: all, and healthy)")
    phantom.add_argument("--modality", nargs="+", choices=("CT", "MR", *MR_SEQUENCES), default=None,
                         help="modalities to draw from (MR means any MR sequence; default: any the category has)")
    phantom.add_argument("--size", type=int, nargs="+", default=[128], metavar="N",
                         help="voxels per axis: one number, or three (i j k); default 128")
    phantom.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same set")
    phantom.add_argument("--overwrite", action="store_true", help="replace a phantom set already in DIR")
    phantom.set_defaults(func=run_phantom)

    cases = commands.add_parser(
        "cases", help="list and check the cases of a dataset (manifest.csv, MSD task, KiTS23, BraTS)",
        description="List the cases a dataset folder or manifest holds, checking that files exist and that "
                    "labels lie on their image's grid.")
    cases.add_argument("path", help="manifest.csv, MSD task folder, KiTS23 download or BraTS folder")
    cases.add_argument("--layout", choices=("manifest", "msd", "kits23", "brats"), default=None,
                       help="dataset layout (default: detected)")
    cases.add_argument("--verify", action="store_true",
                       help="also read every volume: label values and intensities (slow for big datasets)")
    cases.add_argument("--json", action="store_true", help="print one JSON object per case")
    cases.set_defaults(func=run_cases)

    corpus = commands.add_parser(
        "corpus", help="gather real scans into a RAS training corpus split by patient",
        description="Gather real scans from manifests (.csv), MSD task, KiTS23 or BraTS folders and plain image "
                    "folders: reorient to RAS, record source, licence, modality and tumor status, drop exact "
                    "duplicates, leave out the bundled demo case, split patients into train and validation. "
                    "Writes DIR/corpus.csv, DIR/excluded.csv, DIR/corpus.json and DIR/images, masks, organs.")
    corpus.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="manifest .csv, MSD task, KiTS23 or BraTS folder, or a folder of images")
    corpus.add_argument("--out", required=True, metavar="DIR",
                        help="corpus folder: new, empty, or an earlier corpus (unchanged files are reused)")
    corpus.add_argument("--licence", choices=("permissive", "any"), default="permissive",
                        help="permissive (default): only cases whose licence allows shipping weights under "
                             "Apache-2.0 (CC0, CC BY, public domain, BSD, MIT, Apache); any: keep every case "
                             "(evaluation corpora), its class still recorded")
    corpus.add_argument("--licence-of", action="append", default=[], metavar="FOLDER=TEXT",
                        help="licence of every image in a plain image folder given as SOURCE (repeatable); "
                             "without it such images count as licence unknown")
    corpus.add_argument("--validation-fraction", type=float, default=0.25, metavar="F",
                        help="share of patients per modality family (CT, MR) in validation (default 0.25; at "
                             "least one patient once a family has two)")
    corpus.add_argument("--seed", type=int, default=0, help="salt of the patient ranking: another seed, another split")
    corpus.add_argument("--validation-patient", action="append", default=[], metavar="ID", dest="validation_patients",
                        help="put this patient in validation whatever its rank (repeatable); counts towards the "
                             "validation share of its family")
    corpus.set_defaults(func=run_corpus)

    synth = commands.add_parser(
        "synth", help="synthesize tumors into a corpus's tumor-free scans: image, mask, organ mask, manifest.csv",
        description="Write N cases cycling through the categories: a tumor-free scan of the corpus's split with "
                    "one synthesized lesion (placed in its organ, shaped, textured to the scan's noise, intensity "
                    "relative to the organ, mass effect, partial-volume edges), its mask and organ mask on the "
                    "scan's exact grid, and a manifest.csv (with an organ_mask column) that 'diffugts evaluate' "
                    "reads. 'healthy' writes the scan untouched, prompted for a tumor it does not show. "
                    f"Categories: {', '.join((*CATEGORIES, HEALTHY))}. The same seed gives the same cases.")
    synth.add_argument("corpus", metavar="CORPUS", help="corpus folder written by 'diffugts data corpus'")
    synth.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    synth.add_argument("--categories", nargs="+", metavar="NAME", default=None,
                       help="categories to cycle through, quoted or comma-separated (default: all, and healthy)")
    synth.add_argument("--n", type=int, default=14, help="number of cases (default 14)")
    synth.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same cases")
    synth.add_argument("--split", choices=("validation", "train"), default="validation",
                       help="which of the corpus's splits the host scans come from (default validation)")
    synth.add_argument("--overwrite", action="store_true", help="replace a set already in DIR")
    synth.set_defaults(func=run_synth)

    splits = commands.add_parser("splits", help="show the zero-shot splits (seen and unseen categories)")
    splits.add_argument("--json", action="store_true", help="print the splits as JSON")
    splits.set_defaults(func=run_splits)


def _category_names(values: list[str] | None, known: tuple[str, ...] | None = None) -> list[str]:
    """The categories named (quoted or comma-separated; "healthy" too), each one of ``known`` (default: those
    phantoms show, and healthy); all of ``known`` when none is named."""
    from ..data.categories import HEALTHY, PHANTOM_CATEGORIES, find_category

    known = known or PHANTOM_CATEGORIES
    if not values:
        return list(known)
    names = []
    for value in (part.strip() for item in values for part in item.split(",")):
        category = find_category(value.replace("_", " "))
        name = category.name if category else HEALTHY if value.lower() == HEALTHY else None
        if name not in known:
            raise DiffuGTSError(f"unknown tumor category {value!r}",
                                hint=f"Choose from: {', '.join(known)} (quote names with spaces).")
        names.append(name)
    return names


def run_phantom(args: argparse.Namespace) -> int:
    from ..data.phantom.writer import write_phantom_set

    if len(args.size) not in (1, 3):
        raise DiffuGTSError(f"--size takes one or three numbers, got {len(args.size)}")
    manifest = write_phantom_set(args.out, args.n, _category_names(args.categories), args.modality,
                                 args.size[0] if len(args.size) == 1 else args.size, args.seed, args.overwrite,
                                 for_mode(args.progress))
    print(f"wrote {args.n} phantoms and {manifest}")
    return 0


def run_cases(args: argparse.Namespace) -> int:
    from ..data.readers import read_dataset
    from .options import warn

    cases = read_dataset(args.path, args.layout)
    progress = for_mode(args.progress)
    failures = 0
    for number, case in enumerate(cases):
        progress("checking cases", number / len(cases))
        try:
            if args.verify:
                case.load()
            else:
                case.check_geometry()
            status = "ok"
        except DiffuGTSError as error:
            warn(str(error))
            failures += 1
            status = "error"
        facts = {"case_id": case.case_id, "dataset": case.dataset, "prompt": case.prompt, "category": case.category,
                 "modality": case.modality, "organ": case.organ,
                 "images": {name: str(ref.path) for name, ref in case.images.items()},
                 "mask": str(case.mask) if case.mask else None, "tumor_labels": list(case.tumor_labels),
                 "status": status}
        print(json.dumps(facts) if args.json else
              f"{status:5s} {case.case_id:28s} {case.modality:9s} {case.prompt:22s} {case.image.path.name}")
    progress("checking cases", 1.0)
    if failures:
        raise DiffuGTSError(f"{failures} of {len(cases)} cases have problems (see above)", path=args.path)
    return 0


def run_corpus(args: argparse.Namespace) -> int:
    from ..data.corpus import build_corpus

    licence_of = {}
    for item in args.licence_of:
        folder, separator, text = item.partition("=")
        if not separator or not folder.strip() or not text.strip():
            raise DiffuGTSError(f"--licence-of {item!r} is not FOLDER=TEXT",
                                hint="For example --licence-of scans/=\"CC BY 4.0\".")
        licence_of[folder.strip()] = text.strip()
    result = build_corpus(args.out, args.sources, licence=args.licence, validation_fraction=args.validation_fraction,
                          seed=args.seed, licence_of=licence_of, validation_patients=args.validation_patients,
                          progress=for_mode(args.progress))
    if result.excluded:
        print(f"left out {len(result.excluded)} image(s) (also in {args.out}/excluded.csv):")
        for exclusion in result.excluded:
            print(f"  {exclusion.case_id}: {exclusion.reason}")
    counts = result.summary["counts"]
    for split in ("train", "validation"):
        by_modality = counts["images_by_split_and_modality"][split]
        listed = ", ".join(f"{modality} {n}" for modality, n in by_modality.items()) or "none"
        print(f"{split}: {counts['patients_by_split'][split]} patient(s), images: {listed}")
    print(f"wrote {counts['images']} image(s) of {counts['patients']} patient(s) to {args.out}/corpus.csv")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from ..data.categories import CATEGORIES, HEALTHY
    from ..data.synth import write_synth_set

    categories = _category_names(args.categories, (*CATEGORIES, HEALTHY))
    manifest = write_synth_set(args.corpus, args.out, args.n, categories, args.seed, args.split, args.overwrite,
                               for_mode(args.progress))
    print(f"wrote {args.n} cases and {manifest}")
    return 0


def run_splits(args: argparse.Namespace) -> int:
    from ..data.splits import load_splits

    splits = load_splits()
    if args.json:
        print(json.dumps({name: {"seen": list(s.seen), "unseen": list(s.unseen), "description": s.description}
                          for name, s in splits.items()}, indent=1))
        return 0
    for split in splits.values():
        print(f"{split.name}: {split.description}\n  seen:   {', '.join(split.seen)}\n"
              f"  unseen: {', '.join(split.unseen)}")
    return 0
