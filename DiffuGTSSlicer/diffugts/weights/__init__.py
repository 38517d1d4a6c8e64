"""Model weights the user chose to download: a manifest (data), consent, resumable download, sha256, store."""

from .manager import (
    HOME_ENV,
    MANIFEST_ENV,
    FileEntry,
    Package,
    delete,
    download,
    home,
    installed_dir,
    load_manifest,
    package_status,
    sha256_of,
    verify,
)

__all__ = [
    "HOME_ENV",
    "MANIFEST_ENV",
    "FileEntry",
    "Package",
    "delete",
    "download",
    "home",
    "installed_dir",
    "load_manifest",
    "package_status",
    "sha256_of",
    "verify",
]
