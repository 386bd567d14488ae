"""Sinusoidal embeddings of the timestep t (Vaswani et al. 2017, §3.5; used by Ho et al. 2020, Appendix B)."""

from __future__ import annotations

import math

import torch


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """(B,) timesteps → (B, dim): [cos(t·ω_k), sin(t·ω_k)] with ω_k = max_period^(−k/(dim/2)), k = 0 … dim/2 − 1."""
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
