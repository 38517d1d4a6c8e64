"""Aggregates of an evaluation's per-case rows: per group (all, each category, seen/unseen) and method.

When some method skipped some cases (an MR image and a CT-only backbone), the group "scored by every
method" holds the cases all methods scored, so that the methods are compared on the same cases.

Segmentation scores (mean ± SD) are over the cases with a tumor; HD95 averages only the finite values
and counts the NaN ones (one mask empty) apart. Presence AUROC ranks every case of the group, a case
without tumor being a negative; with only one class present it is "n/a".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io import atomic_output, write_csv
from .metrics import NSD_TOLERANCE_MM, auroc

SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"
ALL, COMMON = "all", "scored by every method"
SUMMARY_COLUMNS = ("group", "method", "tumor_cases", "healthy_cases", "skipped", "errors", "dice_mean", "dice_sd",
                   "nsd_mean", "nsd_sd", "hd95_mm_mean", "hd95_mm_sd", "hd95_nan", "presence_auroc",
                   "healthy_predicted_ml_mean", "seconds_mean")


def summarize(rows: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """One aggregate row per (group, method), groups in the order: all, common, seen/unseen, categories."""
    methods = list(dict.fromkeys(row["method"] for row in rows))
    splits = [s for s in ("seen", "unseen") if any(row["split"] == s for row in rows)]
    categories = sorted({row["category"] for row in rows})
    cases = {case_key(row) for row in rows}
    common = cases - {case_key(row) for row in rows if row["status"] != "ok"}
    groups = [(ALL, lambda row: True)]
    if common != cases and len(methods) > 1:  # a fair comparison where some method skipped some cases
        groups.append((COMMON, lambda row: case_key(row) in common))
    groups += [(split, lambda row, s=split: row["split"] == s) for split in splits]
    groups += [(category, lambda row, c=category: row["category"] == c) for category in categories]
    return [_aggregate(name, method, [row for row in rows if row["method"] == method and wanted(row)])
            for name, wanted in groups for method in methods]


def case_key(row: dict[str, str]) -> tuple[str, str]:
    """What identifies a case in the rows: its id and image file (one case may have several images)."""
    return row["case_id"], row["image"]


def _aggregate(group: str, method: str, rows: list[dict[str, str]]) -> dict[str, str]:
    done = [row for row in rows if row["status"] == "ok"]
    tumor = [row for row in done if row["has_tumor"] == "yes"]
    healthy = [row for row in done if row["has_tumor"] == "no"]
    hd95 = [float(row["hd95_mm"]) for row in tumor]
    finite = [value for value in hd95 if math.isfinite(value)]
    presence = auroc([float(row["presence"]) for row in done], [row["has_tumor"] == "yes" for row in done])
    summary = {"group": group, "method": method, "tumor_cases": len(tumor), "healthy_cases": len(healthy),
               "skipped": sum(row["status"].startswith("skipped") for row in rows),
               "errors": sum(row["status"].startswith("error") for row in rows),
               "hd95_nan": len(hd95) - len(finite),
               "presence_auroc": "n/a" if math.isnan(presence) else f"{presence:.3f}",
               "healthy_predicted_ml_mean": _mean([float(row["predicted_ml"]) for row in healthy]),
               "seconds_mean": _mean([float(row["seconds"]) for row in done])}
    for name, values in (("dice", [float(row["dice"]) for row in tumor]), ("nsd", [float(row["nsd"]) for row in tumor]),
                         ("hd95_mm", finite)):
        summary[f"{name}_mean"], summary[f"{name}_sd"] = _mean(values), _sd(values)
    return {column: str(summary[column]) for column in SUMMARY_COLUMNS}


def _mean(values: list[float]) -> str:
    return f"{np.mean(values):.4g}" if values else ""


def _sd(values: list[float]) -> str:
    return f"{np.std(values, ddof=1):.4g}" if len(values) > 1 else ""


def markdown(summary: Sequence[dict[str, str]], title: str = "") -> str:
    """The summary as a markdown table (mean ± SD), ready to paste into benchmarks/README.md."""
    header = ["Group", "Method", "Tumor cases", "Healthy", "Dice", f"NSD@{NSD_TOLERANCE_MM:g}mm", "HD95 mm",
              "HD95 NaN", "Presence AUROC", "Healthy pred. mL", "s/case"]
    if any(row["skipped"] != "0" or row["errors"] != "0" for row in summary):
        header.append("Skipped / errors")
    lines = [f"**{title}**\n" if title else "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for row in summary:
        cells = [row["group"], row["method"], row["tumor_cases"], row["healthy_cases"],
                 _plus_minus(row, "dice"), _plus_minus(row, "nsd"), _plus_minus(row, "hd95_mm", 1),
                 row["hd95_nan"], row["presence_auroc"], _rounded(row["healthy_predicted_ml_mean"], 1),
                 _rounded(row["seconds_mean"], 2)]
        if len(header) > len(cells):
            cells.append(f"{row['skipped']} / {row['errors']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(line for line in lines if line) + "\n"


def _plus_minus(row: dict[str, str], name: str, digits: int = 3) -> str:
    mean, sd = row[f"{name}_mean"], row[f"{name}_sd"]
    if not mean:
        return "–"
    return f"{float(mean):.{digits}f} ± {float(sd):.{digits}f}" if sd else f"{float(mean):.{digits}f}"


def _rounded(text: str, digits: int) -> str:
    return f"{float(text):.{digits}f}" if text else "–"


def write_summary(out: Path, rows: Sequence[dict[str, str]], title: str = "") -> list[dict[str, str]]:
    """Write summary.csv and summary.md into ``out`` (each in one rename) and return the summary rows."""
    summary = summarize(rows)
    write_csv(out / SUMMARY_CSV, SUMMARY_COLUMNS, summary)
    with atomic_output(out / SUMMARY_MD) as temp:
        temp.write_text(markdown(summary, title), encoding="utf-8")
    return summary
