"""Samplers over a model callable ``model(x_t, t) -> ε̂`` (slides: « Types de Schedulers »).

Timestep convention (see :mod:`course.schedules`): t ∈ {1, …, T} for the model, ᾱ_0 = 1 for the
clean end. A sampler with S steps visits t_1 > t_2 > … > t_S ≥ 1 and ends at t = 0. diffusers names
the same steps τ = t − 1, and its "final alpha" (``set_alpha_to_one=True``) is our ᾱ_0 = 1.

Guidance and conditioning wrap the model (a closure); samplers know nothing of them.
"""

from __future__ import annotations

from typing import Callable

import torch

from course.ddpm import predict_x0
from course.schedules import alphas_cumprod as cumprod
from course.tensors import per_sample

SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")
Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def timesteps(T: int, steps: int, spacing: str = "leading") -> list[int]:
    """The S timesteps t (descending, in 1…T) a sampler visits, with diffusers' three spacings
    (Lin et al. 2024, Table 2): "leading" 1 + k·⌊T/S⌋, "trailing" T − k·T/S, "linspace" evenly from T to 1."""
    if not isinstance(steps, int) or steps < 1 or steps > T:
        raise ValueError(f"steps must be an integer in [1, {T}] (the training steps), got {steps!r}")
    if spacing == "leading":
        taus = [k * (T // steps) for k in range(steps)]
    elif spacing == "trailing":
        taus = [round(T - k * T / steps) - 1 for k in range(steps)]
    elif spacing == "linspace":
        taus = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().long().tolist()
    else:
        raise ValueError(f"unknown spacing {spacing!r}: choose one of {', '.join(SPACINGS)}")
    return sorted({tau + 1 for tau in taus}, reverse=True)


def ddim_step(
    x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor, alphas_cumprod: torch.Tensor,
    eta: float = 0.0, z: torch.Tensor | None = None, clip_x0: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x_{t_prev} = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z, σ = η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev)
    (Song et al. 2021, eq. 12 and 16). Returns (x_{t_prev}, x̂_0)."""
    batch = torch.full((x_t.shape[0],), t, dtype=torch.long)
    x0_hat = predict_x0(x_t, batch, eps, alphas_cumprod)
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        abar_t = alphas_cumprod[t]
        eps = (x_t - per_sample(abar_t.sqrt().expand(x_t.shape[0]), x_t) * x0_hat) / per_sample((1 - abar_t).sqrt().expand(x_t.shape[0]), x_t)
    abar_t, abar_prev = alphas_cumprod[t], alphas_cumprod[t_prev]
    sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()
    b = x_t.shape[0]
    x_prev = per_sample(abar_prev.sqrt().expand(b), x_t) * x0_hat + per_sample((1 - abar_prev - sigma**2).clamp(min=0).sqrt().expand(b), x_t) * eps
    if eta > 0:
        if z is None:
            raise ValueError("eta > 0 needs noise z")
        x_prev = x_prev + per_sample(sigma.expand(b), x_t) * z
    return x_prev, x0_hat


@torch.no_grad()
def ddim_sample(
    model: Model,
    x_T: torch.Tensor,
    betas: torch.Tensor,
    steps: int = 50,
    eta: float = 0.0,
    spacing: str = "leading",
    generator: torch.Generator | None = None,
    clip_x0: float | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """DDIM from x_T down to x_0 in ``steps`` model calls (Song et al. 2021); η = 0 is deterministic."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like), got {eta}")
    abar = cumprod(betas)
    T = betas.numel() - 1
    x = x_T
    for t in timesteps(T, steps, spacing):
        # DDIM's stride: t_prev = t − ⌊T/S⌋, the next visited step for "leading" and "trailing"; with
        # "linspace" the grid is not uniform and, as in diffusers, the step still uses this stride
        t_prev = max(t - T // steps, 0)
        eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if eta > 0 else None
        x, x0_hat = ddim_step(x, t, t_prev, eps, abar, eta, z, clip_x0)
        if callback is not None:
            callback(t, x, x0_hat)
    return x
