"""Classifier-free guidance: the slides' form equals the usual one, and the batched pass is exact."""

import pytest
import torch

from course.guidance import guidance_combination, guided


def test_slides_form_equals_the_usual_form():
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    for w in (0.0, 1.0, 3.0, 7.5):
        assert torch.allclose(guidance_combination(cond, uncond, w), uncond + w * (cond - uncond), atol=1e-6)
    assert torch.equal(guidance_combination(cond, uncond, 1.0), cond)
    assert torch.equal(guidance_combination(cond, uncond, 0.0), uncond)


def test_one_batched_pass_equals_two_separate_passes():
    calls = []

    def model(x, t, context, mask):
        calls.append(x.shape[0])
        return x * context.sum(dim=(1, 2))[:, None] / (1 + mask.sum(1))[:, None] + t[:, None]

    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(2, 5, generator=g), torch.tensor([3, 7])
    ctx, mask = torch.randn(2, 6, 4, generator=g), torch.ones(2, 6, dtype=torch.bool)
    null, null_mask = torch.randn(1, 2, 4, generator=g), torch.ones(1, 2, dtype=torch.bool)
    eps = guided(model, ctx, mask, null, null_mask, 3.0)(x, t)
    assert calls == [4]  # ε(∅) and ε(c) in one forward pass
    padded_null = torch.cat([null.expand(2, -1, -1), torch.zeros(2, 4, 4)], dim=1)
    padded_mask = torch.cat([null_mask.expand(2, -1), torch.zeros(2, 4, dtype=torch.bool)], dim=1)
    expected = guidance_combination(model(x, t, ctx, mask), model(x, t, padded_null, padded_mask), 3.0)
    assert torch.allclose(eps, expected, atol=1e-6)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="must be a finite number ≥ 0"):
            guided(model, ctx, mask, null, null_mask, bad)
