"""Slicer conventions the module keeps: nothing third-party imported when it loads, the engine never imports
Slicer or Qt, Qt only in the thin widget parts, a short module file, and the in-Slicer tests registered."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from slicer_support import MODULE_DIR

LIB = MODULE_DIR / "DiffuGTSSlicerLib"
SLICER_PROVIDED = {"slicer", "qt", "ctk", "vtk"}
PURE_ENGINE_MODULES = {"diffugts.terminology", "diffugts.progress", "diffugts.client", "diffugts.errors", "diffugts.units",
                       "diffugts.report_schema", "diffugts.io.sequence"}
QT_MODULES = {"qt_panel.py"}


def top_level_imports(path: Path) -> set[str]:
    """Absolute modules imported by statements at module level (not inside functions)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Try):
            names |= {alias.name for stmt in node.body if isinstance(stmt, ast.Import) for alias in stmt.names}
            names |= {stmt.module for stmt in node.body if isinstance(stmt, ast.ImportFrom) and stmt.level == 0}
    return names


def all_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


MODULE_FILES = [MODULE_DIR / "DiffuGTSSlicer.py", *sorted(LIB.glob("*.py"))]


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: p.name)
def test_module_loads_nothing_third_party(path):
    allowed = set(sys.stdlib_module_names) | SLICER_PROVIDED | {"DiffuGTSSlicerLib"}
    bad = {name for name in top_level_imports(path)
           if name.split(".")[0] not in allowed and name not in PURE_ENGINE_MODULES}
    assert bad == set()


@pytest.mark.parametrize("module", sorted(PURE_ENGINE_MODULES))
def test_engine_modules_the_module_loads_are_pure_python(module):
    path = MODULE_DIR / (module.replace(".", "/") + ".py")
    assert {name.split(".")[0] for name in top_level_imports(path)} <= set(sys.stdlib_module_names)


def test_engine_never_imports_slicer_or_qt():
    forbidden = SLICER_PROVIDED - {"vtk"} | {"PySide6", "PyQt5", "DiffuGTSSlicerLib"}
    offenders = {str(path.relative_to(MODULE_DIR)): names
                 for path in (MODULE_DIR / "diffugts").rglob("*.py")
                 if (names := {n for n in all_imports(path) if n.split(".")[0] in forbidden})}
    assert offenders == {}


def test_only_the_qt_panel_and_module_file_touch_qt():
    for path in LIB.glob("*.py"):
        if path.name not in QT_MODULES:
            assert not {n for n in all_imports(path) if n.split(".")[0] in ("qt", "ctk")}, path.name


def test_module_file_is_thin_with_the_four_slicer_classes():
    text = (MODULE_DIR / "DiffuGTSSlicer.py").read_text()
    assert len(text.splitlines()) <= 150
    classes = {node.name for node in ast.parse(text).body if isinstance(node, ast.ClassDef)}
    assert classes == {"DiffuGTSSlicer", "DiffuGTSSlicerWidget", "DiffuGTSSlicerLogic", "DiffuGTSSlicerTest"}


def test_in_slicer_tests_are_registered_with_ctest():
    module_cmake = (MODULE_DIR / "CMakeLists.txt").read_text()
    assert re.search(r"if\(BUILD_TESTING\).*add_subdirectory\(Testing\).*endif\(\)", module_cmake, re.S)
    python_cmake = (MODULE_DIR / "Testing" / "Python" / "CMakeLists.txt").read_text()
    scripts = sorted(p.name for p in (MODULE_DIR / "Testing" / "Python").glob("*.py"))
    assert scripts and all(f"slicer_add_python_unittest(SCRIPT ${{CMAKE_CURRENT_SOURCE_DIR}}/{s})" in python_cmake
                           for s in scripts)


def test_translatable_strings_go_through_the_translator():
    for path in MODULE_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("errorDisplay", "infoDisplay",
                                                                                 "confirmOkCancelDisplay"):
                argument = node.args[0]
                assert not isinstance(argument, ast.Constant), f"{path.name}:{node.lineno} untranslated text"


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: p.name)
def test_module_parses_on_the_python_of_older_slicers(path):
    """Slicer 5.6 and 5.8 have Python 3.9: the panel must load there to say that the engine needs newer."""
    ast.parse(path.read_text(), feature_version=(3, 9))
