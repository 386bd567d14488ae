"""DDPM: the Gaussian closed form, the classic sampler bugs, and one step against diffusers."""

import pytest
import torch

from course.ddpm import (
    ddpm_sample,
    epsilon_loss,
    gaussian_optimal_eps,
    p_sample_step,
    posterior_mean,
    posterior_variance,
    predict_x0,
    reverse_mean,
    reverse_std,
    training_loss,
)
from course.schedules import alphas_cumprod, cosine_betas, linear_betas

BETAS = linear_betas(1000)
ABAR = alphas_cumprod(BETAS)


@pytest.mark.parametrize("mu, s", [(0.5, 0.3), (-1.0, 0.05), (0.0, 1.0)])
def test_sampler_with_the_optimal_predictor_recovers_the_gaussian(mu, s):
    """Data N(μ, s²): E[ε | x_t] is known exactly; 20,000 DDPM samples (σ_t² = β_t) must have mean μ ± 0.01
    and standard deviation s within 3 % (measured: ≤ 1 %)."""
    model = gaussian_optimal_eps(mu, s, ABAR)
    x = ddpm_sample(model, (20_000, 1), BETAS, generator=torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - mu) < 0.01
    assert abs(x.std().item() / s - 1) < 0.03


def test_the_loop_visits_t_from_T_down_to_1_once_each():
    seen = []

    def model(x, t, cond):
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    ddpm_sample(model, (2, 1), linear_betas(50))
    assert seen == list(range(50, 0, -1))


def test_no_noise_is_added_at_the_final_step():
    betas = cosine_betas(20)
    abar = alphas_cumprod(betas)
    model = gaussian_optimal_eps(0.3, 0.5, abar)
    last = {}

    def callback(t, x_t, x0_hat):
        if t == 1:
            last["x1"] = x_t.clone()

    out = ddpm_sample(model, (4, 3), betas, generator=torch.Generator().manual_seed(1), callback=callback)
    t1 = torch.ones(4, dtype=torch.long)
    expected = reverse_mean(last["x1"], t1, model(last["x1"], t1, None), betas, abar)
    assert torch.allclose(out, expected, atol=1e-6)
    x = torch.randn(4, 3)
    eps = torch.randn(4, 3)
    assert torch.equal(p_sample_step(x, 1, eps, torch.randn(4, 3), betas, abar), p_sample_step(x, 1, eps, torch.zeros(4, 3), betas, abar))


def test_variance_at_t_1():
    assert posterior_variance(torch.tensor([1]), BETAS, ABAR).item() == 0  # ᾱ_0 = 1
    assert reverse_std(torch.tensor([1]), BETAS, ABAR, "beta_tilde").item() == 0
    assert reverse_std(torch.tensor([1]), BETAS, ABAR, "beta").item() == pytest.approx(BETAS[1].sqrt().item())
    t = torch.tensor([2, 500, 1000])
    assert torch.all(posterior_variance(t, BETAS, ABAR) < BETAS[t])


