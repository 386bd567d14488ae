"""Evaluation-time generation: one path (course.pipeline.generate_latents), the same numbers as before the refactor."""

import subprocess
import sys

import pytest
import torch

from course import evaluation, ldm
from course.guidance import guided
from course.paths import data_dir
from course.samplers import ddim_sample, sample
from course.shipped import GUIDANCE, betas, load_autoencoder, load_clip, load_unet, text_states

pytestmark = pytest.mark.skipif(not (data_dir() / ldm.CHECKPOINT).exists(), reason="the latent U-Net is not shipped")

PROMPTS = ["un grand cercle rouge en haut à gauche", "a small blue star at the bottom right"]


def old_generate_latents(prompts, steps, guidance, seed):
    """ldm.generate_latents as it was when the manifest's numbers were measured (DDIM η = 0, written inline)."""
    unet, clip = load_unet(), load_clip()
    _, factor = load_autoencoder()
    context, mask = text_states(prompts, clip)
    null, null_mask = text_states([""], clip)
    g = torch.Generator(device="cpu").manual_seed(seed)
    z_T = torch.randn((len(prompts), 4, 8, 8), generator=g, device="cpu")
    eps = guided(unet, context, mask, null, null_mask, guidance)
    return ddim_sample(eps, z_T, betas(), steps=steps, eta=0.0, generator=g) / factor


@pytest.mark.parametrize("seed, guidance", [(0, GUIDANCE), (5, 2.0)])
def test_ldm_generate_latents_bit_identical_to_the_old_path(seed, guidance):
    new = ldm.generate_latents(PROMPTS, steps=6, guidance=guidance, seed=seed)
    assert new.shape == (2, 4, 8, 8)
    assert torch.equal(new, old_generate_latents(PROMPTS, 6, guidance, seed))
    ae, _ = load_autoencoder()
    assert torch.equal(ldm.generate(PROMPTS, steps=6, guidance=guidance, seed=seed), ae.decode(new).clamp(-1, 1))


def test_scheduler_table_keeps_its_two_noise_streams():
    from course.scheduler_table import generate_with

    unet, clip = load_unet(), load_clip()
    ae, factor = load_autoencoder()
    context, mask = text_states(PROMPTS, clip)
    null, null_mask = text_states([""], clip)
    z_T = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    eps = guided(unet, context, mask, null, null_mask, GUIDANCE)
    z0 = sample("euler_a", eps, z_T, betas(), 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(generate_with("euler_a", PROMPTS, 5), ae.decode(z0 / factor).clamp(-1, 1))
    assert not torch.equal(generate_with("euler_a", PROMPTS, 5, noise_seed=2), generate_with("euler_a", PROMPTS, 5))


def test_evaluate_batches_are_seeded_seed_plus_i(monkeypatch):
    seen = []
    monkeypatch.setattr(evaluation, "generate", lambda prompts, unet, steps, guidance, seed, device: seen.append((len(prompts), seed)) or torch.zeros(len(prompts), 3, 64, 64))
    evaluation.generate_batched(["a"] * 300, None, 50, 3.0, seed=10, batch=128)
    assert seen == [(128, 10), (128, 138), (44, 266)]


def test_ldm_reexports_evaluation():
    assert ldm.heldout_prompts is evaluation.heldout_prompts and ldm.evaluate is evaluation.evaluate
    assert (ldm.TEST_SEED, ldm.VALIDATION_SEED) == (777, 778)
    assert evaluation.heldout_prompts(4)[1] == ldm.heldout_prompts(4)[1]


def _imported(modules: str, names: tuple[str, ...]) -> str:
    code = f"import sys, {modules}; print([m for m in {names!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return out.stdout.strip() or out.stderr


def test_inference_modules_import_no_training_module():
    training = ("course.ldm", "course.ae_train", "course.clip_train", "course.train")
    assert _imported("course.pipeline, course.evaluation, course.scheduler_table, course.__main__", training) == "[]"


def test_the_generate_path_imports_nothing_heavy():
    heavy = ("matplotlib", "skimage", "diffusers", "course.data", "course.eval")  # not tqdm: torch.hub imports it
    assert _imported("course.pipeline, course.__main__", heavy) == "[]"
