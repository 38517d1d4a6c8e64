"""Tumors synthesized into real tumor-free scans (Hu et al. CVPR 2023; DiffTumor, CVPR 2024): ``write_synth_set``.

For each case a tumor-free corpus scan (the host) gets one lesion of a category: placed in the region of
its organ (the host's organ map, else diffugts.organs' prior; on the surface for categories that grow out
of the organ), shaped as an elastically deformed lobulated (sometimes spiculated) ellipsoid, its
compartments (solid tumor or enhancing rim, necrotic or cystic core, calcification, edema) given
intensities relative to the host organ as measured in that scan, textured with noise that has the host's
own noise level, pushed into its surroundings (mass effect) and blended with partial-volume edges at the
scan's resolution. Image, mask and organ mask stay on the host's exact grid; the image keeps its pixel type.
The same seed gives the same cases, voxel for voxel.

Sizes (greatest diameter, drawn log-uniformly; capped at 60% of the scan's smallest extent and shrunk until
the lesion fits its organ):

| category | diameter mm | published range (what it follows) |
| --- | --- | --- |
| liver tumor | 5-120 | LiTS lesions span < 10 mm to > 150 mm; most HCC and metastases 10-100 mm |
| hepatic vessel tumor | 10-80 | MSD Task08 tumours |
| kidney tumor | 15-120 | KiTS19/23: median about 40 mm, 10 to > 150 mm |
| kidney cyst | 5-60 | simple (Bosniak I-II) cysts, mostly < 50 mm |
| pancreatic tumor | 10-50 | PDAC median about 30 mm at diagnosis (MSD Task07) |
| lung tumor | 5-70 | nodules 5-30 mm (Fleischner: >= 6 mm reported), masses > 30 mm |
| colon tumor | 20-70 | colorectal cancer: wall thickening > 5-10 mm over 2-7 cm |
| bone lesion | 5-40 | vertebral and pelvic metastases |
| brain glioma | 10-50 (core), edema 1.4-2.2x | BraTS whole tumor about 10-250 mL |
| brain metastasis | 5-30, edema 2-4x | BraTS-METS: most < 20 mm, edema often larger than the lesion |
| meningioma | 10-60 | incidental 10-30 mm, symptomatic up to 60 mm and more |
| soft-tissue sarcoma | 30-150 | extremity sarcoma: median 80-100 mm at diagnosis |
| lymph node | 10-35 (long axis) | enlarged: short axis >= 10 mm (RECIST pathologic >= 15 mm) |
| breast mass | 5-50 | T1 <= 20 mm, T2 20-50 mm |

Appearance per category and modality: ``recipes.RECIPES``. Masks follow the phantom convention: glioma and
metastasis whole tumor (edema included) on FLAIR and T2, the core (rim and necrosis) on T1 and T1c; other
categories the lesion without its edema.
"""

from __future__ import annotations

from .lesion import Synthesized, synthesize
from .recipes import RECIPES, Recipe
from .writer import write_synth_set

__all__ = ["RECIPES", "Recipe", "Synthesized", "synthesize", "write_synth_set"]