def test_eq11_equals_the_posterior_mean_of_the_implied_x0():
    gen = torch.Generator().manual_seed(0)
    x_t = torch.randn(5, 2, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(5, 2, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.tensor([1, 2, 10, 500, 1000])
    via_x0 = posterior_mean(predict_x0(x_t, t, eps, ABAR), x_t, t, BETAS, ABAR)
    assert torch.allclose(reverse_mean(x_t, t, eps, BETAS, ABAR), via_x0, atol=1e-10)


def test_x0_is_clamped_where_the_sampler_clamps():
    x_t = torch.full((1, 1), 3.0)
    eps = torch.full((1, 1), -2.0)  # implies x̂_0 far outside [−1, 1]
    t = torch.tensor([300])
    clipped = p_sample_step(x_t, t, eps, torch.zeros(1, 1), BETAS, ABAR, clip_x0=1.0)
    assert predict_x0(x_t, t, eps, ABAR).item() > 1
    assert torch.allclose(clipped, posterior_mean(torch.ones(1, 1), x_t, t, BETAS, ABAR))
    assert not torch.allclose(clipped, p_sample_step(x_t, t, eps, torch.zeros(1, 1), BETAS, ABAR))


def float64_ddpm_scheduler(betas, **kwargs):
    """diffusers' DDPMScheduler with our float64 schedule (it stores float32 by default)."""
    import diffusers
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=betas.numel() - 1, **kwargs)
    scheduler.betas = betas[1:].double()  # diffusers' step τ is our t = τ + 1
    scheduler.alphas = 1 - scheduler.betas
    scheduler.alphas_cumprod = torch.cumprod(scheduler.alphas, 0)
    scheduler.one = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


@pytest.mark.parametrize("t", [1, 2, 37, 500, 1000])
@pytest.mark.parametrize("variance, variance_type", [("beta_tilde", "fixed_small"), ("beta", "fixed_large")])
def test_one_step_matches_diffusers(t, variance, variance_type):
    scheduler = float64_ddpm_scheduler(BETAS, variance_type=variance_type, clip_sample=True)
    gen = torch.Generator().manual_seed(t)
    x_t, eps = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64), torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    z = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    ours = p_sample_step(x_t, t, eps, z, BETAS, ABAR, variance=variance, clip_x0=1.0)
    theirs = scheduler.step(eps, t - 1, x_t, generator=torch.Generator().manual_seed(99)).prev_sample
    assert (ours - theirs).abs().max().item() < 1e-12


def test_loss_has_the_target_and_errors_are_clear():
    eps = torch.randn(3, 2)
    assert epsilon_loss(eps, eps).item() == 0
    assert epsilon_loss(eps, torch.zeros_like(eps)).item() == pytest.approx(eps.square().mean().item())
    with pytest.raises(ValueError, match="same shape"):
        epsilon_loss(eps, torch.zeros(3, 3))
    perfect = gaussian_optimal_eps(0.0, 1.0, ABAR)  # for N(0, I) data, E[ε | x_t] = √(1 − ᾱ_t)·x_t
    x0 = torch.randn(4096, 1, generator=torch.Generator().manual_seed(0))
    loss = training_loss(perfect, x0, ABAR, generator=torch.Generator().manual_seed(1)).item()
    # the optimum leaves Var(ε | x_t) = ᾱ_t: the loss is E_t[ᾱ_t] (≈ 0.28 for the linear schedule), not 0
    assert loss == pytest.approx(ABAR[1:].mean().item(), abs=0.02)
    with pytest.raises(ValueError, match="choose one of beta, beta_tilde"):
        reverse_std(torch.tensor([3]), BETAS, ABAR, "learned")
    with pytest.raises(ValueError, match=r"\[1, 1000\]"):
        p_sample_step(torch.zeros(1, 1), 0, torch.zeros(1, 1), torch.zeros(1, 1), BETAS, ABAR)


def test_min_snr_weight_is_one_at_high_noise_and_gamma_over_snr_at_low_noise():
    from course.ddpm import min_snr_weight
    from course.schedules import snr

    s = snr(ABAR)
    t = torch.tensor([1, 10, ABAR.numel() - 1])
    w = min_snr_weight(t, ABAR, 5.0)
    expected = torch.where(s[t] > 5, 5 / s[t], torch.ones_like(s[t]))
    torch.testing.assert_close(w, expected.float(), rtol=1e-5, atol=0)
    assert w[-1] == 1.0 and w[0] < 0.01  # t = T is almost pure noise (SNR < γ); t = 1 is almost clean


def test_min_snr_loss_equals_plain_loss_when_gamma_is_huge():
    x0 = torch.randn(8, 2)
    model = lambda x, t, c: 0.5 * x  # noqa: E731
    plain = training_loss(model, x0, ABAR, generator=torch.Generator().manual_seed(3))
    weighted = training_loss(model, x0, ABAR, generator=torch.Generator().manual_seed(3), snr_gamma=1e12)
    torch.testing.assert_close(weighted, plain)
    with pytest.raises(ValueError, match="snr_gamma"):
        training_loss(model, x0, ABAR, snr_gamma=0)
