"""The module's plain parts: parameters in a real parameter node, the engine command line, presets and history,
device facts and estimates, dependency checks and installs (never torch by pip), model listing, and the
prompt -> terminology table shared with the engine."""

from __future__ import annotations

import json
import re
import shlex
import sys
import tomllib

import pytest
from slicer_support import REPO_ROOT, Settings, slicer_core

from diffugts.terminology import MASS, NEOPLASM, describe, describe_all, find_organ
from DiffuGTSSlicerLib import dependencies, device, models
from DiffuGTSSlicerLib.command import (HOME_VARIABLE, SERVER_TOKEN_VARIABLE, engine_command, engine_environment,
                                       segment_arguments)
from DiffuGTSSlicerLib.parameters import Parameters
from DiffuGTSSlicerLib.presets import HISTORY_LENGTH, PromptHistory, presets_for
from DiffuGTSSlicerLib.signals import Signal


@pytest.mark.parametrize(("prompt", "type_code", "region"), [
    ("kidney tumor", NEOPLASM, "SCT^64033007^Kidney"),
    ("mass in the pancreatic head", MASS, "SCT^15776009^Pancreas"),
    ("Glioma", NEOPLASM, "SCT^12738006^Brain"),
    ("liver lesion", MASS, "SCT^10200004^Liver"),
    ("colorectal cancer", NEOPLASM, "SCT^71854001^Colon"),
    ("lung nodule", MASS, "SCT^39607008^Lung"),
    ("bladder carcinoma", NEOPLASM, "SCT^89837001^Urinary bladder"),
    ("something odd", MASS, "^^"),
])
def test_prompts_map_to_mass_or_neoplasm_with_the_organ(prompt, type_code, region):
    entry = describe(prompt).terminology.split("~")
    assert entry[1] == "SCT^49755003^Morphologically Altered Structure"
    assert (entry[2], entry[5]) == (type_code, region)
    assert len(entry) == 7 and entry[4] == ("" if region == "^^" else "Anatomic codes - DICOM master list")


def test_terminology_strings_parse_in_slicerio_and_colors_stay_distinct():
    from slicerio.segmentation import terminology_entry_from_string

    descriptions = describe_all(["liver tumor", "liver lesion", "hepatic mass", "odd one", "odd two"])
    assert len({d.color for d in descriptions}) == 5
    assert all(0.0 <= c <= 1.0 for d in descriptions for c in d.color)
    parsed = terminology_entry_from_string(descriptions[0].terminology)
    assert parsed["type"] == ["SCT", "108369006", "Neoplasm"] and parsed["anatomicRegion"][2] == "Liver"
    assert describe("  kidney   tumor ").name == "kidney tumor"
    assert find_organ("nonpancreatic") is None  # words match from their start only
    with pytest.raises(ValueError):
        describe("   ")


def test_parameters_round_trip_through_a_real_parameter_node_without_the_token():
    slicer = slicer_core()
    node = slicer.vtkMRMLScriptedModuleNode()
    chosen = Parameters(prompts=["kidney tumor", "glioma"], modality="CT", quality="best", device="cuda", seed=7,
                        roi="10:50,:,2:", threads=2, load_heat_map=False, load_uncertainty=True,
                        models_folder="/data/models", server_url="http://gpu:8765", server_token="secret")
    chosen.write_to(node)
    assert Parameters.read_from(node) == Parameters(**{**chosen.__dict__, "server_token": ""})
    assert "secret" not in {node.GetParameter(name) for name in node.GetParameterNames()}
    assert Parameters.read_from(slicer.vtkMRMLScriptedModuleNode()) == Parameters()


def test_prompts_from_text_and_choices_are_validated():
    assert Parameters.prompts_from_text(" kidney  tumor\n\nKidney tumor\nglioma \n") == ["kidney tumor", "glioma"]
    with pytest.raises(ValueError, match="quality"):
        Parameters(quality="ultra")


def test_segment_command_follows_the_engine_contract(tmp_path):
    parameters = Parameters(prompts=["kidney tumor", "mass in the pancreatic head"], quality="fast", device="cpu",
                            seed=3, modality="MR")
    command = engine_command(*segment_arguments(tmp_path / "in.nrrd", tmp_path / "out", parameters), python="py")
    assert shlex.join(command) == (
        f"py -m diffugts --progress json segment {tmp_path}/in.nrrd '--prompt=kidney tumor' "
        f"'--prompt=mass in the pancreatic head' --out {tmp_path}/out --device cpu --quality fast --seed 3 "
        "--outputs segmentation,attention --modality MR")
    # a prompt that starts with "-" stays the value of its option, not a new option
    assert "--prompt=-x lesion" in segment_arguments("a", "b", Parameters(prompts=["-x lesion"]))
    assert not {"--modality", "--roi", "--organ-mask", "--threads"} & set(segment_arguments("a", "b",
                                                                                           Parameters(prompts=["x"])))
    with pytest.raises(ValueError):
        segment_arguments("a", "b", Parameters())
    with pytest.raises(ValueError, match="threads"):
        Parameters(threads=-1)


