"""Licence classes: may weights trained on a case ship under Apache-2.0 ("permissive"), or not."""

from __future__ import annotations

import re

PERMISSIVE, NON_COMMERCIAL, UNKNOWN = "permissive", "non-commercial", "unknown"
CLASSES = (PERMISSIVE, UNKNOWN, NON_COMMERCIAL)  # from least to most restrictive

_NON_COMMERCIAL = re.compile(r"(\bnc\b|non[- ]?commercial|research use only)")
_NO_DERIVATIVES = re.compile(r"\bnd\b|no[- ]?derivatives")
_UNKNOWN = re.compile(r"\b(unknown|verify|unverified|not stated|unclear)\b")
# a clause on where the data came from ("subject provenance not stated") says nothing of the licence
_ABOUT_PROVENANCE = re.compile(r"\b(provenance|origin)\b")
_PERMISSIVE = re.compile(r"\bcc0\b|\bcc by\b|public domain|\bbsd\b|\bmit\b|\bapache\b")


def licence_class(text: str) -> str:
    """'permissive' (CC0, CC BY/BY-SA, public domain, BSD, MIT, Apache), 'non-commercial' (NC) or 'unknown'.

    Clauses about the data's provenance ("subject provenance not stated") do not make the licence unknown;
    a clause that doubts the licence itself ("- verify", "lists the licence as unknown") does.
    """
    lowered = re.sub(r"[-_]", " ", text.lower())
    if _NON_COMMERCIAL.search(lowered):
        return NON_COMMERCIAL
    if _NO_DERIVATIVES.search(lowered):
        return UNKNOWN  # no-derivatives terms: whether trained weights are a derivative is not settled
    clauses = re.split(r"[;,()]| - ", lowered)
    if any(_UNKNOWN.search(c) and not _ABOUT_PROVENANCE.search(c) for c in clauses):
        return UNKNOWN
    return PERMISSIVE if _PERMISSIVE.search(lowered) else UNKNOWN


def most_restrictive(classes: list[str]) -> str:
    return max(classes, key=CLASSES.index)
