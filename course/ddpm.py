"""ε-prediction training and ancestral sampling (slides: « Processus Reverse », « Objectif d'Entraînement »).

Ho et al. (2020), *Denoising Diffusion Probabilistic Models*. Symbols → names:
x_t → ``x_t``; ε → ``eps``; ε_θ(x_t, t, c) → ``eps_pred`` / ``model(x_t, t, cond)``; β_t → ``betas[t]``;
ᾱ_t → ``alphas_cumprod[t]``; x̂_0 → ``x0_hat``; σ_t² → the variance of the reverse step.
t follows :mod:`course.schedules`: t ∈ {1, …, T} for a step, t = 0 is the clean image, ᾱ_0 = 1.

A model is any callable ``model(x_t, t, cond) -> eps_pred`` with t a (B,) long tensor.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from course.forward import _check_t, q_sample
from course.language import tr
from course.yours import pick
from course.tensors import per_sample

VARIANCES: tuple[str, ...] = ("beta", "beta_tilde")
EpsModel = Callable[[torch.Tensor, torch.Tensor, object], torch.Tensor]


def epsilon_loss(eps: torch.Tensor, eps_pred: torch.Tensor) -> torch.Tensor:
    """L_simple = E‖ε − ε_θ(x_t, t, c)‖², the mean over every value (Ho et al. 2020, eq. 14)."""
    if eps.shape != eps_pred.shape:
        raise ValueError(f"eps and eps_pred must have the same shape, got {tuple(eps.shape)} and {tuple(eps_pred.shape)}")
    return F.mse_loss(eps_pred, eps)


def training_loss(
    model: EpsModel,
    x0: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    cond=None,
    generator: torch.Generator | None = None,
    snr_gamma: float | None = None,
) -> torch.Tensor:
    """One Monte-Carlo estimate of L_simple: t ~ U{1…T}, ε ~ N(0, I), x_t = q_sample (Ho et al. 2020, Algorithm 1).

    ``snr_gamma``: weight each sample by min(SNR(t), γ) / SNR(t) (Min-SNR-γ, Hang et al. 2023, eq. 10 for ε):
    the almost-clean steps, easy and numerous, stop dominating the gradient. None: the plain L_simple.
    """
    T = alphas_cumprod.numel() - 1
    t = torch.randint(1, T + 1, (x0.shape[0],), device=x0.device, generator=generator)
    eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
    if snr_gamma is None and pick("epsilon_loss") is not None:  # the learner's loss (course.yours.use)
        return pick("epsilon_loss")(lambda x, s: model(x, s, cond), x0, t, eps, alphas_cumprod)
    x_t = (pick("q_sample") or q_sample)(x0, t, eps, alphas_cumprod)
    eps_pred = model(x_t, t, cond)
    if snr_gamma is None:
        return epsilon_loss(eps, eps_pred)
    if snr_gamma <= 0:
        raise ValueError(f"snr_gamma must be > 0 (5 in Hang et al. 2023), got {snr_gamma}")
    weight = min_snr_weight(t, alphas_cumprod, snr_gamma).to(x0.device, x0.dtype)  # (B,)
    per_example = F.mse_loss(eps_pred, eps, reduction="none").flatten(1).mean(1)
    return (weight * per_example).mean()


def min_snr_weight(t: torch.Tensor, alphas_cumprod: torch.Tensor, gamma: float) -> torch.Tensor:
    """min(SNR(t), γ) / SNR(t) with SNR(t) = ᾱ_t / (1 − ᾱ_t): the Min-SNR-γ weight of the ε loss (Hang et al. 2023)."""
    abar = alphas_cumprod[t.cpu()].double()
    s = abar / (1 - abar)
    return (s.clamp(max=gamma) / s).float()


def predict_x0(x_t: torch.Tensor, t: torch.Tensor, eps_pred: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t − √(1 − ᾱ_t)·ε_θ) / √ᾱ_t: the clean image the prediction implies (Ho et al. 2020, eq. 4 inverted)."""
    abar_t = alphas_cumprod[t.cpu()]
    return per_sample(1 / abar_t.sqrt(), x_t) * x_t - per_sample(((1 - abar_t) / abar_t).sqrt(), x_t) * eps_pred


