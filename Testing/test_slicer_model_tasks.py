"""Setup's model tasks with the REAL `diffugts weights` command: listing, a delete the engine refuses shown as
its own message, and the list refreshed after every change."""

from __future__ import annotations

import sys

from DiffuGTSSlicerLib import models
from DiffuGTSSlicerLib.command import HOME_VARIABLE, engine_environment
from DiffuGTSSlicerLib.model_tasks import ModelTasks
from DiffuGTSSlicerLib.parameters import Parameters


def make_tasks(home) -> tuple[ModelTasks, list, list]:
    tasks = ModelTasks(lambda: engine_environment(Parameters(models_folder=str(home))), python=sys.executable)
    listed, failed = [], []
    tasks.listed.connect(listed.append)
    tasks.failed.connect(failed.append)
    return tasks, listed, failed


def test_refresh_lists_the_packages_in_the_models_folder(tmp_path):
    tasks, listed, failed = make_tasks(tmp_path)
    tasks.refresh()
    tasks.refresh()  # queued once only
    tasks.wait(timeout=120)
    assert len(listed) == 1 and failed == []
    downloadable = [p for p in tasks.packages if not p.bundled]
    assert downloadable and all(p.state == "not installed" for p in downloadable)
    assert engine_environment(Parameters(models_folder=str(tmp_path)))[HOME_VARIABLE] == str(tmp_path)


def test_delete_removes_a_downloaded_package_and_the_list_shows_it(tmp_path):
    from diffugts.weights import load_manifest

    tasks, listed, failed = make_tasks(tmp_path)
    package = next(iter(load_manifest().packages.values()))
    for entry in package.files:  # stand-in weight files where a download puts them
        path = tmp_path / "weights" / package.name / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
    tasks.refresh()
    tasks.wait(timeout=120)
    assert [p.name for p in models.downloaded(tasks.packages)] == [package.name]
    tasks.delete(models.downloaded(tasks.packages))
    tasks.wait(timeout=120)
    assert failed == [] and len(listed) == 2
    assert models.downloaded(tasks.packages) == []
    assert not (tmp_path / "weights" / package.name).exists()


def test_a_refused_delete_shows_the_engines_message_then_the_list_is_refreshed(tmp_path):
    tasks, listed, failed = make_tasks(tmp_path)
    tasks.refresh()
    tasks.wait(timeout=120)
    package = next(p for p in tasks.packages if not p.bundled)
    tasks.delete([package])
    tasks.wait(timeout=120)
    assert failed == [f"{tmp_path}/weights/{package.name}: {package.name} is not installed."]
    assert len(listed) == 2
