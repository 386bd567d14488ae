"""Multi-head attention, written out (Vaswani et al. 2017, eq. 1): softmax(QKᵀ/√d)·V.

Used by CLIP's text transformer (causal self-attention, lesson 03) and by the U-Net (self- and
cross-attention, lesson 04). ``mask`` is boolean, True where a query may attend to a key; it
broadcasts to (B, heads, queries, keys).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q·kᵀ/√d) over the keys, masked keys getting weight 0: (B, h, Lq, Lk), each row sums to 1."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, h, Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q·kᵀ/√d + mask)·v for q (B, h, Lq, d), k and v (B, h, Lk, d); masked keys get weight 0."""
    return attention_weights(q, k, mask) @ v  # (B, h, Lq, d)


def causal_mask(length: int, device=None) -> torch.Tensor:
    """(L, L) boolean: position i may attend to positions j ≤ i (a text model reads left to right)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, D) → (B, heads, L, D / heads): each head reads its own slice of the features."""
    B, L, D = x.shape
    return x.view(B, L, heads, D // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, d) → (B, L, heads · d): the heads' outputs side by side."""
    B, _, L, _ = x.shape
    return x.transpose(1, 2).reshape(B, L, -1)


class MultiHeadAttention(nn.Module):
    """Queries from ``x``; keys and values from ``context`` (cross-attention) or from ``x`` (self-attention)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        context_dim = context_dim or dim
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(context_dim, dim)
        self.v_proj = nn.Linear(context_dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.record = False  # when True, keep the last attention weights (B, heads, Lq, Lk) in .weights
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q, k, v = (split_heads(proj(y), self.heads) for proj, y in ((self.q_proj, x), (self.k_proj, context), (self.v_proj, context)))  # (B, heads, L, d)
        weights = attention_weights(q, k, mask)  # (B, heads, Lq, Lk)
        if self.record:  # kept for plots (lesson 04's attention maps)
            self.weights = weights.detach()
        out = weights @ v  # (B, heads, Lq, d)
        return self.out_proj(merge_heads(out))  # (B, Lq, dim)
