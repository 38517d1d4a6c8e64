"""Facts that were written in two or three places, and drifted or could: each now has one definition that the
others import (the report schema, the byte formatter, the upload formats)."""

from __future__ import annotations

import re
from pathlib import Path

SOURCES = Path(__file__).resolve().parents[1] / "DiffuGTSSlicer"


def defined_in(pattern: str) -> list[str]:
    """The source files (engine and Slicer module, not their tests) whose text matches ``pattern``."""
    found = []
    for path in sorted(SOURCES.rglob("*.py")):
        if "Testing" not in path.parts and re.search(pattern, path.read_text(encoding="utf-8")):
            found.append(str(path.relative_to(SOURCES)))
    return found


def test_the_report_schema_is_written_once_and_the_slicer_loader_imports_it():
    assert defined_in(r'"diffugts\.segment\.report/') == ["diffugts/report_schema.py"]


def test_one_byte_formatter_for_engine_server_and_slicer():
    assert defined_in(r'"KB"|\bKB\b"') == ["diffugts/units.py"]
    from DiffuGTSSlicerLib import models  # noqa: F401 - slicer_support-free: the module imports no Slicer here

    from diffugts.memory import format_bytes
    from diffugts.units import format_bytes as the_one

    assert format_bytes is the_one and models.format_bytes is the_one and models.format_size(None) == "?"
    assert [the_one(n) for n in (512, 3.2 * 2**20, 1.5 * 2**30)] == ["512 B", "3.2 MB", "1.5 GB"]


def test_the_upload_formats_are_the_clients_and_the_server_derives_its_own():
    assert defined_in(r'"mha"') == ["diffugts/client.py"]
    from diffugts.client import UPLOAD_FORMATS as client_formats
    from diffugts.serve.upload import UPLOAD_FORMATS as server_formats

    assert server_formats == {file_format: suffix for suffix, file_format in client_formats.items()}
