"""``python -m diffugts.demo.score OUT_DIR``: the demo's result against the bundled expert mask (Dice), in one line.

Reads OUT_DIR/report.json and the label map it names; label 1 is the demo prompt's segment. The demo case is
kept out of every training split of ``diffugts data corpus`` (its content is matched and excluded), but the
shipped ``demo-ct`` backbone predates that rule and saw this scan outside the tumor (its model card): the line
says so, as it is not yet the score of a scan every model never saw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import read_volume
from . import DEMO_MASK


def demo_dice(out_dir: str | Path) -> tuple[float, dict]:
    """Dice of label 1 in ``out_dir``'s label map against the bundled expert mask, and the prompt's report entry."""
    out_dir = Path(out_dir)
    report_path = out_dir / "report.json"
    if not report_path.is_file():
        raise InputError("no report.json: the demo segmentation did not finish", path=report_path,
                         hint="Run 'make demo' (or diffugts segment on the demo case) first.")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    labels_name = report.get("outputs", {}).get("labels")
    if not labels_name:
        raise InputError("the run wrote no label map", path=report_path, hint="Run segment with the labels output.")
    predicted = read_volume(out_dir / labels_name).array == 1
    truth = read_volume(DEMO_MASK).array > 0
    if predicted.shape != truth.shape:
        raise InputError("the label map is not on the demo case's grid", path=out_dir / labels_name,
                         hint="Score a run made on the bundled demo image.")
    total = int(predicted.sum()) + int(truth.sum())
    dice = 2.0 * float(np.logical_and(predicted, truth).sum()) / total if total else 1.0
    return dice, report["prompts"][0]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m diffugts.demo.score OUT_DIR", file=sys.stderr)
        return 2
    try:
        dice, prompt = demo_dice(args[0])
    except InputError as error:
        print(f"diffugts: error: {error}", file=sys.stderr)
        return 2
    state = "found" if prompt.get("found", True) else "not found"
    print(f"demo: {prompt['prompt']!r} {state}, {prompt['volume_ml']:.2f} mL; Dice {dice:.3f} against the bundled "
          f"expert mask (1.36 mL; the heads never saw this case, the demo-ct backbone saw it outside the tumor: "
          f"see its model card)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
