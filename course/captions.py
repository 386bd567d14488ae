"""Captions of shape scenes in English and in French, with correct agreement, several phrasings each.

Every caption is generated from a scene's attributes (see :mod:`course.scenes`). French adjectives
agree in gender and number with the noun (« deux étoiles grises », « une petite croix violette »,
« des cœurs orange » — orange is invariable); size comes before the noun, colour after it.
"""

from __future__ import annotations

import numpy as np

from course.scenes import Obj, Scene

LANGS: tuple[str, ...] = ("en", "fr")

# --------------------------------------------------------------------------------------- English
EN_SHAPES = {
    "circle": ("circle", "circles"), "square": ("square", "squares"), "triangle": ("triangle", "triangles"),
    "star": ("star", "stars"), "heart": ("heart", "hearts"), "diamond": ("diamond", "diamonds"),
    "cross": ("cross", "crosses"), "hexagon": ("hexagon", "hexagons"),
}
EN_POSITIONS = {
    "top left": "at the top left", "top": "at the top", "top right": "at the top right",
    "left": "on the left", "centre": "in the centre", "right": "on the right",
    "bottom left": "at the bottom left", "bottom": "at the bottom", "bottom right": "at the bottom right",
}
EN_RELATIONS = {"above": "above", "below": "below", "left of": "to the left of", "right of": "to the right of"}
EN_NUMBERS = {2: "two", 3: "three"}

# --------------------------------------------------------------------------------------- French
# noun: (singular, plural, gender)
FR_SHAPES = {
    "circle": ("cercle", "cercles", "m"), "square": ("carré", "carrés", "m"), "triangle": ("triangle", "triangles", "m"),
    "star": ("étoile", "étoiles", "f"), "heart": ("cœur", "cœurs", "m"), "diamond": ("losange", "losanges", "m"),
    "cross": ("croix", "croix", "f"), "hexagon": ("hexagone", "hexagones", "m"),
}
# adjective: (m. sg., f. sg., m. pl., f. pl.)
FR_COLOURS = {
    "red": ("rouge", "rouge", "rouges", "rouges"), "green": ("vert", "verte", "verts", "vertes"),
    "blue": ("bleu", "bleue", "bleus", "bleues"), "yellow": ("jaune", "jaune", "jaunes", "jaunes"),
    "orange": ("orange", "orange", "orange", "orange"), "purple": ("violet", "violette", "violets", "violettes"),
    "pink": ("rose", "rose", "roses", "roses"), "grey": ("gris", "grise", "gris", "grises"),
}
FR_SIZES = {"small": ("petit", "petite", "petits", "petites"), "large": ("grand", "grande", "grands", "grandes")}
FR_PLACED = ("placé", "placée", "placés", "placées")
FR_POSITIONS = {
    "top left": "en haut à gauche", "top": "en haut", "top right": "en haut à droite",
    "left": "à gauche", "centre": "au centre", "right": "à droite",
    "bottom left": "en bas à gauche", "bottom": "en bas", "bottom right": "en bas à droite",
}
FR_RELATIONS = {"above": "au-dessus", "below": "en dessous", "left of": "à gauche", "right of": "à droite"}
FR_NUMBERS = {2: "deux", 3: "trois"}
FR_BACKGROUNDS = {"white": "blanc", "black": "noir", "beige": "beige"}


def _form(forms: tuple[str, ...], gender: str, plural: bool) -> str:
    return forms[(2 if plural else 0) + (1 if gender == "f" else 0)]


def _en_article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def noun_phrase(obj: Obj, lang: str, n: int = 1, with_size: bool = True) -> str:
    """« une petite étoile grise » / "a small grey star"; with n = 2 or 3, the plural."""
    if lang == "en":
        words = ([obj.size] if with_size else []) + [obj.colour, EN_SHAPES[obj.shape][n > 1]]
        head = _en_article(words[0]) if n == 1 else EN_NUMBERS[n]
        return " ".join([head, *words])
    if lang == "fr":
        singular, plural, gender = FR_SHAPES[obj.shape]
        head = ("une" if gender == "f" else "un") if n == 1 else FR_NUMBERS[n]
        size = [_form(FR_SIZES[obj.size], gender, n > 1)] if with_size else []
        return " ".join([head, *size, plural if n > 1 else singular, _form(FR_COLOURS[obj.colour], gender, n > 1)])
    raise ValueError(f"unknown language {lang!r}: choose one of {', '.join(LANGS)}")


def _fr_de(phrase: str) -> str:
    """« de » + noun phrase with elision: d'un, d'une, de deux."""
    return "d'" + phrase if phrase.startswith(("un ", "une ")) else "de " + phrase


def _background(scene: Scene, lang: str) -> str:
    if lang == "en":
        return f" on a {scene.background} background"
    return f" sur fond {FR_BACKGROUNDS[scene.background]}"


def caption_variants(scene: Scene, lang: str) -> list[str]:
    """Every phrasing of ``scene`` in ``lang`` (several structures, with or without size/background)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: choose one of {', '.join(LANGS)}")
    out: list[str] = []
    bg = _background(scene, lang)
    if scene.kind in ("single", "count"):
        obj, n = scene.objects[0], scene.count
        for with_size in (True, False):
            np_ = noun_phrase(obj, lang, n, with_size)
            if lang == "en":
                if n == 1:
                    where = EN_POSITIONS[obj.position]
                    core = [f"{np_} {where}", f"{where}, {np_}", f"a picture of {np_} {where}", f"{np_} placed {where}"]
                else:
                    core = [np_, f"a picture of {np_}", f"there are {np_}"]
            else:
                gender = FR_SHAPES[obj.shape][2]
                if n == 1:
                    where = FR_POSITIONS[obj.position]
                    placed = _form(FR_PLACED, gender, False)
                    core = [f"{np_} {where}", f"{where}, {np_}", f"une image {_fr_de(np_)} {where}", f"{np_} {placed} {where}"]
                else:
                    core = [np_, f"une image {_fr_de(np_)}", f"il y a {np_}"]
            out += core + [c + bg for c in core]
        return out
    # pair: "A rel B" and the equivalent "B inverse-rel A"
    inverse = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
    a, b = scene.objects
    for first, relation, second in ((a, scene.relation, b), (b, inverse[scene.relation], a)):
        pa, pb = noun_phrase(first, lang, with_size=False), noun_phrase(second, lang, with_size=False)
        if lang == "en":
            rel = EN_RELATIONS[relation]
            core = [f"{pa} {rel} {pb}", f"a picture of {pa} {rel} {pb}"]
        else:
            rel = f"{FR_RELATIONS[relation]} {_fr_de(pb)}"
            placed = _form(FR_PLACED, FR_SHAPES[first.shape][2], False)
            core = [f"{pa} {rel}", f"une image {_fr_de(pa)} {rel}", f"{pa} {placed} {rel}"]
        out += core + [c + bg for c in core]
    return out


def caption(scene: Scene, lang: str, rng: np.random.Generator | None = None) -> str:
    """One phrasing of ``scene``: the first (canonical) one, or a random one when ``rng`` is given."""
    variants = caption_variants(scene, lang)
    return variants[0] if rng is None else variants[int(rng.integers(len(variants)))]
