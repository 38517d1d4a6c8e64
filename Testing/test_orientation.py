"""Reorientation to RAS moves no voxel in space and is exactly undone."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_cases import DIRECTIONS, make_volume, rotation, world_points

from diffugts.io import orientation_code, to_ras


@pytest.mark.parametrize(
    ("direction", "code"),
    [("LPS", "LPS"), ("RAS", "RAS"), ("sagittal", "PIR"), ("oblique", "RPS"), ("oblique45", "LPS")],
)
def test_orientation_codes(direction, code):
    assert orientation_code(DIRECTIONS[direction]) == code


def test_orientation_code_of_every_axis_permutation_and_flip_is_unique():
    codes = set()
    for permutation in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]):
        for signs in np.ndindex(2, 2, 2):
            direction = np.eye(3)[:, permutation] * np.where(np.array(signs) == 1, -1.0, 1.0)
            codes.add(orientation_code(direction))
    assert len(codes) == 48


@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
def test_to_ras_keeps_every_voxel_at_its_world_position(direction):
    volume = make_volume(direction, shape_kji=(5, 6, 7))
    canonical, _ = to_ras(volume)
    assert orientation_code(canonical.direction) == "RAS"
    assert sorted(canonical.array.shape) == sorted(volume.array.shape)
    # Each canonical voxel sits where the same value sat in the original.
    inverse = np.linalg.inv(volume.grid.ijk_to_lps)
    points = world_points(canonical).reshape(-1, 3)
    ijk = points @ inverse[:3, :3].T + inverse[:3, 3]
    index = np.rint(ijk).astype(int)
    assert np.abs(ijk - index).max() < 1e-6
    original_values = volume.array[index[:, 2], index[:, 1], index[:, 0]]
    assert np.array_equal(original_values, canonical.array.ravel())


@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
def test_reorientation_is_exactly_inverted(direction):
    volume = make_volume(direction, "float32", shape_kji=(5, 6, 7))
    canonical, reorientation = to_ras(volume)
    output = canonical.like((canonical.array > 0).astype(np.uint8))
    back = reorientation.to_original(output)
    assert back.grid == volume.grid
    assert np.array_equal(back.array, (volume.array > 0).astype(np.uint8))
    assert back.array.flags["C_CONTIGUOUS"]


def test_residual_oblique_rotation_stays_in_the_direction():
    tilt = rotation((1, 0, 0), 20)
    volume = make_volume("RAS")
    volume.direction = np.diag([-1.0, -1.0, 1.0]) @ tilt
    canonical, _ = to_ras(volume)
    assert np.allclose(canonical.direction, volume.direction)
    assert np.array_equal(canonical.array, volume.array)
