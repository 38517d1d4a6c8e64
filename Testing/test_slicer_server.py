"""The Slicer module through a warm server: the same `diffugts segment` process, with --server on its command line
and the token only in its environment; one real run against a real local server loads into a real MRML scene."""

from __future__ import annotations

import numpy as np
import pytest
from serve_support import TOKEN, running_server
from slicer_support import Recorder, add_oblique_volume, launcher, segment_mask, slicer_core

slicer = slicer_core()

from diffugts.cli import build_parser  # noqa: E402
from diffugts.data.phantom import make_phantom  # noqa: E402
from DiffuGTSSlicerLib.command import engine_command, engine_environment, segment_arguments  # noqa: E402
from DiffuGTSSlicerLib.logic import SegmentationLogic  # noqa: E402
from DiffuGTSSlicerLib.parameters import Parameters  # noqa: E402
from DiffuGTSSlicerLib.results import LoadedResults  # noqa: E402

URL = "http://gpu-box:8765"


def test_the_server_url_goes_on_the_command_line_and_the_token_only_into_the_environment(tmp_path):
    parameters = Parameters(prompts=["kidney tumor"], server_url=URL, server_token=TOKEN)
    command = engine_command(*segment_arguments(tmp_path / "in.nrrd", tmp_path / "out", parameters))
    args = build_parser().parse_args(command[3:])
    assert (args.command, args.server, args.token_file, args.progress) == ("segment", URL, None, "json")
    assert not any(TOKEN in part for part in command)
    assert engine_environment(parameters, base={})["DIFFUGTS_TOKEN"] == TOKEN

    local = Parameters(prompts=["kidney tumor"])
    assert "--server" not in segment_arguments(tmp_path / "in.nrrd", tmp_path / "out", local)
    assert "DIFFUGTS_TOKEN" not in engine_environment(local, base={"DIFFUGTS_TOKEN": "a token of another setup"})


@pytest.mark.slow
def test_a_run_through_a_real_server_loads_its_results_on_the_input_grid(tmp_path, monkeypatch):
    from diffugts.segment import Segmenter

    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    scene = slicer.vtkMRMLScene()
    array = make_phantom("kidney tumor", "CT", (24, 22, 14), seed=3).image.array.astype(np.int16)
    volume = add_oblique_volume(scene, array)
    with running_server(Segmenter.from_pretrained("demo-ct"), tmp_path / "work", token=TOKEN) as server:
        logic = SegmentationLogic(python=launcher(tmp_path))
        seen = Recorder(logic)
        logic.start(volume, Parameters(prompts=["kidney tumor"], quality="fast", device="cpu", server_url=server.url,
                                       server_token=TOKEN))
        logic.wait(timeout=300)
    (loaded,) = seen.results
    assert isinstance(loaded, LoadedResults), f"{loaded}\n" + "\n".join(seen.log)
    stages = [stage for stage, _ in seen.progress]
    assert stages[0] == "upload" and stages[-1] == "download"  # it went through the server's client
    assert not any(TOKEN in line for line in seen.log)
    (row,) = loaded.rows
    assert row.prompt == "kidney tumor" and loaded.missing == []
    mask = segment_mask(loaded.segmentation_node, row.segment_id, volume)
    assert mask.shape == array.shape
    assert mask.sum() * np.prod(volume.GetSpacing()) / 1000.0 == pytest.approx(row.volume_ml, abs=1e-3)
