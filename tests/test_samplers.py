"""Samplers against diffusers on the same fixed model, timesteps, initial noise and per-step noise."""

import pytest
import torch

from course.samplers import (
    SAMPLERS,
    SPACINGS,
    ddim_sample,
    ddpm_strided,
    dpmpp_2m_sample,
    euler_ancestral_sample,
    pndm_sample,
    sample,
    timesteps,
)
from course.schedules import get_betas


def fixed_model(x, t):
    """A deterministic stand-in for ε_θ: smooth in x and in t."""
    return torch.tanh(0.7 * x) * (0.5 + t.view(-1, *[1] * (x.dim() - 1)).to(x.dtype) / 2000)


def diffusers_scheduler(cls_name, betas, **kwargs):
    diffusers = pytest.importorskip("diffusers")
    scheduler = getattr(diffusers, cls_name)(num_train_timesteps=betas.numel() - 1, trained_betas=betas[1:].numpy(), **kwargs)
    scheduler.betas = betas[1:].double()  # diffusers stores float32; the comparison is of maths, not of rounding
    scheduler.alphas = 1 - scheduler.betas
    scheduler.alphas_cumprod = torch.cumprod(scheduler.alphas, 0)
    if hasattr(scheduler, "final_alpha_cumprod"):
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [1, 10, 50, 999])
def test_timesteps_match_diffusers(spacing, steps):
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
    scheduler.set_timesteps(steps)
    assert timesteps(1000, steps, spacing) == [int(tau) + 1 for tau in scheduler.timesteps]


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_matches_diffusers_at_every_step(spacing, eta):
    betas = get_betas("scaled_linear", 1000)
    scheduler = diffusers_scheduler("DDIMScheduler", betas, timestep_spacing=spacing, set_alpha_to_one=True, clip_sample=False)
    scheduler.set_timesteps(20)
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    ours_steps = []
    ddim_sample(fixed_model, x_T, betas, steps=20, eta=eta, spacing=spacing, generator=torch.Generator().manual_seed(1),
                callback=lambda t, x, x0: ours_steps.append(x.clone()))
    x, g = x_T.clone(), torch.Generator().manual_seed(1)
    worst = 0.0
    for i, tau in enumerate(scheduler.timesteps):
        eps = fixed_model(x, torch.full((2,), int(tau) + 1))
        x = scheduler.step(eps, tau, x, eta=eta, generator=g).prev_sample
        worst = max(worst, (x - ours_steps[i]).abs().max().item())
    assert worst < 1e-10


def test_bad_input_lists_the_valid_values():
    betas = get_betas("linear", 100)
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        timesteps(100, 0)
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        timesteps(100, 101)
    with pytest.raises(ValueError, match="leading, trailing, linspace"):
        timesteps(100, 10, "uniform")
    with pytest.raises(ValueError, match=r"eta must be in \[0, 1\]"):
        ddim_sample(fixed_model, torch.zeros(1, 1), betas, steps=5, eta=1.5)


def run_diffusers(scheduler, x_T, steps, generator_seed=1, input_scale=False):
    """diffusers' sampling loop with the same fixed model; returns the state after every step (VP units)."""
    scheduler.set_timesteps(steps)
    x = x_T * scheduler.init_noise_sigma
    g = torch.Generator().manual_seed(generator_seed)
    states = []
    for tau in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, tau) if input_scale else x
        eps = fixed_model(model_input, torch.full((x.shape[0],), int(tau) + 1))
        kwargs = {"generator": g} if "generator" in scheduler.step.__code__.co_varnames else {}
        x = scheduler.step(eps, tau, x, **kwargs).prev_sample
        states.append(x.clone())
    return states