def test_the_modality_list_is_the_engines_and_each_choice_reaches_it_as_given(tmp_path):
    from diffugts.cli import build_parser
    from diffugts.io.sequence import MODALITIES as ENGINE
    from DiffuGTSSlicerLib.parameters import MODALITIES

    ui = (REPO_ROOT / "DiffuGTSSlicer" / "Resources" / "UI" / "DiffuGTSSlicer.ui").read_text(encoding="utf-8")
    combo = ui.split('name="modalityComboBox"', 1)[1].split("</widget>", 1)[0]
    assert re.findall(r"<string>([^<]*)</string>\s*</property>\s*</item>", combo) == ["Auto", *ENGINE]
    assert MODALITIES == ("auto", *ENGINE) and "MR-T1c" in MODALITIES and "MR-FLAIR" in MODALITIES
    for modality in ENGINE:
        arguments = segment_arguments(tmp_path / "in.nrrd", tmp_path / "out", Parameters(prompts=["x"], modality=modality))
        assert build_parser().parse_args(engine_command(*arguments)[3:]).modality == modality


def test_the_engines_own_parser_reads_every_option_the_module_passes(tmp_path):
    from diffugts.cli import build_parser

    parameters = Parameters(prompts=["-x lesion", "kidney tumor"], quality="best", device="cuda", seed=5,
                            modality="CT", roi="10:50,:,2:", threads=3)
    arguments = segment_arguments(tmp_path / "in.nrrd", tmp_path / "out", parameters, tmp_path / "organ.nrrd")
    args = build_parser().parse_args(engine_command(*arguments)[3:])
    assert (args.command, args.progress, args.image, args.out) == ("segment", "json", f"{tmp_path}/in.nrrd",
                                                                   f"{tmp_path}/out")
    assert (args.prompt, args.quality, args.device, args.seed) == (["-x lesion", "kidney tumor"], "best", "cuda", 5)
    assert (args.modality, args.roi, args.organ_mask, args.threads) == ("CT", "10:50,:,2:", f"{tmp_path}/organ.nrrd", 3)


