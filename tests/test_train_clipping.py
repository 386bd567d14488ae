"""Gradient clipping in `course.train.train` bounds the gradient the optimizer actually uses.

(Replaces a test that could not fail: Adam's first step is ±lr whatever the gradient's size, so looking at
the weights after one step says nothing about clipping.) Global optimizer hooks see the gradients at the
moment of ``optimizer.step()`` and Adam's first moment just after it: m₁ = (1 − β₁)·g_used.
"""

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

import course.train as train_module
from course.train import TrainConfig, train


def _one_step(grad_clip):
    """Train a small linear model one step on a loss with a huge gradient; return the gradient norm the
    optimizer used, the norm of Adam's first moment after the step, β₁, and the raw gradient's norm."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    seen = {}

    def norm(tensors):
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors])).item()

    def before(optimizer, args, kwargs):
        seen["used"] = norm([p.grad for p in model.parameters()])

    def after(optimizer, args, kwargs):
        seen["moment"] = norm([optimizer.state[p]["exp_avg"] for p in model.parameters()])
        seen["beta1"] = optimizer.param_groups[0]["betas"][0]

    x = torch.randn(8, 4)

    def loss_fn(m, batch):
        return (m(batch) - 1e6).square().mean()

    raw = torch.autograd.grad(loss_fn(model, x), list(model.parameters()))
    handles = [register_optimizer_step_pre_hook(before), register_optimizer_step_post_hook(after)]
    try:
        config = TrainConfig(steps=1, lr=1e-3, grad_clip=grad_clip, ema_decay=None, mixed_precision=False)
        train(model, loss_fn, lambda step: x, config, progress=False)
    finally:
        for handle in handles:
            handle.remove()
    return seen["used"], seen["moment"], seen["beta1"], norm(raw)


@pytest.mark.parametrize("clip", [1e-3, 1.0, 10.0])
def test_gradient_clipping_bounds_the_gradient_used(clip):
    used, moment, beta1, raw = _one_step(clip)
    assert raw > 1e5, "the test needs a gradient far above the clip"
    assert used <= clip * (1 + 1e-5), f"the optimizer stepped with a gradient of norm {used:.3g} > grad_clip = {clip}"
    assert used == pytest.approx(clip, rel=1e-4), "clipping rescales to the bound; it does not zero the gradient"
    assert moment <= (1 - beta1) * clip * (1 + 1e-5)  # Adam's m₁ = (1 − β₁)·g_used


def test_without_clipping_the_raw_gradient_is_used():
    """The negative control: the same measurement with grad_clip=None sees the huge raw gradient."""
    used, moment, beta1, raw = _one_step(None)
    assert used == pytest.approx(raw, rel=1e-4) and used > 1e5
    assert moment == pytest.approx((1 - beta1) * raw, rel=1e-4)


def test_the_measurement_catches_a_clip_that_does_nothing(monkeypatch):
    """If train() forgot to clip (clip_grad_norm_ made a no-op), the bound above would be violated."""
    monkeypatch.setattr(train_module.nn.utils, "clip_grad_norm_", lambda params, max_norm, **kw: torch.tensor(0.0))
    used, moment, beta1, raw = _one_step(1.0)
    assert used > 1.0 and moment > (1 - beta1) * 1.0
