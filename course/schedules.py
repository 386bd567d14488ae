"""Noise schedules β_t and what derives from them (slides: « Rôle du Scheduler »).

Timestep convention, used everywhere in the course
--------------------------------------------------
t is an integer in {0, 1, …, T}: t = 0 is the clean image x_0, t = T is (almost) pure noise.
Every schedule tensor has length T + 1 and is indexed by t itself, so code reads like the paper:

    betas[t]          = β_t              (betas[0] = 0: nothing is added to reach x_0)
    alphas[t]         = α_t = 1 − β_t
    alphas_cumprod[t] = ᾱ_t = ∏_{s=1..t} α_s   (alphas_cumprod[0] = ᾱ_0 = 1)

This is the numbering of Ho et al. (2020). diffusers numbers the same T steps 0 … T−1: its
timestep τ is our t = τ + 1, and its ``alphas_cumprod[τ]`` is our ``alphas_cumprod[τ + 1]``.

Schedules are pure functions ``(T, …) -> Tensor``, returned on the CPU in float64 by default: the
coefficients derived from them (1 − ᾱ_t is 1e−4 at t = 1) are computed in float64 and only then
cast to the images' dtype, so float32 rounding never biases a step.
"""

from __future__ import annotations

import math

import torch

SCHEDULES: tuple[str, ...] = ("linear", "scaled_linear", "cosine")


def _check_T(T: int) -> None:
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T (number of diffusion steps) must be an integer ≥ 1, got {T!r}")


def _with_t0(betas_1_to_T: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Prepend β_0 = 0 so that index t holds β_t."""
    return torch.cat([betas_1_to_T.new_zeros(1), betas_1_to_T]).to(dtype)


def linear_betas(
    T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """β_t rising linearly from β_1 = beta_start to β_T = beta_end (Ho et al. 2020, §4)."""
    _check_T(T)
    return _with_t0(torch.linspace(beta_start, beta_end, T, dtype=torch.float64), dtype)


def scaled_linear_betas(
    T: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """β_t whose square root is linear: Stable Diffusion's schedule (Rombach et al. 2022, configs)."""
    _check_T(T)
    root = torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=torch.float64)
    return _with_t0(root**2, dtype)


def cosine_alphas_cumprod(T: int = 1000, s: float = 0.008, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """ᾱ_t = f(t) / f(0) with f(t) = cos²((t/T + s) / (1 + s) · π/2) (Nichol & Dhariwal 2021, eq. 17)."""
    _check_T(T)
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    return (f / f[0]).to(dtype)


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """β_t = min(1 − ᾱ_t / ᾱ_{t−1}, max_beta) from the cosine ᾱ (Nichol & Dhariwal 2021, §3.2)."""
    abar = cosine_alphas_cumprod(T, s, dtype=torch.float64)
    betas = (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)
    return _with_t0(betas, dtype)


def get_betas(name: str, T: int = 1000, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The schedule called ``name`` (one of :data:`SCHEDULES`) with its usual constants."""
    makers = {"linear": linear_betas, "scaled_linear": scaled_linear_betas, "cosine": cosine_betas}
    if name not in makers:
        raise ValueError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
    return makers[name](T, dtype=dtype)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """ᾱ_t = ∏_{s≤t} (1 − β_s) (Ho et al. 2020, notation above eq. 4); index 0 gives ᾱ_0 = 1."""
    if betas.dim() != 1 or betas.numel() < 2:
        raise ValueError(f"betas must be a 1-D tensor of length T + 1 ≥ 2, got shape {tuple(betas.shape)}")
    if betas[0] != 0:
        raise ValueError(
            "betas[0] must be 0 (index t holds β_t and x_0 is the clean image); "
            "build schedules with course.schedules (e.g. linear_betas) or prepend a 0"
        )
    if bool(((betas < 0) | (betas >= 1)).any()):
        raise ValueError("every β_t must lie in [0, 1)")
    return torch.cumprod((1 - betas.double()), dim=0).to(betas.dtype)


def snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio SNR(t) = ᾱ_t / (1 − ᾱ_t) (Kingma et al. 2021, eq. 1); +inf at t = 0."""
    abar = alphas_cumprod.double()
    return (abar / (1 - abar)).to(alphas_cumprod.dtype)
