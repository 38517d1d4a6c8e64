"""DiffuGTS: zero-shot, text-prompted tumor segmentation in CT and MRI with frozen diffusion models."""

__version__ = "0.1.0"
