"""img2img (SDEdit) and training-free inpainting (course.img2img, course.inpaint, the pipeline's ``img2img`` and
``inpaint``) equal diffusers' ``StableDiffusionImg2ImgPipeline`` and ``StableDiffusionInpaintPipeline`` (4-channel U-Net)
on the exported random-weight model; the timestep rule, the mask and the paste-back; bad input. Tests must fail, not
skip, without diffusers: a dev dependency."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

from course import export as ex
from course.img2img import img2img_grid, kept_steps, start_index
from course.inpaint import MaskWarning, as_mask, feather, latent_mask, paste_back
from course.paths import data_dir
from course.pipeline import TextToImagePipeline
from course.render import render
from course.samplers import grid_for
from course.noise_schedule import NoiseSchedule
from course.scenes import single
from course.shipped import IMAGE_SIZE, betas
from course.tokenizer import DIRNAME
from tests.test_export import models  # noqa: F401 (the random-weight fixture)

PROMPT = "un grand carré bleu en haut à gauche"


@pytest.fixture(scope="module")
def folder(models, tmp_path_factory):  # noqa: F811
    unet, ae, clip, scaling = models
    return ex.export(tmp_path_factory.mktemp("edit") / "mini-sd", unet, ae, scaling, clip.text, data_dir() / DIRNAME, IMAGE_SIZE)


@pytest.fixture(scope="module")
def ours(models):  # noqa: F811
    unet, ae, clip, scaling = models
    return TextToImagePipeline.from_modules(unet, clip, ae, scaling)


def picture() -> torch.Tensor:
    """A render (1, 3, 64, 64) in [−1, 1]: a red circle at the top left."""
    array = render(single("circle", "red", "top left", "large"), size=IMAGE_SIZE)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def stock(cls, folder, sampler):
    pipe = cls.from_pretrained(folder, local_files_only=True)
    if sampler == "ddim":  # set after construction: the constructor would rewrite steps_offset to 1
        pipe.scheduler = DDIMScheduler.from_config(ex.scheduler_config("ddim"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ----------------------------------------------------------------------------- which steps run


@pytest.mark.parametrize("steps, strength, kept", [(25, 0.6, 15), (10, 0.7, 7), (100, 0.29, 28), (50, 1.0, 50), (3, 0.5, 1)])
def test_the_kept_steps_are_the_floor_of_steps_times_strength(steps, strength, kept):
    assert kept_steps(steps, strength) == kept  # 100·0.29 = 28.999…: the float trap, kept as diffusers has it
    assert start_index(steps, strength) == steps - kept


@pytest.mark.parametrize("sampler", ["dpmpp", "ddim"])
@pytest.mark.parametrize("steps, strength", [(25, 0.6), (12, 0.3), (20, 0.55)])
def test_the_grid_tail_is_the_timesteps_diffusers_runs(folder, sampler, steps, strength):
    pipe = stock(StableDiffusionImg2ImgPipeline, folder, sampler)
    pipe.scheduler.set_timesteps(steps)
    theirs, n = pipe.get_timesteps(steps, strength, "cpu")
    tail = img2img_grid(grid_for(sampler, NoiseSchedule.from_betas(betas()), steps), strength)
    assert n == len(tail) - 1 == kept_steps(steps, strength)
    assert [int(t) - 1 for t in tail[:-1]] == theirs.tolist()  # diffusers numbers our t as t − 1


def test_no_step_to_run_is_one_sentence():
    with pytest.raises(ValueError, match=r"runs ⌊4·0.2⌋ = 0 steps: raise the strength, or use at least 5 steps"):
        start_index(4, 0.2)


# ----------------------------------------------------------------------------- parity with diffusers


@pytest.mark.parametrize("sampler", ["dpmpp", "ddim"])
@pytest.mark.parametrize("steps, strength", [(12, 0.6), (20, 0.55)])  # 20 steps: the 11 kept ones are < 15, the full grid is not
def test_img2img_equals_diffusers(models, folder, ours, sampler, steps, strength):  # noqa: F811
    pipe = stock(StableDiffusionImg2ImgPipeline, folder, sampler)
    x = picture()
    theirs = pipe(PROMPT, image=(x + 1) / 2, strength=strength, num_inference_steps=steps, guidance_scale=3.0,
                  generator=torch.Generator().manual_seed(4), output_type="pt").images
    mine = ours.img2img(x, PROMPT, strength=strength, num_inference_steps=steps, guidance_scale=3.0, generator=4, sampler=sampler).tensors
    assert theirs.shape == mine.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert (2 * theirs - 1 - mine).abs().max().item() <= 1e-3
    plain = ours(PROMPT, num_inference_steps=steps, guidance_scale=3.0, generator=4, sampler=sampler).tensors
    assert (mine - plain).abs().max().item() > 0.05  # the input image mattered: a test of plain generation would fail


def block_mask() -> torch.Tensor:
    m = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)
    m[..., 0:32, 0:32] = 1  # whole 8 × 8 cells: diffusers' nearest resize and our "any" give the same latent mask
    return m


@pytest.mark.parametrize("sampler", ["dpmpp", "ddim"])
@pytest.mark.parametrize("strength", [1.0, 0.7])
def test_inpainting_equals_diffusers_with_a_four_channel_unet(models, folder, ours, sampler, strength):  # noqa: F811
    pipe = stock(StableDiffusionInpaintPipeline, folder, sampler)
    x, m = picture(), block_mask()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diffusers' notes on a 4-channel U-Net and on the safety checker
        theirs = pipe(PROMPT, image=(x + 1) / 2, mask_image=m, strength=strength, num_inference_steps=10, guidance_scale=3.0,
                      generator=torch.Generator().manual_seed(6), output_type="pt").images
    mine = ours.inpaint(x, m, PROMPT, strength=strength, num_inference_steps=10, guidance_scale=3.0, generator=6, sampler=sampler,
                        paste=False).tensors
    assert (2 * theirs - 1 - mine).abs().max().item() <= 1e-3
    pasted = ours.inpaint(x, m, PROMPT, strength=strength, num_inference_steps=10, guidance_scale=3.0, generator=6, sampler=sampler).tensors
    outside = m[0, 0] == 0
    assert (pasted - x)[..., outside].abs().max().item() == 0  # the seam fix: the input, exactly
    assert (mine - x)[..., outside].abs().max().item() > 1e-3  # without it the autoencoder's round trip shows


# ----------------------------------------------------------------------------- the mask and the paste-back


def test_a_mask_smaller_than_a_cell_vanishes_in_diffusers_resize_not_in_ours():
    m = torch.zeros(1, 1, 64, 64)
    m[..., 3:6, 3:6] = 1  # 3 × 3 pixels inside the first 8 × 8 cell, not its top-left pixel
    assert latent_mask(m, 8, "nearest").sum() == 0
    any_ = latent_mask(m, 8, "any")
    assert any_.shape == (1, 1, 8, 8) and any_.sum() == 1 and any_[0, 0, 0, 0] == 1


def test_the_feather_ramps_inside_the_mask_only():
    m = torch.zeros(1, 1, 16, 16)
    m[..., 4:12, 4:12] = 1
    a = feather(m, 3)
    assert torch.equal(a[m == 0], torch.zeros(int((m == 0).sum())))
    assert a[0, 0, 4, 8].item() == pytest.approx(1 / 3) and a[0, 0, 5, 8].item() == pytest.approx(2 / 3) and a[0, 0, 8, 8] == 1
    assert torch.equal(feather(m, 0), m)
    original, generated = torch.full((1, 3, 16, 16), -1.0), torch.ones(1, 3, 16, 16)
    out = paste_back(original, generated, m, 3)
    assert torch.equal(out[..., 0:4, :], original[..., 0:4, :]) and out[0, 0, 8, 8] == 1


def test_masks_from_images_arrays_and_tensors():
    from PIL import Image

    array = np.zeros((32, 32), np.uint8)
    array[:16] = 255
    notes: list[str] = []
    m = as_mask(Image.fromarray(array), 64, notes)
    assert m.shape == (1, 1, 64, 64) and m[0, 0, :32].all() and not m[0, 0, 32:].any()
    assert notes == ["mask resized from 32×32 to 64×64 (the model's image size)"]
    assert torch.equal(as_mask(np.repeat(array[..., None], 3, -1), 32), as_mask(torch.from_numpy(array) / 255, 32))


def test_an_empty_mask_is_refused_and_a_full_one_warns():
    with pytest.raises(ValueError, match=r"the mask is empty \(all black\): there is nothing to repaint"):
        as_mask(torch.zeros(64, 64), 64)
    with pytest.warns(MaskWarning, match="covers the whole image: nothing of the input is kept"):
        as_mask(torch.ones(64, 64), 64)


# ----------------------------------------------------------------------------- bad input, before any model runs


@pytest.mark.parametrize("strength", [0, -0.5, 1.5, float("nan"), "much"])
def test_a_strength_outside_0_1_is_refused(ours, strength):
    with pytest.raises(ValueError, match=r"strength must be in \(0, 1\]"):
        ours.img2img(picture(), PROMPT, strength=strength)


def test_an_image_of_another_size_or_mode_is_converted_with_a_note(ours):
    from PIL import Image

    small = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
    with pytest.warns(UserWarning) as record:
        out = ours.img2img(small, PROMPT, strength=0.5, num_inference_steps=4)
    assert out.tensors.shape == (1, 3, 64, 64)
    assert [str(r.message) for r in record] == ["image converted from mode RGBA to RGB", "image resized from 32×32 to 64×64 (the model's image size)"]


def test_an_image_outside_the_range_is_one_sentence(ours):
    with pytest.raises(ValueError, match=r"must be in \[−1, 1\].*from \[0, 1\]: 2·x − 1\), got values in \[0.00, 255.00\]"):
        ours.img2img(torch.linspace(0, 255, 3 * 64 * 64).reshape(3, 64, 64), PROMPT)
    with pytest.raises(ValueError, match=r"one image or one per prompt \(2\), got 3"):
        ours.img2img(torch.zeros(3, 3, 64, 64), [PROMPT, PROMPT])


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "pndm", "euler_a", "heun", "dpmpp", "dpmpp_3m"])
def test_every_sampler_ends_on_the_known_latent_outside_the_mask(models, sampler):  # noqa: F811
    from course.pipeline import inpaint_latents

    unet, ae, clip, scaling = models
    z0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    m = torch.zeros(2, 1, 8, 8)
    m[..., 2:6, 1:4] = 1
    z = inpaint_latents(unet, clip, z0, m, [PROMPT, "a small red circle"], steps=6, generator=3, sampler=sampler)
    keep = (m == 0).expand_as(z0)
    assert torch.allclose(z[keep], z0[keep], atol=1e-6)  # the blend at t = 0 is z_0 itself, whatever the solver's units
    assert (z - z0)[~keep].abs().max() > 0.1  # inside the mask the model drew something else
