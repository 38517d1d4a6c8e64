"""``_()`` for translatable strings: Slicer's translator when present, the English text otherwise."""

from __future__ import annotations

CONTEXT = "DiffuGTSSlicer"

try:
    from slicer.i18n import translate as _slicer_translate
except ImportError:  # Slicer before 5.4, or slicer-core outside the application
    _slicer_translate = None


def _(text: str) -> str:
    """Translate ``text`` in this module's context."""
    return _slicer_translate(CONTEXT, text) if _slicer_translate else text
