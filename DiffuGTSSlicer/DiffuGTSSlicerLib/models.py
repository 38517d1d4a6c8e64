"""Model weights through the engine's ``diffugts weights`` command: what is there (size, licence), what
downloading would fetch (asked first, licence and size shown), and deleting downloaded packages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from diffugts.units import format_bytes

from .i18n import _

DOWNLOADED_STATES = ("installed", "partial")


@dataclass
class ModelPackage:
    name: str
    state: str  # installed | partial | not installed | bundled | missing
    size_on_disk: int
    download_size: int | None
    licence: str
    description: str = ""
    bundled: bool = False
    checksums_pinned: bool = False  # the manifest gives every file's sha256 (else: trusted on first download)
    backbone: str = ""  # the engine's backbone name for these weights
    folder: str = ""  # where the engine keeps them


def format_size(size: int | None) -> str:
    """The engine's size text; '?' for an unknown size."""
    return format_bytes(size) if size else "?"


def list_arguments() -> list[str]:
    return ["weights", "list", "--json"]


def download_arguments(package: ModelPackage) -> list[str]:
    """Download after the person accepted the licence shown in :func:`download_consent_text`."""
    return ["weights", "download", package.name, "--yes"]


def delete_arguments(package: ModelPackage) -> list[str]:
    return ["weights", "delete", package.name, "--yes"]


def parse_listing(lines: Sequence[str]) -> list[ModelPackage]:
    """The packages in ``weights list --json`` output (bundled ones first); empty if it is not there."""
    text = "\n".join(lines)
    start = text.find("{")
    try:
        listing = json.loads(text[start:]) if start >= 0 else {}
    except ValueError:
        return []
    packages = [ModelPackage(item["name"], item["state"], item.get("size_on_disk", 0), None, item.get("licence", ""),
                             bundled=True, backbone=item["name"], folder=item.get("folder", ""))
                for item in listing.get("bundled", [])]
    packages += [ModelPackage(item["name"], item["state"], item.get("size_on_disk", 0), item.get("download_size"),
                              item.get("licence", ""), item.get("description", ""),
                              checksums_pinned=bool(item.get("checksums_pinned")), backbone=item.get("backbone", ""),
                              folder=item.get("folder", ""))
                 for item in listing.get("packages", [])]
    return packages


def downloaded(packages: Sequence[ModelPackage]) -> list[ModelPackage]:
    return [p for p in packages if not p.bundled and p.state in DOWNLOADED_STATES]


def next_download(packages: Sequence[ModelPackage]) -> ModelPackage | None:
    """The first downloadable package not fully installed (the manifest lists the default first)."""
    return next((p for p in packages if not p.bundled and p.state != "installed"), None)


def describe(packages: Sequence[ModelPackage]) -> str:
    """One line per package for the Setup section."""
    if not packages:
        return _("Model status unknown (the engine did not list its weights).")
    lines = []
    for package in packages:
        size = format_size(package.size_on_disk) if package.size_on_disk else ""
        lines.append(f"{package.name}: {package.state}" + (f" ({size})" if size else ""))
    return "\n".join(lines)


def download_consent_text(package: ModelPackage) -> str:
    checksums = (_("The files are checked against the checksums the engine's list pins; a file that differs is "
                   "deleted.") if package.checksums_pinned else
                 _("The engine's list pins no checksums for these files: the first download is trusted as it comes "
                   "(over https) and its checksums are recorded, so later checks only compare with that copy."))
    return _("Download {name} (about {size})?\n\n{description}\n\nLicence: {licence}\n\n{checksums} The files "
             "are kept in the models folder.").format(
        name=package.name, size=format_size(package.download_size), description=package.description,
        licence=package.licence, checksums=checksums)


def delete_consent_text(packages: Sequence[ModelPackage]) -> str:
    names = ", ".join(f"{p.name} ({format_size(p.size_on_disk)})" for p in packages)
    return _("Delete the downloaded models {names}? They can be downloaded again.").format(names=names)


@dataclass
class ModelChoice:
    """One entry of the panel's Model list: what it says and what the engine is given."""

    label: str
    backbone: str = ""  # empty: the bundled demo models (the engine picks them)
    weights: str = ""


def model_choices(packages: Sequence[ModelPackage]) -> list[ModelChoice]:
    """The bundled demo models first, then every fully downloaded package, with its backbone and folder."""
    choices = [ModelChoice(_("Demo models (bundled)"))]
    choices += [ModelChoice(_("{name} (backbone {backbone})").format(name=p.name, backbone=p.backbone), p.backbone,
                            p.folder)
                for p in packages if not p.bundled and p.state == "installed" and p.backbone]
    return choices


def choice_index(choices: Sequence[ModelChoice], backbone: str) -> int:
    """Where ``backbone`` is in the list; -1 when it is not (a package deleted, or not listed yet)."""
    return next((i for i, choice in enumerate(choices) if choice.backbone == backbone), -1)
