"""Small tensor helpers shared by every module (style: one helper broadcasts per-sample scalars)."""

from __future__ import annotations

import torch


def per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample scalars (B,) to (B, 1, …, 1) so they broadcast against x (B, …).

    The result has x's dtype and device, so float64 schedules never silently promote float32 images.
    Compute coefficients (square roots, ratios) on the schedule's float64 values *before* calling this.
    """
    values = torch.as_tensor(values)
    if values.dim() == 0:
        values = values.expand(x.shape[0])
    return values.to(dtype=x.dtype, device=x.device).reshape(-1, *([1] * (x.dim() - 1)))
