"""The text-to-image pipeline (lesson 07): deterministic, diffusers-like outputs, clear errors."""

import subprocess
import sys
import warnings

import pytest
import torch

from course import ldm
from course.paths import data_dir

pytestmark = pytest.mark.skipif(not (data_dir() / ldm.CHECKPOINT).exists(), reason="the latent U-Net is not shipped")


@pytest.fixture(scope="module")
def pipe():
    from course.pipeline import TextToImagePipeline

    return TextToImagePipeline(device="cpu")


def test_same_seed_same_image_and_pil_outputs(pipe):
    a = pipe("un cercle rouge en haut à gauche", num_inference_steps=4, guidance_scale=3.0, generator=0)
    b = pipe("un cercle rouge en haut à gauche", num_inference_steps=4, guidance_scale=3.0, generator=0)
    c = pipe("un cercle rouge en haut à gauche", num_inference_steps=4, guidance_scale=3.0, generator=1)
    assert torch.equal(a.tensors, b.tensors) and not torch.equal(a.tensors, c.tensors)
    assert a.images[0].size == (64, 64) and a.tensors.shape == (1, 3, 64, 64)
    batch = pipe(["a blue star", "une étoile bleue"], num_inference_steps=3, num_images_per_prompt=2, keep_x0_hat=True)
    assert len(batch.images) == 4 and len(batch.x0_hats) == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompt": "  "}, "non-empty"),
        ({"guidance_scale": -1}, r"guidance_scale must be in \[0, 50\]"),
        ({"guidance_scale": float("nan")}, "guidance_scale must be a finite number"),
        ({"guidance_scale": float("inf")}, "guidance_scale must be a finite number"),
        ({"guidance_scale": 1e6}, r"guidance_scale must be in \[0, 50\]"),
        ({"num_images_per_prompt": 10_000}, "at most 1024 per call"),
        ({"generator": -1}, "seed must be an integer"),
        ({"num_inference_steps": 0}, r"num_inference_steps must be an integer in \[1, 1000\]"),
        ({"sampler": "karras"}, "unknown sampler .karras.: choose one of ddpm, ddim, pndm, euler_a, dpmpp"),
    ],
)
def test_bad_input_is_a_clear_error(pipe, kwargs, message):
    args = {"prompt": "un cercle rouge", "num_inference_steps": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        pipe(**args)


def test_unknown_words_are_named_in_a_warning(pipe):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe("un cercle rouge licorne", num_inference_steps=2)
    assert any("licorne" in str(w.message) for w in caught)


def test_command_refuses_an_unwritable_output(tmp_path):
    result = subprocess.run([sys.executable, "-m", "course", "generate", "un cercle rouge", "--steps", "2", "-o", str(tmp_path / "nope" / "x.png")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_many_images_go_in_bounded_batches(pipe, monkeypatch):
    from course import pipeline

    sizes = []
    real = pipeline.generate_latents
    monkeypatch.setattr(pipeline, "generate_latents", lambda unet, clip, prompts, *a, **k: sizes.append(len(prompts)) or real(unet, clip, prompts, *a, **k))
    whole = pipe("a blue star", num_inference_steps=3, sampler="ddim", num_images_per_prompt=5, generator=2).tensors
    batched = pipe("a blue star", num_inference_steps=3, sampler="ddim", num_images_per_prompt=5, generator=2, batch_size=2, keep_x0_hat=True)
    assert sizes == [5, 2, 2, 1] and batched.tensors.shape == (5, 3, 64, 64)
    assert torch.allclose(whole, batched.tensors, atol=1e-4)  # same x_T whatever the batch size (deterministic sampler)
    assert len(batched.x0_hats) == 3 and batched.x0_hats[0][1].shape[0] == 2  # x̂_0 of the first batch


def test_threads_one_for_a_single_image():
    from course.pipeline import threads_for

    assert threads_for(1) == threads_for(2) == 1 and 1 <= threads_for(64)
