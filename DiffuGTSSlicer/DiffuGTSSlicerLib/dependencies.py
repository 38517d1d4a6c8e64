"""What the engine needs in Slicer's Python, checked (versions too) without importing it, and installed only with
consent: torch through the PyTorch extension (PyTorchUtils), never a bare ``pip install torch``; the other packages
with pip, an old one upgraded, constrained to keep every other installed package at its current version."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .i18n import _

ENGINE_PYTHON = (3, 10)  # pyproject's requires-python: Slicer 5.10 and later (5.6 and 5.8 have Python 3.9)
# the bundled engine's requirements, which pyproject.toml's dependencies are read from too
REQUIREMENTS_FILE = Path(__file__).resolve().parents[1] / "diffugts" / "requirements.txt"


def distribution_name(requirement: str) -> str:
    """'monai>=1.5,<1.7' -> 'monai'."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]


def _requirements(path: Path = REQUIREMENTS_FILE) -> tuple[str, tuple[str, ...]]:
    """(torch's version bounds, every other requirement) from the engine's requirements file."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    torch = next(r for r in requirements if distribution_name(r) == "torch")
    return torch[len("torch"):], tuple(r for r in requirements if r != torch)


TORCH_REQUIREMENT, ENGINE_REQUIREMENTS = _requirements()


def _release(version: str) -> tuple[int, ...]:
    """'1.26.4' -> (1, 26, 4); '1.7.0rc1' -> (1, 7, 0); '2.5.1+cu121' -> (2, 5, 1): the numbers that order it."""
    return tuple(int(re.match(r"\d*", part).group() or 0) for part in version.split("+")[0].split("."))


def satisfies(version: str, requirement: str) -> bool:
    """Whether ``version`` meets the requirement's bounds (>=, >, <=, <, ==, != and ~= as >=: what our list uses),
    without the 'packaging' library (Slicer's Python need not have it)."""
    checks = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
              "!=": lambda a, b: a != b, "~=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}
    have = _release(version)
    for clause in requirement[len(distribution_name(requirement)):].split(","):
        operator, bound = re.match(r"\s*(>=|<=|==|!=|~=|>|<)\s*(\S+)", clause).groups()
        width = max(len(have), len(_release(bound)))
        pad = lambda release: release + (0,) * (width - len(release))  # noqa: E731 - 1.5 == 1.5.0
        if not checks[operator](pad(have), pad(_release(bound))):
            return False
    return True


def in_use_here(distribution: str) -> bool:
    """Whether this process (Slicer) has already imported the distribution's modules: Slicer's own packages, which
    an upgrade must not replace under it."""
    modules = [module for module, owners in importlib.metadata.packages_distributions().items()
               if distribution.lower() in (owner.lower() for owner in owners)]
    return any(module in sys.modules for module in modules)


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
    torch: str | None  # its version when installed and recent enough
    missing: list[str] = field(default_factory=list)  # requirements to install: absent, or too old (see outdated)
    python: str | None = None  # what is wrong with this Python, if anything
    outdated: dict[str, str] = field(default_factory=dict)  # requirement -> the older version installed
    slicers: dict[str, str] = field(default_factory=dict)  # too old, but Slicer's own (in use): not replaced

    @property
    def ready(self) -> bool:
        return self.torch is not None and not self.missing and self.python is None and not self.slicers

    def describe(self) -> str:
        if self.python:
            return self.python
        if self.slicers:
            return self.slicers_problem()
        torch = (_("PyTorch {version}").format(version=self.torch) if self.torch
                 else _("PyTorch: not installed or older than {needed}").format(needed=TORCH_REQUIREMENT))
        absent = [r for r in self.missing if r not in self.outdated]
        parts = ([_("missing: {packages}").format(packages=", ".join(absent))] if absent else []) + (
            [_("too old: {packages}").format(packages=_found(self.outdated))] if self.outdated else [])
        return f"{torch}; {'; '.join(parts) or _('other packages: all present')}"

    def slicers_problem(self) -> str:
        return _("{packages}: older than the engine needs, and this Slicer itself uses them, so Install does not "
                 "replace them. Use a newer 3D Slicer, or a DiffuGTS server (Server URL).").format(
            packages=_found(self.slicers))


def _found(versions: dict[str, str]) -> str:
    """{'monai>=1.5,<1.7': '1.3.0'} -> 'monai 1.3.0 (needs >=1.5,<1.7)'."""
    return ", ".join(f"{distribution_name(r)} {v} (needs {r[len(distribution_name(r)):]})" for r, v in versions.items())


def check() -> DependencyStatus:
    """Which engine dependencies are installed in a version the engine can use (by their metadata: nothing is
    imported); an old one (say a MONAI without the MAISI networks) counts as missing, to be upgraded, unless
    Slicer itself uses it."""
    status = DependencyStatus(None, python=python_problem())
    torch = installed_version("torch")
    status.torch = torch if torch and satisfies(torch, "torch" + TORCH_REQUIREMENT) else None
    for requirement in ENGINE_REQUIREMENTS:
        version = installed_version(distribution_name(requirement))
        if version is None:
            status.missing.append(requirement)
        elif not satisfies(version, requirement):
            if in_use_here(distribution_name(requirement)):
                status.slicers[requirement] = version
            else:
                status.missing.append(requirement)
                status.outdated[requirement] = version
    return status


def consent_text(status: DependencyStatus, pytorch_extension: bool) -> str:
    """What Install will do, for the confirmation dialog."""
    lines = [_("DiffuGTS needs these Python packages in Slicer's Python environment:")]
    if status.torch is None:
        lines.append(_("- PyTorch, installed by the PyTorch extension (about 1 to 3 GB; a CUDA build when a GPU is found)")
                     if pytorch_extension else
                     _("- PyTorch: install the 'PyTorch' extension from the Extensions Manager first, then restart"))
    lines += [f"- {requirement}" + (_(" (upgrading {version})").format(version=status.outdated[requirement])
                                    if requirement in status.outdated else "") for requirement in status.missing]
    lines.append(_("Every other package, Slicer's own included, is kept at its current version. Download from the "
                   "internet; this can take several minutes. Continue?"))
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
    if status.slicers:
        raise DependencyError(status.slicers_problem())
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
