"""Modality and sequence (user, DICOM header, file name, prompt, HU histogram) and the automatic model choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from pydicom.dataset import Dataset

from diffugts.errors import DiffuGTSError
from diffugts.io import Volume, write_volume
from diffugts.io.dicom_sequence import dicom_sequence
from diffugts.io.modality import guess_modality, hu_evidence, with_prompt_sequence
from diffugts.io.sequence import modality_in_name, normalize_modality, sequence_in_text
from diffugts.segment.model_choice import ModalityChoice, ModelChooser, check_shipped, resolve_modality
from diffugts.segment.job import ModelSpec, SegmentRequest


@pytest.mark.parametrize("name,expected", [
    ("brats_pat1_t1c.nii.gz", "MR-T1c"), ("sub-01_ce-gd_T1w.nii.gz", "MR-T1c"), ("x_mr_t1ce.nii", "MR-T1c"),
    ("stroke_FLAIR.nii.gz", "MR-FLAIR"), ("case_t2w.nrrd", "MR-T2"), ("mni152_t1.nii.gz", "MR-T1"),
    ("knee_pd.mha", "MR-PD"), ("dwi_b1000.nii.gz", "MR-DWI"), ("brain_adc.nii.gz", "MR-ADC"),
    ("BraTS-GLI-00000-000-t2f.nii.gz", "MR-FLAIR"), ("BraTS-GLI-00000-000-t1n.nii.gz", "MR-T1"),
    ("head_mri.nii.gz", "MR"), ("lung_ct.nii.gz", "CT"), ("scan.nii.gz", None), ("ct_t1.nii.gz", None),
])
def test_file_names_say_the_modality_and_sequence(name, expected):
    assert modality_in_name(name) == expected


def test_user_spellings_are_normalized_and_unknown_ones_refused():
    for text, expected in (("t1c", "MR-T1c"), ("MR-T1ce", "MR-T1c"), ("flair", "MR-FLAIR"), ("mri", "MR"),
                           ("ct", "CT"), ("MR-T2", "MR-T2"), ("T1", "MR-T1"), ("mri_t1", "MR-T1")):
        assert normalize_modality(text) == expected
    with pytest.raises(DiffuGTSError, match="unknown modality 'kidney'.*MR-T1c"):
        normalize_modality("kidney")
    with pytest.raises(DiffuGTSError, match="unknown modality"):
        SegmentRequest(("brain tumor",), modality="ultrasound")
    assert SegmentRequest(("brain tumor",), modality="t1ce").modality == "MR-T1c"


def test_prompts_name_a_sequence_only_as_the_last_resort():
    assert sequence_in_text("enhancing tumor, post-contrast", contrast_alone=True) == "MR-T1c"
    assert sequence_in_text("FLAIR hyperintensity") == "MR-FLAIR"
    assert sequence_in_text("brain tumor") is None
    assert with_prompt_sequence("MR", "why", ["FLAIR hyperintensity"]) == ("MR-FLAIR", "why; sequence from the prompt")
    assert with_prompt_sequence("MR-T1", "why", ["FLAIR lesion"])[0] == "MR-T1"  # the file name said T1 first
    assert with_prompt_sequence("CT", "why", ["T1c lesion"])[0] == "CT"  # a prompt never turns a CT into MR
    assert with_prompt_sequence("MR", "why", ["T2 lesion", "FLAIR lesion"])[0] == "MR"  # two sequences: none


def _header(**values) -> Dataset:
    ds = Dataset()
    ds.Modality = "MR"
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


def test_dicom_header_says_the_sequence():
    assert dicom_sequence(_header(SeriesDescription="AX T1 POST GD"))[0] == "MR-T1c"
    assert dicom_sequence(_header(SeriesDescription="AX T1 SE", ContrastBolusAgent="Gadovist"))[0] == "MR-T1c"
    assert dicom_sequence(_header(SeriesDescription="Ax", ProtocolName="t2_flair_tra"))[0] == "MR-FLAIR"
    assert dicom_sequence(_header(ImageType=["DERIVED", "PRIMARY", "ADC"]))[0] == "MR-ADC"
    assert dicom_sequence(_header(RepetitionTime=9000, EchoTime=90, InversionTime=2500))[0] == "MR-FLAIR"
    assert dicom_sequence(_header(RepetitionTime=500, EchoTime=12))[0] == "MR-T1"
    assert dicom_sequence(_header(RepetitionTime=2300, EchoTime=3, InversionTime=900))[0] == "MR-T1"  # MPRAGE
    assert dicom_sequence(_header(RepetitionTime=4000, EchoTime=100))[0] == "MR-T2"
    assert dicom_sequence(_header(SeriesDescription="localizer")) is None
    modality, reason = guess_modality(np.zeros((4, 4, 4)), dicom_modality="MR",
                                      dicom_sequence=dicom_sequence(_header(SeriesDescription="sag t2 flair")))
    assert modality == "MR-FLAIR" and "DICOM Modality tag" in reason and "flair" in reason


def _soft_tissue_ct(rng) -> np.ndarray:
    """A 48^3 crop inside an abdomen: liver (60 HU) touching a sliver of fat (-100 HU), CT noise (sd 12 HU)."""
    array = np.full((48, 48, 48), 60.0)
    array[:, :2, :2] = -100.0
    return np.rint(array + rng.normal(0, 12, array.shape)).astype(np.int16)


def _mr(rng, scale: float = 1.0) -> np.ndarray:
    """An MR magnitude image: dark background (Rician), tissue at a few hundred, any scanner scale."""
    array = np.zeros((48, 48, 48))
    array[8:40, 8:40, 8:40] = 400.0
    array[20:28, 20:28, 20:28] = 650.0
    return np.abs(array + rng.normal(0, 15, array.shape) + 1j * rng.normal(0, 15, array.shape)) * scale


def test_hounsfield_histogram_tells_a_soft_tissue_ct_crop_from_mr():
    rng = np.random.default_rng(0)
    array = _soft_tissue_ct(rng)
    assert hu_evidence(array)[0] == "CT" and "soft tissue" in hu_evidence(array)[1]
    assert guess_modality(array, path="crop.nii.gz")[0] == "CT"
    assert guess_modality(array.astype(np.float32) + 1024.0)[0] == "MR"  # the same crop off the HU scale
    for array in (_mr(rng), _mr(rng, 0.2), _mr(rng, 10.0), (_mr(rng) - 300.0) / 150.0):  # raw, 8-bit, z-scored
        assert guess_modality(array, path="scan.nii.gz")[0] == "MR", hu_evidence(array)
    modality, reason = guess_modality(_mr(rng), path="patient_flair.nii.gz")
    assert (modality, reason) == ("MR-FLAIR", "file name 'patient_flair.nii.gz'")


def test_real_ct_crops_are_ct_and_real_mr_is_mr(real_data_dir):
    from diffugts.io import read_volume

    for name in ("pyrad_lung1_ct.nii.gz", "unlabeled/ct_head_ge_tilt.nii.gz", "healthy/totalseg_example_ct.nii.gz"):
        path = real_data_dir / name
        if not path.is_file():
            continue
        array = read_volume(path).array
        k, j, i = array.shape
        assert hu_evidence(array)[0] == "CT"
        assert hu_evidence(array[k // 4:3 * k // 4, 3 * j // 8:5 * j // 8, 3 * i // 8:5 * i // 8])[0] == "CT", name
    for name in ("pyrad_brain1_mr_t1c.nii.gz", "pyrad_breast1_mr_t1.nii.gz", "brats13_pat0005_flair.nii.gz"):
        assert hu_evidence(read_volume(real_data_dir / name).array)[0] == "MR", name


def test_the_modality_used_is_the_users_then_the_guess_then_the_prompts():
    image = Volume(np.zeros((4, 4, 4), np.float32), (1.0,) * 3, (0.0,) * 3, np.eye(3), modality="MR",
                   metadata={"modality_reason": "no Hounsfield-unit pattern"})
    assert resolve_modality(None, image, ["FLAIR hyperintensity"]).modality == "MR-FLAIR"
    given = resolve_modality("t1c", image, ["FLAIR hyperintensity"])
    assert (given.modality, given.sequence, given.given) == ("MR-T1c", "T1c", True)
    guessed = resolve_modality(None, image, ["brain tumor"])
    assert guessed.to_json() == {"modality": "MR", "sequence": None, "source": "no Hounsfield-unit pattern",
                                 "given": False}


def test_an_mr_without_shipped_models_is_refused_saying_what_to_do():
    choice = ModalityChoice("MR-T1c", "file name 'x_t1c.nii.gz'")
    with pytest.raises(DiffuGTSError) as error:
        check_shipped(ModelSpec(), "demo-mr", choice)
    text = str(error.value)
    assert "no MR model ships yet" in text and "train_demo_mr.json" in text and "--modality CT" in text
    with pytest.raises(DiffuGTSError, match="ships yet") as error:
        ModelChooser(ModelSpec()).segmenter_for(ModalityChoice("MR", "given with --modality", given=True))
    assert "--modality CT" not in str(error.value)  # the user said MR: no hint that the guess is wrong
    check_shipped(ModelSpec(), "demo-ct", ModalityChoice("CT", "file name"))  # the CT models ship


def test_demo_mr_is_registered_like_demo_ct():
    from diffugts.backbone import available, build_backbone, get_config, weight_files

    assert "demo-mr" in available()
    config = get_config("demo-mr")
    assert config.modalities == ["mr"] and config.weights["bundled"] == "demo_mr"
    with pytest.raises(DiffuGTSError, match="demo-mr weights missing in the bundled demo weights"):
        weight_files(config)
    backbone = build_backbone("demo-mr", random_init=True)  # the demo CT networks' size, MR conditioning
    cond = backbone.default_conditioning("MR-FLAIR")
    assert backbone.conditioning_kwargs(cond, 1)["class_labels"].tolist() == [11]


def _cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIFFUGTS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "diffugts", "--progress", "none", "segment", *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_segment_picks_the_backbone_from_the_modality_and_records_it(tmp_path):
    from diffugts.data.phantom import make_phantom

    ct = tmp_path / "abdomen_mr.nii.gz"  # a CT whose name says MR: the user overrides the guess
    write_volume(make_phantom("kidney tumor", "CT", (32, 32, 24), seed=0).image, ct)
    from diffugts.segment import job

    prepared = job.prepare(ct, SegmentRequest(("kidney tumor",), quality="fast"))  # as the command does
    with pytest.raises(DiffuGTSError) as refused:
        ModelSpec().load().segmenter_for(prepared.modality)
    assert "was taken for MR (file name 'abdomen_mr.nii.gz')" in str(refused.value)
    assert "If it is a CT, pass --modality CT" in str(refused.value)
    done = _cli(str(ct), "--prompt", "kidney tumor", "--out", str(tmp_path / "b"), "--fast", "--modality", "ct",
                "--outputs", "labels", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "CT (given with --modality): segmenting with backbone demo-ct" in done.stderr
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["modality"] == "CT" and report["models"]["backbone"] == "demo-ct"
    assert report["modality_choice"] == {"modality": "CT", "sequence": None, "source": "given with --modality",
                                         "given": True, "guessed": "MR"}


def _demo_mr_models(folder):
    """demo-mr files as a training run leaves them: random backbone weights, and the demo heads' weights in heads
    files made for demo-mr (same networks, so the same shapes)."""
    from dataclasses import replace

    from diffugts.attention.checkpoint import bundled_heads_path, load_heads, save_heads
    from diffugts.attention.heads import AttentionHeads
    from diffugts.backbone import build_backbone
    from diffugts.backbone.checkpoint import save_safetensors
    from diffugts.segment.checkpoint import bundled_refine_path, load_refine, save_refine
    from diffugts.segment.refine import RefineHead

    backbone = build_backbone("demo-mr", random_init=True)
    save_safetensors(backbone.autoencoder, folder / "weights" / "autoencoder.safetensors", {"scale_factor": "1.0"})
    save_safetensors(backbone.unet, folder / "weights" / "unet.safetensors", {"scale_factor": "1.0"})
    heads, facts = load_heads(bundled_heads_path("demo-ct"))
    mr_heads = AttentionHeads(replace(heads.config, backbone="demo-mr"))
    mr_heads.load_state_dict(heads.state_dict())
    save_heads(mr_heads, folder / "heads.safetensors", extra=facts)
    refine, _ = load_refine(bundled_refine_path("demo-ct"))
    mr_refine = RefineHead(replace(refine.config, backbone="demo-mr"))
    mr_refine.load_state_dict(refine.state_dict())
    save_refine(mr_refine, folder / "refine.safetensors")
    return ModelSpec(weights=str(folder / "weights"), heads=str(folder / "heads.safetensors"),
                     refine=str(folder / "refine.safetensors"))


def test_an_mr_goes_to_demo_mr_once_its_models_exist(tmp_path, monkeypatch):
    """The whole job on a brain MR whose name says nothing: the histogram says MR, the prompt says FLAIR, the
    automatic choice runs demo-mr (no flag), and report.json records all three."""
    from diffugts.data.phantom import make_phantom
    from diffugts.segment import job

    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    spec = _demo_mr_models(tmp_path)
    path = write_volume(make_phantom("brain glioma", "MR-FLAIR", 32, seed=1).image, tmp_path / "case.nii.gz")
    told: list[str] = []
    chooser = spec.load(on_choice=told.append)
    prepared = job.prepare(path, SegmentRequest(("FLAIR hyperintense brain glioma",), quality="fast"))
    assert prepared.image.modality == "MR" and prepared.modality.modality == "MR-FLAIR"
    result, written = job.run(chooser, prepared, tmp_path / "out")
    report = json.loads(written["report"].read_text())
    assert report["models"]["backbone"] == "demo-mr" and report["modality"] == "MR-FLAIR"
    assert report["modality_choice"]["sequence"] == "FLAIR" and not report["modality_choice"]["given"]
    assert "Hounsfield" in report["modality_choice"]["source"] and "prompt" in report["modality_choice"]["source"]
    assert told == [f"MR-FLAIR ({report['modality_choice']['source']}): segmenting with backbone demo-mr "
                    "(--backbone to choose another, --modality if the modality is wrong)"]
    assert result.findings[0].probability.array.shape == prepared.image.array.shape


def test_heads_train_on_the_backbones_modality():
    from diffugts.cli.train import backbone_modality

    assert backbone_modality("demo-mr") == "MR-T1c" and backbone_modality("demo-ct") == "CT"
    assert backbone_modality("maisi-rflow-v2-mr") == "MR-T1c" and backbone_modality("maisi") == "CT"


def test_a_batch_case_of_mr_fails_alone_in_words(tmp_path, monkeypatch):
    """One chooser serves a whole batch: an MR case (no MR model shipped) and a case whose CSV row names an unknown
    modality fail with their messages, nothing loaded for them, and the batch goes on (the CT path: above)."""
    from diffugts.batch.cases import BatchCase
    from diffugts.batch.worker import segment_case
    from diffugts.data.phantom import make_phantom

    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    mr = write_volume(make_phantom("brain glioma", "MR-T1c", 32, seed=0).image, tmp_path / "scan.nii.gz")
    chooser = ModelSpec().load()
    request = {"prompts": ["brain tumor"], "quality": "fast", "outputs": ["labels"]}
    failed = segment_case(chooser, BatchCase("mr", str(mr)), request, tmp_path / "out")
    bad = segment_case(chooser, BatchCase("bad", str(mr), modality="PET"), request, tmp_path / "out")
    assert failed.status == "failed" and "was taken for MR" in failed.error and "ships yet" in failed.error
    assert bad.status == "failed" and bad.error.startswith("unknown modality 'PET'")
    assert chooser.loaded == {} and not (tmp_path / "out" / "mr").exists()
