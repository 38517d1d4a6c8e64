"""Model weights the user chose to download: a manifest (data), consent, resumable download, sha256, store."""

from .manager import (
    MANIFEST_ENV,
    FileEntry,
    Package,
    delete,
    download,
    installed_dir,
    load_manifest,
    package_status,
    sha256_of,
    verify,
)

__all__ = [
    "MANIFEST_ENV",
    "FileEntry",
    "Package",
    "delete",
    "download",
    "installed_dir",
    "load_manifest",
    "package_status",
    "sha256_of",
    "verify",
]
