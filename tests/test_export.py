"""The course's models in a stock diffusers folder: StableDiffusionPipeline gives the course's images, and the
folder loads back into the from-scratch modules (tests must fail, not skip, without diffusers: a dev dependency)."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline

from course import export as ex
from course.autoencoder import AEConfig, Autoencoder
from course.diffusers_format import FormatError
from course.paths import data_dir
from course.pipeline import generate_latents
from course.shipped import IMAGE_SIZE, UNET, make_clip
from course.tokenizer import DIRNAME
from course.unet import UNet
from tests.test_diffusers_parity import randomise

PROMPTS = {"en": "a small red circle at the top left", "fr": "un grand carré bleu en bas à droite"}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    unet, ae, clip = UNet(UNET), Autoencoder(AEConfig()), make_clip()
    randomise(unet, seed=7)
    with torch.no_grad():  # random weights with the size of trained ones: ε̂ of order 1
        unet.conv_out.weight.mul_(0.1)
        for p in clip.text.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return unet.eval(), ae.eval(), clip.eval(), 0.9


@pytest.fixture(scope="module")
def folder(models, tmp_path_factory):
    unet, ae, clip, scaling = models
    return ex.export(tmp_path_factory.mktemp("export") / "mini-sd", unet, ae, scaling, clip.text, data_dir() / DIRNAME, IMAGE_SIZE)


def course_images(models, prompt, sampler, steps, w, seed):
    unet, ae, clip, scaling = models
    z = generate_latents(unet, clip, [prompt], sampler=sampler, steps=steps, guidance=w, generator=seed)
    return ae.decode(z / scaling).clamp(-1, 1)


@pytest.mark.parametrize("sampler", ["dpmpp", "ddim"])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_stock_pipeline_gives_the_course_images(models, folder, sampler, language):
    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)
    if sampler == "ddim":  # set after construction: the constructor would rewrite steps_offset to 1
        pipe.scheduler = DDIMScheduler.from_config(ex.scheduler_config("ddim"))
    pipe.set_progress_bar_config(disable=True)
    prompt, steps, w, seed = PROMPTS[language], 12, 3.0, 5
    theirs = pipe(prompt, num_inference_steps=steps, guidance_scale=w, generator=torch.Generator().manual_seed(seed), output_type="pt").images
    ours = course_images(models, prompt, sampler, steps, w, seed)
    assert theirs.shape == ours.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert ours.std() > 0.05  # an image, not a flat field
    assert (2 * theirs - 1 - ours).abs().max().item() <= 1e-3


def test_the_constructor_trap_is_real():
    """Passed to the constructor, the DDIM config's steps_offset becomes 1: the timesteps move by one."""
    scheduler = DDIMScheduler.from_config(ex.scheduler_config("ddim"))
    scheduler.set_timesteps(10)
    assert scheduler.timesteps[-1].item() == 0  # course t = 1, diffusers t − 1 = 0
    shifted = DDIMScheduler.from_config({**ex.scheduler_config("ddim"), "steps_offset": 1})
    shifted.set_timesteps(10)
    assert shifted.timesteps[-1].item() == 1


def test_folder_round_trips_into_the_course_modules(models, folder):
    unet, ae, clip, scaling = models
    back = ex.load_folder(folder)
    assert back.unet.config == unet.config and back.vae.config == ae.config and back.scaling_factor == scaling
    for a, b in ((back.unet, unet), (back.vae, ae)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    text_a, text_b = back.text_encoder.state_dict(), clip.text.state_dict()
    assert all(torch.equal(text_a[k], text_b[k]) for k in text_a if not k.startswith("text_projection"))
    assert back.image_size == IMAGE_SIZE and back.scheduler["_class_name"] == "DPMSolverMultistepScheduler"


def test_export_refuses_a_non_empty_folder_unless_forced(models, tmp_path):
    unet, ae, clip, scaling = models
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty.*--force"):
        ex.export(tmp_path, unet, ae, scaling, clip.text, data_dir() / DIRNAME, IMAGE_SIZE)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    ex.export(tmp_path, unet, ae, scaling, clip.text, data_dir() / DIRNAME, IMAGE_SIZE, force=True)
    assert (tmp_path / "model_index.json").exists() and not (tmp_path / "notes.txt").exists()


def test_a_folder_that_is_not_a_diffusers_model_is_one_sentence(tmp_path):
    with pytest.raises(FormatError, match="model_index.json is missing"):
        ex.load_folder(tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}))
    with pytest.raises(FormatError, match="no 'vae'"):
        ex.load_folder(tmp_path)


def test_a_mismatching_config_or_weight_names_the_key(folder, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    config = json.loads((bad / "unet" / "config.json").read_text())
    (bad / "unet" / "config.json").write_text(json.dumps({**config, "use_linear_projection": True}))
    with pytest.raises(FormatError, match="use_linear_projection"):
        ex.load_folder(bad)
    (bad / "unet" / "config.json").write_text(json.dumps({**config, "block_out_channels": [32, 96, 128]}))
    with pytest.raises(FormatError, match=r"unet: tensor 'time_embedding.linear_1.weight' has shape \(192, 48\), expected \(128, 32\)"):
        ex.load_folder(bad)


@pytest.mark.parametrize("sampler, prompt", [("dpmpp", "un cercle rouge en haut à gauche"), ("ddim", "two small grey stars")])
def test_the_shipped_model_exported_gives_the_images_of_course_generate(tmp_path, sampler, prompt):
    """The claim of `python -m course export-diffusers`: stock diffusers, shipped weights, the course's images."""
    from course.pipeline import TextToImagePipeline

    out = ex.export_shipped(tmp_path / "mini-sd")
    pipe = StableDiffusionPipeline.from_pretrained(out, local_files_only=True)
    if sampler == "ddim":
        pipe.scheduler = DDIMScheduler.from_config(ex.scheduler_config("ddim"))
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(prompt, num_inference_steps=20, guidance_scale=3.0, generator=torch.Generator().manual_seed(11), output_type="pt").images
    ours = TextToImagePipeline(device="cpu")(prompt, num_inference_steps=20, guidance_scale=3.0, generator=11, sampler=sampler).tensors
    assert (2 * theirs - 1 - ours).abs().max().item() <= 1e-3
