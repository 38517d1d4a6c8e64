"""Weights the user asked for: listed in a JSON manifest, downloaded over https only with consent, resumable,
checked by sha256 (pinned in the manifest, or recorded at the first download: said before consent), stored
under the user's data directory ($DIFFUGTS_HOME overrides it).

No function here touches the network except :func:`download`, which the user calls explicitly
(``diffugts weights download NAME``). Downloads resume with HTTP Range requests from a ``.part`` file;
a file whose checksum does not match is deleted, never installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DiffuGTSError
from ..paths import data_dir
from ..progress import ProgressCallback, silent

MANIFEST_ENV = "DIFFUGTS_WEIGHTS_MANIFEST"
BUNDLED_MANIFEST = Path(__file__).resolve().parent / "manifest.json"
RECORD = ".diffugts-install.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CHUNK = 1 << 20


def weights_root() -> Path:
    return data_dir() / "weights"


@dataclass(frozen=True)
class FileEntry:
    path: str
    url: str
    sha256: str | None = None
    size: int | None = None
    approx_size: int | None = None

    @property
    def expected_size(self) -> int | None:
        return self.size if self.size is not None else self.approx_size


@dataclass(frozen=True)
class Package:
    name: str
    description: str
    licence: str
    files: tuple[FileEntry, ...]
    licence_url: str = ""
    homepage: str = ""
    backbone: str | None = None

    @property
    def pinned(self) -> bool:
        """Whether the manifest gives every file's sha256; else the first download is trusted as it comes."""
        return all(f.sha256 for f in self.files)

    @property
    def total_size(self) -> int | None:
        sizes = [f.expected_size for f in self.files]
        return None if None in sizes else int(sum(sizes))  # type: ignore[arg-type]


@dataclass
class Manifest:
    packages: dict[str, Package]
    aliases: dict[str, str] = field(default_factory=dict)
    path: str = ""

    def get(self, name: str) -> Package:
        key = self.aliases.get(name, name)
        if key not in self.packages:
            raise DiffuGTSError(f"no weights package named {name!r}",
                                hint=f"Known: {', '.join(sorted(self.packages))} (see 'diffugts weights list').")
        return self.packages[key]


def _safe_name(name: str, manifest: str) -> str:
    """A package name or alias, which becomes a folder name: letters, digits, '.', '_', '-', not '.' or '..'."""
    if not (isinstance(name, str) and _NAME.fullmatch(name)) or name in (".", ".."):
        raise DiffuGTSError(f"unsafe package name {name!r} in the weights manifest", path=manifest,
                            hint="Names are single folder names: letters, digits, '.', '_' and '-'.")
    return name


