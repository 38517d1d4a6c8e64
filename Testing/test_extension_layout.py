"""The Slicer extension's build files are complete: every module file listed, every index field present."""

from __future__ import annotations

import json
import re
import tomllib

from conftest import REPO_ROOT

MODULE_DIR = REPO_ROOT / "DiffuGTSSlicer"
IGNORED_PARTS = {"__pycache__", "Testing"}


def _cmake_list(name: str) -> set[str]:
    text = (MODULE_DIR / "CMakeLists.txt").read_text()
    match = re.search(rf"set\({name}\n(.*?)\n\s*\)", text, re.S)
    assert match, f"{name} not found in DiffuGTSSlicer/CMakeLists.txt"
    return {line.strip() for line in match.group(1).splitlines() if line.strip() and not line.strip().startswith("#")}


def _module_files() -> set[str]:
    files = set()
    for path in MODULE_DIR.rglob("*"):
        relative = path.relative_to(MODULE_DIR)
        if path.is_file() and not IGNORED_PARTS & set(relative.parts) and path.name != "CMakeLists.txt" \
                and not path.name.endswith((".pyc", ".egg-info")) and ".egg-info" not in str(relative):
            files.add(relative.as_posix())
    return files


def test_module_cmakelists_lists_every_file():
    files = _module_files()
    scripts, resources = _cmake_list("MODULE_PYTHON_SCRIPTS"), _cmake_list("MODULE_PYTHON_RESOURCES")
    python_files = {f for f in files if f.endswith(".py")}
    assert python_files - scripts == set(), "add these to MODULE_PYTHON_SCRIPTS"
    assert (files - python_files) - resources == set(), "add these to MODULE_PYTHON_RESOURCES"
    assert (scripts | resources) - files == set(), "these are listed but do not exist"
    assert "WITH_GENERIC_TESTS" in (MODULE_DIR / "CMakeLists.txt").read_text()


def test_extension_cmakelists_has_the_index_fields():
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    assert "project(DiffuGTS)" in text
    for field in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY \"Segmentation\"", "EXTENSION_CONTRIBUTORS",
                  "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS",
                  "EXTENSION_DEPENDS \"PyTorch\"", "find_package(Slicer REQUIRED)", "add_subdirectory(DiffuGTSSlicer)",
                  "Slicer_EXTENSION_GENERATE_CONFIG", "Slicer_EXTENSION_CPACK"):
        assert field in text, field


def test_extensions_index_files_agree():
    entry = json.loads((REPO_ROOT / "DiffuGTS.json").read_text())
    assert entry["category"] == "Segmentation" and entry["build_dependencies"] == ["PyTorch"]
    assert entry["scm_url"].endswith(".git") and entry["scm_revision"] and entry["tier"] in (1, 3, 5)
    s4ext = dict(line.split(" ", 1) for line in (REPO_ROOT / "DiffuGTS.s4ext").read_text().splitlines()
                 if line and not line.startswith("#") and " " in line)
    assert s4ext["scmurl"] == entry["scm_url"] and s4ext["depends"] == "PyTorch"
    assert s4ext["category"] == entry["category"]


def test_package_metadata():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["diffugts"] == "diffugts.cli:main"
    assert "dev" in project["project"]["optional-dependencies"]
    assert project["tool"]["setuptools"]["packages"]["find"]["where"] == ["DiffuGTSSlicer"]
    assert (REPO_ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
