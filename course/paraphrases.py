"""Phrasings a user types that the training captions never use: synonyms, reordered words, and "A and B".

The captions of :mod:`course.captions` follow a few templates (« un grand cercle rouge en haut à gauche »);
people write « un gros cercle rouge dans le coin en haut à gauche », "a big red circle in the middle",
"a red circle and a blue square". GenEval (Ghosh et al. 2023) asks such prompts of Stable Diffusion; the
benchmark of :mod:`course.geneval` asks them of our model, to measure how much of its adherence is the
template's. French agreement is kept (« une grosse étoile grise », « de petite taille »).
"""

from __future__ import annotations

import numpy as np

from course.captions import EN_SHAPES, FR_COLOURS, FR_SHAPES, FR_SIZES, LANGS, _en_article, _form, noun_phrase
from course.scenes import Obj, Scene

EN_SIZE_SYNONYMS = {"large": "big", "small": "tiny"}
EN_PLACES = {
    "top left": "in the top left corner", "top": "near the top", "top right": "in the top right corner",
    "left": "on the left side", "centre": "in the middle", "right": "on the right side",
    "bottom left": "in the bottom left corner", "bottom": "near the bottom", "bottom right": "in the bottom right corner",
}
FR_SIZE_SYNONYMS = {"large": ("gros", "grosse"), "small": ("tout petit", "toute petite")}
FR_PLACES = {
    "top left": "dans le coin en haut à gauche", "top": "tout en haut", "top right": "dans le coin en haut à droite",
    "left": "sur la gauche", "centre": "au milieu", "right": "sur la droite",
    "bottom left": "dans le coin en bas à gauche", "bottom": "tout en bas", "bottom right": "dans le coin en bas à droite",
}
FR_TAILLE = {"large": "de grande taille", "small": "de petite taille"}


def _en_single(obj: Obj) -> list[str]:
    big, colour, shape, where = EN_SIZE_SYNONYMS[obj.size], obj.colour, EN_SHAPES[obj.shape][0], EN_PLACES[obj.position]
    return [
        f"{_en_article(big)} {big} {colour} {shape} {where}",
        f"{_en_article(shape)} {shape}, {colour} and {big}, {where}",
        f"{where}, {_en_article(big)} {big} {colour} {shape}",
        f"{_en_article(colour)} {colour} {shape} of {obj.size} size {where}",
    ]


def _fr_single(obj: Obj) -> list[str]:
    singular, _, gender = FR_SHAPES[obj.shape]
    article = "une" if gender == "f" else "un"
    gros = FR_SIZE_SYNONYMS[obj.size][gender == "f"]
    colour, size, where = _form(FR_COLOURS[obj.colour], gender, False), _form(FR_SIZES[obj.size], gender, False), FR_PLACES[obj.position]
    return [
        f"{article} {gros} {singular} {colour} {where}",
        f"{article} {singular} {colour}, {size}, {where}",
        f"{where}, {article} {gros} {singular} {colour}",
        f"{article} {singular} {colour} {FR_TAILLE[obj.size]} {where}",
    ]


def single_paraphrases(scene: Scene, lang: str) -> list[str]:
    """Every paraphrase of a one-object scene (size, colour, shape and position all said, none as in training)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: choose one of {', '.join(LANGS)}")
    if scene.kind != "single":
        raise ValueError(f"paraphrases are written for single-object scenes, got a {scene.kind} scene")
    return (_en_single if lang == "en" else _fr_single)(scene.objects[0])


def paraphrase(scene: Scene, lang: str, rng: np.random.Generator) -> str:
    """One paraphrase of a one-object scene, drawn by ``rng``."""
    variants = single_paraphrases(scene, lang)
    return variants[int(rng.integers(len(variants)))]


def conjunction(a: Obj, b: Obj, lang: str) -> str:
    """"a red circle and a blue square" / « un cercle rouge et un carré bleu »: two objects, no place said."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: choose one of {', '.join(LANGS)}")
    word = "and" if lang == "en" else "et"
    return f"{noun_phrase(a, lang, with_size=False)} {word} {noun_phrase(b, lang, with_size=False)}"
