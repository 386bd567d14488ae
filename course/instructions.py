"""Edit triplets for instruction editing (Brooks et al. 2023, InstructPix2Pix, §3.1; lesson 09): (scene, instruction,
edited scene), exact and free, since the renderer draws both scenes.

    EDITS        colour · shape · move · resize · add · remove
    sample_edit  a source layout (1–2 objects), an edit of one kind, the target layout, and the instruction's phrasings
                 in English and French (« rends le cercle bleu », "make the star bigger", « ajoute un carré rouge en bas
                 à droite », "remove the heart")
    render_edit  both layouts drawn with the same per-object jitter: what the edit keeps is drawn pixel for pixel alike

Brooks et al. build their triplets with GPT-3 and Prompt-to-Prompt; ours are exact. The held-out split edits objects
whose (shape, colour) pair no training scene ever showed (:data:`course.scenes.HELD_OUT`): the edited or added object
of every test triplet is such a pair, while training triplets never contain one.

The captions' vocabulary has no verbs: the instructions' new words (:data:`NEW_WORDS`) get new token ids after the
shipped tokenizer's, and new rows of CLIP's token embedding, learned with the editing model (:mod:`course.instruct`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course.captions import EN_SHAPES, FR_COLOURS, FR_POSITIONS, FR_SHAPES, noun_phrase
from course.scene_reader import Layout
from course.scenes import BACKGROUNDS, COLOURS, HELD_OUT, POSITIONS, SHAPES, SIZES, Obj

EDITS: tuple[str, ...] = ("colour", "shape", "move", "resize", "add", "remove")
# Every word the instructions use that the captions' tokenizer does not know, in a fixed order: their ids follow the
# shipped vocabulary's (tests/test_instruct.py checks that the instructions need no other).
NEW_WORDS: tuple[str, ...] = (
    "make", "paint", "turn", "into", "replace", "with", "move", "bigger", "smaller", "enlarge", "shrink", "add", "put", "remove", "delete",
    "rends", "peins", "transforme", "remplace", "par", "déplace", "mets", "agrandis", "rapetisse", "plus", "ajoute", "place", "enlève",
    "supprime", "le", "la", "l",
)
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class Edit:
    """One triplet: the source and target layouts, each object's jitter seed, the edit and its phrasings."""

    kind: str
    source: Layout
    target: Layout
    source_seeds: tuple[int, ...]
    target_seeds: tuple[int, ...]
    instructions: dict[str, tuple[str, ...]]  # language → phrasings

    def instruction(self, lang: str, rng: np.random.Generator | None = None) -> str:
        options = self.instructions[lang]
        return options[0] if rng is None else options[rng.integers(len(options))]


def _cell(position: str) -> tuple[int, int]:
    return divmod(POSITIONS.index(position), 3)


def _position(cell: tuple[int, int]) -> str:
    return POSITIONS[3 * cell[0] + cell[1]]


def _en_ref(obj: Obj, with_colour: bool) -> str:
    return "the " + (f"{obj.colour} " if with_colour else "") + EN_SHAPES[obj.shape][0]


def _fr_ref(obj: Obj, with_colour: bool) -> str:
    noun, _, gender = FR_SHAPES[obj.shape]
    article = "l'" if noun[0] in "aeiouéèh" else ("la " if gender == "f" else "le ")
    return article + noun + (f" {FR_COLOURS[obj.colour][1 if gender == 'f' else 0]}" if with_colour else "")


def _en_to(position: str) -> str:
    return "to the centre" if position == "centre" else f"to the {position}"


def phrasings(kind: str, obj: Obj, new: Obj | None, with_colour: bool) -> dict[str, tuple[str, ...]]:
    """The instruction for editing ``obj`` into ``new`` (for "add": ``new`` is the added object), in both languages."""
    en, fr = _en_ref(obj, with_colour) if obj else "", _fr_ref(obj, with_colour) if obj else ""
    gender = FR_SHAPES[obj.shape][2] if obj else "m"
    if kind == "colour":
        agreed = FR_COLOURS[new.colour][1 if gender == "f" else 0]
        return {"en": (f"make {en} {new.colour}", f"paint {en} {new.colour}"),
                "fr": (f"rends {fr} {agreed}", f"peins {fr} en {FR_COLOURS[new.colour][0]}")}
    if kind == "shape":
        noun, _, new_gender = FR_SHAPES[new.shape]
        indefinite = "une" if new_gender == "f" else "un"
        article = "an" if EN_SHAPES[new.shape][0][0] in "aeiou" else "a"
        return {"en": (f"turn {en} into {article} {EN_SHAPES[new.shape][0]}", f"replace {en} with {article} {EN_SHAPES[new.shape][0]}"),
                "fr": (f"transforme {fr} en {noun}", f"remplace {fr} par {indefinite} {noun}")}
    if kind == "move":
        where = _position(new.cell)
        return {"en": (f"move {en} {_en_to(where)}", f"put {en} {_en_to(where)}"),
                "fr": (f"déplace {fr} {FR_POSITIONS[where]}", f"mets {fr} {FR_POSITIONS[where]}")}
    if kind == "resize":
        bigger = new.size == "large"
        adjective = ("grande" if bigger else "petite") if gender == "f" else ("grand" if bigger else "petit")
        return {"en": (f"make {en} {'bigger' if bigger else 'smaller'}", f"{'enlarge' if bigger else 'shrink'} {en}"),
                "fr": (f"{'agrandis' if bigger else 'rapetisse'} {fr}", f"rends {fr} plus {adjective}")}
    if kind == "add":
        where = _position(new.cell)
        from course.captions import EN_POSITIONS

        en_np, fr_np = noun_phrase(new, "en", with_size=False), noun_phrase(new, "fr", with_size=False)
        return {"en": (f"add {en_np} {EN_POSITIONS[where]}", f"put {en_np} {EN_POSITIONS[where]}"),
                "fr": (f"ajoute {fr_np} {FR_POSITIONS[where]}", f"place {fr_np} {FR_POSITIONS[where]}")}
    if kind == "remove":
        return {"en": (f"remove {en}", f"delete {en}"), "fr": (f"enlève {fr}", f"supprime {fr}")}
    raise ValueError(f"unknown edit {kind!r}: choose one of {', '.join(EDITS)}")


