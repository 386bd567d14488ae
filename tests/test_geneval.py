"""The GenEval-style benchmark: its prompts, its scoring rules on known readings, its intervals, its ceiling on renders."""

import pytest
import torch

from course import geneval
from course.geneval import CATEGORIES, SETS, Task, score, swapped, table, tasks, wilson
from course.paraphrases import conjunction, paraphrase, single_paraphrases
from course.paths import data_dir
from course.scenes import HELD_OUT, Obj, Scene, single


def test_tasks_are_deterministic_held_out_and_n_per_set_and_language():
    a, b = tasks(6), tasks(6)
    assert a == b and len(a) == 6 * len(SETS) * 2
    for t in a:
        assert any(combo in HELD_OUT for combo in t.scene.combos()), t
        assert t.lang in ("en", "fr")
    counts = [t.scene.count for t in a if t.set == "counting"]
    assert sorted(set(counts)) == [1, 2, 3]
    singles = [t.scene for t in a if t.set == "single"]
    assert singles == [t.scene for t in a if t.set == "paraphrase"]  # the gap compares the same scenes
    assert all(t.scene.objects[0].shape != t.scene.objects[1].shape and t.scene.objects[0].colour != t.scene.objects[1].colour
               for t in a if t.set == "binding")
    with pytest.raises(ValueError, match="unknown prompt set 'pairs'"):
        tasks(2, sets=("pairs",))
    with pytest.raises(ValueError, match="n must be ≥ 1"):
        tasks(0)


def test_paraphrases_agree_in_french_and_avoid_the_training_templates():
    star = single("star", "grey", "centre", "large")
    fr = single_paraphrases(star, "fr")
    assert "une grosse étoile grise au milieu" in fr
    assert "une étoile grise de grande taille au milieu" in fr
    assert "a big grey star in the middle" in single_paraphrases(star, "en")
    small = single("cross", "purple", "top left", "small")
    assert "une toute petite croix violette dans le coin en haut à gauche" in single_paraphrases(small, "fr")
    from course.captions import caption_variants

    assert not set(fr) & set(caption_variants(star, "fr"))
    assert conjunction(Obj("circle", "red", "large", (0, 0)), Obj("star", "blue", "large", (0, 1)), "fr") == "un cercle rouge et une étoile bleue"
    assert conjunction(Obj("circle", "red", "large", (0, 0)), Obj("hexagon", "orange", "large", (0, 1)), "en") == "a red circle and an orange hexagon"
    with pytest.raises(ValueError, match="single-object scenes"):
        single_paraphrases(Scene("count", "white", (Obj("star", "red", "small", (0, 0)), Obj("star", "red", "small", (1, 1)))), "en")
    with pytest.raises(ValueError, match="unknown language 'de'"):
        paraphrase(star, "de", None)


A = Obj("circle", "red", "large", (0, 1))
B = Obj("square", "blue", "large", (2, 1))


def test_scoring_rules_on_known_readings():
    one = Task("single", single("circle", "red", "top", "large"), "", "en")
    assert score(one, [A]) == {"single": True, "colours": True, "position": True}
    assert score(one, [Obj("circle", "red", "small", (0, 1))]) == {"single": False, "colours": True, "position": True}
    assert score(one, [Obj("circle", "blue", "large", (1, 1))]) == {"single": False, "colours": False, "position": False}
    assert score(one, [A, B]) == {"single": False, "colours": False, "position": False}  # an extra object is an error
    assert score(one, []) == {"single": False, "colours": False, "position": False}
    pair = Task("pair", Scene("pair", "white", (A, B), "above"), "", "en")
    assert score(pair, [A, B]) == {"two_objects": True, "relation": True}
    assert score(pair, [Obj("circle", "red", "large", (2, 0)), Obj("square", "blue", "large", (0, 2))]) == {"two_objects": True, "relation": False}
    assert score(pair, [A]) == {"two_objects": False, "relation": False}
    bind = Task("binding", Scene("pair", "white", (A, B), "above"), "", "en")
    swap = [Obj("circle", "blue", "large", (0, 1)), Obj("square", "red", "large", (2, 1))]
    assert score(bind, swap) == {"binding": False} and swapped(bind, swap) and not swapped(bind, [A, B])
    three = Scene("count", "white", tuple(Obj("star", "red", "small", (0, c)) for c in range(3)))
    count = Task("counting", three, "", "en")
    assert score(count, list(three.objects)) == {"counting": True}
    assert score(count, list(three.objects[:2])) == {"counting": False}
    assert score(count, [*three.objects[:2], Obj("heart", "red", "small", (2, 2))]) == {"counting": False}


