"""The schedule object (ᾱ, α, σ, λ, σ̃; t ↔ σ̃) and the grids, against closed forms and diffusers."""

import diffusers
import numpy as np
import pytest
import torch

from course.grids import GRIDS, check_grid, dpm_spaced, karras, log_snr, make_grid, spaced
from course.noise_schedule import NoiseSchedule
from course.schedules import alphas_cumprod, get_betas

SCHEDULE = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000))


def test_integer_steps_read_the_table_exactly():
    abar = alphas_cumprod(get_betas("scaled_linear", 1000))
    t = torch.tensor([0, 1, 10, 500, 1000])
    assert torch.equal(SCHEDULE.abar(t), abar[t])
    assert torch.allclose(SCHEDULE.alpha(t) ** 2 + SCHEDULE.sigma(t) ** 2, torch.ones(5, dtype=torch.float64))
    assert torch.allclose(SCHEDULE.sigma_ve(t[1:]), ((1 - abar[t[1:]]) / abar[t[1:]]).sqrt())
    assert SCHEDULE.lambda_(0) == float("inf") and SCHEDULE.sigma_ve(0) == 0


def test_fractional_t_round_trips_through_sigma_and_lambda():
    t = torch.tensor([1.0, 1.5, 37.25, 500.5, 999.9, 1000.0], dtype=torch.float64)
    assert torch.allclose(SCHEDULE.t_from_sigma_ve(SCHEDULE.sigma_ve(t)), t, atol=1e-9)
    assert torch.allclose(SCHEDULE.t_from_lambda(SCHEDULE.lambda_(t)), t, atol=1e-9)
    assert bool((SCHEDULE.lambda_(t)[1:] < SCHEDULE.lambda_(t)[:-1]).all())  # λ falls as noise grows


def test_sigma_to_t_matches_diffusers_interpolation():
    scheduler = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    abar = scheduler.alphas_cumprod.double()
    log_sigmas = (((1 - abar) / abar) ** 0.5).log().numpy()
    sigmas = np.array([0.05, 0.3, 1.0, 4.2, 14.0])
    theirs = scheduler._sigma_to_t(sigmas, log_sigmas) + 1  # diffusers' τ is our t − 1
    schedule = NoiseSchedule(torch.cat([torch.ones(1, dtype=torch.float64), abar]))
    assert np.allclose(schedule.t_from_sigma_ve(torch.tensor(sigmas)).numpy(), theirs, atol=1e-6)


def test_bad_t_and_sigma_are_clear_errors():
    with pytest.raises(ValueError, match=r"0 or in \[1, 1000\]"):
        SCHEDULE.abar(0.5)
    with pytest.raises(ValueError, match=r"0 or in \[1, 1000\]"):
        SCHEDULE.abar(1001)
    with pytest.raises(ValueError, match="σ̃ must be 0 or in"):
        SCHEDULE.t_from_sigma_ve(1e4)
    with pytest.raises(ValueError, match="ᾱ_0 = 1"):
        NoiseSchedule(torch.tensor([0.9, 0.5]))


@pytest.mark.parametrize("steps", [1, 4, 10, 25])
def test_every_grid_is_valid_and_has_steps_plus_one_instants(steps):
    for name in GRIDS:
        grid = make_grid(name, SCHEDULE, steps)
        assert check_grid(grid, 1000).numel() == steps + 1, name


def test_karras_grid_is_eq5_of_karras_et_al():
    grid = karras(SCHEDULE, 10, rho=7.0)
    sig = SCHEDULE.sigma_ve(grid[:-1])
    lo, hi = float(SCHEDULE.sigma_ve(1)), float(SCHEDULE.sigma_ve(1000))
    ramp = torch.linspace(0, 1, 10, dtype=torch.float64)
    assert torch.allclose(sig, (hi ** (1 / 7) + ramp * (lo ** (1 / 7) - hi ** (1 / 7))) ** 7, rtol=1e-8)
    scheduler = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                                                 beta_end=0.012, use_karras_sigmas=True, timestep_spacing="linspace")
    scheduler.set_timesteps(10)
    assert torch.allclose(sig.float(), scheduler.sigmas[:-1], rtol=1e-4)  # diffusers: same bounds, same ρ


def test_log_snr_grid_is_uniform_in_lambda():
    lam = SCHEDULE.lambda_(log_snr(SCHEDULE, 8)[:-1])
    gaps = lam[1:] - lam[:-1]
    assert torch.allclose(gaps, gaps.mean().expand_as(gaps), rtol=1e-8)
    assert torch.isclose(lam[0], SCHEDULE.lambda_(1000)) and torch.isclose(lam[-1], SCHEDULE.lambda_(1))


def test_spaced_grids_end_at_zero_and_keep_diffusers_timesteps():
    assert spaced(1000, 4, "leading").tolist() == [751, 501, 251, 1, 0]
    assert spaced(1000, 4, "trailing").tolist() == [1000, 750, 500, 250, 0]
    assert dpm_spaced(1000, 4, "linspace").tolist() == [1000, 750, 501, 251, 0]


def test_bad_grids_are_clear_errors():
    with pytest.raises(ValueError, match="end at t = 0"):
        check_grid(torch.tensor([10.0, 5.0]), 100)
    with pytest.raises(ValueError, match="strictly decreasing"):
        check_grid(torch.tensor([5.0, 10.0, 0.0]), 100)
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        check_grid(torch.tensor([500.0, 0.0]), 100)
    with pytest.raises(ValueError, match="rho must be > 0"):
        karras(SCHEDULE, 10, rho=0)
