"""Schedules against their closed forms and against diffusers (the referee, a test-only dependency)."""

import math

import pytest
import torch

from course.schedules import (
    SCHEDULES,
    alphas_cumprod,
    cosine_alphas_cumprod,
    cosine_betas,
    get_betas,
    linear_betas,
    scaled_linear_betas,
    snr,
)


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_has_T_plus_1_entries_with_beta_0_zero(name):
    betas = get_betas(name, 50)
    assert betas.shape == (51,)
    assert betas[0] == 0
    assert bool(((betas[1:] > 0) & (betas[1:] < 1)).all())
    assert betas.dtype == torch.float64  # coefficients are computed in float64, then cast to the images


def test_linear_closed_form():
    betas = linear_betas(1000, 1e-4, 0.02, dtype=torch.float64)
    t = torch.arange(1, 1001, dtype=torch.float64)
    assert torch.allclose(betas[1:], 1e-4 + (t - 1) / 999 * (0.02 - 1e-4), atol=1e-15)


def test_scaled_linear_is_linear_in_sqrt_beta():
    betas = scaled_linear_betas(1000, dtype=torch.float64)
    root = betas[1:].sqrt()
    assert math.isclose(root[0].item(), math.sqrt(0.00085), rel_tol=1e-12)
    assert math.isclose(root[-1].item(), math.sqrt(0.012), rel_tol=1e-12)
    steps = root[1:] - root[:-1]
    assert torch.allclose(steps, steps.mean().expand_as(steps), atol=1e-12)


def test_cosine_alphas_cumprod_closed_form_and_betas():
    T, s = 1000, 0.008
    abar = cosine_alphas_cumprod(T, s, dtype=torch.float64)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 1, 250, 500, 999):
        assert math.isclose(abar[t].item(), f(t) / f(0), rel_tol=1e-12, abs_tol=1e-15)
    # the betas reproduce ᾱ everywhere except where β is clipped at 0.999 (the very last step)
    from_betas = alphas_cumprod(cosine_betas(T, s, dtype=torch.float64))
    assert torch.allclose(from_betas[:T], abar[:T], rtol=1e-10, atol=1e-14)
    assert cosine_betas(T, s, dtype=torch.float64)[T] == pytest.approx(0.999)


def test_alphas_cumprod_is_the_running_product():
    betas = linear_betas(20, dtype=torch.float64)
    abar = alphas_cumprod(betas)
    assert abar[0] == 1
    expected, product = [1.0], 1.0
    for t in range(1, 21):
        product *= 1 - betas[t].item()
        expected.append(product)
    assert torch.allclose(abar, torch.tensor(expected, dtype=torch.float64), rtol=1e-14)


def test_snr_definition():
    abar = alphas_cumprod(linear_betas(100, dtype=torch.float64))
    assert torch.isinf(snr(abar)[0])
    assert torch.allclose(snr(abar)[1:], abar[1:] / (1 - abar[1:]))


@pytest.mark.parametrize(
    "name, diffusers_name, beta_start, beta_end",
    [
        ("linear", "linear", 1e-4, 0.02),
        ("scaled_linear", "scaled_linear", 0.00085, 0.012),  # Stable Diffusion's constants
        ("cosine", "squaredcos_cap_v2", 1e-4, 0.02),  # start/end unused by the cosine schedule
    ],
)
def test_matches_diffusers(name, diffusers_name, beta_start, beta_end):
    import diffusers
    ref = diffusers.DDPMScheduler(
        num_train_timesteps=1000, beta_schedule=diffusers_name, beta_start=beta_start, beta_end=beta_end
    )
    ours = get_betas(name, 1000)
    # diffusers' step τ is our t = τ + 1
    assert torch.allclose(ours[1:].float(), ref.betas.float(), rtol=1e-5, atol=1e-7)
    assert torch.allclose(alphas_cumprod(ours)[1:].float(), ref.alphas_cumprod.float(), rtol=1e-4, atol=1e-7)


def test_bad_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="choose one of linear, scaled_linear, cosine"):
        get_betas("quadratic")
    with pytest.raises(ValueError, match="integer ≥ 1"):
        linear_betas(0)
    with pytest.raises(ValueError, match=r"betas\[0\] must be 0"):
        alphas_cumprod(torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        alphas_cumprod(torch.tensor([0.0, 1.5]))
