"""The shapes dataset: determinism, grammar of the captions, held-out combinations, clear errors."""

import numpy as np
import pytest
import torch

from course.captions import caption, caption_variants, noun_phrase
from course.data import LABELS, ShapesDataset, render_scenes, scene_labels
from course.render import render
from course.scenes import HELD_OUT, KINDS, Obj, Scene, sample_scene, single


def test_items_are_deterministic_and_independent_of_order():
    a, b = ShapesDataset(50, seed=4), ShapesDataset(50, seed=4)
    for i in (49, 0, 17):
        x, y = a[i], b[i]
        assert torch.equal(x["image"], y["image"]) and x["caption"] == y["caption"] and x["labels"] == y["labels"]
    assert not torch.equal(ShapesDataset(50, seed=5)[0]["image"], a[0]["image"])
    item = a[3]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    assert set(item["labels"]) == set(LABELS) and item["lang"] in ("en", "fr")


@pytest.mark.parametrize(
    "obj, n, lang, expected",
    [
        (Obj("star", "grey", "small", (0, 0)), 2, "fr", "deux petites étoiles grises"),
        (Obj("heart", "pink", "small", (0, 0)), 1, "fr", "un petit cœur rose"),
        (Obj("cross", "purple", "large", (0, 0)), 1, "fr", "une grande croix violette"),
        (Obj("cross", "purple", "large", (0, 0)), 3, "fr", "trois grandes croix violettes"),
        (Obj("hexagon", "orange", "small", (0, 0)), 3, "fr", "trois petits hexagones orange"),
        (Obj("square", "grey", "large", (0, 0)), 2, "fr", "deux grands carrés gris"),
        (Obj("circle", "green", "small", (0, 0)), 1, "fr", "un petit cercle vert"),
        (Obj("star", "blue", "small", (0, 0)), 1, "fr", "une petite étoile bleue"),
        (Obj("cross", "red", "large", (0, 0)), 2, "en", "two large red crosses"),
        (Obj("circle", "orange", "small", (0, 0)), 1, "en", "a small orange circle"),
    ],
)
def test_noun_phrases_agree(obj, n, lang, expected):
    assert noun_phrase(obj, lang, n) == expected


def test_article_and_elision():
    assert noun_phrase(Obj("circle", "orange", "small", (0, 0)), "en", with_size=False) == "an orange circle"
    pair = Scene("pair", "white", (Obj("star", "red", "large", (0, 0)), Obj("circle", "blue", "large", (1, 0))), "above")
    assert caption(pair, "fr") == "une étoile rouge au-dessus d'un cercle bleu"
    assert caption(pair, "en") == "a red star above a blue circle"
    variants_fr = caption_variants(pair, "fr")
    assert "un cercle bleu en dessous d'une étoile rouge" in variants_fr
    assert "une étoile rouge placée au-dessus d'un cercle bleu" in variants_fr
    assert "une image d'une étoile rouge au-dessus d'un cercle bleu sur fond blanc" in variants_fr
    scene = single("circle", "red", "top left", "small", "black")
    assert caption(scene, "fr") == "un petit cercle rouge en haut à gauche"
    assert "un cercle rouge en haut à gauche" in caption_variants(scene, "fr")
    assert "a small red circle at the top left on a black background" in caption_variants(scene, "en")
    assert len(set(caption_variants(scene, "en"))) == len(caption_variants(scene, "en")) >= 8


def test_held_out_pairs_never_appear_in_training():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        assert not (sample_scene(rng, "train").combos() & HELD_OUT)
    rng = np.random.default_rng(1)
    for _ in range(500):
        assert sample_scene(rng, "heldout").combos() & HELD_OUT
    seen = {sample_scene(np.random.default_rng(i), "all", ("single",)).combos().pop() for i in range(4000)}
    assert HELD_OUT <= seen


def test_every_kind_count_and_relation_is_drawn():
    rng = np.random.default_rng(2)
    scenes = [sample_scene(rng) for _ in range(600)]
    assert {s.kind for s in scenes} == set(KINDS)
    assert {s.count for s in scenes} == {1, 2, 3}
    assert {s.relation for s in scenes if s.kind == "pair"} == {"above", "below", "left of", "right of"}


def test_labels_describe_pairs_top_or_left_first():
    below = Scene("pair", "white", (Obj("star", "red", "large", (2, 1)), Obj("circle", "blue", "large", (0, 1))), "below")
    labels = scene_labels(below)
    assert LABELS["shape"][labels["shape"]] == "circle" and LABELS["shape2"][labels["shape2"]] == "star"
    assert LABELS["axis"][labels["axis"]] == "vertical" and labels["position"] == -1 and labels["size"] == -1


def test_rendering_puts_the_object_in_its_cell():
    image = render(single("square", "blue", "bottom right", "large", "white"), 48)
    blue = (image[..., 2].astype(int) - image[..., 0].astype(int)) > 80
    rows, cols = np.nonzero(blue)
    assert rows.min() >= 32 and cols.min() >= 32  # the bottom-right cell of a 48-pixel image
    assert render_scenes([single("circle", "red")] * 2, 32).shape == (2, 3, 32, 32)


def test_bad_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="unknown shape 'pentagon'"):
        single("pentagon", "red")
    with pytest.raises(ValueError, match="unknown colour 'teal'"):
        single("circle", "teal")
    with pytest.raises(ValueError, match="unknown position"):
        single("circle", "red", "middle")
    with pytest.raises(ValueError, match="count must be in 1…3"):
        Scene("count", "white", tuple(Obj("star", "red", "small", (i // 3, i % 3)) for i in range(4)))
    with pytest.raises(ValueError, match="image size must be an integer ≥ 16"):
        render(single("circle", "red"), 8)
    with pytest.raises(ValueError, match="image size"):
        ShapesDataset(10, size=12)
    with pytest.raises(ValueError, match="unknown split"):
        ShapesDataset(10, split="test")
    with pytest.raises(ValueError, match="do not place"):
        Scene("pair", "white", (Obj("star", "red", "large", (0, 0)), Obj("circle", "blue", "large", (0, 1))), "above")
    with pytest.raises(ValueError, match="unknown language"):
        caption(single("circle", "red"), "de")
