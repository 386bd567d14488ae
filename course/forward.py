"""The forward (noising) process (slides: « Processus Forward »).

Symbols → names:  x_0 → ``x0``,  x_t → ``x_t``,  ε → ``eps``,  β_t → ``betas[t]``,
ᾱ_t → ``alphas_cumprod[t]``;  t follows the convention of :mod:`course.schedules`
(t = 0 is the clean image, schedule tensors have length T + 1).
"""

from __future__ import annotations

import torch

from course.language import tr
from course.tensors import per_sample


def _check_t(t: int | torch.Tensor, batch: int, T: int, t_min: int = 0) -> torch.Tensor:
    """Validate t (an int, a 0-d or a (B,) integer tensor) and return it as a (B,) long tensor."""
    t = torch.as_tensor(t)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(tr(en=f"t must hold integers in [{t_min}, {T}], got dtype {t.dtype}",
                            fr=f"t doit contenir des entiers de [{t_min}, {T}], reçu le dtype {t.dtype}"))
    if t.dim() == 0:
        t = t.expand(batch)
    if t.dim() != 1 or t.shape[0] != batch:
        raise ValueError(tr(en=f"t must be an int or a tensor of shape ({batch},) (one t per sample), got shape {tuple(t.shape)}",
                            fr=f"t doit être un int ou un tenseur de forme ({batch},) (un t par élément du lot), reçu la forme "
                               f"{tuple(t.shape)}"))
    bad = (t < t_min) | (t > T)
    if bool(bad.any()):
        raise ValueError(tr(en=f"t must be in [{t_min}, {T}] (T = {T} steps), got {t[bad][0].item()}",
                            fr=f"t doit être dans [{t_min}, {T}] (T = {T} étapes), reçu {t[bad][0].item()}"))
    return t.long()


def _check_same_shape(x: torch.Tensor, eps: torch.Tensor, x_name: str) -> None:
    if not x.is_floating_point() or not eps.is_floating_point():
        bad = x_name if not x.is_floating_point() else "eps"
        dtype = (x if bad == x_name else eps).dtype
        raise ValueError(tr(en=f"{bad} must be a floating-point tensor (images in [−1, 1], e.g. x.float() / 127.5 − 1), got {dtype}",
                            fr=f"{bad} doit être un tenseur à virgule flottante (des images dans [−1, 1], par exemple "
                               f"x.float() / 127.5 − 1), reçu {dtype}"))
    if x.shape != eps.shape:
        raise ValueError(tr(en=f"eps must have the shape of {x_name}: got {tuple(eps.shape)} and {tuple(x.shape)}",
                            fr=f"eps doit avoir la forme de {x_name} : reçu {tuple(eps.shape)} et {tuple(x.shape)}"))


def q_step(x_prev: torch.Tensor, t: int | torch.Tensor, eps: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """One noising step x_t = √(1 − β_t)·x_{t−1} + √β_t·ε, t ∈ [1, T] (Ho et al. 2020, eq. 2)."""
    _check_same_shape(x_prev, eps, "x_prev")
    t = _check_t(t, x_prev.shape[0], betas.numel() - 1, t_min=1)
    beta_t = betas[t.cpu()]  # coefficients in the schedule's precision, then cast
    return per_sample((1 - beta_t).sqrt(), x_prev) * x_prev + per_sample(beta_t.sqrt(), x_prev) * eps


def q_sample(x0: torch.Tensor, t: int | torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Jump straight to x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, t ∈ [0, T] (Ho et al. 2020, eq. 4)."""
    _check_same_shape(x0, eps, "x0")
    t = _check_t(t, x0.shape[0], alphas_cumprod.numel() - 1)
    abar_t = alphas_cumprod[t.cpu()]
    return per_sample(abar_t.sqrt(), x0) * x0 + per_sample((1 - abar_t).sqrt(), x0) * eps


def q_mean_std(x0: torch.Tensor, t: int | torch.Tensor, alphas_cumprod: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean √ᾱ_t·x_0 and standard deviation √(1 − ᾱ_t) of q(x_t | x_0) (Ho et al. 2020, eq. 4)."""
    t = _check_t(t, x0.shape[0], alphas_cumprod.numel() - 1)
    abar_t = alphas_cumprod[t.cpu()]
    return per_sample(abar_t.sqrt(), x0) * x0, per_sample((1 - abar_t).sqrt(), x0).expand_as(x0)


def q_sample_iterated(
    x0: torch.Tensor, t: int, betas: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Reach x_t by applying :func:`q_step` t times with fresh noise each step (Ho et al. 2020, eq. 2)."""
    T = betas.numel() - 1
    if not isinstance(t, int) or not 0 <= t <= T:
        raise ValueError(tr(en=f"t must be an int in [0, {T}], got {t!r}", fr=f"t doit être un int de [0, {T}], reçu {t!r}"))
    x = x0
    for s in range(1, t + 1):
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = q_step(x, s, eps, betas)
    return x
