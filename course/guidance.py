"""Classifier-free guidance (Ho & Salimans 2022), in the slides' form (« Classifier-Free Guidance »):

    ε̃(x_t, t, c) = w·ε(x_t, t, c) + (1 − w)·ε(x_t, t, ∅)  =  ε(x_t, t, ∅) + w·(ε(x_t, t, c) − ε(x_t, t, ∅))

w = 1 is the plain conditional model, w = 0 the unconditional one, w > 1 pushes away from ∅.
Guidance wraps the model; samplers only see a function ``(x_t, t) -> ε̃``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from course.yours import pick


def guidance_combination(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """w·ε(c) + (1 − w)·ε(∅), the slides' formula (equal to ε(∅) + w·(ε(c) − ε(∅)))."""
    return w * eps_cond + (1 - w) * eps_uncond


def _pad(context: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token states (B, L, D) and mask (B, L) to ``length`` tokens; the padding is masked out."""
    extra = length - context.shape[1]
    if extra == 0:
        return context, mask
    return F.pad(context, (0, 0, 0, extra)), F.pad(mask, (0, extra), value=False)


def guided(
    model: Callable[..., torch.Tensor],
    context: torch.Tensor,
    context_mask: torch.Tensor,
    null_context: torch.Tensor,
    null_mask: torch.Tensor,
    w: float,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A sampler-ready ``(x_t, t) -> ε̃``: one batched forward pass computes ε(∅) and ε(c) together."""
    if not math.isfinite(w) or w < 0:
        raise ValueError(f"guidance scale w must be a finite number ≥ 0 (0: unconditional, 1: conditional, > 1: guided), got {w}")
    B, L = context.shape[0], max(context.shape[1], null_context.shape[1])
    context, context_mask = _pad(context, context_mask, L)
    null_context, null_mask = _pad(null_context.expand(B, -1, -1), null_mask.expand(B, -1), L)

    def eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if w == 1:
            return model(x_t, t, context, context_mask)
        out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([null_context, context]), torch.cat([null_mask, context_mask]))
        eps_uncond, eps_cond = out.chunk(2)  # (B, …) each
        return (pick("guidance") or guidance_combination)(eps_cond, eps_uncond, w)  # the learner's, after course.yours.use

    return eps
