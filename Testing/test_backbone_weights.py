"""Weights manager over real HTTP on 127.0.0.1: consent, licence and size shown, resume with Range,
sha256 caught corruption, verify, delete, and a MAISI-family backbone built from the downloaded files."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from backbone_helpers import random_networks, serve, tiny_config, write_tiny_config
from diffugts.backbone import build_backbone
from diffugts.backbone.checkpoint import save_safetensors
from diffugts.cli import main
from diffugts.errors import DiffuGTSError
from diffugts.weights import delete, download, installed_dir, load_manifest, package_status, verify
from diffugts.weights.manager import BUNDLED_MANIFEST


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local mirror of tiny MAISI-layout weights, a manifest pointing at it, and an empty DIFFUGTS_HOME."""
    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    files = tmp_path / "mirror" / "models"
    files.mkdir(parents=True)
    config = tiny_config()
    ae, unet = random_networks(config, seed=3)
    torch.save(ae.state_dict(), files / "autoencoder_v1.pt")
    torch.save({"unet_state_dict": unet.state_dict(), "scale_factor": torch.tensor(1.25)},
               files / "diff_unet_3d_rflow-ct.pt")
    server, base = serve(tmp_path / "mirror")
    entries = []
    for name in ("autoencoder_v1.pt", "diff_unet_3d_rflow-ct.pt"):
        data = (files / name).read_bytes()
        entries.append({"path": f"models/{name}", "url": f"{base}/models/{name}", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {"packages": {"tiny-maisi": {"description": "tiny MAISI-layout test weights", "backbone": "tiny",
                                            "licence": "Test Licence 1.0", "files": entries}},
                "aliases": {"tiny": "tiny-maisi"}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    monkeypatch.setenv("DIFFUGTS_WEIGHTS_MANIFEST", str(path))
    yield {"server": server, "base": base, "files": files, "manifest": path, "tmp": tmp_path, "ae": ae,
           "entries": entries}
    server.shutdown()


def test_download_needs_consent_and_shows_licence_and_size(mirror):
    shown = []
    with pytest.raises(DiffuGTSError, match="cancelled"):
        download("tiny", ask=lambda question: "n", out=shown.append)
    text = "\n".join(shown)
    assert "Test Licence 1.0" in text and "KB" in text and mirror["base"] in text
    assert mirror["server"].handler.requests == []  # nothing fetched without consent
    assert package_status(load_manifest().get("tiny"))["state"] == "not installed"


def test_download_verify_delete_round_trip_and_backbone_from_it(mirror, tmp_path):
    folder = download("tiny", ask=lambda question: "yes", out=lambda line: None)
    assert folder == installed_dir("tiny-maisi") and str(folder).startswith(str(tmp_path / "home"))
    assert verify("tiny") == [("models/autoencoder_v1.pt", "ok"), ("models/diff_unet_3d_rflow-ct.pt", "ok")]
    # a MAISI-family config whose weights name this package loads them from the user's data dir
    config = write_tiny_config(tmp_path, weights={"package": "tiny-maisi", "autoencoder": "models/autoencoder_v1.pt",
                                                   "unet": "models/diff_unet_3d_rflow-ct.pt"})
    backbone = build_backbone(config)
    assert backbone.scale_factor == pytest.approx(1.25)
    assert torch.equal(next(iter(backbone.autoencoder.state_dict().values())),
                       next(iter(mirror["ae"].state_dict().values())))
    # the same files from a local folder (--weights DIR), no download
    assert build_backbone(config, weights=mirror["files"]).scale_factor == pytest.approx(1.25)
    (folder / "models" / "autoencoder_v1.pt").write_bytes(b"tampered")
    assert dict(verify("tiny"))["models/autoencoder_v1.pt"] == "corrupt"
    assert delete("tiny") == folder.resolve() and not folder.exists()
    with pytest.raises(DiffuGTSError, match="not installed"):
        delete("tiny")


def test_interrupted_download_resumes_with_a_range_request(mirror):
    entry = mirror["entries"][1]
    data = (mirror["files"] / "diff_unet_3d_rflow-ct.pt").read_bytes()
    part = installed_dir("tiny") / (entry["path"] + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])  # what an interrupted run left
    download("tiny", yes=True, out=lambda line: None)
    ranges = [r for p, r in mirror["server"].handler.requests if p.endswith("diff_unet_3d_rflow-ct.pt")]
    assert ranges == ["bytes=1000-"]
    assert (installed_dir("tiny") / entry["path"]).read_bytes() == data and not part.exists()
    # a server that ignores Range: the client starts again from zero and still gets the right file
    (installed_dir("tiny") / entry["path"]).unlink()
    part.write_bytes(b"garbage" * 10)
    mirror["server"].handler.honour_range = False
    download("tiny", yes=True, out=lambda line: None)
    assert (installed_dir("tiny") / entry["path"]).read_bytes() == data


def test_corrupted_mirror_file_is_caught_by_the_checksum_and_not_installed(mirror):
    target = mirror["files"] / "autoencoder_v1.pt"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    target.write_bytes(bytes(data))
    with pytest.raises(DiffuGTSError, match="checksum mismatch"):
        download("tiny", yes=True, out=lambda line: None)
    folder = installed_dir("tiny")
    assert not (folder / "models" / "autoencoder_v1.pt").exists()
    assert not (folder / "models" / "autoencoder_v1.pt.part").exists()


def test_unpinned_checksum_is_recorded_on_first_download_and_verified_after(mirror, tmp_path, monkeypatch):
    manifest = json.loads(mirror["manifest"].read_text())
    for entry in manifest["packages"]["tiny-maisi"]["files"]:
        entry["sha256"] = None
    mirror["manifest"].write_text(json.dumps(manifest))
    lines = []
    download("tiny", yes=True, out=lines.append)
    assert any("pins no checksum" in line for line in lines)
    assert [status for _, status in verify("tiny")] == ["ok", "ok"]


def test_weights_cli_list_verify_delete_and_consent(mirror, capsys, monkeypatch):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny-maisi" in out and "not installed" in out and "Test Licence 1.0" in out and "demo-ct" in out
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["weights", "download", "tiny"]) == 2  # no terminal, no --yes: refuses
    assert "--yes" in capsys.readouterr().err
    assert main(["--progress", "none", "weights", "download", "tiny", "--yes"]) == 0
    assert main(["weights", "verify", "tiny"]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["weights", "list", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)["packages"]}
    assert listed["tiny-maisi"]["state"] == "installed"
    assert main(["weights", "delete", "tiny", "--yes"]) == 0
    assert main(["weights", "verify", "tiny"]) == 1


def test_manifest_rejects_unsafe_paths_and_urls(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"packages": {"x": {"licence": "L", "files": [
        {"path": "../../etc/passwd", "url": "https://example.org/x"}]}}}))
    with pytest.raises(DiffuGTSError, match="unsafe file path"):
        load_manifest(bad)
    for url in ("file:///etc/passwd", "http://huggingface.co/x.pt", "http://127.0.0.1.evil.org/x.pt", "ftp://a/b"):
        bad.write_text(json.dumps({"packages": {"x": {"licence": "L", "files": [{"path": "a.pt", "url": url}]}}}))
        with pytest.raises(DiffuGTSError, match="must be https"):
            load_manifest(bad)
    for url in ("https://huggingface.co/x.pt", "http://127.0.0.1:8000/x.pt", "http://localhost/x.pt"):
        bad.write_text(json.dumps({"packages": {"x": {"licence": "L", "files": [{"path": "a.pt", "url": url}]}}}))
        assert load_manifest(bad).get("x").files[0].url == url