def posterior_mean(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, betas: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """μ̃_t(x_t, x_0) = √ᾱ_{t−1}β_t/(1 − ᾱ_t)·x_0 + √α_t(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t (Ho et al. 2020, eq. 7)."""
    t = t.cpu()
    beta_t, abar_t, abar_prev = betas[t], alphas_cumprod[t], alphas_cumprod[t - 1]
    coef_x0 = abar_prev.sqrt() * beta_t / (1 - abar_t)
    coef_xt = (1 - beta_t).sqrt() * (1 - abar_prev) / (1 - abar_t)
    return per_sample(coef_x0, x_t) * x0 + per_sample(coef_xt, x_t) * x_t


def posterior_variance(t: torch.Tensor, betas: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t)·β_t, which is 0 at t = 1 since ᾱ_0 = 1 (Ho et al. 2020, eq. 7)."""
    t = t.cpu()
    return (1 - alphas_cumprod[t - 1]) / (1 - alphas_cumprod[t]) * betas[t]


def reverse_mean(x_t: torch.Tensor, t: torch.Tensor, eps_pred: torch.Tensor, betas: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """μ_θ(x_t, t) = (x_t − β_t/√(1 − ᾱ_t)·ε_θ) / √α_t (Ho et al. 2020, eq. 11)."""
    t = t.cpu()
    beta_t, abar_t = betas[t], alphas_cumprod[t]
    scale = 1 / (1 - beta_t).sqrt()
    return per_sample(scale, x_t) * x_t - per_sample(scale * beta_t / (1 - abar_t).sqrt(), x_t) * eps_pred


def reverse_std(t: torch.Tensor, betas: torch.Tensor, alphas_cumprod: torch.Tensor, variance: str = "beta") -> torch.Tensor:
    """σ_t: √β_t ("beta") or √β̃_t ("beta_tilde"), the two choices of Ho et al. 2020, §3.2."""
    if variance == "beta":
        return betas[t.cpu()].sqrt()
    if variance == "beta_tilde":
        return posterior_variance(t, betas, alphas_cumprod).sqrt()
    raise ValueError(f"unknown variance {variance!r}: choose one of {', '.join(VARIANCES)}")


def p_sample_step(
    x_t: torch.Tensor,
    t: int | torch.Tensor,
    eps_pred: torch.Tensor,
    z: torch.Tensor,
    betas: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    variance: str = "beta",
    clip_x0: float | None = None,
) -> torch.Tensor:
    """One reverse step x_{t−1} = μ_θ(x_t, t) + σ_t·z, with no noise at t = 1 (Ho et al. 2020, Algorithm 2, line 4).

    With ``clip_x0``, x̂_0 is clamped to [−clip_x0, clip_x0] and the mean is the posterior mean
    μ̃_t(x_t, x̂_0) — the same as eq. 11 when nothing is clipped (what diffusers' DDPMScheduler does).
    """
    t = _check_t(t, x_t.shape[0], betas.numel() - 1, t_min=1).cpu()
    if clip_x0 is None:
        mean = reverse_mean(x_t, t, eps_pred, betas, alphas_cumprod)
    else:
        x0_hat = predict_x0(x_t, t, eps_pred, alphas_cumprod).clamp(-clip_x0, clip_x0)
        mean = posterior_mean(x0_hat, x_t, t, betas, alphas_cumprod)
    sigma = reverse_std(t, betas, alphas_cumprod, variance) * (t > 1)  # x_0 = μ_θ(x_1, 1): no noise at the final step
    return mean + per_sample(sigma, x_t) * z


def ddpm_sample(
    model: EpsModel,
    shape: tuple[int, ...],
    betas: torch.Tensor,
    cond=None,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    variance: str = "beta",
    clip_x0: float | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Ancestral sampling from x_T ~ N(0, I) down to x_0, one model call per t = T, …, 1 (Ho et al. 2020, Algorithm 2).

    The solver is :func:`course.samplers.ddpm` on the full grid T, …, 1, 0; this draws x_T and closes over
    ``cond``. ``callback(t, x_t, x0_hat)`` sees every step with the state *at* t (for trajectories and plots).
    """
    from tqdm.auto import tqdm

    from course.grids import spaced
    from course.noise_schedule import NoiseSchedule
    from course.samplers import ddpm

    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}: choose one of {', '.join(VARIANCES)}")
    T = betas.numel() - 1
    x_T = torch.randn(shape, generator=generator, device=device)
    bar = tqdm(total=T, desc=tr(en="DDPM sampling", fr="échantillonnage DDPM"), disable=not progress, leave=False)
    state = {"x": x_T}

    def step_done(t, x_next, x0_hat):
        if callback is not None:
            callback(t, state["x"], x0_hat)
        state["x"] = x_next
        bar.update()

    try:
        return ddpm(lambda x, t: model(x, t, cond), x_T, spaced(T, T), NoiseSchedule.from_betas(betas), generator=generator,
                    variance=variance, clip_x0=clip_x0, callback=step_done)
    finally:
        bar.close()


def gaussian_optimal_eps(mu: float, s: float, alphas_cumprod: torch.Tensor) -> EpsModel:
    """The exact E[ε | x_t] when the data are N(μ, s²I): √(1 − ᾱ_t)/(ᾱ_t s² + 1 − ᾱ_t)·(x_t − √ᾱ_t μ)."""

    def model(x_t: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        abar_t = alphas_cumprod[t.cpu()]
        return per_sample((1 - abar_t).sqrt() / (abar_t * s**2 + 1 - abar_t), x_t) * (x_t - per_sample(abar_t.sqrt() * mu, x_t))

    return model
