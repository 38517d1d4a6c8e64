"""The Volume type: a voxel array and the exact grid it lies on.

Conventions (the same as SimpleITK and Slicer's ``arrayFromVolume``):
- ``array`` is indexed ``[k, j, i]`` (slice, row, column);
- ``spacing`` is per voxel axis ``(i, j, k)`` in mm;
- ``origin`` is the LPS position (mm) of voxel (0, 0, 0);
- ``direction`` is a 3x3 matrix whose columns are the LPS unit vectors of the i, j, k axes.
Every output of the engine is made with :meth:`Volume.like`, so it lies on its input's grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Voxel grid geometry: size (i, j, k), spacing, LPS origin and direction."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 values, row-major 3x3, columns are the i, j, k axes in LPS

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def ijk_to_lps(self) -> np.ndarray:
        """4x4 affine from voxel index (i, j, k) to LPS millimetres."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction_matrix * np.asarray(self.spacing, dtype=float)
        affine[:3, 3] = self.origin
        return affine

    @property
    def ijk_to_ras(self) -> np.ndarray:
        """4x4 affine from voxel index (i, j, k) to RAS millimetres (Slicer's world, NIfTI's sform)."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.ijk_to_lps

    def matches(self, other: Grid, tolerance: float = 1e-6) -> bool:
        """True when both grids are the same within ``tolerance`` (mm for origin and spacing)."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, rtol=0, atol=tolerance)
            and np.allclose(self.origin, other.origin, rtol=0, atol=tolerance)
            and np.allclose(self.direction, other.direction, rtol=0, atol=tolerance)
        )


@dataclass
class Volume:
    """A 3D image: array indexed [k, j, i] plus its grid, modality hint and where it came from."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    modality: str = "unknown"
    source: str | None = None
    source_ndim: int = 3  # 2 for a 2D image read as a one-slice volume; writers give it back as 2D
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 3D [k, j, i], got shape {self.array.shape}")

    @property
    def size(self) -> tuple[int, int, int]:
        """Number of voxels along i, j, k."""
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def grid(self) -> Grid:
        return Grid(self.size, self.spacing, self.origin, tuple(self.direction.ravel().tolist()))

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def like(self, array: np.ndarray, *, modality: str | None = None) -> Volume:
        """A new volume on exactly this grid (same spacing, origin, direction) holding ``array``."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} differs from the grid's {self.array.shape}")
        return replace(
            self,
            array=array,
            direction=self.direction.copy(),
            modality=self.modality if modality is None else modality,
            warnings=[],
            metadata={},
        )
