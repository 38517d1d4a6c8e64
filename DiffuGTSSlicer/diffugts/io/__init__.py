"""Volume I/O that never moves a voxel: read, validate, reorient to RAS and back, write atomically."""

from .modality import guess_modality
from .orientation import Reorientation, orientation_code, to_ras
from .read import IMAGE_SUFFIXES, read_grid, read_volume
from .safe_write import atomic_output, register_input, write_csv
from .volume import Grid, Volume
from .write import SEGMENTATION_SUFFIX, VOLUME_SUFFIXES, Segment, to_sitk, write_segmentation, write_volume

__all__ = [
    "IMAGE_SUFFIXES",
    "SEGMENTATION_SUFFIX",
    "VOLUME_SUFFIXES",
    "Grid",
    "Reorientation",
    "Segment",
    "Volume",
    "atomic_output",
    "guess_modality",
    "orientation_code",
    "read_grid",
    "read_volume",
    "register_input",
    "to_ras",
    "to_sitk",
    "write_csv",
    "write_segmentation",
    "write_volume",
]
