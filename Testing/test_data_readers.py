"""Dataset readers against small folders written in each public layout, and the real manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from diffugts.data import CATEGORIES, MANIFEST_COLUMNS, detect_layout, load_splits, read_dataset, zero_shot_split
from diffugts.data.readers import read_brats, read_kits, read_manifest, read_msd
from diffugts.data.splits import SEEN, UNSEEN
from diffugts.errors import DiffuGTSError, InputError

SHAPE = (6, 7, 8)  # [k, j, i]
SPACING = (0.8, 0.9, 2.5)
ORIGIN = (-10.0, 20.0, 5.0)
DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # RAS stored in LPS


def write_nii(path: Path, array: np.ndarray, origin=ORIGIN) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array, isVector=False)
    if array.ndim == 4:  # channels first: [c, k, j, i] -> a 4D image
        image = sitk.JoinSeries([sitk.GetImageFromArray(channel) for channel in array])
        image.SetSpacing((*SPACING, 1.0))
        image.SetOrigin((*origin, 0.0))
        direction = np.eye(4)
        direction[:3, :3] = np.reshape(DIRECTION, (3, 3))
        image.SetDirection(direction.ravel().tolist())
    else:
        image.SetSpacing(SPACING)
        image.SetOrigin(origin)
        image.SetDirection(DIRECTION)
    sitk.WriteImage(image, str(path))
    return path


def labels_with(*values: int) -> np.ndarray:
    labels = np.zeros(SHAPE, dtype=np.uint8)
    for n, value in enumerate(values):
        labels[1 + n, 2:4, 2:5] = value
    return labels


def image() -> np.ndarray:
    return np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)


@pytest.fixture
def msd_liver(tmp_path: Path) -> Path:
    task = tmp_path / "Task03_Liver"
    entries = []
    for n in range(2):
        write_nii(task / "imagesTr" / f"liver_{n}.nii.gz", image())
        write_nii(task / "labelsTr" / f"liver_{n}.nii.gz", labels_with(1, 2))
        entries.append({"image": f"./imagesTr/liver_{n}.nii.gz", "label": f"./labelsTr/liver_{n}.nii.gz"})
    (task / "dataset.json").write_text(json.dumps({
        "name": "Liver", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "liver", "2": "cancer"},
        "licence": "CC-BY-SA 4.0", "training": entries, "test": []}))
    return task


def test_msd_liver_cases_and_tumor_mask(msd_liver: Path) -> None:
    assert detect_layout(msd_liver) == "msd"
    cases = read_dataset(msd_liver)
    assert [c.case_id for c in cases] == ["liver_0", "liver_1"]
    case = cases[0]
    assert (case.category, case.organ, case.modality, case.tumor_labels) == ("liver tumor", "liver", "CT", (2,))
    images, mask = case.load()
    assert mask.grid.matches(images["CT"].grid)
    np.testing.assert_array_equal(mask.array, (labels_with(1, 2) == 2).astype(np.uint8))


def test_msd_problems_name_the_case(msd_liver: Path) -> None:
    write_nii(msd_liver / "labelsTr" / "liver_1.nii.gz", labels_with(1, 7))
    with pytest.raises(InputError, match=r"liver_1: label values \[7\] are unknown"):
        read_msd(msd_liver)[1].load()
    write_nii(msd_liver / "labelsTr" / "liver_1.nii.gz", labels_with(2), origin=(0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="liver_1: grid differs"):
        read_msd(msd_liver)[1].check_geometry()
    (msd_liver / "labelsTr" / "liver_0.nii.gz").unlink()
    with pytest.raises(InputError, match="liver_0: file is missing") as error:
        read_msd(msd_liver)
    assert "labelsTr/liver_0.nii.gz" in str(error.value)


def test_msd_tasks_without_tumor_are_refused(tmp_path: Path) -> None:
    task = tmp_path / "Task02_Heart"
    task.mkdir()
    (task / "dataset.json").write_text(json.dumps({"name": "LeftAtrium", "training": []}))
    with pytest.raises(InputError, match="not a Decathlon tumor task"):
        read_dataset(task)


def test_msd_brain_tumour_reads_four_channels(tmp_path: Path) -> None:
    task = tmp_path / "Task01_BrainTumour"
    channels = np.stack([np.full(SHAPE, 10 * (c + 1), dtype=np.float32) for c in range(4)])
    write_nii(task / "imagesTr" / "BRATS_001.nii.gz", channels)
    write_nii(task / "labelsTr" / "BRATS_001.nii.gz", labels_with(1, 2, 3))
    (task / "dataset.json").write_text(json.dumps({
        "name": "BRATS", "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
        "training": [{"image": "./imagesTr/BRATS_001.nii.gz", "label": "./labelsTr/BRATS_001.nii.gz"}]}))
    case = read_dataset(task)[0]
    assert list(case.images) == ["MR-FLAIR", "MR-T1", "MR-T1c", "MR-T2"] and case.modality == "MR-FLAIR"
    images, mask = case.load()
    assert [float(v.array.mean()) for v in images.values()] == [10.0, 20.0, 30.0, 40.0]
    assert all(v.grid.matches(mask.grid) for v in images.values())
    assert int(mask.array.sum()) == 3 * 2 * 3  # whole tumor: labels 1, 2 and 3


def test_kits23_tumor_and_cyst(tmp_path: Path) -> None:
    for n in range(2):
        write_nii(tmp_path / "dataset" / f"case_{n:05d}" / "imaging.nii.gz", image())
        write_nii(tmp_path / "dataset" / f"case_{n:05d}" / "segmentation.nii.gz", labels_with(1, 2, 3))
    assert detect_layout(tmp_path) == "kits23"
    tumor = read_dataset(tmp_path)[1]
    assert (tumor.case_id, tumor.category, tumor.tumor_labels) == ("case_00001", "kidney tumor", (2,))
    cyst = read_kits(tmp_path, target="kidney cyst")[0]
    _, mask = cyst.load()
    np.testing.assert_array_equal(mask.array, (labels_with(1, 2, 3) == 3).astype(np.uint8))
    (tmp_path / "dataset" / "case_00001" / "imaging.nii.gz").unlink()
    with pytest.raises(InputError, match="kits23 case case_00001: file is missing"):
        read_kits(tmp_path)


def _brats_case(root: Path, name: str, tokens: list[str], sep: str) -> None:
    for token in tokens:
        write_nii(root / name / f"{name}{sep}{token}.nii.gz", image() if token != "seg" else labels_with(1, 2, 4))


def test_brats_both_namings(tmp_path: Path) -> None:
    _brats_case(tmp_path, "BraTS2021_00000", ["t1", "t1ce", "t2", "flair", "seg"], "_")
    _brats_case(tmp_path, "BraTS-GLI-00001-000", ["t1n", "t1c", "t2w", "t2f", "seg"], "-")
    assert detect_layout(tmp_path) == "brats"
    cases = read_dataset(tmp_path)
    assert [c.case_id for c in cases] == ["BraTS-GLI-00001-000", "BraTS2021_00000"]
    for case in cases:
        assert list(case.images) == ["MR-FLAIR", "MR-T1", "MR-T1c", "MR-T2"]
        assert case.images["MR-T1c"].path.name.split("_")[-1].split("-")[-1] in ("t1ce.nii.gz", "t1c.nii.gz")
        images, mask = case.load()
        assert int(mask.array.sum()) == 3 * 2 * 3 and all(v.grid.matches(mask.grid) for v in images.values())


def test_brats_missing_sequence_names_the_case(tmp_path: Path) -> None:
    _brats_case(tmp_path, "BraTS2021_00007", ["t1", "t1ce", "t2", "seg"], "_")
    with pytest.raises(InputError, match="BraTS case BraTS2021_00007: no FLAIR file"):
        read_brats(tmp_path)


def test_unknown_folder_layout_is_explained(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a known dataset layout"):
        read_dataset(tmp_path)


def test_real_manifest_masks_align_with_images(real_data_dir: Path) -> None:
    cases = read_manifest(real_data_dir / "manifest.csv")
    assert len(cases) >= 8
    with_masks = [c for c in cases if c.mask is not None]
    assert {c.case_id for c in cases if c.mask is None} >= {"healthy_mni152_2009a", "healthy_totalseg_example_ct"}
    assert {c.category for c in with_masks} >= {"lung tumor", "brain glioma"}
    for case in with_masks:
        images, mask = case.load()
        image = images[case.modality]
        assert mask.grid.matches(image.grid), case.case_id
        assert mask.array.any() and set(np.unique(mask.array)) <= {0, 1}, case.case_id
        assert str(image.source).endswith(case.image.path.name)


def test_manifest_problems(tmp_path: Path, real_data_dir: Path) -> None:
    (tmp_path / "manifest.csv").write_text("case_id,image\nx,x.nii.gz\n")
    with pytest.raises(InputError, match="lacks the column"):
        read_dataset(tmp_path / "manifest.csv")
    row = dict.fromkeys(MANIFEST_COLUMNS, "")
    row.update(case_id="lost_case", image="lost.nii.gz", modality="CT", tumor_prompt="lung tumor")
    (tmp_path / "manifest.csv").write_text(",".join(MANIFEST_COLUMNS) + "\n" + ",".join(row.values()) + "\n")
    with pytest.raises(InputError, match="manifest case lost_case: file is missing"):
        read_dataset(tmp_path)


def test_zero_shot_splits_are_disjoint_and_cover_the_categories() -> None:
    splits = load_splits()
    assert {"organs-a", "organs-b"} <= set(splits)
    a, b = splits["organs-a"], splits["organs-b"]
    assert set(a.seen) | set(a.unseen) == set(CATEGORIES) and not set(a.seen) & set(a.unseen)
    assert (set(a.seen), set(a.unseen)) == (set(b.unseen), set(b.seen))
    assert zero_shot_split().name == "organs-a"
    assert a.role("Renal mass") == SEEN and a.role("pancreatic cancer") == UNSEEN and a.role("breast tumor") == UNSEEN
    assert a.role("heart tumor") is None


def test_bad_split_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "splits.json"
    config.write_text(json.dumps({"splits": {"x": {"seen": ["liver tumor"], "unseen": ["liver tumor"]}}}))
    with pytest.raises(DiffuGTSError, match="both seen and unseen"):
        load_splits(config)
    config.write_text(json.dumps({"splits": {"x": {"seen": ["heart tumor"], "unseen": []}}}))
    with pytest.raises(DiffuGTSError, match="unknown categories"):
        load_splits(config)
    with pytest.raises(DiffuGTSError, match="no zero-shot split named 'nope'"):
        zero_shot_split("nope")
