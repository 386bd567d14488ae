"""The text-to-image training recipe of lesson 05: batches, dropped captions, the loss, held-out prompts."""

import json
import shutil

import pytest
import torch

from course import ldm
from course.scenes import HELD_OUT
from course.schedules import alphas_cumprod
from course.tokenizer import MAX_LENGTH
from course.unet import UNet, UNetConfig


def test_batches_are_deterministic_and_drop_about_one_caption_in_ten():
    scenes, _ = ldm.pool(64, seed=1)
    latents = torch.randn(64, 4, 8, 8)
    get_batch = ldm.batch_getter(scenes, latents, batch_size=32, seed=3)
    z, context, mask = get_batch(7)
    z2, context2, mask2 = get_batch(7)
    assert torch.equal(z, z2) and torch.equal(context, context2) and torch.equal(mask, mask2)
    assert z.shape == (32, 4, 8, 8) and context.shape[:2] == mask.shape and context.shape[2] == 128
    null = ldm.text_states([""])[0][0]  # the dropped captions' states: those of the empty prompt ""
    dropped = sum(int((get_batch(s)[1] - null).abs().amax((1, 2)).lt(1e-6).sum()) for s in range(20))
    assert 20 <= dropped <= 110, dropped  # ~10 % of 640 captions, generous bounds


def test_cached_text_states_give_the_unet_the_same_conditioning():
    prompts = ["a small red circle", "", "un grand carré bleu en haut à gauche", "a small red circle"]
    cache = ldm.TextStateCache()
    cache(prompts[:2])  # two captions cached, one new, one repeated within the batch
    context, mask = cache(prompts)
    assert len(cache.states) == 3
    reference, reference_mask = ldm.text_states(prompts)
    assert torch.equal(mask, reference_mask) and bool(mask.all())  # Stable Diffusion's layout: full length, every position seen
    assert context.shape == reference.shape == (len(prompts), MAX_LENGTH, 128)
    assert torch.allclose(context, reference, atol=1e-5)
    torch.manual_seed(0)
    unet = UNet(UNetConfig(in_channels=4, out_channels=4, channels=(16, 32), attention=(True, True), heads=2, context_dim=128, pooled=True)).eval()
    x, t = torch.randn(4, 4, 8, 8), torch.tensor([10, 200, 500, 900])
    assert torch.allclose(unet(x, t, context, mask), unet(x, t, reference, reference_mask), atol=1e-5)


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


def test_pool_scenes_are_the_scenes_of_the_rendered_pool():
    scenes, images = ldm.pool(12, seed=4)
    assert ldm.pool_scenes(12, seed=4) == scenes
    assert images.shape == (12, 3, 64, 64) and images.dtype == torch.uint8
    assert ldm.pool_scenes(12, seed=5) != scenes


def test_loss_without_min_snr_is_the_plain_epsilon_loss():
    scenes, _ = ldm.pool(8, seed=2)
    batch = ldm.batch_getter(scenes, torch.randn(8, 4, 8, 8), batch_size=64)(0)  # 64 draws of t: some have SNR(t) > γ
    model = UNet(UNetConfig(channels=(32, 32), attention=(False, True), heads=2, context_dim=128))
    abar = alphas_cumprod(ldm.betas())
    torch.manual_seed(3)
    plain = ldm.loss_fn(abar, snr_gamma=None)(model, batch)
    torch.manual_seed(3)
    weighted = ldm.loss_fn(abar, snr_gamma=ldm.SNR_GAMMA)(model, batch)
    assert torch.isfinite(plain) and torch.isfinite(weighted)
    assert weighted < plain  # Min-SNR weights are ≤ 1, and < 1 for every t with SNR(t) > γ


# ----------------------------------------------------------------------------- the training command


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A copy of data/ as COURSE_DATA_DIR (the command may write there only with --ship)."""
    from course import shipped
    from course.paths import data_dir

    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy)
    monkeypatch.setenv("COURSE_DATA_DIR", str(copy))
    loaders = (shipped.load_autoencoder, shipped.load_clip, shipped.load_unet)
    for loader in loaders:
        loader.cache_clear()
    yield copy
    for loader in loaders:
        loader.cache_clear()


def test_training_without_the_autoencoder_is_one_line(data_copy, tmp_path):
    (data_copy / "autoencoder.safetensors").unlink()
    with pytest.raises(SystemExit, match=r"^error: data/autoencoder.safetensors is missing: .*python -m course.ae_train train --ship"):
        ldm.main(["train", "--run-dir", str(tmp_path / "run")])
    with pytest.raises(SystemExit, match=r"^error: ldm recipe: batch size must be ≥ 1, got 0"):
        ldm.main(["train", "--batch-size", "0", "--run-dir", str(tmp_path / "run")])


def test_a_tiny_run_records_its_recipe_and_the_components_it_was_trained_with(data_copy, tmp_path, capsys):
    from course import shipped
    from course.checkpoints import sha256
    from course.recipes import LDM_RECIPE

    before = sha256(data_copy / "ldm_unet.safetensors")
    tiny = LDM_RECIPE.replace(steps=2, pool=16, batch_size=4, eval_every=1, checkpoint_every=1, curve_prompts=2, curve_sampling_steps=1,
                              guidance_candidates=(2.0, 3.0), sweep_prompts=2, eval_prompts=2, eval_sampling_steps=1)
    run = tmp_path / "run"
    manifest = ldm.train_shipped(tiny, run)
    assert sha256(data_copy / "ldm_unet.safetensors") == before
    assert manifest["trained_with"] == shipped.trained_with()
    assert manifest["recipe"] == tiny.as_dict() and manifest["command"] == tiny.command()
    assert [p["step"] for p in manifest["metrics"]["adherence_curve"]] == [1, 2]
    assert f"To ship it: python -m course.ldm ship --run-dir {run}" in capsys.readouterr().out

    # resuming the finished run with another recipe is refused, in one line
    with pytest.raises(SystemExit, match=r"^error: .* started with another recipe \(lr 0.001 → 0.002\)"):
        ldm.main(["train", "--run-dir", str(run), "--steps", "2", "--pool", "16", "--batch-size", "4", "--lr", "2e-3"])

    # a U-Net trained with another autoencoder than data/ holds is never shipped
    exported = run / "ldm_unet.json"
    edited = json.loads(exported.read_text())
    edited["trained_with"]["autoencoder.safetensors"] = "0" * 64
    exported.write_text(json.dumps(edited))
    with pytest.raises(SystemExit, match=r"ldm_unet.safetensors was trained with another autoencoder"):
        ldm.main(["ship", "--run-dir", str(run), "--force"])
    assert sha256(data_copy / "ldm_unet.safetensors") == before