def _safe_url(url: str, manifest: str) -> str:
    """https, or plain http to this machine only (a local mirror): elsewhere anyone on the way could swap the files."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")):
        return url
    raise DiffuGTSError(f"weights URL must be https: {url!r}", path=manifest,
                        hint="Plain http is accepted only from this machine (a local mirror).")


def _safe_relative(path: str, manifest: str) -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise DiffuGTSError(f"unsafe file path {path!r} in the weights manifest", path=manifest)
    return str(pure)


def load_manifest(path: str | Path | None = None) -> Manifest:
    """The weights manifest: ``path``, else $DIFFUGTS_WEIGHTS_MANIFEST, else the one shipped with the engine."""
    path = Path(path or os.environ.get(MANIFEST_ENV) or BUNDLED_MANIFEST)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        packages = {}
        for name, spec in data["packages"].items():
            _safe_name(name, str(path))
            files = []
            for entry in spec["files"]:
                url = _safe_url(str(entry["url"]), str(path))
                files.append(FileEntry(_safe_relative(entry["path"], str(path)), url, entry.get("sha256"),
                                       entry.get("size"), entry.get("approx_size")))
            packages[name] = Package(name, spec.get("description", ""), spec["licence"], tuple(files),
                                     spec.get("licence_url", ""), spec.get("homepage", ""), spec.get("backbone"))
    except FileNotFoundError:
        raise DiffuGTSError("weights manifest not found", path=path) from None
    except (KeyError, TypeError, ValueError) as error:
        raise DiffuGTSError(f"weights manifest is malformed ({error})", path=path) from None
    aliases = {_safe_name(alias, str(path)): _safe_name(target, str(path))
               for alias, target in dict(data.get("aliases", {})).items()}
    return Manifest(packages, aliases, str(path))


def installed_dir(name: str, manifest: Manifest | None = None) -> Path:
    """Where package ``name`` is (or would be) installed."""
    try:
        name = (manifest or load_manifest()).aliases.get(name, name)
    except DiffuGTSError:
        pass
    return weights_root() / name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_record(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"files": {}}


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    from ..io import atomic_output

    with atomic_output(folder / RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")


def _format(size: int | None) -> str:
    from ..memory import format_bytes

    return "unknown size" if size is None else format_bytes(size)


def describe(package: Package) -> str:
    """What the user is asked to accept: what, licence, where from, how big."""
    lines = [f"{package.name}: {package.description}",
             f"  licence   {package.licence}" + (f" <{package.licence_url}>" if package.licence_url else ""),
             f"  size      about {_format(package.total_size)} in {len(package.files)} file(s)"]
    lines += [f"  file      {f.path}  ({_format(f.expected_size)})  from {f.url}" for f in package.files]
    lines.append(f"  checksum  {CHECKSUMS[package.pinned]}")
    lines.append(f"  stored in {installed_dir(package.name)}")
    return "\n".join(lines)


CHECKSUMS = {  # what a download's integrity rests on, shown before consent (package.pinned -> text)
    True: "sha256 pinned in the manifest: a file that differs is deleted, never installed",
    False: "none pinned in the manifest: the first download is trusted as it comes (over https) and its sha256 "
           "recorded; 'diffugts weights verify' checks against that record later",
}


def _fetch(url: str, part: Path, label: str, progress: ProgressCallback, timeout: float) -> None:
    """Download ``url`` into ``part``, resuming from its current length with an HTTP Range request."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "diffugts-weights"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only, checked
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to fetch: the checksum decides
            return
        raise DiffuGTSError(f"download failed: HTTP {error.code} {error.reason}", path=url,
                            hint="Check the address and your connection; run the command again to resume.") from None
    except (urllib.error.URLError, OSError) as error:
        raise DiffuGTSError(f"download failed: {getattr(error, 'reason', error)}", path=url,
                            hint="Check your connection; run the command again to resume.") from None
    with response:
        if offset and response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise DiffuGTSError(f"server resumed at the wrong place ({content_range!r})", path=url,
                                    hint=f"Delete {part} and download again.")
            mode = "ab"
        else:  # the server ignored the Range header: start again
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else None
        done = offset
        try:
            with open(part, mode) as handle:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    handle.write(block)
                    done += len(block)
                    if total:
                        progress(label, done / total)
        except OSError as error:
            raise DiffuGTSError(f"download interrupted ({error})", path=url,
                                hint="Run the command again: it resumes where it stopped.") from None
    if total is not None and done < total:
        raise DiffuGTSError(f"download incomplete ({done} of {total} bytes)", path=url,
                            hint="Run the command again: it resumes where it stopped.")


