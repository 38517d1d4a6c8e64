"""Text side of the open-vocabulary attention: encoders, their embedding cache, prompt handling."""

from .cache import CachedTextEncoder
from .encoders import DEFAULT_ENCODER, TextEncoder, build_text_encoder
from .prompts import Prompt, normalize, parse_prompt, relevance

__all__ = [
    "DEFAULT_ENCODER",
    "CachedTextEncoder",
    "Prompt",
    "TextEncoder",
    "build_text_encoder",
    "normalize",
    "parse_prompt",
    "relevance",
]
