"""2-D toy data for a first diffusion model: point clouds you can watch form (lesson 02)."""

from __future__ import annotations

import math

import torch

TOY_DATASETS: tuple[str, ...] = ("spiral", "ring", "moons")


def make_points(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points (n, 2) of a named 2-D distribution, scaled to roughly [−1, 1]²."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    g = generator
    if name == "spiral":
        u = torch.rand(n, generator=g)
        angle = 3 * math.pi * u + 0.5
        r = 0.15 + 0.8 * u
        pts = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1)
        return pts + 0.025 * torch.randn(n, 2, generator=g)
    if name == "ring":  # eight Gaussians on a circle
        k = torch.randint(8, (n,), generator=g).float()
        centres = torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], 1) * 0.8
        return centres + 0.06 * torch.randn(n, 2, generator=g)
    if name == "moons":
        u = torch.rand(n, generator=g) * math.pi
        upper = torch.rand(n, generator=g) < 0.5
        x = torch.where(upper, torch.cos(u), 1 - torch.cos(u))
        y = torch.where(upper, torch.sin(u), 0.5 - torch.sin(u))
        pts = torch.stack([x - 0.5, y - 0.25], 1) * 0.8
        return pts + 0.04 * torch.randn(n, 2, generator=g)
    raise ValueError(f"unknown toy dataset {name!r}: choose one of {', '.join(TOY_DATASETS)}")


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_projections: int = 64, seed: int = 0) -> float:
    """Mean over random directions of the 1-D Wasserstein-1 distance between projections (equal sizes)."""
    if a.shape != b.shape:
        raise ValueError(f"both point sets need the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(a.shape[1], n_projections, generator=g)
    directions /= directions.norm(dim=0, keepdim=True)
    pa, pb = (a.float() @ directions).sort(0).values, (b.float() @ directions).sort(0).values
    return (pa - pb).abs().mean().item()


class GaussianMixture:
    """p(x_0) = Σ_k π_k N(μ_k, s²I) in 2-D, for which the exact ε-predictor E[ε | x_t] is known in closed form.

    x_t = √ᾱ x_0 + √(1 − ᾱ) ε is again a mixture, Σ_k π_k N(√ᾱ μ_k, v I) with v = ᾱ s² + 1 − ᾱ, and
    E[ε | x_t] = −√(1 − ᾱ) ∇log p(x_t) = √(1 − ᾱ) Σ_k w_k(x_t) (x_t − √ᾱ μ_k) / v, w_k the posterior
    weights. A sampler driven by it has no learning error: what remains is the sampler's own error.
    """

    def __init__(self, means: torch.Tensor, s: float, weights: torch.Tensor | None = None):
        self.means = means.double()  # (K, 2)
        self.s = s
        self.weights = (weights if weights is not None else torch.full((len(means),), 1 / len(means))).double()

    @classmethod
    def ring(cls, k: int = 6, radius: float = 0.8, s: float = 0.08) -> "GaussianMixture":
        angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
        return cls(torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], 1), s)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return self.means[k] + self.s * torch.randn(n, 2, generator=generator, dtype=torch.float64)

    def eps(self, alphas_cumprod):
        """The exact ε-predictor as a model callable ``(x_t, t) -> ε``; ``alphas_cumprod``: ᾱ (T + 1,) or a
        :class:`~course.noise_schedule.NoiseSchedule`, which also reads fractional t (Karras or log-SNR grids)."""
        from course.noise_schedule import NoiseSchedule

        schedule = alphas_cumprod if isinstance(alphas_cumprod, NoiseSchedule) else NoiseSchedule(alphas_cumprod.double())

        def model(x_t: torch.Tensor, t: torch.Tensor, *args) -> torch.Tensor:
            a = schedule.abar(t.cpu().double()).to(x_t.device)[:, None, None]  # (B, 1, 1)
            v = a * self.s**2 + 1 - a
            diff = x_t.double()[:, None, :] - a.sqrt() * self.means[None]  # (B, K, 2)
            logits = torch.log(self.weights)[None] - diff.square().sum(-1) / (2 * v[:, :, 0])  # (B, K)
            w = logits.softmax(1)[:, :, None]
            return ((1 - a).sqrt() * (w * diff).sum(1, keepdim=True) / v)[:, 0].to(x_t.dtype)

        return model
