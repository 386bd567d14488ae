"""Measuring training speed (images per second), as the benchmarks and lesson 05 do."""

from __future__ import annotations

import time
from typing import Callable

import torch

from course.ddpm import training_loss
from course.schedules import alphas_cumprod, get_betas


def training_images_per_second(model, make_batch: Callable[[int], torch.Tensor], steps: int = 4, batch_size: int = 32, context_dim: int = 128) -> float:
    """Images/s of ε-prediction training steps (forward, backward, AdamW) of a text-conditioned U-Net.

    ``make_batch(n)`` returns the model's input (pixels, or latents — including any encoding cost). One
    untimed warm-up step comes first.
    """
    abar = alphas_cumprod(get_betas("scaled_linear", 1000))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    context, mask = torch.randn(batch_size, 16, context_dim), torch.ones(batch_size, 16, dtype=torch.bool)

    def step():
        x = make_batch(batch_size)
        loss = training_loss(lambda z, t, c: model(z, t, context, mask), x, abar)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)
