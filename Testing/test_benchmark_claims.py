"""benchmarks/README.md says what its figures were measured with: every table of the engine's own models names
the backbone (the demo model is about 32x cheaper per voxel than MAISI, so a bar without it misleads), and no
stage that exists is called unbuilt."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "benchmarks" / "README.md"
MODEL_FREE_SECTIONS = {"Volume I/O", "Phantom generation", "Peer networks (cost only)", "Organ priors",
                       "Synthetic lesions: realism"}


def is_separator(line: str) -> bool:
    """A Markdown table's header separator, however it is spaced ('| --- |', '|---:|')."""
    return line.startswith("|") and "-" in line and not line.strip(" |-:")


def tables(lines: list[str]):
    """(section, header line number, the three lines above) of every table."""
    section = ""
    for number, line in enumerate(lines):
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("| ") and number + 1 < len(lines) and is_separator(lines[number + 1]):
            if number == 0 or not lines[number - 1].startswith("|"):
                yield section, number + 1, lines[max(0, number - 3):number]


def test_every_table_of_the_engines_models_names_its_backbone_and_the_cost_ratio():
    lines = README.read_text(encoding="utf-8").splitlines()
    unnamed = [(section, number) for section, number, above in tables(lines)
               if section not in MODEL_FREE_SECTIONS and "MAISI s" not in lines[number - 1]
               and not any(line.startswith("Backbone: `") and "32x" in line for line in above)]
    assert not unnamed, f"tables without a 'Backbone:' line above them: {unnamed}"


def test_no_stage_is_called_unbuilt():
    assert "not built yet" not in README.read_text(encoding="utf-8")