def test_wilson_interval_and_table():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 5)[0] == 0 and wilson(5, 5)[1] == 1
    t = [Task("single", single("circle", "red", "top", "large"), "", lang) for lang in ("en", "fr")]
    t += [Task("paraphrase", single("circle", "red", "top", "large"), "", lang) for lang in ("en", "fr")]
    result = table(t, [[A], [A], [A], []])
    assert result["categories"]["single"]["both"]["rate"] == 1.0
    assert result["categories"]["paraphrase"]["fr"]["rate"] == 0.0
    assert result["paraphrase_gap_points"] == {"en": 0.0, "fr": 100.0, "both": 50.0}
    assert set(result["categories"]) <= set(CATEGORIES)
    with pytest.raises(ValueError, match="4 tasks but 3 readings"):
        table(t, [[A]] * 3)


@pytest.mark.skipif(not (data_dir() / "scene_reader.safetensors").exists(), reason="scene reader not trained yet")
def test_the_reader_scores_real_renders_at_its_target_in_every_category():
    result = geneval.ceiling(n=24)
    for category, row in result["categories"].items():
        assert row["both"]["rate"] >= geneval.CEILING_TARGET, (category, row)


def test_run_scores_a_generator_and_times_it():
    from course.data import render_scenes

    def perfect(prompts, seed):  # a "generator" that draws the right scene: it must score as the ceiling does
        lookup = {t.prompt: t.scene for t in tasks(3)}
        return render_scenes([lookup[p] for p in prompts], 64, seed=seed)

    if not (data_dir() / "scene_reader.safetensors").exists():
        pytest.skip("scene reader not trained yet")
    result = geneval.run(perfect, n=3, batch=7, progress=False)
    assert result["seconds_per_image"] > 0 and result["n_per_set_and_language"] == 3
    assert result["categories"]["two_objects"]["both"]["n"] == 6
    assert "| relation |" in geneval.format_table(result)


def test_cli_bad_input_is_one_line(capsys):
    with pytest.raises(SystemExit, match="unknown prompt set 'pairs'"):
        geneval.main(["--renders", "--n", "2", "--sets", "pairs"])
    with pytest.raises(SystemExit, match="n must be ≥ 1"):
        geneval.main(["--renders", "--n", "0"])


def test_the_recorded_table_holds_the_ceiling_and_the_shipped_model():
    import json

    table_ = json.loads((data_dir() / geneval.TABLE_FILE).read_text())
    assert {"renders", "shipped"} <= set(table_)
    for name, entry in table_.items():
        assert entry["command"].startswith("python -m course.geneval"), name
        assert set(entry["categories"]) == set(CATEGORIES), name
    assert all(row["both"]["rate"] >= geneval.CEILING_TARGET and row["both"]["n"] == 256 for row in table_["renders"]["categories"].values())
    shipped = table_["shipped"]["categories"]
    assert shipped["single"]["both"]["n"] == 256 and 0 <= shipped["relation"]["both"]["rate"] <= 1


def test_the_readme_table_is_the_recorded_one():
    import json

    from course.paths import repo_root

    text = (repo_root() / "README.md").read_text()
    table_ = geneval.readme_table(json.loads((data_dir() / geneval.TABLE_FILE).read_text()))
    assert f"{geneval.README_MARKERS[0]}\n{table_}\n{geneval.README_MARKERS[1]}" in text, "README's table is stale: python -m course.geneval --readme"


def test_lesson_10_quotes_the_recorded_benchmark():
    """Lesson 10's prose reads its numbers from data/geneval.json ({{geneval.json:…}}), so a re-recorded benchmark updates it."""
    from course.paths import repo_root

    from course.build import fill_numbers

    text = (repo_root() / "lessons" / "10_composition.py").read_text()
    keys = ["shipped.categories.single.both.rate", "shipped.categories.counting.both.rate", "shipped.categories.two_objects.both.rate",
            "shipped.categories.relation.both.rate", "shipped.categories.paraphrase.both.rate", "shipped.binding_swapped.both",
            "shipped+attend_excite.categories.single.both.rate", "shipped+attend_excite.categories.two_objects.both.rate"]
    for key in keys:  # the prose reads these from data/geneval.json at build time, never a copy
        assert f"{{{{geneval.json:{key}|" in text, f"lessons/10_composition.py no longer reads {key} from data/geneval.json"
    single = geneval.recorded()["shipped"]["categories"]["single"]["both"]["rate"]
    assert fill_numbers("{{geneval.json:shipped.categories.single.both.rate|pct0}}", "fr", "test") == f"{100 * single:.0f} %"
