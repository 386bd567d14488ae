"""Scenes of the captioned shapes dataset: the vocabulary, what a scene is, and how scenes are drawn at random.

A scene is one of three kinds, each fully described by its attributes:

- ``single``: one object (shape, colour, size) in one cell of a 3 × 3 grid;
- ``count``:  two or three identical objects (shape, colour, size) in distinct cells;
- ``pair``:   two different objects in one row or one column, described by a relation
  ("a red circle above a blue square").

Held-out combinations: the (shape, colour) pairs of :data:`HELD_OUT` never appear in the ``train``
split, so later lessons can test prompts never seen in training. The ``heldout`` split uses only them;
``all`` mixes everything (the evaluator is trained on ``all``: a judge must know every combination).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart", "diamond", "cross", "hexagon")
NEW_SHAPES: tuple[str, ...] = ("crescent",)  # drawn only for lesson 11's new word (course.concept): in no split, no caption, no judge
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "grey")
BACKGROUNDS: tuple[str, ...] = ("white", "black", "beige")
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = (
    "top left", "top", "top right",
    "left", "centre", "right",
    "bottom left", "bottom", "bottom right",
)  # index = 3 · row + column
RELATIONS: tuple[str, ...] = ("above", "below", "left of", "right of")
KINDS: tuple[str, ...] = ("single", "count", "pair")
COUNTS: tuple[int, ...] = (1, 2, 3)
SPLITS: tuple[str, ...] = ("train", "heldout", "all")

# One held-out (shape, colour) pair per shape and per colour: a diagonal of the 8 × 8 table.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {
        ("circle", "purple"), ("square", "pink"), ("triangle", "blue"), ("star", "red"),
        ("heart", "green"), ("diamond", "grey"), ("cross", "yellow"), ("hexagon", "orange"),
    }
)


def _check(value, choices, what: str):
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}: choose one of {', '.join(map(str, choices))}")
    return value


@dataclass(frozen=True)
class Obj:
    """One drawn object: what it is, and which grid cell it sits in (row, column ∈ {0, 1, 2})."""

    shape: str
    colour: str
    size: str
    cell: tuple[int, int]

    def __post_init__(self):
        _check(self.shape, SHAPES + NEW_SHAPES, "shape")
        _check(self.colour, COLOURS, "colour")
        _check(self.size, SIZES, "size")
        row, col = self.cell
        if not (0 <= row < 3 and 0 <= col < 3):
            raise ValueError(f"cell must be (row, column) with both in 0…2, got {self.cell}")

    @property
    def position(self) -> str:
        return POSITIONS[3 * self.cell[0] + self.cell[1]]


@dataclass(frozen=True)
class Scene:
    """A scene: its kind, background, objects and (for pairs) the relation of objects[0] to objects[1]."""

    kind: str
    background: str
    objects: tuple[Obj, ...]
    relation: str | None = None

    def __post_init__(self):
        _check(self.kind, KINDS, "scene kind")
        _check(self.background, BACKGROUNDS, "background")
        n = len(self.objects)
        cells = [o.cell for o in self.objects]
        if len(set(cells)) != n:
            raise ValueError(f"objects must sit in distinct cells, got {cells}")
        if self.kind == "single" and n != 1:
            raise ValueError(f"a single scene has 1 object, got {n}")
        if self.kind == "count":
            if n not in (2, 3):
                raise ValueError(f"count must be in 1…3 (a count scene has 2 or 3 objects), got {n}")
            first = self.objects[0]
            if any((o.shape, o.colour, o.size) != (first.shape, first.colour, first.size) for o in self.objects):
                raise ValueError("the objects of a count scene must share shape, colour and size")
        if self.kind == "pair":
            if n != 2:
                raise ValueError(f"a pair scene has 2 objects, got {n}")
            _check(self.relation, RELATIONS, "relation")
            (ra, ca), (rb, cb) = cells
            ok = {
                "above": ca == cb and ra < rb,
                "below": ca == cb and ra > rb,
                "left of": ra == rb and ca < cb,
                "right of": ra == rb and ca > cb,
            }[self.relation]
            if not ok:
                raise ValueError(f"cells {cells} do not place object 1 {self.relation} object 2")
        elif self.relation is not None:
            raise ValueError(f"only pair scenes have a relation, got relation={self.relation!r} for {self.kind}")

    @property
    def count(self) -> int:
        """Number of drawn objects (1 for single, 2–3 for count, 2 for pair)."""
        return len(self.objects)

    def canonical(self) -> "Scene":
        """The same pair with the top (or left) object first: "above" or "left of" only."""
        if self.kind != "pair" or self.relation in ("above", "left of"):
            return self
        flipped = {"below": "above", "right of": "left of"}[self.relation]
        return Scene("pair", self.background, (self.objects[1], self.objects[0]), flipped)

    def combos(self) -> set[tuple[str, str]]:
        return {(o.shape, o.colour) for o in self.objects}


def single(shape: str, colour: str, position: str = "centre", size: str = "large", background: str = "white") -> Scene:
    """A one-object scene from attribute names, e.g. ``single("circle", "red", "top left")``."""
    index = POSITIONS.index(_check(position, POSITIONS, "position"))
    return Scene("single", background, (Obj(shape, colour, size, divmod(index, 3)),))


_EVERY = [(s, c) for s in SHAPES for c in COLOURS]
_COMBOS: dict[str, list[tuple[str, str]]] = {
    "train": [p for p in _EVERY if p not in HELD_OUT],
    "heldout": sorted(HELD_OUT),
    "all": _EVERY,
}


def _allowed_combos(split: str) -> list[tuple[str, str]]:
    """The (shape, colour) pairs a split may draw."""
    return _COMBOS[_check(split, SPLITS, "split")]


def sample_scene(
    rng: np.random.Generator, split: str = "train", kinds: tuple[str, ...] = KINDS, backgrounds: tuple[str, ...] = BACKGROUNDS
) -> Scene:
    """Draw a random scene of one of ``kinds``, on one of ``backgrounds``, whose (shape, colour) pairs belong to ``split``."""
    for kind in kinds:
        _check(kind, KINDS, "scene kind")
    for background in backgrounds:
        _check(background, BACKGROUNDS, "background")
    combos = _allowed_combos(split)
    kind = kinds[rng.integers(len(kinds))]
    background = backgrounds[rng.integers(len(backgrounds))]
    if kind == "single":
        shape, colour = combos[rng.integers(len(combos))]
        cell = divmod(int(rng.integers(9)), 3)
        return Scene("single", background, (Obj(shape, colour, SIZES[rng.integers(2)], cell),))
    if kind == "count":
        shape, colour = combos[rng.integers(len(combos))]
        n = int(rng.integers(2, 4))
        size = SIZES[rng.integers(2)]
        cells = [divmod(int(i), 3) for i in rng.permutation(9)[:n]]
        return Scene("count", background, tuple(Obj(shape, colour, size, c) for c in cells))
    # pair: two different (shape, colour) objects; in the heldout split at least one is held out
    while True:
        a = combos[rng.integers(len(combos))]
        pool = _allowed_combos("all" if split == "heldout" else split)
        b = pool[rng.integers(len(pool))]
        if a != b and (split != "heldout" or a in HELD_OUT):
            break
    if rng.integers(2):
        a, b = b, a
    relation = RELATIONS[rng.integers(4)]
    line, (i, j) = int(rng.integers(3)), sorted(rng.permutation(3)[:2].tolist())
    first, second = {
        "above": ((i, line), (j, line)),
        "below": ((j, line), (i, line)),
        "left of": ((line, i), (line, j)),
        "right of": ((line, j), (line, i)),
    }[relation]
    return Scene("pair", background, (Obj(*a, "large", first), Obj(*b, "large", second)), relation)
