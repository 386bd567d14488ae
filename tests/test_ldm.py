"""The text-to-image training recipe of lesson 05: batches, dropped captions, the loss, held-out prompts."""

import torch

from course import ldm
from course.scenes import HELD_OUT
from course.schedules import alphas_cumprod
from course.unet import UNet, UNetConfig


def test_batches_are_deterministic_and_drop_about_one_caption_in_ten():
    scenes, _ = ldm.pool(64, seed=1)
    latents = torch.randn(64, 4, 8, 8)
    get_batch = ldm.batch_getter(scenes, latents, batch_size=32, seed=3)
    z, context, mask = get_batch(7)
    z2, context2, mask2 = get_batch(7)
    assert torch.equal(z, z2) and torch.equal(context, context2) and torch.equal(mask, mask2)
    assert z.shape == (32, 4, 8, 8) and context.shape[:2] == mask.shape and context.shape[2] == 128
    # the empty prompt "" is only <bos> <eos>: two real tokens
    dropped = sum(int((get_batch(s)[2].sum(1) == 2).sum()) for s in range(20))
    assert 20 <= dropped <= 110, dropped  # ~10 % of 640 captions, generous bounds


def test_loss_is_finite_and_falls_on_one_batch():
    torch.manual_seed(0)
    scenes, _ = ldm.pool(16, seed=2)
    batch = ldm.batch_getter(scenes, torch.randn(16, 4, 8, 8), batch_size=16)(0)
    model = UNet(UNetConfig(channels=(32, 32), attention=(False, True), heads=2, context_dim=128))
    loss_fn = ldm.loss_fn(alphas_cumprod(ldm.betas()))
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # the same t and ε every step: a fixed objective
        loss = loss_fn(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert losses[-1] < 0.5 * losses[0]


def test_heldout_prompts_use_only_heldout_pairs_in_both_languages():
    scenes, prompts = ldm.heldout_prompts(40)
    assert all((o.shape, o.colour) in HELD_OUT for s in scenes for o in s.objects)
    assert len(set(prompts)) > 20
    assert ldm.heldout_prompts(40, ldm.VALIDATION_SEED)[1] != prompts  # validation and test prompts differ
