"""Lesson 11's new concept: a shape no model of the course has seen, the crescent, and the word for it.

Slides: « Inversion et Édition — des méthodes comme Textual Inversion permettent d'encoder des concepts visuels
spécifiques dans l'espace d'embedding textuel, facilitant la génération d'images personnalisées ».

The crescent (``course.scenes.NEW_SHAPES``) is in no training split, no caption, no evaluator: only here.

    EXAMPLES        8 renders of it, in 4 colours, both sizes, 8 of the 9 cells, on white: what the learner "owns"
    prompts         the examples' captions with the new word in place of the noun, « une petite <lune> bleue en haut »
    heldout         prompts that ask the new word in any colour, size and cell (colours and cells the examples never
                    show among them), judged by :mod:`course.concept_eval`

The new word is written ``<lune>`` in both languages (as textual inversion's ``<cat-toy>``); in French it is
feminine, like « étoile », whose captions give the templates.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from course.captions import caption, caption_variants
from course.scenes import BACKGROUNDS, COLOURS, POSITIONS, SIZES, Obj, Scene

SHAPE = "crescent"
TOKEN = "<lune>"
INIT_WORD = "circle"  # the related word textual inversion starts from (Gal et al. 2023, §4: a coarse descriptor)
TEMPLATE_SHAPE = "star"  # captioned in its place: « étoile » is feminine, as « lune »
_WORDS = {"en": re.compile(r"\bstar\b"), "fr": re.compile(r"\bétoile\b")}
# (colour, size, cell): the examples' colours are 4 of the 8, their cells 8 of the 9 (none in the right-hand middle)
EXAMPLES: tuple[tuple[str, str, tuple[int, int]], ...] = (
    ("yellow", "large", (1, 1)), ("yellow", "small", (0, 0)), ("grey", "large", (2, 2)), ("grey", "small", (0, 1)),
    ("blue", "large", (1, 0)), ("blue", "small", (2, 1)), ("red", "large", (0, 2)), ("red", "small", (2, 0)),
)
EXAMPLE_SEED = 11
EXAMPLE_COLOURS = tuple(dict.fromkeys(c for c, _, _ in EXAMPLES))


def concept_scene(colour: str, size: str, cell: tuple[int, int], background: str = "white") -> Scene:
    return Scene("single", background, (Obj(SHAPE, colour, size, cell),))


def example_scenes() -> list[Scene]:
    return [concept_scene(*e) for e in EXAMPLES]


def example_images(size: int | None = None) -> torch.Tensor:
    """The 8 examples (8, 3, size, size) in [−1, 1] (size: the model's, 64), always the same jitter."""
    from course.data import render_scenes
    from course.shipped import IMAGE_SIZE

    return render_scenes(example_scenes(), size or IMAGE_SIZE, seed=EXAMPLE_SEED)


def with_token(text: str, lang: str, token: str = TOKEN) -> str:
    """A star's caption with the new word in place of the noun: "a small red star" → "a small red <lune>"."""
    return _WORDS[lang].sub(token, text)


def _template(scene: Scene) -> Scene:
    return Scene(scene.kind, scene.background, tuple(Obj(TEMPLATE_SHAPE if o.shape == SHAPE else o.shape, o.colour, o.size, o.cell)
                                                     for o in scene.objects), scene.relation)


def prompt_variants(scene: Scene, lang: str, token: str = TOKEN) -> list[str]:
    """Every caption of a scene with the concept in it, the new word for the concept (the training templates)."""
    return [with_token(c, lang, token) for c in caption_variants(_template(scene), lang)]


def prompt(scene: Scene, lang: str, rng: np.random.Generator | None = None, token: str = TOKEN) -> str:
    """The canonical caption (or a random one with ``rng``), the new word for the concept."""
    return with_token(caption(_template(scene), lang, rng), lang, token)


def heldout(n: int, seed: int) -> tuple[list[Scene], list[str]]:
    """n prompts asking the concept in a random colour, size and cell (canonical captions, English and French alternately);
    the background is drawn too and not asked, as in :func:`course.evaluation.heldout_prompts`."""
    rng = np.random.default_rng((seed, 11))
    scenes = [concept_scene(COLOURS[rng.integers(len(COLOURS))], SIZES[rng.integers(len(SIZES))], divmod(int(rng.integers(9)), 3),
                            BACKGROUNDS[rng.integers(len(BACKGROUNDS))]) for _ in range(n)]
    return scenes, [prompt(s, "en" if i % 2 == 0 else "fr") for i, s in enumerate(scenes)]


def attributes(scene: Scene) -> dict[str, str]:
    """What a concept prompt asks: the shape (the concept), its colour, size and position."""
    obj = scene.objects[0]
    return {"shape": obj.shape, "colour": obj.colour, "size": obj.size, "position": POSITIONS[3 * obj.cell[0] + obj.cell[1]]}
