"""Lesson 11: the new concept, textual inversion and LoRA from scratch, equal to what stock diffusers loads
(``load_textual_inversion``, ``load_lora_weights``); the trained files are small, and the frozen weights stay frozen."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import save_file

from course import concept, export as ex, lora
from course.paths import data_dir
from course.pipeline import generate_latents
from course.scenes import SHAPES, sample_scene
from course.shipped import IMAGE_SIZE, UNET, make_clip
from course.textual_inversion import TextualInversion, TokenError, embedding_tensors, nearest_words, restore_rows, tokenizer_with
from course.tokenizer import encode
from course.unet import UNet
from tests.test_export import folder, models  # noqa: F401 (the random-weight models and their exported folder, shared)

TOKEN = concept.TOKEN


def pipeline(folder):
    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ----------------------------------------------------------------------------- the concept


def test_the_crescent_is_in_no_split_and_its_prompts_use_the_new_word():
    assert concept.SHAPE not in SHAPES
    rng = np.random.default_rng(0)
    assert all(o.shape in SHAPES for _ in range(2000) for o in sample_scene(rng, "all").objects)
    scene = concept.concept_scene("blue", "small", (0, 0))
    assert concept.prompt(scene, "en") == "a small blue <lune> at the top left"
    assert concept.prompt(scene, "fr") == "une petite <lune> bleue en haut à gauche"
    variants = concept.prompt_variants(scene, "fr")
    assert len(variants) > 4 and all(TOKEN in v and "étoile" not in v for v in variants)


def test_the_examples_are_fixed_and_the_held_out_prompts_ask_what_they_do_not_show():
    a, b = concept.example_images(), concept.example_images()
    assert a.shape == (8, 3, IMAGE_SIZE, IMAGE_SIZE) and torch.equal(a, b)
    scenes, prompts = concept.heldout(200, 777)
    assert all(TOKEN in p for p in prompts) and {s.objects[0].colour for s in scenes} - set(concept.EXAMPLE_COLOURS)
    assert (1, 2) in {s.objects[0].cell for s in scenes} and (1, 2) not in {c for _, _, c in concept.EXAMPLES}


# ----------------------------------------------------------------------------- textual inversion


def test_the_new_token_is_one_token_after_the_vocabulary_and_other_ids_do_not_move():
    tok = tokenizer_with(TOKEN)
    ids = tok.encode("une grande <lune> rouge").ids
    V = make_clip().text.embeddings.token_embedding.weight.shape[0]
    assert tok.token_to_id(TOKEN) == V and ids.count(V) == 1 and len(ids) == 6
    plain = "un petit cercle bleu en bas"
    assert torch.equal(encode([plain], tokenizer=tok)[0], encode([plain])[0])


@pytest.mark.parametrize("bad, message", [("circle", "already a word"), ("", "non-empty"), ("<la lune>", "without spaces"), ("Cercle", "already a word")])
def test_a_token_that_cannot_be_new_is_one_sentence(bad, message):
    with pytest.raises(TokenError, match=message):
        tokenizer_with(bad)


def test_an_unknown_initialiser_is_one_sentence():
    with pytest.raises(TokenError, match="not a word of the vocabulary"):
        TextualInversion(make_clip().text, TOKEN, "crescent")


def test_a_training_step_moves_only_the_new_row(models):
    _, _, clip, _ = models
    text = copy.deepcopy(clip.text)
    before = {k: v.clone() for k, v in text.state_dict().items()}
    words = TextualInversion(text, TOKEN, "circle")
    v0 = words.vector.detach().clone()
    opt = torch.optim.AdamW(words.parameters(), lr=1e-2, weight_decay=0.1)  # weight decay would move every row it saw
    hidden, _ = words.text_states(["a red <lune>", "une <lune> verte"])
    hidden.square().mean().backward()
    opt.step()
    assert not torch.equal(words.vector, v0)
    assert all(torch.equal(before[k], v) for k, v in text.state_dict().items())
    assert [n for n, p in words.named_parameters() if p.requires_grad] == ["vector"]


def test_prompts_without_the_new_word_are_read_as_before(models):
    from course.shipped import encoder_states

    _, _, clip, _ = models
    words = TextualInversion(clip.text, TOKEN, torch.randn(clip.text.config.hidden_size))
    prompts = ["a red circle at the top", ""]
    assert torch.equal(words.text_states(prompts)[0], encoder_states(clip.text, prompts)[0])


def test_restore_rows_puts_back_every_row_but_the_trained_ones():
    original = torch.randn(6, 4)
    table = original + 1
    restore_rows(table, original, [5])
    assert torch.equal(table[:5], original[:5]) and torch.equal(table[5], original[5] + 1)


def test_nearest_words_of_an_initialised_row_start_with_its_word(models):
    words = TextualInversion(make_clip().text, TOKEN, "circle")
    assert nearest_words(words.vector, words.text.embeddings.token_embedding.weight)[0][0] == "circle"


def test_stock_load_textual_inversion_gives_our_states_and_images(models, folder, tmp_path):
    unet, ae, clip, scaling = models
    words = TextualInversion(clip.text, TOKEN, torch.randn(clip.text.config.hidden_size, generator=torch.Generator().manual_seed(3)))
    save_file(embedding_tensors(TOKEN, words.vector), str(tmp_path / "word.safetensors"))
    pipe = pipeline(folder)
    pipe.load_textual_inversion(str(tmp_path / "word.safetensors"))
    prompt = "une petite <lune> bleue en haut à gauche"
    ids = pipe.tokenizer([prompt], padding="max_length", max_length=32, return_tensors="pt").input_ids
    assert ids[0].tolist().count(words.token_id) == 1
    with torch.no_grad():
        theirs = pipe.text_encoder(ids).last_hidden_state
        ours = words.text_states([prompt])[0]
    assert (theirs - ours).abs().max().item() <= 1e-5
    image = pipe(prompt, num_inference_steps=10, guidance_scale=3.0, generator=torch.Generator().manual_seed(5), output_type="pt").images
    z = generate_latents(unet, clip, [prompt], "dpmpp", 10, 3.0, 5, encode_text=words.text_states)
    mine = ae.decode(z / scaling).clamp(-1, 1)
    assert mine.std() > 0.05 and (2 * image - 1 - mine).abs().max().item() <= 1e-3


# ----------------------------------------------------------------------------- LoRA


def lora_unet(models, rank=4, alpha=8.0, seed=1):
    unet = copy.deepcopy(models[0])
    lora.add_lora(unet, rank, alpha)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora.lora_layers(unet).values():
            layer.lora_B.weight.copy_(0.1 * torch.randn(layer.lora_B.weight.shape, generator=g))
    return unet.eval()


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 8, 8, generator=g), torch.tensor([10, 500]), torch.randn(2, 32, 128, generator=g)


def test_a_new_lora_starts_as_the_base_model_and_trains_only_its_own_weights(models):
    base = models[0]
    unet = copy.deepcopy(base)
    names = lora.add_lora(unet, 4)
    assert len(names) == 80 and all(n.endswith(lora.TARGETS) for n in names)
    x, t, c = inputs()
    with torch.no_grad():
        assert torch.equal(unet(x, t, c, None), base(x, t, c, None))
    trainable = [n for n, p in unet.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    frozen = {k: v.clone() for k, v in lora.base_state_dict(unet).items()}
    opt = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    unet(x, t, c, None).square().mean().backward()
    opt.step()
    assert all(torch.equal(frozen[k], v) for k, v in lora.base_state_dict(unet).items())
    assert frozen.keys() == base.state_dict().keys()
    assert any(layer.lora_B.weight.abs().sum() > 0 for layer in lora.lora_layers(unet).values())


def test_merge_gives_the_same_output_and_unmerge_restores_the_base_weights_bit_for_bit(models):
    unet = lora_unet(models)
    x, t, c = inputs()
    before = {k: v.clone() for k, v in lora.base_state_dict(unet).items()}
    with torch.no_grad():
        unmerged = unet(x, t, c, None)
        lora.merge(unet)
        merged = unet(x, t, c, None)
    assert (merged - unmerged).abs().max().item() <= 1e-5 and (merged - models[0](x, t, c, None)).abs().max().item() > 1e-3
    lora.unmerge(unet)
    assert all(torch.equal(before[k], v) for k, v in lora.base_state_dict(unet).items())
    lora.remove_lora(unet)
    assert unet.state_dict().keys() == models[0].state_dict().keys()


@pytest.mark.parametrize("rank", [0, -1, 2.5, True])
def test_a_rank_that_is_not_a_positive_integer_is_one_sentence(models, rank):
    with pytest.raises(lora.LoRAError, match="positive integer"):
        lora.add_lora(copy.deepcopy(models[0]), rank)


def test_stock_load_lora_weights_gives_our_eps_and_images(models, folder, tmp_path):
    unet, ae, clip, scaling = models
    adapted = lora_unet(models)
    path = tmp_path / "lora.safetensors"
    save_file(lora.lora_tensors(adapted), str(path), metadata=lora.lora_metadata(adapted))
    pipe = pipeline(folder)
    pipe.load_lora_weights(str(path))
    x, t, c = inputs()
    with torch.no_grad():
        theirs = pipe.unet(x, t - 1, encoder_hidden_states=c).sample  # diffusers' timestep is the course's t − 1
        ours = adapted(x, t, c, None)
        assert (ours - unet(x, t, c, None)).abs().max().item() > 1e-2  # the update is not nothing
    assert (theirs - ours).abs().max().item() <= 1e-5
    prompt = "a large red circle in the centre"
    image = pipe(prompt, num_inference_steps=10, guidance_scale=3.0, generator=torch.Generator().manual_seed(5), output_type="pt").images
    z = generate_latents(adapted, clip, [prompt], "dpmpp", 10, 3.0, 5)
    assert (2 * image - 1 - ae.decode(z / scaling).clamp(-1, 1)).abs().max().item() <= 1e-3


def test_a_lora_file_round_trips_and_one_for_another_architecture_names_the_tensor(models, tmp_path):
    adapted = lora_unet(models, rank=2, alpha=3.0)
    path = tmp_path / "lora.safetensors"
    save_file(lora.lora_tensors(adapted), str(path), metadata=lora.lora_metadata(adapted))
    tensors, config = lora.read_lora_file(path)
    assert config["r"] == 2 and config["lora_alpha"] == 3.0
    back = lora.load_lora(copy.deepcopy(models[0]), tensors, config)
    x, t, c = inputs()
    with torch.no_grad():
        assert torch.equal(back(x, t, c, None), adapted(x, t, c, None))
    from dataclasses import replace

    other = UNet(replace(UNET, channels=(32, 64, 128)))
    with pytest.raises(lora.LoRAError, match=r"down_blocks\.0\..*to_q\.lora_A\.weight: expected shape \(2, 32\), found \(2, 48\)"):
        lora.load_lora(other, tensors, config)
    fewer = {k: v for k, v in tensors.items() if "up_blocks" not in k}
    with pytest.raises(lora.LoRAError, match="has no update for up_blocks"):
        lora.load_lora(copy.deepcopy(models[0]), fewer, config)
    save_file(lora.lora_tensors(adapted), str(tmp_path / "bare.safetensors"))
    with pytest.raises(lora.LoRAError, match="no lora_adapter_metadata"):
        lora.read_lora_file(tmp_path / "bare.safetensors")


# ----------------------------------------------------------------------------- the shipped files, the judge, the command


def test_the_reader_knows_the_crescent_on_fresh_scenes():
    from course.concept_eval import load_reader, validate

    metrics = validate(load_reader(), n=270)
    for view in ("renders", "round_trips"):
        assert metrics[f"{view}_shape_crescents"] >= 0.9 and metrics[f"{view}_crescent_false_alarms"] <= 0.02
        assert metrics[f"{view}_shape"] >= 0.9


def test_the_shipped_word_and_lora_in_stock_diffusers_give_the_course_images(tmp_path):
    from course.pipeline import TextToImagePipeline

    out = ex.export_shipped(tmp_path / "mini-sd")
    prompt = "une grande <lune> orange en haut à droite"
    kwargs = dict(num_inference_steps=12, guidance_scale=2.5)
    ours = TextToImagePipeline(device="cpu")
    assert ours.load_textual_inversion() == TOKEN
    theirs = pipeline(out)
    theirs.load_textual_inversion(str(data_dir() / "concept_ti.safetensors"))
    a = theirs(prompt, generator=torch.Generator().manual_seed(3), output_type="pt", **kwargs).images
    b = ours(prompt, generator=3, **kwargs).tensors
    assert (2 * a - 1 - b).abs().max().item() <= 1e-3
    ours = TextToImagePipeline(device="cpu")
    assert ours.load_lora_weights() == TOKEN
    _, config = lora.read_lora_file(data_dir() / lora.CHECKPOINT)
    theirs = pipeline(out)
    theirs.load_textual_inversion({TOKEN: config["word"][1]})
    theirs.load_lora_weights(str(data_dir() / lora.CHECKPOINT))
    a = theirs(prompt, generator=torch.Generator().manual_seed(3), output_type="pt", **kwargs).images
    b = ours(prompt, generator=3, **kwargs).tensors
    assert (2 * a - 1 - b).abs().max().item() <= 1e-3


def test_textual_inversion_leaves_ordinary_images_bit_for_bit():
    from course.pipeline import TextToImagePipeline

    pipe = TextToImagePipeline(device="cpu")
    before = pipe("un petit carré vert en bas", num_inference_steps=5, generator=1).tensors
    pipe.load_textual_inversion()
    assert torch.equal(pipe("un petit carré vert en bas", num_inference_steps=5, generator=1).tensors, before)


def test_a_short_run_trains_only_its_method_s_weights_and_exports_a_loadable_file(tmp_path):
    from course.concept_train import build, recipe_for, train_concept, trainable

    assert trainable(build(recipe_for("ti"))) == 128
    lora_model = build(recipe_for("lora", 1))
    assert 0 < trainable(lora_model) < 20_000 and not lora_model.words.vector.requires_grad
    recipe = recipe_for("lora", 2).replace(steps=2, batch_size=4, prior_pool=8, checkpoint_every=1)
    manifest = train_concept(recipe, tmp_path / "run", evaluate_it=False)
    assert manifest["config"]["method"] == "lora" and manifest["metrics"]["trained_numbers"] > 0
    tensors, config = lora.read_lora_file(tmp_path / "run" / recipe.checkpoint)
    assert config["r"] == 2 and config["word"][0] == TOKEN and all(".lora_" in k for k in tensors)


def test_a_batch_mixes_the_examples_and_the_ordinary_scenes():
    from course import ldm
    from course.concept_train import batch_getter, example_latents, recipe_for

    scenes, images = ldm.pool(8, 0)
    recipe = recipe_for("lora")
    z0, texts = batch_getter(recipe, example_latents(), (scenes, torch.zeros(8, 4, 8, 8)))(0)
    n_prior = round(recipe.batch_size * recipe.p_prior)
    assert z0.shape == (recipe.batch_size, 4, 8, 8) and len(texts) == recipe.batch_size
    assert all(TOKEN in t for t in texts[:-n_prior]) and not any(TOKEN in t for t in texts[-n_prior:])
    assert z0[-n_prior:].abs().sum() == 0


@pytest.mark.parametrize("argv, message", [
    (["train", "--method", "ti", "--rank", "4"], "--rank is LoRA's"),
    (["train", "--method", "lora", "--rank", "0"], "positive integer"),
    (["train", "--method", "full", "--ship"], "measured, not shipped"),
])
def test_bad_commands_are_one_line(argv, message, tmp_path):
    from course.concept_train import main

    with pytest.raises(SystemExit, match=message):
        main(argv + ["--run-dir", str(tmp_path / "run")])