def test_engine_environment_carries_the_engine_the_folder_and_the_token_not_on_the_command_line():
    env = engine_environment(Parameters(prompts=["x"], models_folder="/m", server_token="t0k"),
                             base={"PYTHONPATH": "/other", HOME_VARIABLE: "/old"})
    assert env["PYTHONPATH"].split(":")[0].endswith("DiffuGTSSlicer") and env["PYTHONPATH"].endswith("/other")
    assert (env[HOME_VARIABLE], env[SERVER_TOKEN_VARIABLE]) == ("/m", "t0k")
    assert HOME_VARIABLE not in engine_environment(Parameters(), base={HOME_VARIABLE: "/old"})
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"  # threads that wait sleep: the engine shares the machine with Slicer
    assert engine_environment(Parameters(), base={"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_presets_and_history():
    assert "kidney tumor" in presets_for("CT") and "glioma" in presets_for("MR")
    assert presets_for("MR-T1c") == presets_for("MR-FLAIR") == presets_for("MR")  # every sequence: the MR presets
    every = presets_for("auto")
    assert len(every) == len(set(every)) and set(presets_for("CT")) <= set(every)
    history = PromptHistory(Settings())
    history.add(["kidney tumor", "glioma"])
    history.add(["liver lesion", "kidney tumor"])
    assert history.entries() == ["liver lesion", "kidney tumor", "glioma"]
    history.add([f"p{i}" for i in range(30)])
    assert len(history.entries()) == HISTORY_LENGTH


def test_signal_connects_emits_and_disconnects():
    signal, seen = Signal(), []
    signal.connect(seen.append)
    signal.connect(seen.append)
    signal.emit(1)
    signal.disconnect(seen.append)
    signal.emit(2)
    assert seen == [1]


def test_device_probe_runs_in_a_separate_process_and_describes_torch():
    import subprocess

    output = subprocess.run(device.probe_command(sys.executable), capture_output=True, text=True, timeout=120)
    info = device.parse_probe(output.stdout.splitlines())
    import torch

    assert info.torch == torch.__version__
    assert info.has_gpu == torch.cuda.is_available()
    assert info.torch in info.describe()
    gpu = device.DeviceInfo("2.5.0", "12.4", [{"name": "NVIDIA A100", "memory_gb": 79.2}])
    assert gpu.describe() == "PyTorch 2.5.0, CUDA 12.4: NVIDIA A100 (79.2 GB)"
    assert device.parse_probe(["noise"]) == device.DeviceInfo()


def test_estimates_grow_with_size_and_quality_and_shrink_on_gpu():
    assert device.estimate_seconds(10**7, "fast", False) < device.estimate_seconds(10**7, "best", False)
    assert device.estimate_seconds(10**6, "balanced", False) < device.estimate_seconds(10**7, "balanced", False)
    assert device.estimate_seconds(10**7, "best", True) < device.estimate_seconds(10**7, "best", False)
    assert device.describe_estimate(512 * 512 * 300, "balanced", "cpu", device.DeviceInfo("2")).endswith("on the CPU")
    gpu = device.DeviceInfo("2", "12", [{"name": "g", "memory_gb": 8}])
    assert device.describe_estimate(100, "fast", "auto", gpu) == "Rough guess, GPU not yet measured: a minute or less on the GPU"


def test_the_engine_requirements_have_one_definition_that_pip_and_the_slicer_module_read():
    """pyproject.toml's dependencies are read from the bundled engine's requirements.txt (they were a second list)."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "dependencies" not in pyproject["project"] and "dependencies" in pyproject["project"]["dynamic"]
    (source,) = pyproject["tool"]["setuptools"]["dynamic"]["dependencies"]["file"]
    assert (REPO_ROOT / source).resolve() == dependencies.REQUIREMENTS_FILE
    assert "monai>=1.5,<1.7" in dependencies.ENGINE_REQUIREMENTS and dependencies.TORCH_REQUIREMENT == ">=2.1"
    assert not any(r.startswith(("torch", "#")) for r in dependencies.ENGINE_REQUIREMENTS)


def test_dependency_check_reads_metadata_of_this_environment():
    import torch

    status = dependencies.check()
    assert status.torch == torch.__version__.split("+")[0] or status.torch == torch.__version__
    assert status.ready and "all present" in status.describe()


def test_install_uses_pytorch_utils_for_torch_and_pip_only_for_the_rest_keeping_installed_versions():
    calls: list = []
    status = dependencies.DependencyStatus(None, ["monai>=1.5,<1.7", "slicerio>=1.4"])
    seen_constraints: list[str] = []

    def pip_install(arguments):
        calls.append(("pip", arguments))
        seen_constraints.append(open(arguments[arguments.index("--constraint") + 1]).read())

    dependencies.install(status, pip_install, lambda requirement: calls.append(("torch", requirement)) or "torch")
    assert calls[0] == ("torch", dependencies.TORCH_REQUIREMENT)
    assert calls[1][1][:2] == ["monai>=1.5,<1.7", "slicerio>=1.4"]
    assert not any("torch" in a for a in calls[1][1][:2])
    pins = seen_constraints[0].splitlines()
    assert any(p.lower().startswith("numpy==") for p in pins) and not any(p.startswith("slicerio==") for p in pins)
    with pytest.raises(dependencies.DependencyError, match="PyTorch.*Extensions Manager"):
        dependencies.install(dependencies.DependencyStatus(None, []), pip_install, None)
    text = dependencies.consent_text(status, pytorch_extension=False)
    assert "Extensions Manager" in text and "monai" in text


def test_versions_are_checked_and_an_old_package_is_upgraded_without_moving_any_other(monkeypatch):
    """An old MONAI without the MAISI networks once read as installed, and Install pinned it where it was."""
    real = dependencies.installed_version
    found = {"monai": "1.3.0", "torch": "2.0.1"}
    monkeypatch.setattr(dependencies, "installed_version", lambda name: found.get(name, real(name)))
    # monai counts as Slicer's own once an earlier test in this process imported it; in Slicer it is not imported
    monkeypatch.setattr(dependencies, "in_use_here", lambda distribution: False)
    status = dependencies.check()
    assert status.missing == ["monai>=1.5,<1.7"] and status.outdated == {"monai>=1.5,<1.7": "1.3.0"}
    assert status.torch is None and not status.ready  # torch 2.0 is older than the engine's >=2.1
    assert "too old: monai 1.3.0 (needs >=1.5,<1.7)" in status.describe()
    assert "monai>=1.5,<1.7 (upgrading 1.3.0)" in dependencies.consent_text(status, pytorch_extension=True)
    constraints: list[str] = []
    dependencies.install(status, lambda arguments: constraints.append(
        open(arguments[arguments.index("--constraint") + 1]).read()), lambda requirement: "torch")
    pins = {pin.split("==")[0].lower() for pin in constraints[0].splitlines()}
    assert "monai" not in pins and {"numpy", "simpleitk", "scipy"} <= pins  # only monai may move


def test_an_old_package_this_slicer_itself_uses_is_not_replaced(monkeypatch):
    real = dependencies.installed_version
    monkeypatch.setattr(dependencies, "installed_version", lambda name: "1.20.0" if name == "numpy" else real(name))
    status = dependencies.check()  # numpy is imported in this process, as it is in Slicer's
    assert status.slicers == {"numpy>=1.24": "1.20.0"} and "numpy>=1.24" not in status.missing and not status.ready
    assert "numpy 1.20.0 (needs >=1.24)" in status.describe() and "newer 3D Slicer" in status.describe()
    with pytest.raises(dependencies.DependencyError, match="does not replace them"):
        dependencies.install(status, lambda arguments: None, lambda requirement: "torch")


@pytest.mark.parametrize(("version", "requirement", "expected"), [
    ("1.5.0", "monai>=1.5,<1.7", True), ("1.6.9", "monai>=1.5,<1.7", True), ("1.7.0rc1", "monai>=1.5,<1.7", False),
    ("1.4.9", "monai>=1.5,<1.7", False), ("2.10.0+cu121", "torch>=2.1", True), ("1.26.4", "numpy>=1.24", True),
    ("0.4", "safetensors>=0.4", True), ("2.3", "x==2.3.0", True), ("3", "x!=3.0", False)])
def test_version_bounds(version, requirement, expected):
    assert dependencies.satisfies(version, requirement) is expected


def test_model_listing_comes_from_the_real_engine_command(tmp_path):
    import subprocess

    env = engine_environment(Parameters(models_folder=str(tmp_path)))
    output = subprocess.run(engine_command(*models.list_arguments(), python=sys.executable), capture_output=True,
                            text=True, env=env, timeout=120)
    assert output.returncode == 0, output.stderr
    packages = models.parse_listing(output.stdout.splitlines())
    downloadable = [p for p in packages if not p.bundled]
    assert downloadable and all(p.state == "not installed" for p in downloadable)
    first = models.next_download(packages)
    text = models.download_consent_text(first)
    assert first.licence in text and models.format_size(first.download_size) in text
    assert models.download_arguments(first) == ["weights", "download", first.name, "--yes"]
    assert models.downloaded(packages) == []


def test_model_listing_parsing_and_deletion_choice():
    listing = {"packages": [{"name": "maisi", "state": "installed", "size_on_disk": 3 * 2**30,
                             "download_size": 3 * 2**30, "licence": "L"}],
               "bundled": [{"name": "demo", "state": "bundled", "size_on_disk": 10, "licence": "Apache-2.0"}]}
    packages = models.parse_listing(["diffugts: warning: x", *json.dumps(listing, indent=2).splitlines()])
    assert [p.name for p in models.downloaded(packages)] == ["maisi"]
    assert models.next_download(packages) is None
    assert "maisi (3.0 GB)" in models.delete_consent_text(models.downloaded(packages))
    assert models.describe(packages) == "demo: bundled (10 B)\nmaisi: installed (3.0 GB)"
    assert models.parse_listing(["not json"]) == []


def test_a_python_too_old_for_the_engine_is_said_plainly():
    assert dependencies.python_problem() is None and dependencies.check().python is None
    message = dependencies.python_problem((3, 9))
    assert message == ("The engine needs Python 3.10 or later (3D Slicer 5.10 or later); this Slicer has "
                       "Python 3.9. To segment from this Slicer, enter the address of a DiffuGTS server (Server URL).")
    assert dependencies.python_problem((3, 9), server_url="http://gpu-box:8765") is None  # a server needs no engine
    status = dependencies.DependencyStatus("2.5", [], message)
    assert not status.ready and status.describe() == message
    with pytest.raises(dependencies.DependencyError, match="Python 3.10"):
        dependencies.install(status, lambda arguments: None, lambda requirement: "torch")
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert declared == ">=" + ".".join(map(str, dependencies.ENGINE_PYTHON))
