"""Samplers against diffusers on the same fixed model, timesteps, initial noise and per-step noise;
against the closed form of a Gaussian's probability-flow ODE; and the adapter's three predictions."""

import math

import diffusers
import pytest
import torch

from course.adapter import Denoiser
from course.grids import log_snr, spaced
from course.noise_schedule import NoiseSchedule
from course.samplers import (
    SAMPLERS,
    SPACINGS,
    ddim,
    ddim_sample,
    ddim_step,
    ddpm_strided,
    dpmpp_2m_sample,
    dpmpp_multistep,
    euler_ancestral_sample,
    evaluations,
    heun,
    pndm_sample,
    sample,
    timesteps,
)
from course.schedules import get_betas


def fixed_model(x, t):
    """A deterministic stand-in for ε_θ: smooth in x and in t (t may be fractional)."""
    return torch.tanh(0.7 * x) * (0.5 + t.view(-1, *[1] * (x.dim() - 1)).to(x.dtype) / 2000)


def diffusers_scheduler(cls_name, betas, **kwargs):
    scheduler = getattr(diffusers, cls_name)(num_train_timesteps=betas.numel() - 1, trained_betas=betas[1:].numpy(), **kwargs)
    scheduler.betas = betas[1:].double()  # diffusers stores float32; the comparison is of maths, not of rounding
    scheduler.alphas = 1 - scheduler.betas
    scheduler.alphas_cumprod = torch.cumprod(scheduler.alphas, 0)
    if hasattr(scheduler, "final_alpha_cumprod"):
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


def noise(seed=0):
    return torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [1, 10, 50, 999])
def test_timesteps_match_diffusers(spacing, steps):
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
    scheduler.set_timesteps(steps)
    assert timesteps(1000, steps, spacing) == [int(tau) + 1 for tau in scheduler.timesteps]


# diffusers' DDIM with "linspace" steps by the fixed stride ⌊T/S⌋, which does not land on its own next timestep
# (the grid is not uniform): ours steps to the next instant of the grid, so parity is asserted where both agree.
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_matches_diffusers_at_every_step(spacing, eta):
    betas = get_betas("scaled_linear", 1000)
    scheduler = diffusers_scheduler("DDIMScheduler", betas, timestep_spacing=spacing, set_alpha_to_one=True, clip_sample=False)
    scheduler.set_timesteps(20)
    x_T = noise()
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


def test_ddim_on_a_linspace_grid_chains_the_step_between_consecutive_instants():
    betas = get_betas("scaled_linear", 1000)
    abar = torch.cumprod(1 - betas, 0)
    grid = spaced(1000, 20, "linspace")
    x = noise()
    out = ddim_sample(fixed_model, x, betas, steps=20, spacing="linspace")
    for t, s in zip(grid[:-1].long().tolist(), grid[1:].long().tolist()):
        x, _ = ddim_step(x, t, s, fixed_model(x, torch.full((2,), t)), abar)
    assert (out - x).abs().max().item() < 1e-12


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
    with pytest.raises(ValueError, match="floating-point"):
        sample("ddim", fixed_model, torch.zeros(1, 2, dtype=torch.long), betas, 5)


def run_diffusers(scheduler, x_T, steps, generator_seed=1, input_scale=False, start_scale=None):
    """diffusers' sampling loop with the same fixed model; returns the state after every step (its units)."""
    scheduler.set_timesteps(steps)
    x = x_T * (scheduler.init_noise_sigma if start_scale is None else start_scale)
    g = torch.Generator().manual_seed(generator_seed)
    states = []
    for tau in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, tau) if input_scale else x
        t = torch.full((x.shape[0],), float(tau) + 1, dtype=torch.float64)
        eps = fixed_model(model_input, t.round().long() if float(tau) == int(tau) else t)
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
    x_T = noise()
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
    x_T = noise()
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
    x_T = noise()
    scheduler.set_timesteps(steps)
    sig = scheduler.sigmas.double()
    # ours always starts from x_T/α_T = x_T·√(σ̃_max² + 1); diffusers does so with "leading" only (σ̃_max otherwise)
    theirs = [x / (s**2 + 1).sqrt() for x, s in zip(run_diffusers(scheduler, x_T, steps, input_scale=True, start_scale=(sig[0] ** 2 + 1).sqrt()), sig[1:])]
    ours, cb = collect()
    euler_ancestral_sample(fixed_model, x_T, betas, steps=steps, spacing=spacing, generator=torch.Generator().manual_seed(1), callback=cb)
    assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) < 1e-4  # diffusers steps in float32