def _combos(split: str, held_out: bool) -> list[tuple[str, str]]:
    every = [(s, c) for s in SHAPES for c in COLOURS]
    return sorted(HELD_OUT) if held_out else [p for p in every if p not in HELD_OUT]


def _pick(rng: np.random.Generator, items: list):
    return items[rng.integers(len(items))]


def sample_edit(rng: np.random.Generator, split: str = "train", kind: str | None = None) -> Edit:
    """One triplet of edit ``kind`` (default: drawn uniformly). "train": no held-out pair anywhere; "heldout": the edited
    (or added) object is a held-out pair after the edit, every other object a training pair."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    kind = kind if kind is not None else _pick(rng, list(EDITS))
    if kind not in EDITS:
        raise ValueError(f"unknown edit {kind!r}: choose one of {', '.join(EDITS)}")
    test = split == "heldout"
    train_pairs = _combos(split, False)
    n = 2 if kind == "remove" else 1 if kind == "add" else (1 if rng.random() < 0.7 else 2)
    cells = [divmod(int(i), 3) for i in rng.permutation(9)]
    background = BACKGROUNDS[0] if rng.random() < 0.5 else _pick(rng, list(BACKGROUNDS))
    objects = [Obj(*_pick(rng, train_pairs), _pick(rng, list(SIZES)), cells[i]) for i in range(n)]
    seeds = [int(s) for s in rng.integers(2**31, size=n + 1)]
    free = cells[n:]
    edited = 0
    obj = objects[edited]
    new_seed = seeds[-1]
    if kind == "colour":
        pool = [p for p in _combos(split, test) if p[0] == obj.shape and p[1] != obj.colour] or [
            p for p in _combos(split, test) if p[1] != obj.colour]
        shape, colour = _pick(rng, pool)
        obj = objects[edited] = Obj(shape, obj.colour, obj.size, obj.cell) if shape != obj.shape else obj
        new = Obj(obj.shape, colour, obj.size, obj.cell)
    elif kind == "shape":
        pool = [p for p in _combos(split, test) if p[1] == obj.colour and p[0] != obj.shape] or [
            p for p in _combos(split, test) if p[0] != obj.shape]
        shape, colour = _pick(rng, pool)
        obj = objects[edited] = Obj(obj.shape, colour, obj.size, obj.cell) if colour != obj.colour else obj
        new = Obj(shape, obj.colour, obj.size, obj.cell)
    elif kind in ("move", "resize", "remove"):
        if test:
            obj = objects[edited] = Obj(*_pick(rng, _combos(split, True)), obj.size, obj.cell)
        if kind == "move":
            new = Obj(obj.shape, obj.colour, obj.size, free[0])
        elif kind == "resize":
            new = Obj(obj.shape, obj.colour, "large" if obj.size == "small" else "small", obj.cell)
        else:
            new = None
    else:  # add
        new = Obj(*_pick(rng, _combos(split, test)), _pick(rng, list(SIZES)), free[0])
    with_colour = n > 1 and (len({o.shape for o in objects}) < n or rng.random() < 0.5) or (n == 1 and rng.random() < 0.5)
    if kind == "add":
        target_objects, target_seeds = objects + [new], seeds[:n] + [new_seed]
        words = phrasings(kind, None, new, False)
    elif kind == "remove":
        target_objects, target_seeds = objects[1:], seeds[1:n]
        words = phrasings(kind, obj, None, with_colour)
    else:
        keep_jitter = kind in ("colour", "shape")
        target_objects = [new] + objects[1:]
        target_seeds = [seeds[0] if keep_jitter else new_seed] + seeds[1:n]
        words = phrasings(kind, obj, new, with_colour)
    if any(o.colour == obj.colour and o.shape == obj.shape for o in objects[1:]) and kind != "add":
        return sample_edit(rng, split, kind)  # two identical objects: "the red circle" would not say which
    return Edit(kind, Layout(background, tuple(objects)), Layout(background, tuple(target_objects)), tuple(seeds[:n]), tuple(target_seeds), words)


def render_edit(edit: Edit, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The source and the target (size, size, 3) uint8, each object jittered by its own seed (kept objects: identical)."""
    from course.render import render

    def draw(layout: Layout, seeds: tuple[int, ...]) -> np.ndarray:
        return render(layout, size, [np.random.default_rng(s) for s in seeds])

    return draw(edit.source, edit.source_seeds), draw(edit.target, edit.target_seeds)
