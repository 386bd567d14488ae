"""Timestep grids: which instants a sampler visits (slides: « Types de Schedulers »).

A grid is a 1-D float64 tensor of S + 1 instants t_0 > t_1 > … > t_S = 0, in the timestep units of
:mod:`course.schedules` (t = 0 is the clean end, which is never given to the model). A sampler takes
S steps, from t_i to t_{i+1}. Every grid is a pure function ``(T or schedule, S, …) -> Tensor``
(k-diffusion's ``get_sigmas_*`` style):

    spaced(T, S, "leading" | "trailing" | "linspace")   diffusers' three spacings (Lin et al. 2024, Table 2)
    dpm_spaced(T, S, spacing)                           the same spacings as diffusers' DPM-Solver lays them
    karras(schedule, S, rho=7)                          σ̃ evenly spaced in σ̃^(1/ρ) (Karras et al. 2022, eq. 5)
    log_snr(schedule, S)                                λ evenly spaced (Lu et al. 2022, "logSNR" steps)

Karras and log-SNR grids fall between integer steps: the schedule reads them by interpolation
(:class:`course.noise_schedule.NoiseSchedule`).
"""

from __future__ import annotations

import torch

from course.noise_schedule import NoiseSchedule

SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")
GRIDS: tuple[str, ...] = ("leading", "trailing", "linspace", "karras", "log_snr")


def _check_steps(T: int, steps: int) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1 or steps > T:
        raise ValueError(f"steps must be an integer in [1, {T}] (the training steps), got {steps!r}")


def _check_count(steps: int) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer ≥ 1, got {steps!r}")


def _with_zero(ts: list[int] | torch.Tensor) -> torch.Tensor:
    ts = torch.as_tensor(ts, dtype=torch.float64)
    return torch.cat([ts, ts.new_zeros(1)])


def timesteps(T: int, steps: int, spacing: str = "leading") -> list[int]:
    """The S timesteps t (descending, in 1…T) a sampler visits, with diffusers' three spacings
    (Lin et al. 2024, Table 2): "leading" 1 + k·⌊T/S⌋, "trailing" T − k·T/S, "linspace" evenly from T to 1."""
    _check_steps(T, steps)
    if spacing == "leading":
        taus = [k * (T // steps) for k in range(steps)]
    elif spacing == "trailing":
        taus = [round(T - k * T / steps) - 1 for k in range(steps)]
    elif spacing == "linspace":
        taus = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().long().tolist()
    else:
        raise ValueError(f"unknown spacing {spacing!r}: choose one of {', '.join(SPACINGS)}")
    return sorted({tau + 1 for tau in taus}, reverse=True)


def spaced(T: int, steps: int, spacing: str = "leading") -> torch.Tensor:
    """The grid [t_1, …, t_S, 0] of :func:`timesteps` (diffusers' DDIM, DDPM, PNDM, Euler)."""
    return _with_zero(timesteps(T, steps, spacing))


def dpm_timesteps(T: int, steps: int, spacing: str = "linspace") -> list[int]:
    """DPM-Solver's S timesteps as diffusers makes them: S + 1 points, the last (t = 0) dropped."""
    _check_steps(T, steps)
    if spacing == "linspace":
        taus = torch.linspace(0, T - 1, steps + 1, dtype=torch.float64).round().long().tolist()[1:]
    elif spacing == "leading":
        taus = [k * (T // (steps + 1)) for k in range(1, steps + 1)]
    elif spacing == "trailing":
        taus = [round(T - k * T / steps) - 1 for k in range(steps)]
    else:
        raise ValueError(f"unknown spacing {spacing!r}: choose one of {', '.join(SPACINGS)}")
    return sorted({tau + 1 for tau in taus}, reverse=True)


def dpm_spaced(T: int, steps: int, spacing: str = "linspace") -> torch.Tensor:
    """The grid [t_1, …, t_S, 0] of :func:`dpm_timesteps` (diffusers' DPMSolverMultistepScheduler)."""
    return _with_zero(dpm_timesteps(T, steps, spacing))


def karras(schedule: NoiseSchedule, steps: int, rho: float = 7.0, sigma_min: float | None = None, sigma_max: float | None = None) -> torch.Tensor:
    """σ̃_i = (σ_max^(1/ρ) + i/(S−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, i = 0 … S − 1, then 0 (Karras et al. 2022,
    eq. 5): ρ = 7 crowds the steps at low noise, where the details form. Bounds default to σ̃ at t = 1 and t = T."""
    _check_count(steps)
    if rho <= 0:
        raise ValueError(f"rho must be > 0 (7 in Karras et al.; 1 is evenly spaced in σ̃), got {rho}")
    lo = float(schedule.sigma_ve(1)) if sigma_min is None else sigma_min
    hi = float(schedule.sigma_ve(schedule.T)) if sigma_max is None else sigma_max
    if steps == 1:
        return _with_zero(schedule.t_from_sigma_ve(torch.tensor([hi])))
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sigmas = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    return _with_zero(schedule.t_from_sigma_ve(sigmas))


def log_snr(schedule: NoiseSchedule, steps: int) -> torch.Tensor:
    """λ evenly spaced from λ_T to λ_1, then t = 0 (DPM-Solver's uniform-λ steps, Lu et al. 2022, §3.3)."""
    _check_count(steps)
    lam_T, lam_1 = float(schedule.lambda_(schedule.T)), float(schedule.lambda_(1))
    lams = torch.linspace(lam_T, lam_1, steps, dtype=torch.float64) if steps > 1 else torch.tensor([lam_T], dtype=torch.float64)
    return _with_zero(schedule.t_from_lambda(lams))


def make_grid(name: str, schedule: NoiseSchedule, steps: int, **kwargs) -> torch.Tensor:
    """The grid called ``name`` (one of :data:`GRIDS`) with S = ``steps``."""
    if name in SPACINGS:
        return spaced(schedule.T, steps, name)
    if name == "karras":
        return karras(schedule, steps, **kwargs)
    if name == "log_snr":
        return log_snr(schedule, steps)
    raise ValueError(f"unknown grid {name!r}: choose one of {', '.join(GRIDS)}")


def check_grid(grid: torch.Tensor, T: int) -> torch.Tensor:
    """The grid as float64, or a clear error: 1-D, strictly decreasing, inside [1, T], ending at t = 0."""
    grid = torch.as_tensor(grid, dtype=torch.float64)
    if grid.dim() != 1 or grid.numel() < 2:
        raise ValueError(f"a grid is a 1-D tensor [t_1, …, t_S, 0] with S ≥ 1, got shape {tuple(grid.shape)}")
    if grid[-1] != 0:
        raise ValueError(f"a grid must end at t = 0 (the clean image), got {grid[-1].item()}")
    if bool((grid[:-1] < 1).any() or (grid[:-1] > T).any()):
        raise ValueError(f"a grid's instants must lie in [1, {T}] before the final 0")
    if bool((grid[1:] >= grid[:-1]).any()):
        raise ValueError("a grid must be strictly decreasing (from noise to the clean image)")
    return grid
