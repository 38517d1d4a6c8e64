"""The engine command lines the module runs, under PythonSlicer in Slicer or any Python outside it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from diffugts.client import TOKEN_VARIABLE

from .parameters import Parameters

ENGINE_PARENT = Path(__file__).resolve().parents[1]  # the folder holding the bundled diffugts package
SERVER_TOKEN_VARIABLE = TOKEN_VARIABLE  # a secret: passed in the environment, never on the command line
HOME_VARIABLE = "DIFFUGTS_HOME"  # the engine keeps downloaded weights in its weights/ folder


def python_executable() -> str:
    """PythonSlicer inside Slicer (Slicer's Python environment as a separate process), else this interpreter."""
    slicer = sys.modules.get("slicer")
    in_application = slicer is not None and hasattr(slicer, "app")
    return (shutil.which("PythonSlicer") if in_application else None) or sys.executable


def engine_command(*arguments: str, python: str | None = None) -> list[str]:
    """``python -m diffugts --progress json ARGUMENTS...``."""
    return [python or python_executable(), "-m", "diffugts", "--progress", "json", *arguments]


def segment_arguments(image: str | Path, out_dir: str | Path, parameters: Parameters,
                      organ_mask: str | Path | None = None) -> list[str]:
    """The arguments of ``diffugts segment`` for one image (and an organ mask on its grid) and the parameters."""
    if not parameters.prompts:
        raise ValueError("at least one prompt is needed")
    arguments = ["segment", str(image)]
    # "--prompt=TEXT" in one word, so that a prompt starting with "-" is not read as an option
    arguments += [f"--prompt={prompt}" for prompt in parameters.prompts]
    arguments += ["--out", str(out_dir), "--device", parameters.device, "--quality", parameters.quality,
                  "--seed", str(parameters.seed), "--outputs", ",".join(wanted_outputs(parameters))]
    if parameters.modality != "auto":
        arguments += ["--modality", parameters.modality]
    if parameters.roi:
        arguments += ["--roi", parameters.roi]
    if organ_mask is not None:
        arguments += ["--organ-mask", str(organ_mask)]
    if parameters.threads:
        arguments += ["--threads", str(parameters.threads)]
    if parameters.server_url:
        arguments += ["--server", parameters.server_url]  # the same run on a warm `diffugts serve`
    else:
        arguments += model_arguments(parameters)  # a server runs its own models
    return arguments


def model_arguments(parameters: Parameters) -> list[str]:
    """--backbone, --weights, --heads and --refine of the chosen model (none for the bundled demo models)."""
    arguments: list[str] = []
    for option, value in (("--backbone", parameters.backbone), ("--weights", parameters.weights),
                          ("--heads", parameters.heads), ("--refine", parameters.refine)):
        if value:
            arguments += [option, value]
    return arguments


def wanted_outputs(parameters: Parameters) -> list[str]:
    """The engine's output kinds the panel loads: the segmentation (report.json, for the table, always comes)
    and the maps the person chose to see; nothing else is written, sent or compressed."""
    maps = (("attention", parameters.load_heat_map), ("pseudo_healthy", parameters.load_pseudo_healthy),
            ("uncertainty", parameters.load_uncertainty))
    return ["segmentation", *(kind for kind, wanted in maps if wanted)]


def engine_environment(parameters: Parameters, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an engine process: the bundled engine importable, models folder and server token set,
    and its OpenMP threads sleeping rather than spinning while they wait (unless the user chose otherwise): the
    engine shares the machine with Slicer, and spinning threads starved by Slicer's own work made a click 3x
    slower on a busy 2-core machine (benchmarks/README.md, "Seconds per click through the warm server")."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(ENGINE_PARENT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for variable, value in ((HOME_VARIABLE, parameters.models_folder),
                            (SERVER_TOKEN_VARIABLE, parameters.server_token)):
        if value:
            env[variable] = value
        else:
            env.pop(variable, None)
    return env
