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