@pytest.mark.parametrize("names", [{"packages": "../../outside"}, {"packages": "a/b"}, {"packages": ".."},
                                   {"packages": ""}, {"alias": "../x"}, {"alias_target": "../../x"}])
def test_manifest_package_names_must_be_single_folder_names(tmp_path, names):
    """A package's name is its folder under the weights directory: download wrote where '../..' pointed."""
    name = names.get("packages", "ok")
    aliases = {names["alias"]: "ok"} if "alias" in names else {"a": names["alias_target"]} if "alias_target" in names \
        else {}
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"packages": {name: {"licence": "L", "files": [
        {"path": "a.pt", "url": "https://example.org/a.pt"}]}}, "aliases": aliases}))
    with pytest.raises(DiffuGTSError, match="unsafe package name"):
        load_manifest(bad)


def test_where_the_download_is_offered_it_says_whether_checksums_are_pinned(mirror):
    import slicer_support  # noqa: F401 - puts the Slicer module's DiffuGTSSlicerLib on the path
    from DiffuGTSSlicerLib import models

    from diffugts.weights.manager import describe

    pinned = load_manifest().get("tiny")
    assert pinned.pinned and "sha256 pinned in the manifest" in describe(pinned)
    shipped = load_manifest(BUNDLED_MANIFEST).get("maisi")  # NVIDIA publishes no checksums we could pin
    assert not shipped.pinned and "the first download is trusted as it comes" in describe(shipped)
    for package, expected in ((pinned, "checked against the checksums"), (shipped, "pins no checksums")):
        status = package_status(package)
        offered = models.ModelPackage(package.name, status["state"], 0, status["download_size"], package.licence,
                                      checksums_pinned=status["checksums_pinned"])
        assert expected in models.download_consent_text(offered)


def test_demo_weights_safetensors_written_atomically(tmp_path):
    ae, _ = random_networks(tiny_config())
    path = save_safetensors(ae, tmp_path / "a.safetensors")
    assert path.is_file() and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize(("backbone", "command", "option"), [("maisi-rflow-v2", "attention", "--heads"),
                                                            ("maisi", "attention", "--heads")])
def test_a_backbone_without_shipped_heads_is_told_the_command_that_trains_them(backbone, command, option):
    """Segmenter.from_pretrained("maisi") said only 'attention heads file not found'."""
    from diffugts.segment import Segmenter

    with pytest.raises(DiffuGTSError) as error:
        Segmenter.from_pretrained(backbone)
    message = str(error.value)
    assert message.startswith(f"the engine ships no attention heads for backbone {backbone}.")
    assert f"'diffugts train {command} --backbone {backbone} --weights DIR --out DIR'" in message and option in message


def test_a_missing_refinement_head_of_a_backbone_names_its_training_command_too():
    from diffugts.segment.checkpoint import bundled_refine_path, load_refine

    with pytest.raises(DiffuGTSError, match=r"the engine ships no refinement head for backbone maisi-rflow-v2\. "
                                            r"Train them for it with 'diffugts train refine --backbone "
                                            r"maisi-rflow-v2 .*--refine"):
        load_refine(bundled_refine_path("maisi-rflow-v2"))
    with pytest.raises(DiffuGTSError, match="refinement head file not found"):  # a user's path: as before
        load_refine("/nowhere/refine.safetensors")


def test_an_unknown_backbone_is_named_as_unknown_before_any_heads_are_looked_for():
    from diffugts.segment import Segmenter

    with pytest.raises(DiffuGTSError, match=r"^unknown backbone 'nope'\. Known backbones: demo-ct, demo-mr"):
        Segmenter.from_pretrained("nope")
