"""Cross-attention maps per word: where, in the latent, each token of the prompt is read.

In every cross-attention layer of the U-Net, each latent pixel puts a weight on each token of the prompt
(softmax(QKᵀ/√d), Vaswani et al. 2017, eq. 1; slides « Cross-Attention »). Averaged over heads and over
the layers that work at the latent's full resolution, these weights form one map per token: Prompt-to-
Prompt (Hertz et al. 2022, §3.1) edits them, Attend-and-Excite (Chefer et al. 2023, §3) reads them to
find a subject the image neglects, and lesson 10 shows them for a binding failure.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from course.captions import EN_SHAPES, FR_SHAPES
from course.tokenizer import backend

SHAPE_WORDS: frozenset[str] = frozenset({w for forms in EN_SHAPES.values() for w in forms} | {w for f in FR_SHAPES.values() for w in f[:2]})


def cross_attentions(unet: nn.Module) -> list[nn.Module]:
    """The U-Net's cross-attention layers (``…attn2``), in forward order."""
    return [m for name, m in unet.named_modules() if name.endswith("attn2")]


@contextlib.contextmanager
def recording(unet: nn.Module, keep_graph: bool = False) -> Iterator[list[nn.Module]]:
    """Within the block, every cross-attention layer keeps its weights (``keep_graph``: differentiable ones)."""
    layers = cross_attentions(unet)
    if not layers:
        raise ValueError("this model has no cross-attention layer (…attn2) whose maps could be recorded")
    for m in layers:
        m.record, m.keep_graph, m.weights = True, keep_graph, None
    try:
        yield layers
    finally:
        for m in layers:
            m.record, m.keep_graph = False, False


def token_maps(layers: list[nn.Module]) -> torch.Tensor:
    """(B, L, h, w): the weights of the recorded layers at the largest resolution, averaged over heads and layers."""
    weights = [m.weights for m in layers if m.weights is not None]
    if not weights:
        raise ValueError("no attention was recorded: run the U-Net inside `recording(unet)` first")
    pixels = max(w.shape[2] for w in weights)
    side = int(round(pixels**0.5))
    full = [w.mean(1) for w in weights if w.shape[2] == pixels]  # (B, h·w, L) each
    mean = torch.stack(full).mean(0)
    return mean.transpose(1, 2).reshape(mean.shape[0], mean.shape[2], side, side)


def tokens(prompt: str) -> list[str]:
    """The prompt as the tokenizer cuts it: <bos> words… <eos> (index i is the i-th token state)."""
    return backend().encode(prompt).tokens


def subject_positions(prompt: str) -> list[int]:
    """Token positions of the shape nouns (the subjects Attend-and-Excite excites): "a red circle" → [3]."""
    return [i for i, token in enumerate(tokens(prompt)) if token in SHAPE_WORDS]
