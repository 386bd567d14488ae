"""Samplers against diffusers on the same fixed model, timesteps, initial noise and per-step noise."""

import pytest
import torch

from course.samplers import SPACINGS, ddim_sample, timesteps
from course.schedules import alphas_cumprod, get_betas


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
