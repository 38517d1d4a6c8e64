"""Phantoms: determinism, exact shared geometry, tumors where their category says, intensities per modality."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from diffugts.data.categories import CATEGORIES, HEALTHY, PHANTOM_CATEGORIES
from diffugts.data.phantom import make_phantom
from diffugts.data.phantom.tissues import T
from diffugts.errors import DiffuGTSError
from diffugts.io import orientation_code, read_volume, write_volume

SIZE = 48

# Organ tissues each category's tumor may occupy (the anatomy without the tumor).
HOST_TISSUES = {
    "liver tumor": ("liver", "hepatic vessel"),
    "hepatic vessel tumor": ("liver", "hepatic vessel"),
    "kidney tumor": ("kidney", "fat"),
    "kidney cyst": ("kidney", "fat"),
    "pancreatic tumor": ("pancreas",),
    "lung tumor": ("lung", "lung vessel"),
    "colon tumor": ("colon wall", "colon lumen", "fat"),
    "brain glioma": ("white matter", "gray matter"),
    "bone lesion": ("bone marrow", "cortical bone"),
}
ORGAN_TISSUE = {"liver": "liver", "kidney": "kidney", "pancreas": "pancreas", "lung": "lung", "colon": "colon wall",
                "brain": "white matter", "bone": "bone marrow"}


@pytest.fixture(scope="module")
def phantoms() -> dict[tuple[str, int], object]:
    """Two small phantoms per category (seeds 0 and 1)."""
    return {(category, seed): make_phantom(category, size=SIZE, seed=seed)
            for category in PHANTOM_CATEGORIES for seed in (0, 1)}


def test_every_category_has_a_host_rule() -> None:
    assert set(HOST_TISSUES) == set(PHANTOM_CATEGORIES) - {HEALTHY}


def test_same_seed_same_phantom_other_seed_other_phantom() -> None:
    first, again = (make_phantom("liver tumor", size=32, seed=11) for _ in range(2))
    for name in ("image", "mask", "organs", "labels"):
        a, b = getattr(first, name), getattr(again, name)
        np.testing.assert_array_equal(a.array, b.array)
        assert a.grid == b.grid
    other = make_phantom("liver tumor", size=32, seed=12)
    assert other.image.grid != first.image.grid or not np.array_equal(other.image.array, first.image.array)


def test_every_map_lies_on_the_image_grid(phantoms) -> None:
    for phantom in phantoms.values():
        grid = phantom.image.grid
        for volume in (phantom.mask, phantom.organs, phantom.labels):
            assert volume.grid == grid
        assert all(0.6 <= s <= 5.0 for s in phantom.image.spacing)
        direction = phantom.image.direction
        np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-9)
        assert phantom.image.array.shape == (SIZE, SIZE, SIZE)


def test_orientations_vary_and_include_oblique_grids() -> None:
    directions = [make_phantom("kidney cyst", "CT", size=16, seed=seed).image.direction for seed in range(30)]
    codes = {orientation_code(d) for d in directions}
    oblique = [d for d in directions if not np.allclose(np.abs(d), np.round(np.abs(d)))]
    assert len(codes) >= 8
    assert 0 < len(oblique) < len(directions)


def test_tumors_present_and_inside_their_organ(phantoms) -> None:
    for (category, seed), phantom in phantoms.items():
        mask = phantom.mask.array.astype(bool)
        if category == HEALTHY:
            assert not mask.any() and (phantom.labels.array < 100).all()
            continue
        assert mask.any(), (category, seed)
        hosts = [T[name] for name in HOST_TISSUES[category]]
        tissues = phantom.organs.array[mask]
        assert np.isin(tissues, hosts).all(), (category, seed, np.unique(tissues))
        organ = T[ORGAN_TISSUE[CATEGORIES[category].organ]]
        assert (tissues == organ).any() or category in ("colon tumor", "bone lesion"), (category, seed)
        assert (phantom.labels.array[mask] >= 100).all()  # the mask is made of lesion compartments


def test_kidney_tumors_are_exophytic() -> None:
    outside = []
    for seed in range(4):
        phantom = make_phantom("kidney tumor", "CT", size=SIZE, seed=seed)
        tissues = phantom.organs.array[phantom.mask.array.astype(bool)]
        assert (tissues == T["kidney"]).any()
        outside.append(float(np.mean(tissues == T["fat"])))
    assert sum(fraction > 0.1 for fraction in outside) >= 3, outside  # bulging into the perirenal fat


def test_hepatic_vessel_tumor_touches_a_vessel() -> None:
    for seed in range(3):
        phantom = make_phantom("hepatic vessel tumor", size=SIZE, seed=seed)
        grown = ndimage.binary_dilation(phantom.mask.array.astype(bool), iterations=2)
        assert (phantom.organs.array[grown] == T["hepatic vessel"]).any()


def _median(phantom, tissue: str) -> float:
    region = (phantom.labels.array == T[tissue])
    return float(np.median(phantom.image.array[region]))


def test_ct_intensities_are_hounsfield_units() -> None:
    phantom = make_phantom("liver tumor", "CT", size=64, seed=4)
    image = phantom.image.array
    assert image.dtype == np.int16 and image.min() >= -1024 and image.max() <= 3071
    assert -140 < _median(phantom, "fat") < -60
    assert 60 < _median(phantom, "liver") < 140
    assert _median(phantom, "air") < -900
    lesion = float(np.median(image[phantom.mask.array.astype(bool)]))
    assert abs(lesion - _median(phantom, "liver")) > 30  # hypo- or hyperdense
    lung = make_phantom("lung tumor", "CT", size=SIZE, seed=2)
    assert _median(lung, "lung") < -700
    assert float(np.median(lung.image.array[lung.mask.array.astype(bool)])) > -300


def test_mr_intensities_are_nonnegative_with_sequence_contrast() -> None:
    t2 = make_phantom(HEALTHY, "MR-FLAIR", size=64, seed=3)  # a FLAIR healthy case is a head
    assert t2.image.array.min() >= 0
    flair = make_phantom("brain glioma", "MR-FLAIR", size=64, seed=1)
    white = _median(flair, "white matter")
    assert float(np.median(flair.image.array[flair.mask.array.astype(bool)])) > 1.3 * white  # bright edema
    assert _median(t2, "ventricle") < _median(t2, "white matter")  # FLAIR suppresses CSF
    head_t2 = make_phantom("brain glioma", "MR-T2", size=64, seed=1)
    assert _median(head_t2, "ventricle") > 1.5 * _median(head_t2, "white matter")  # CSF bright on T2


def test_glioma_mask_is_whole_tumor_on_flair_and_core_on_t1c() -> None:
    flair = make_phantom("brain glioma", "MR-FLAIR", size=SIZE, seed=5)
    t1c = make_phantom("brain glioma", "MR-T1c", size=SIZE, seed=5)
    edema = 100 + 8
    assert (flair.labels.array[flair.mask.array.astype(bool)] == edema).any()
    assert not (t1c.labels.array[t1c.mask.array.astype(bool)] == edema).any()


def test_bad_requests_are_clear_errors() -> None:
    with pytest.raises(DiffuGTSError, match="no modality"):
        make_phantom("lung tumor", "MR-T2", size=16)
    with pytest.raises(DiffuGTSError, match="unknown phantom category"):
        make_phantom("heart tumor", size=16)
    with pytest.raises(DiffuGTSError, match="size"):
        make_phantom("lung tumor", size=(16, 16), seed=0)


def test_written_phantom_keeps_its_exact_geometry(tmp_path) -> None:
    phantom = make_phantom("kidney tumor", "CT", size=40, seed=8)
    write_volume(phantom.image, tmp_path / "image.nii.gz")
    write_volume(phantom.mask, tmp_path / "mask.nii.gz")
    image, mask = read_volume(tmp_path / "image.nii.gz"), read_volume(tmp_path / "mask.nii.gz")
    assert image.grid.matches(phantom.image.grid, 1e-4) and mask.grid.matches(image.grid, 1e-9)
    np.testing.assert_array_equal(image.array, phantom.image.array)
    np.testing.assert_array_equal(mask.array, phantom.mask.array)


def test_a_phantoms_organ_mask_holds_its_tumor_and_is_empty_for_an_organ_it_has_no_tissue_of():
    phantom = make_phantom("kidney tumor", "CT", 40, seed=3)
    kidney = phantom.organ_mask("kidney").array > 0
    assert kidney[phantom.mask.array > 0].all() and kidney.sum() > phantom.mask.array.sum()
    assert phantom.organ_mask("kidney").grid.matches(phantom.image.grid)
    assert not phantom.organ_mask("breast").array.any()  # no phantom tissue is breast
