"""The forward process: closed form statistics, step/closed-form equivalence, and clear errors."""

import pytest
import torch

from course.forward import q_mean_std, q_sample, q_sample_iterated, q_step
from course.schedules import alphas_cumprod, cosine_betas, linear_betas

T = 1000
BETAS = linear_betas(T)
ABAR = alphas_cumprod(BETAS)


def test_q_sample_is_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 2, 4, 4, generator=gen), torch.randn(3, 2, 4, 4, generator=gen)
    t = torch.tensor([0, 10, 1000])
    out = q_sample(x0, t, eps, ABAR)
    for i in range(3):
        a = ABAR[t[i]]
        assert torch.allclose(out[i], a.sqrt() * x0[i] + (1 - a).sqrt() * eps[i])
    assert torch.equal(out[0], x0[0])  # t = 0 is the clean image


@pytest.mark.parametrize("t", [1, 100, 400, 1000])
def test_q_sample_statistics(t):
    """With n = 200,000 draws the sample mean/std are within 5 standard errors of √ᾱ_t·x_0 and √(1 − ᾱ_t)."""
    gen = torch.Generator().manual_seed(t)
    n, x0_value = 200_000, 0.7
    x0 = torch.full((n, 1), x0_value)
    xt = q_sample(x0, t, torch.randn(n, 1, generator=gen), ABAR)
    mean, std = q_mean_std(x0[:1], t, ABAR)
    se = std.item() / n**0.5
    assert abs(xt.mean().item() - mean.item()) < 5 * se
    assert abs(xt.std().item() - std.item()) < 5 * se / 2**0.5 + 1e-6


def test_steps_and_closed_form_agree_exactly_with_the_combined_noise():
    betas = cosine_betas(200, dtype=torch.float64)
    abar = alphas_cumprod(betas)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    t, x, combined = 150, x0, torch.zeros_like(x0)
    for s in range(1, t + 1):
        eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        x = q_step(x, s, eps, betas)
        combined += (abar[t] / abar[s] * betas[s]).sqrt() * eps
    combined /= (1 - abar[t]).sqrt()
    assert torch.allclose(x, q_sample(x0, t, combined, abar), atol=1e-12)


def test_iterated_steps_have_closed_form_statistics():
    gen = torch.Generator().manual_seed(3)
    n, t = 100_000, 300
    x = q_sample_iterated(torch.full((n, 1), -0.5), t, BETAS, generator=gen)
    mean, std = q_mean_std(torch.full((1, 1), -0.5), t, ABAR)
    assert abs(x.mean().item() - mean.item()) < 5 * std.item() / n**0.5
    assert abs(x.std().item() - std.item()) < 0.01


def test_q_step_preserves_unit_variance():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(200_000, 1, generator=gen)
    out = q_step(x, 1000, torch.randn(200_000, 1, generator=gen), BETAS)
    assert abs(out.var().item() - 1) < 0.01


def test_output_dtype_follows_the_images():
    x0 = torch.randn(2, 3, 4, 4)
    assert q_sample(x0, 5, torch.randn_like(x0), alphas_cumprod(linear_betas(T, dtype=torch.float64))).dtype == torch.float32


def test_bad_input_is_a_clear_value_error():
    x0 = torch.randn(2, 3, 4, 4)
    eps = torch.randn_like(x0)
    with pytest.raises(ValueError, match=r"t must be in \[0, 1000\].*got 1001"):
        q_sample(x0, 1001, eps, ABAR)
    with pytest.raises(ValueError, match=r"t must be in \[0, 1000\].*got -1"):
        q_sample(x0, torch.tensor([5, -1]), eps, ABAR)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        q_sample(x0, torch.tensor([1, 2, 3]), eps, ABAR)
    with pytest.raises(ValueError, match="integers"):
        q_sample(x0, torch.tensor([0.5, 1.0]), eps, ABAR)
    with pytest.raises(ValueError, match="eps must have the shape of x0"):
        q_sample(x0, 3, torch.randn(2, 3, 4, 5), ABAR)
    with pytest.raises(ValueError, match=r"t must be in \[1, 1000\]"):
        q_step(x0, 0, eps, BETAS)
    with pytest.raises(ValueError, match=r"\[0, 1000\]"):
        q_sample_iterated(x0, 2000, BETAS)


def test_integer_images_are_refused_not_zeroed():
    abar = torch.cumprod(1 - linear_betas(10), 0)
    with pytest.raises(ValueError, match="floating-point"):
        q_sample(torch.ones(2, 3, dtype=torch.long), 5, torch.zeros(2, 3), abar)
