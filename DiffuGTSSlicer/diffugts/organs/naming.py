"""Which organ a name or a prompt means: "liver", "Left lung" or "mass in the pancreatic head" -> "pancreas"."""

from __future__ import annotations

from ..terminology import find_organ
from .atlas import atlas_organs
from .ct_rules import RULE_ORGANS
from .labels import LABEL_OF

PLAIN_NAMES = frozenset(LABEL_OF) | frozenset(RULE_ORGANS) | {"head"}


def organ_for(text: str) -> str:
    """The organ name a prior is asked for: the text itself when it is an organ name, else the organ the
    prompt names (terminology's display name, lower case), else the text (which then gets the body)."""
    name = " ".join(text.lower().split())
    if name in PLAIN_NAMES or name in atlas_organs():
        return name
    organ = find_organ(name)
    return organ.name if organ else name