def download(name: str, *, yes: bool = False, ask: Callable[[str], str] | None = None,
             out: Callable[[str], None] = print, progress: ProgressCallback = silent,
             manifest: Manifest | None = None, timeout: float = 60.0) -> Path:
    """Download package ``name`` after showing its licence and size and getting consent."""
    manifest = manifest or load_manifest()
    package = manifest.get(name)
    folder = installed_dir(package.name, manifest)
    out(describe(package))
    if not yes:
        if ask is None:
            if not sys.stdin.isatty():
                raise DiffuGTSError("download needs your consent to the licence",
                                    hint="Run it in a terminal to answer, or add --yes to accept the licence shown.")
            ask = input
        answer = ask(f"Download {package.name} and accept its licence? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise DiffuGTSError("download cancelled; nothing was downloaded")
    folder.mkdir(parents=True, exist_ok=True)
    record = _read_record(folder)
    record.update({"package": package.name, "licence": package.licence,
                   "accepted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    for entry in package.files:
        dest = folder / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        pinned = entry.sha256 or record["files"].get(entry.path, {}).get("sha256")
        if dest.is_file() and pinned and sha256_of(dest) == pinned:
            out(f"  {entry.path}: already installed and verified")
            continue
        part = dest.with_name(dest.name + ".part")
        _fetch(entry.url, part, f"download {entry.path}", progress, timeout)
        size = part.stat().st_size
        if entry.size is not None and size != entry.size:
            part.unlink(missing_ok=True)
            raise DiffuGTSError(f"{entry.path}: got {size} bytes, expected {entry.size}; the partial file was deleted",
                                path=entry.url, hint="Run the command again to download it afresh.")
        digest = sha256_of(part)
        if entry.sha256 and digest != entry.sha256.lower():
            part.unlink(missing_ok=True)
            raise DiffuGTSError(
                f"{entry.path}: checksum mismatch (sha256 {digest[:16]}..., expected {entry.sha256[:16]}...); "
                "the corrupt file was deleted", path=entry.url,
                hint="Run the command again; if it keeps failing, the mirror serves a different file.")
        if not entry.sha256:
            out(f"  warning: the manifest pins no checksum for {entry.path}; recorded sha256 {digest} "
                "(later 'verify' runs check against it)")
        os.replace(part, dest)
        record["files"][entry.path] = {"sha256": digest, "size": size,
                                       "pinned_by": "manifest" if entry.sha256 else "first download"}
        out(f"  {entry.path}: {_format(size)}, sha256 ok")
        _write_record(folder, record)
    _write_record(folder, record)
    return folder


def package_status(package: Package, manifest: Manifest | None = None) -> dict[str, Any]:
    """Installed state of a package, without reading whole files."""
    folder = installed_dir(package.name, manifest)
    present = [f for f in package.files if (folder / f.path).is_file()]
    partial = [f for f in package.files if (folder / (f.path + ".part")).is_file()]
    size = sum((folder / f.path).stat().st_size for f in present)
    state = "installed" if len(present) == len(package.files) else (
        "partial" if present or partial else "not installed")
    return {"name": package.name, "state": state, "folder": str(folder), "size_on_disk": size,
            "download_size": package.total_size, "licence": package.licence, "backbone": package.backbone,
            "description": package.description, "checksums_pinned": package.pinned}


def verify(name: str, manifest: Manifest | None = None) -> list[tuple[str, str]]:
    """(file, 'ok' | 'missing' | 'corrupt' | 'unpinned') for each file of an installed package."""
    manifest = manifest or load_manifest()
    package = manifest.get(name)
    folder = installed_dir(package.name, manifest)
    record = _read_record(folder)
    results = []
    for entry in package.files:
        path = folder / entry.path
        expected = entry.sha256 or record["files"].get(entry.path, {}).get("sha256")
        if not path.is_file():
            results.append((entry.path, "missing"))
        elif not expected:
            results.append((entry.path, "unpinned"))
        else:
            results.append((entry.path, "ok" if sha256_of(path) == expected.lower() else "corrupt"))
    return results


def delete(name: str, manifest: Manifest | None = None) -> Path:
    """Remove an installed package's folder (only ever inside the weights directory)."""
    manifest = manifest or load_manifest()
    package = manifest.get(name)
    folder = installed_dir(package.name, manifest).resolve()
    root = weights_root().resolve()
    if root not in folder.parents:
        raise DiffuGTSError("refusing to delete outside the weights directory", path=folder)
    if not folder.exists():
        raise DiffuGTSError(f"{package.name} is not installed", path=folder)
    shutil.rmtree(folder)
    return folder