def collect():
    states = []
    return states, lambda t, x, x0: states.append(x.clone())


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [10, 50])
def test_ddpm_with_fewer_steps_matches_diffusers(spacing, steps):
    betas = get_betas("linear", 1000)
    scheduler = diffusers_scheduler("DDPMScheduler", betas, timestep_spacing=spacing, variance_type="fixed_small", clip_sample=True)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = run_diffusers(scheduler, x_T, steps)
    ours, cb = collect()
    ddpm_strided(fixed_model, x_T, betas, steps=steps, spacing=spacing, generator=torch.Generator().manual_seed(1), clip_x0=1.0, callback=cb)
    assert len(ours) == len(theirs)
    assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) < 1e-6


# With "linspace" the grid is not uniform and diffusers' PNDM warm-up evaluates ε at t_1 on x_{t_0} but applies
# it as if from t_1 + δ: ours stays self-consistent there, so parity is asserted where the two agree by design.
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("steps", [5, 20, 50])
def test_pndm_matches_diffusers(spacing, steps):
    betas = get_betas("scaled_linear", 1000)
    scheduler = diffusers_scheduler("PNDMScheduler", betas, timestep_spacing=spacing, skip_prk_steps=True, set_alpha_to_one=True)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = run_diffusers(scheduler, x_T, steps)[1:]  # diffusers' first call is the warm-up's provisional step
    ours, cb = collect()
    pndm_sample(fixed_model, x_T, betas, steps=steps, spacing=spacing, callback=cb)
    assert len(ours) == len(theirs) == steps
    assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) < 1e-10


@pytest.mark.parametrize("spacing", ["leading", "trailing"])  # diffusers' "linspace" Euler uses fractional timesteps
@pytest.mark.parametrize("steps", [10, 30])
def test_euler_ancestral_matches_diffusers(spacing, steps):
    betas = get_betas("scaled_linear", 1000)
    scheduler = diffusers_scheduler("EulerAncestralDiscreteScheduler", betas, timestep_spacing=spacing)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scheduler.set_timesteps(steps)
    sig_next = list(scheduler.sigmas[1:].double())
    theirs = [x / (s**2 + 1).sqrt() for x, s in zip(run_diffusers(scheduler, x_T, steps, input_scale=True), sig_next)]
    ours, cb = collect()
    euler_ancestral_sample(fixed_model, x_T, betas, steps=steps, spacing=spacing, generator=torch.Generator().manual_seed(1), callback=cb)
    assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) < 1e-4  # diffusers steps in float32


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [5, 20, 25])
def test_dpmpp_2m_matches_diffusers(spacing, steps):
    betas = get_betas("scaled_linear", 1000)
    scheduler = diffusers_scheduler("DPMSolverMultistepScheduler", betas, timestep_spacing=spacing, algorithm_type="dpmsolver++", solver_order=2)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = run_diffusers(scheduler, x_T, steps)
    ours, cb = collect()
    dpmpp_2m_sample(fixed_model, x_T, betas, steps=steps, spacing=spacing, callback=cb)
    assert len(ours) == len(theirs)
    assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) < 1e-4  # diffusers steps in float32


def test_sample_dispatch_and_errors():
    betas = get_betas("linear", 100)
    x_T = torch.randn(1, 2)
    for name in SAMPLERS:
        out = sample(name, fixed_model, x_T, betas, steps=5, generator=torch.Generator().manual_seed(0))
        assert out.shape == x_T.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="ddpm, ddim, pndm, euler_a, dpmpp"):
        sample("heun", fixed_model, x_T, betas, steps=5)
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        sample("ddim", fixed_model, x_T, betas, steps=0)


def test_guidance_pairing_reports_each_sampler_at_each_scale():
    from course.scheduler_table import guidance_pairing

    rows = guidance_pairing(n=2, steps=3, scales=(1.0, 3.0))
    assert [(r["guidance"], r["sampler"]) for r in rows] == [(1.0, "ddim"), (1.0, "pndm"), (3.0, "ddim"), (3.0, "pndm")]
    assert all(r["n_prompts"] == 2 and 0 <= r["all_correct"] <= r["shape"] <= 1 for r in rows)
