"""Zero-shot splits: which tumor categories the heads may train on (seen) and which are held out (unseen).

The one source is ``zero_shot_splits.json`` beside this file; training and evaluation both call
:func:`load_splits`, so they cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DiffuGTSError
from .categories import CATEGORIES, find_category

SPLITS_FILE = Path(__file__).with_name("zero_shot_splits.json")
SEEN, UNSEEN = "seen", "unseen"


@dataclass(frozen=True)
class ZeroShotSplit:
    name: str
    description: str
    seen: tuple[str, ...]
    unseen: tuple[str, ...]

    def role(self, category_or_prompt: str) -> str | None:
        """"seen", "unseen", or None when the text names no category of this split."""
        category = find_category(category_or_prompt)
        if category is None:
            return None
        if category.name in self.seen:
            return SEEN
        return UNSEEN if category.name in self.unseen else None


def load_splits(path: str | Path = SPLITS_FILE) -> dict[str, ZeroShotSplit]:
    """Every split in the config, checked: known categories only, and no category both seen and unseen."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        entries = config["splits"]
        splits = {
            name: ZeroShotSplit(name, entry.get("description", ""), tuple(entry["seen"]), tuple(entry["unseen"]))
            for name, entry in entries.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DiffuGTSError(f"cannot read the zero-shot split config ({error})", path=path,
                            hint="Fix the JSON: {\"splits\": {NAME: {\"seen\": [...], \"unseen\": [...]}}}.") from None
    for split in splits.values():
        unknown = sorted(set(split.seen + split.unseen) - set(CATEGORIES))
        if unknown:
            raise DiffuGTSError(f"split {split.name!r} names unknown categories {unknown}", path=path,
                                hint=f"Use names from: {', '.join(CATEGORIES)}.")
        both = sorted(set(split.seen) & set(split.unseen))
        if both:
            raise DiffuGTSError(f"split {split.name!r} has categories both seen and unseen: {both}", path=path)
    return splits


def zero_shot_split(name: str | None = None, path: str | Path = SPLITS_FILE) -> ZeroShotSplit:
    """One split by name (the config's default when None)."""
    splits = load_splits(path)
    if name is None:
        name = json.loads(Path(path).read_text(encoding="utf-8")).get("default", next(iter(splits)))
    if name not in splits:
        raise DiffuGTSError(f"no zero-shot split named {name!r}", path=path,
                            hint=f"Known splits: {', '.join(splits)}.")
    return splits[name]
