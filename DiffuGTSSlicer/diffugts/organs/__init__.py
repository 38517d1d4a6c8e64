"""Organs: the engine's organ vocabulary and organ priors (probability maps on the input's grid).

``organ_prior(image, organ)`` gives an :class:`OrganPrior`; ``organ_for(prompt)`` the organ a prompt names.
Imports are lazy: the vocabulary (``diffugts.organs.labels``) loads without SimpleITK.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"OrganPrior": "prior", "organ_prior": "prior", "organ_priors": "prior", "user_prior": "prior",
            "organ_for": "naming"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