@pytest.mark.parametrize("steps", [3, 10, 25])
def test_heun_matches_diffusers_on_karras_sigmas(steps):
    betas = get_betas("scaled_linear", 1000)
    schedule = NoiseSchedule.from_betas(betas)
    scheduler = diffusers_scheduler("HeunDiscreteScheduler", betas, use_karras_sigmas=True)
    x_T = noise()
    scheduler.set_timesteps(steps)
    sig = scheduler.sigmas.double()
    theirs = run_diffusers(scheduler, x_T, steps, input_scale=True, start_scale=(sig[0] ** 2 + 1).sqrt())[-1]
    unique = torch.unique_consecutive(sig)  # diffusers repeats each intermediate σ̃ (one per evaluation)
    grid = schedule.t_from_sigma_ve(unique)
    counted = Denoiser(fixed_model, schedule)
    ours = heun(counted, x_T, grid, schedule)
    assert counted.calls == len(scheduler.timesteps) == evaluations("heun", steps)
    assert (ours - theirs).abs().max().item() < 1e-4  # diffusers steps in float32


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [5, 20, 25])
def test_dpmpp_2m_matches_diffusers(spacing, steps):
    betas = get_betas("scaled_linear", 1000)
    scheduler = diffusers_scheduler("DPMSolverMultistepScheduler", betas, timestep_spacing=spacing, algorithm_type="dpmsolver++", solver_order=2)
    x_T = noise()
    theirs = run_diffusers(scheduler, x_T, steps)
    ours, cb = collect()
    dpmpp_2m_sample(fixed_model, x_T, betas, steps=steps, spacing=spacing, callback=cb)
    assert len(ours) == len(theirs)
    assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) < 1e-4  # diffusers steps in float32


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [5, 12, 20])
def test_dpmpp_3m_matches_diffusers(spacing, steps):
    betas = get_betas("scaled_linear", 1000)
    scheduler = diffusers_scheduler("DPMSolverMultistepScheduler", betas, timestep_spacing=spacing, algorithm_type="dpmsolver++", solver_order=3)
    x_T = noise()
    theirs = run_diffusers(scheduler, x_T, steps)
    ours, cb = collect()
    sample("dpmpp_3m", fixed_model, x_T, betas, steps, grid=spacing, callback=cb)
    assert len(ours) == len(theirs)
    assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) < 1e-4  # diffusers steps in float32


# ----------------------------------------------------------------------------- the closed form: one Gaussian

MU, S = 0.3, 0.5  # data N(μ, s²) in every coordinate


def gaussian_eps(schedule):
    """Exact E[ε | x_t] for x_0 ~ N(μ, s²): σ_t·(x_t − α_t μ)/(α_t² s² + σ_t²), at any t the schedule reads."""

    def model(x, t):
        a, s = schedule.alpha(t.double()).view(-1, 1), schedule.sigma(t.double()).view(-1, 1)
        return (s * (x - a * MU) / (a**2 * S**2 + s**2)).to(x.dtype)

    return model


def exact_flow(schedule, x_T):
    """The probability-flow ODE keeps each point's standardised position: x_0 = μ + s·(x_T − α_T μ)/√(α_T² s² + σ_T²)."""
    a, s = float(schedule.alpha(schedule.T)), float(schedule.sigma(schedule.T))
    return MU + S * (x_T - a * MU) / math.sqrt(a**2 * S**2 + s**2)


# 3M's first step is first order (no past x̂_0 yet): its local error O(h²) caps the global order at 2, as
# for any multistep method started this way; 3M still has the smallest errors (checked below).
@pytest.mark.parametrize("name, order", [("ddim", 1), ("heun", 2), ("dpmpp", 2), ("dpmpp_3m", 2)])
def test_solvers_converge_at_their_order(name, order):
    """Self-convergence on nested log-SNR grids (same last instant, so the final jump to σ = 0 cancels):
    halving the step divides the error by about 2^order."""
    schedule = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000))
    x_T = torch.linspace(-2, 2, 64, dtype=torch.float64).view(64, 1)
    model = gaussian_eps(schedule)
    run = {"ddim": ddim, "heun": heun, "dpmpp": lambda *a: dpmpp_multistep(*a, order=2, lower_order_final=False),
           "dpmpp_3m": lambda *a: dpmpp_multistep(*a, order=3, lower_order_final=False)}[name]
    reference = run(model, x_T, log_snr(schedule, 640), schedule)
    errors = [(run(model, x_T, log_snr(schedule, n), schedule) - reference).abs().max().item() for n in (10, 20, 40)]
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(r > order - 0.5 for r in rates), (errors, rates)
    if name == "dpmpp_3m":
        two = dpmpp_multistep(model, x_T, log_snr(schedule, 20), schedule, order=2, lower_order_final=False)
        assert errors[1] < 0.5 * (two - reference).abs().max().item()


