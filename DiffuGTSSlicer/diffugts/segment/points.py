"""Points and boxes a user places to correct a prompt's result (plain Python: the request and the client read it).

Positions are patient coordinates in mm, RAS (Slicer's world) inside the engine; :func:`ras` reads LPS too.
What the engine does with them: :mod:`.clicks`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import DiffuGTSError

COORDINATES = ("RAS", "LPS")
Vector = tuple[float, float, float]


@dataclass(frozen=True)
class Point:
    """A click: ``position`` in RAS mm; ``prompt``: the prompt it corrects (None: the only prompt)."""

    position: Vector
    positive: bool = True
    prompt: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", ras(self.position))


@dataclass(frozen=True)
class ClickBox:
    """A box (two opposite corners, RAS mm) that restricts ``prompt`` (None: the only prompt) to its inside."""

    low: Vector
    high: Vector
    prompt: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", ras(self.low))
        object.__setattr__(self, "high", ras(self.high))


@dataclass(frozen=True)
class Guidance:
    """One prompt's points and box (plain data: it is an input of the stages it changes)."""

    points: tuple[Point, ...] = ()
    box: ClickBox | None = None

    def __bool__(self) -> bool:
        return bool(self.points) or self.box is not None

    @property
    def positive(self) -> tuple[Point, ...]:
        return tuple(p for p in self.points if p.positive)

    @property
    def negative(self) -> tuple[Point, ...]:
        return tuple(p for p in self.points if not p.positive)


def ras(position: Sequence[float], coordinates: str = "RAS") -> Vector:
    """A position as RAS mm, from RAS or LPS (Slicer shows both; LPS negates the first two)."""
    if coordinates not in COORDINATES:
        raise DiffuGTSError(f"unknown coordinates {coordinates!r}", hint="Use RAS (Slicer's world) or LPS.")
    try:
        values = [float(v) for v in position]
    except (TypeError, ValueError):
        values = []
    if len(values) != 3 or not all(math.isfinite(v) for v in values) or isinstance(position, str):
        raise DiffuGTSError(f"a position must be three finite numbers (mm), not {position!r}")
    x, y, z = values
    return (-x, -y, z) if coordinates == "LPS" else (x, y, z)


def guidance_per_prompt(texts: Sequence[str], points: Sequence[Point] = (),
                        box: ClickBox | Sequence[ClickBox] | None = None) -> list[Guidance]:
    """Each prompt's Guidance (in the order of ``texts``); a point or box naming no prompt needs a single prompt."""
    boxes = [box] if isinstance(box, ClickBox) else list(box or ())
    found: dict[int, tuple[list[Point], list[ClickBox]]] = {n: ([], []) for n in range(len(texts))}
    for item in [*points, *boxes]:
        found[_prompt_index(texts, item)][0 if isinstance(item, Point) else 1].append(item)
    guidance = []
    for n, (chosen, given) in found.items():
        if len(given) > 1:
            raise DiffuGTSError(f"{len(given)} boxes for prompt {texts[n]!r}", hint="Give at most one box per prompt.")
        guidance.append(Guidance(tuple(chosen), given[0] if given else None))
    return guidance


def _prompt_index(texts: Sequence[str], item: Point | ClickBox) -> int:
    what = "point" if isinstance(item, Point) else "box"
    if item.prompt is None:
        if len(texts) > 1:
            raise DiffuGTSError(f"a {what} must say which of the {len(texts)} prompts it corrects",
                                hint="Name its prompt, e.g. --point 'kidney tumor@R,A,S' or \"prompt\" in the job.")
        return 0
    if item.prompt.strip() not in [t.strip() for t in texts]:
        raise DiffuGTSError(f"the {what} names prompt {item.prompt!r}, which is not among the prompts",
                            hint=f"Name one of: {', '.join(repr(t) for t in texts)}.")
    return [t.strip() for t in texts].index(item.prompt.strip())




POINT_FIELDS = {"prompt", "position", "positive"}
BOX_FIELDS = {"prompt", "min", "max"}
MAX_POINTS = 200


def points_from_json(items: object, coordinates: str = "RAS") -> tuple[Point, ...]:
    """Points from a request's JSON list ``[{"prompt": ..., "position": [x, y, z], "positive": true}]``."""
    points = []
    for item in _objects(items, "points", POINT_FIELDS, "position"):
        positive = item.get("positive", True)
        if not isinstance(positive, bool):
            raise DiffuGTSError(f"a point's 'positive' must be true or false, not {positive!r}")
        points.append(Point(ras(item["position"], coordinates), positive, _prompt(item)))
    return tuple(points)


def boxes_from_json(items: object, coordinates: str = "RAS") -> tuple[ClickBox, ...]:
    """Boxes from a request's JSON list ``[{"prompt": ..., "min": [x, y, z], "max": [x, y, z]}]``."""
    return tuple(ClickBox(ras(item["min"], coordinates), ras(item["max"], coordinates), _prompt(item))
                 for item in _objects(items, "boxes", BOX_FIELDS, "min", "max"))


def _objects(items: object, name: str, fields: set[str], *required: str) -> list[dict]:
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, dict) for i in items):
        raise DiffuGTSError(f"'{name}' must be a list of objects",
                            hint='e.g. [{"prompt": "kidney tumor", "position": [10.5, -20, 30], "positive": true}].')
    if len(items) > MAX_POINTS:
        raise DiffuGTSError(f"at most {MAX_POINTS} {name} per request")
    for item in items:
        unknown = sorted(set(item) - fields)
        missing = [f for f in required if f not in item]
        if unknown or missing:
            raise DiffuGTSError(f"one of the {name} has " + (f"unknown field(s) {', '.join(unknown)}" if unknown
                                                              else f"no {', '.join(missing)}"),
                                hint=f"Its fields: {', '.join(sorted(fields))}.")
    return list(items)


def _prompt(item: dict) -> str | None:
    prompt = item.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise DiffuGTSError(f"a click's 'prompt' must be one of the prompts' texts, not {prompt!r}")
    return prompt


def points_to_json(points: Sequence[Point]) -> list[dict]:
    """Points as a request's JSON list (RAS)."""
    return [{**({"prompt": p.prompt} if p.prompt is not None else {}), "position": list(p.position),
             "positive": p.positive} for p in points]


def boxes_to_json(boxes: Sequence[ClickBox]) -> list[dict]:
    """Boxes as a request's JSON list (RAS)."""
    return [{**({"prompt": b.prompt} if b.prompt is not None else {}), "min": list(b.low), "max": list(b.high)}
            for b in boxes]
