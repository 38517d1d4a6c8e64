"""DiffuGTS: zero-shot, text-prompted tumor segmentation in CT and MRI with frozen diffusion models."""

import os as _os

__version__ = "0.1.0"

# Large CPU tensors on 2 MB transparent huge pages (Linux): one page fault per 2 MB instead of per 4 kB
# when a stage's big tensors are allocated afresh. torch reads this once, at its first allocation, so it
# acts when diffugts is imported before torch (the command line, the server, batch workers). Measured:
# the demo VAE decode of the 256x256x128 benchmark's latent, 1.55 -> 1.0 s. THP_MEM_ALLOC_ENABLE=0 turns it off.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
