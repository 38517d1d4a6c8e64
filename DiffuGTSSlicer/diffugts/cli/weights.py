"""``diffugts weights list | download NAME | verify [NAME] | delete NAME``: the user's model weights."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import DiffuGTSError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights", help="list, download, verify and delete model weights",
        description="Model weights: the bundled demo backbone, and packages (MAISI) that are downloaded only "
        "when you ask, after showing their licence and size. Stored under $DIFFUGTS_HOME/weights "
        "(default: your user data folder).")
    parser.add_argument("--manifest", metavar="FILE",
                        help="weights manifest JSON (default: $DIFFUGTS_WEIGHTS_MANIFEST or the bundled one)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="packages, where they are, size and licence")
    listing.add_argument("--json", action="store_true", help="print JSON")
    get = actions.add_parser("download", help="download a package (asks for consent to its licence)")
    get.add_argument("name", help="package name, e.g. maisi")
    get.add_argument("--yes", action="store_true", help="accept the licence shown without asking")
    get.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    check = actions.add_parser("verify", help="check installed files against their sha256")
    check.add_argument("name", nargs="?", help="package name (default: every installed package)")
    remove = actions.add_parser("delete", help="delete a downloaded package")
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=run, weights_parser=parser)


def _list(manifest, as_json: bool) -> int:
    from ..backbone import registry
    from ..memory import format_bytes
    from ..weights import package_status

    packages = [package_status(p, manifest) for p in manifest.packages.values()]
    bundled = []
    for name in registry.available():
        config = registry.get_config(name)
        if config.weights.get("bundled"):
            folder = registry.BUNDLED_DIR / config.weights["bundled"]
            files = [folder / config.weights[k] for k in ("autoencoder", "unet")]
            state = ("bundled" if all(f.is_file() for f in files) else "missing" if folder.is_dir()
                     else "not shipped yet")  # demo-mr until its trained weights are added
            bundled.append({"name": name, "state": state,
                            "folder": str(folder), "size_on_disk": sum(f.stat().st_size for f in files if f.is_file()),
                            "licence": "Apache-2.0 (this project); research demo, not for clinical use"})
    if as_json:
        print(json.dumps({"packages": packages, "bundled": bundled}, indent=2))
        return 0
    for item in bundled:
        print(f"{item['name']:<16} {item['state']:<14} {format_bytes(item['size_on_disk']):>9}  {item['licence']}")
        print(f"{'':<16} {item['folder']}")
    for item in packages:
        size = item["download_size"]
        print(f"{item['name']:<16} {item['state']:<14} {'~' + format_bytes(size) if size else '?':>9}  "
              f"{item['licence']}")
        print(f"{'':<16} {item['folder']}  (backbone {item['backbone']})")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..progress import for_mode
    from ..weights import delete, download, load_manifest, package_status, verify

    manifest = load_manifest(args.manifest)
    if args.action in (None, "list"):
        return _list(manifest, getattr(args, "json", False))
    if args.action == "download":
        download(args.name, yes=args.yes, progress=for_mode(args.progress), manifest=manifest, timeout=args.timeout)
        print(f"installed {manifest.get(args.name).name}")
        return 0
    if args.action == "verify":
        names = [args.name] if args.name else [
            p.name for p in manifest.packages.values() if package_status(p, manifest)["state"] != "not installed"]
        bad = 0
        for name in names:
            for path, status in verify(name, manifest):
                print(f"{manifest.get(name).name}: {path}: {status}")
                bad += status in ("missing", "corrupt")
        if not names:
            print("no downloaded packages")
        return 1 if bad else 0
    if args.action == "delete":
        package = manifest.get(args.name)
        if not args.yes:
            if not sys.stdin.isatty():
                raise DiffuGTSError("delete needs confirmation", hint="Add --yes to delete without asking.")
            if input(f"Delete {package.name}? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 0
        folder = delete(package.name, manifest)
        print(f"deleted {folder}")
        return 0
    raise DiffuGTSError(f"unknown weights action {args.action!r}")