@pytest.mark.parametrize("name", ["ddim", "pndm", "heun", "dpmpp", "dpmpp_3m"])
def test_deterministic_solvers_reach_the_exact_flow(name):
    schedule = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000))
    x_T = torch.linspace(-2, 2, 64, dtype=torch.float64).view(64, 1)
    out = sample(name, gaussian_eps(schedule), x_T, schedule, 200, grid="log_snr" if name != "pndm" else "leading")
    # what remains is the final jump from t = 1 (σ̃ ≈ 0.03) to 0, a relative error ≈ σ̃²/(2s²) ≈ 0.2 %
    assert (out - exact_flow(schedule, x_T)).abs().max().item() < 0.01


# ----------------------------------------------------------------------------- the adapter: ε, x_0 or v


def test_the_three_predictions_give_the_same_samples():
    schedule = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000))
    eps_model = gaussian_eps(schedule)

    def x0_model(x, t):
        a, s = schedule.alpha(t.double()).view(-1, 1), schedule.sigma(t.double()).view(-1, 1)
        return (x - s * eps_model(x, t)) / a

    def v_model(x, t):
        a, s = schedule.alpha(t.double()).view(-1, 1), schedule.sigma(t.double()).view(-1, 1)
        return a * eps_model(x, t) - s * x0_model(x, t)

    x_T = torch.linspace(-2, 2, 16, dtype=torch.float64).view(16, 1)
    for name in ("ddim", "heun", "dpmpp_3m", "pndm"):
        ref = sample(name, eps_model, x_T, schedule, 12)
        for model, prediction in ((x0_model, "sample"), (v_model, "v_prediction")):
            assert (sample(name, model, x_T, schedule, 12, prediction=prediction) - ref).abs().max().item() < 1e-9, (name, prediction)


def test_the_adapter_checks_what_the_model_returns():
    schedule = NoiseSchedule.from_betas(get_betas("linear", 100))
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"returned \(2, 2\) for an input of shape \(4, 2\)"):
        Denoiser(lambda x, t: x[:2], schedule)(x, 10)
    with pytest.raises(FloatingPointError, match="NaN or inf at t = 10"):
        Denoiser(lambda x, t: x * float("nan"), schedule)(x, 10)
    with pytest.raises(ValueError, match="epsilon, sample, v_prediction"):
        Denoiser(fixed_model, schedule, prediction="velocity")
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        sample("ddim", lambda x, t: x * float("nan"), x, get_betas("linear", 100), 5)


def test_sample_dispatch_and_errors():
    betas = get_betas("linear", 100)
    x_T = torch.randn(1, 2)
    for name in SAMPLERS:
        counted = Denoiser(fixed_model, NoiseSchedule.from_betas(betas))
        out = sample(name, counted, x_T, betas, steps=5, generator=torch.Generator().manual_seed(0))
        assert out.shape == x_T.shape and torch.isfinite(out).all()
        assert counted.calls == evaluations(name, 5)
    with pytest.raises(ValueError, match="ddpm, ddim, pndm, euler_a, dpmpp, heun, dpmpp_3m"):
        sample("lms", fixed_model, x_T, betas, steps=5)
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        sample("ddim", fixed_model, x_T, betas, steps=0)
    with pytest.raises(ValueError, match="karras, log_snr"):
        sample("ddim", fixed_model, x_T, betas, steps=5, grid="cosine")


def test_guidance_pairing_reports_each_sampler_at_each_scale():
    from course.scheduler_table import guidance_pairing

    rows = guidance_pairing(n=2, steps=3, scales=(1.0, 3.0))
    assert [(r["guidance"], r["sampler"]) for r in rows] == [(1.0, "ddim"), (1.0, "pndm"), (3.0, "ddim"), (3.0, "pndm")]
    assert all(r["n_prompts"] == 2 and 0 <= r["all_correct"] <= r["shape"] <= 1 for r in rows)
