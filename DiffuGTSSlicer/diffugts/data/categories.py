"""Tumor categories with their text names: what a prompt says, which organ, which normal anatomy contrasts it."""

from __future__ import annotations

from dataclasses import dataclass

CT = "CT"
MR_SEQUENCES = ("MR-T1", "MR-T1c", "MR-T2", "MR-FLAIR")
TORSO_MODALITIES = (CT, "MR-T1", "MR-T1c", "MR-T2")
HEAD_MODALITIES = MR_SEQUENCES
HEALTHY = "healthy"


@dataclass(frozen=True)
class TumorCategory:
    """One kind of tumor: its prompt name, synonyms, host organ and body region, and the modalities it is imaged in."""

    name: str
    synonyms: tuple[str, ...]
    organ: str
    body_region: str
    modalities: tuple[str, ...]
    phantom: bool = True  # the phantom generator has a planner for it (diffugts.data.phantom.tumors.PLANNERS)

    @property
    def normal_prompt(self) -> str:
        """The healthy-anatomy text that contrasts this category ("normal liver")."""
        return f"normal {self.organ}"

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.synonyms)


CATEGORIES: dict[str, TumorCategory] = {
    category.name: category
    for category in (
        TumorCategory("liver tumor", ("liver lesion", "hepatic tumor", "liver cancer", "hepatocellular carcinoma",
                                      "liver metastasis"), "liver", "abdomen", TORSO_MODALITIES),
        TumorCategory("hepatic vessel tumor", ("hepatic vessel tumour", "tumor along the hepatic vessels",
                                               "perivascular liver tumor"), "liver", "abdomen", (CT,)),
        TumorCategory("kidney tumor", ("renal tumor", "renal mass", "kidney cancer", "renal cell carcinoma"),
                      "kidney", "abdomen", TORSO_MODALITIES),
        TumorCategory("kidney cyst", ("renal cyst", "cystic kidney lesion"), "kidney", "abdomen", TORSO_MODALITIES),
        TumorCategory("pancreatic tumor", ("pancreas tumor", "pancreatic mass", "pancreatic cancer",
                                           "mass in the pancreatic head"), "pancreas", "abdomen", TORSO_MODALITIES),
        TumorCategory("lung tumor", ("lung nodule", "lung cancer", "pulmonary mass", "spiculated lung nodule"),
                      "lung", "chest", (CT,)),
        TumorCategory("colon tumor", ("colon cancer", "colorectal tumor", "bowel wall thickening", "colonic mass"),
                      "colon", "abdomen", (CT,)),
        TumorCategory("brain glioma", ("glioma", "brain tumor", "glioblastoma", "brain tumour"),
                      "brain", "brain", HEAD_MODALITIES),
        TumorCategory("bone lesion", ("bone metastasis", "vertebral lesion", "lytic bone lesion",
                                      "sclerotic bone lesion"), "bone", "abdomen", (CT, "MR-T1", "MR-T2")),
        # Categories synthesized into real scans only (diffugts.data.synth): no phantom planner.
        TumorCategory("brain metastasis", ("brain metastases", "cerebral metastasis", "metastasis in the brain",
                                           "ring-enhancing brain lesion"), "brain", "brain", HEAD_MODALITIES,
                      phantom=False),
        TumorCategory("meningioma", ("meningeal tumor", "dural-based mass", "extra-axial brain tumor"),
                      "brain", "brain", (CT, *MR_SEQUENCES), phantom=False),
        TumorCategory("soft-tissue sarcoma", ("soft tissue sarcoma", "sarcoma", "muscle mass", "soft-tissue mass",
                                              "sarcoma of the thigh"), "muscle", "limb", TORSO_MODALITIES,
                      phantom=False),
        TumorCategory("lymph node", ("enlarged lymph node", "lymphadenopathy", "lymph node metastasis",
                                     "nodal mass"), "lymph node", "chest", TORSO_MODALITIES, phantom=False),
        TumorCategory("breast mass", ("breast tumor", "breast tumour", "breast cancer", "breast lesion"),
                      "breast", "breast", TORSO_MODALITIES, phantom=False),
    )
}


PHANTOM_CATEGORIES = (*(name for name, category in CATEGORIES.items() if category.phantom), HEALTHY)


def find_category(text: str) -> TumorCategory | None:
    """The category whose name or synonym is ``text`` (case-insensitive), or None for free text."""
    wanted = " ".join(text.lower().split())
    for category in CATEGORIES.values():
        if wanted in category.names():
            return category
    return None
