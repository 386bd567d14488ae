"""The noise schedule as one object: ᾱ_t, α_t, σ_t, λ_t and the Karras σ, with conversions t ↔ σ
(slides: « Rôle du Scheduler »; Kingma et al. 2021, §2; Karras et al. 2022, §2 and Table 1).

Symbols → names (t follows :mod:`course.schedules`: t = 0 is clean, t = T is noise):

    ᾱ_t             abar(t)        the signal kept, ∏ (1 − β_s)
    α_t = √ᾱ_t       alpha(t)       x_t = α_t·x_0 + σ_t·ε   (the "variance preserving" view)
    σ_t = √(1 − ᾱ_t) sigma(t)
    λ_t = log(α_t/σ_t) lambda_(t)   half the log signal-to-noise ratio; DPM-Solver's variable (+∞ at t = 0)
    σ̃_t = σ_t/α_t    sigma_ve(t)    x_t/α_t = x_0 + σ̃_t·ε   (the "variance exploding" view, Karras' σ)

A schedule trained on integer steps is also read at fractional t (the grids of Karras et al. or of
uniform λ fall between steps): log σ̃ is interpolated linearly between neighbouring integers, as
k-diffusion and diffusers do (``sigma_to_t``), so t ↔ σ̃ is an exact round trip. Only t = 0 or
t ∈ [1, T] is defined (σ̃ is 0 at t = 0, so its logarithm cannot be interpolated below t = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course.schedules import alphas_cumprod as cumprod


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """ᾱ_t for t = 0 … T (float64, ᾱ_0 = 1), read at any t ∈ {0} ∪ [1, T]."""

    alphas_cumprod: torch.Tensor

    def __post_init__(self):
        abar = torch.as_tensor(self.alphas_cumprod, dtype=torch.float64)
        if abar.dim() != 1 or abar.numel() < 2 or abar[0] != 1 or bool((abar[1:] <= 0).any() or (abar[1:] >= 1).any()):
            raise ValueError("alphas_cumprod must be a 1-D tensor (T + 1,) with ᾱ_0 = 1 and 0 < ᾱ_t < 1 for t ≥ 1")
        if bool((abar[1:] > abar[:-1]).any()):
            raise ValueError("alphas_cumprod must decrease with t (noise only grows)")
        object.__setattr__(self, "alphas_cumprod", abar)
        log_sigmas = 0.5 * (torch.log1p(-abar[1:]) - torch.log(abar[1:]))  # log σ̃_t, t = 1 … T
        object.__setattr__(self, "_log_sigmas", log_sigmas)

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> "NoiseSchedule":
        return cls(cumprod(betas.double()))

    @property
    def T(self) -> int:
        return self.alphas_cumprod.numel() - 1

    # ------------------------------------------------------------------ t → everything

    def _t(self, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64)
        if bool(((t != 0) & ((t < 1) | (t > self.T))).any()) or bool(torch.isnan(t).any()):
            raise ValueError(f"t must be 0 or in [1, {self.T}], got {t.flatten()[0].item() if t.dim() else t.item()}")
        return t

    def sigma_ve(self, t) -> torch.Tensor:
        """σ̃_t = √((1 − ᾱ_t)/ᾱ_t), log-linear between integer steps; 0 at t = 0."""
        t = self._t(t)
        u = (t - 1).clamp(0, self.T - 1)
        low = u.floor().long().clamp(max=self.T - 2) if self.T > 1 else torch.zeros_like(u, dtype=torch.long)
        w = u - low
        ls = self._log_sigmas
        log_s = ls[low] * (1 - w) + ls[(low + 1).clamp(max=self.T - 1)] * w
        return torch.where(t == 0, torch.zeros_like(log_s), log_s.exp())

    def abar(self, t) -> torch.Tensor:
        """ᾱ_t = 1 / (1 + σ̃_t²); exact at integer t."""
        t = self._t(t)
        integer = t == t.round()
        exact = self.alphas_cumprod[t.round().long().clamp(0, self.T)]
        return torch.where(integer, exact, 1 / (1 + self.sigma_ve(t) ** 2))

    def alpha(self, t) -> torch.Tensor:
        return self.abar(t).sqrt()

    def sigma(self, t) -> torch.Tensor:
        return (1 - self.abar(t)).sqrt()

    def lambda_(self, t) -> torch.Tensor:
        """λ_t = log α_t − log σ_t (+∞ at t = 0)."""
        abar = self.abar(t)
        return 0.5 * (torch.log(abar) - torch.log1p(-abar))

    # ------------------------------------------------------------------ σ̃ or λ → t

    def t_from_sigma_ve(self, sigma) -> torch.Tensor:
        """The t whose σ̃_t is ``sigma`` (0 for σ̃ = 0), inverting the log-linear interpolation."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        ls = self._log_sigmas
        lo, hi = ls[0].exp().item(), ls[-1].exp().item()
        positive = sigma > 0
        if bool((positive & ((sigma < lo * (1 - 1e-9)) | (sigma > hi * (1 + 1e-9)))).any()) or bool((sigma < 0).any()):
            raise ValueError(f"σ̃ must be 0 or in [{lo:.4g}, {hi:.4g}] (t = 1 … {self.T}), got {sigma.flatten()[0].item() if sigma.dim() else sigma.item()}")
        log_s = torch.log(sigma.clamp(lo, hi))
        idx = torch.searchsorted(ls, log_s.contiguous()).clamp(1, self.T - 1) if self.T > 1 else torch.zeros_like(log_s, dtype=torch.long)
        low, high = ls[idx - 1], ls[idx]
        w = ((log_s - low) / (high - low)).clamp(0, 1) if self.T > 1 else torch.zeros_like(log_s)
        t = idx.double() + w  # idx − 1 is the index of t = idx, so t = (idx − 1) + 1 + w
        return torch.where(positive, t, torch.zeros_like(t))

    def t_from_lambda(self, lam) -> torch.Tensor:
        """The t whose λ_t is ``lam`` (σ̃ = e^{−λ})."""
        return self.t_from_sigma_ve(torch.exp(-torch.as_tensor(lam, dtype=torch.float64)))
