"""One recipe per shipped model: the shipped manifests, the commands and the profiles read the same numbers."""

import json
from dataclasses import replace

import pytest

from course.paths import data_dir
from course.recipes import AE_RECIPE, LDM_RECIPE, RECIPES, RecipeError


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=lambda r: r.model)
def test_each_shipped_model_was_trained_by_its_recipe(recipe):
    manifest = json.loads((data_dir() / recipe.checkpoint).with_suffix(".json").read_text())
    assert manifest["command"].split(" --ship")[0] == recipe.command(), f"data/{recipe.checkpoint} was not trained by course.recipes' recipe"
    assert manifest["samples_seen"] == recipe.steps * recipe.batch_size
    if "recipe" in manifest:  # manifests written since recipes exist record the whole recipe
        assert manifest["recipe"] == recipe.as_dict()


def test_scaling_keeps_the_proportions_and_the_full_recipe_is_itself():
    demo = LDM_RECIPE.scaled(steps=600)
    assert (demo.steps, demo.warmup, demo.checkpoint_every, demo.eval_every) == (600, 30, 25, 100)
    assert demo.decay_steps == 750 and demo.lr == LDM_RECIPE.lr and demo.batch_size == LDM_RECIPE.batch_size
    assert LDM_RECIPE.scaled() is LDM_RECIPE and LDM_RECIPE.scaled(steps=LDM_RECIPE.steps) is LDM_RECIPE
    assert AE_RECIPE.scaled(factor=0.5).steps == 3000
    assert AE_RECIPE.scaled(steps=5).warmup == 0


def test_train_config_follows_the_recipe():
    config = LDM_RECIPE.train_config(log_every=7)
    assert (config.steps, config.lr, config.warmup, config.decay, config.decay_steps, config.ema_decay, config.seed, config.log_every) == (
        6000, 1e-3, 300, "cosine", 7500, 0.999, 0, 7)


def test_bad_values_are_one_clear_error():
    with pytest.raises(RecipeError, match="autoencoder recipe: steps must be ≥ 1, got 0"):
        replace(AE_RECIPE, steps=0)
    with pytest.raises(RecipeError, match="batch size must be ≥ 1"):
        AE_RECIPE.replace(batch_size=-3)
    with pytest.raises(RecipeError, match="learning rate must be > 0"):
        AE_RECIPE.replace(lr=0.0)
    with pytest.raises(RecipeError, match="p_uncond"):
        LDM_RECIPE.replace(p_uncond=1.5)
    with pytest.raises(AttributeError):
        AE_RECIPE.steps = 3  # frozen


def test_the_guidance_rule_picks_the_best_and_breaks_ties_to_the_smaller_w():
    sweep = [{"guidance": 2.0, "all_correct": 0.8}, {"guidance": 3.0, "all_correct": 0.9}, {"guidance": 4.0, "all_correct": 0.9}]
    assert LDM_RECIPE.choose_guidance(sweep) == 3.0


def test_the_gpu_profile_trains_the_recipes():
    """The gpu profile trains from scratch: it must train the shipped recipe's steps, not another number."""
    from course.profiles import PROFILES

    gpu = PROFILES["gpu"]
    assert (gpu.ae_steps, gpu.ldm_steps, gpu.clip_steps, gpu.image_steps) == tuple(RECIPES[m].steps for m in ("autoencoder", "ldm", "clip", "shapes_ddpm"))


def test_the_benchmark_variants_keep_their_meaning_when_derived_from_the_recipe():
    """benchmarks/ldm_recipes.py derives its starting recipe from LDM_RECIPE: each variant is still the run it named."""
    import importlib.util

    from course.paths import repo_root

    spec = importlib.util.spec_from_file_location("ldm_recipes", repo_root() / "benchmarks" / "ldm_recipes.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    start = {"steps": 4000, "batch": 128, "lr": 5e-4, "snr_gamma": 5.0, "channels": (64, 128, 128), "attention": (True, True, True),
             "heads": 4, "pooled": False, "p_uncond": 0.1, "decay_stretch": 1.0}  # what the sweeps started from (their result files)
    for name, overrides in bench.VARIANTS.items():
        recipe, unet = bench.variant(name)
        got = {**{k: getattr(recipe, f) for k, f in bench.RECIPE_KNOBS.items()}, **{k: getattr(unet, k) for k in bench.UNET_KNOBS}}
        assert got == {**start, **overrides}, name
        assert (recipe.warmup, recipe.ema_decay, recipe.decay) == (300, 0.999, "cosine")
    shipped, _ = bench.variant("shipped")
    assert shipped.train_config() == LDM_RECIPE.train_config(checkpoint_every=None)
