"""The from-scratch ControlNet (course.controlnet) equals diffusers' ``ControlNetModel``, and starts as the base model.

Parity on random weights (zero convolutions randomised too, or they would hide every path), the weights moved by
name (the mapping is the identity), the config translated by :mod:`course.diffusers_format`. These tests must fail,
not skip, when diffusers is missing: it is a dev dependency.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import ControlNetModel, UNet2DConditionModel

from course.controlnet import ControlledUNet, ControlNet, ControlNetConfig
from course.diffusers_format import controlnet_from_diffusers, controlnet_to_diffusers, unet_to_diffusers
from course.unet import UNet, UNetConfig
from tests.test_diffusers_parity import TOLERANCE, randomise, strip_meta

CONFIGS = {
    "course-like": UNetConfig(channels=(16, 32, 32), attention=(True, True, True), heads=4, context_dim=24, groups=8, pooled=True, pooled_heads=4),
    "SD v1.5 topology": UNetConfig(channels=(32, 64, 64, 64), attention=(True, True, True, False), heads=8, context_dim=32, groups=8, layers_per_block=2),
}
HINTS = {"course-like": (8, 16, 16), "SD v1.5 topology": (16, 32, 96, 256)}  # factors 4 and 8


def inputs(config: UNetConfig, factor: int, side: int = 8, batch: int = 3, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, config.in_channels, side, side, generator=g)
    context = torch.randn(batch, 7, config.context_dim, generator=g)
    cond = torch.rand(batch, 3, factor * side, factor * side, generator=g)  # condition images in [0, 1], as diffusers' pipeline gives them
    t = torch.tensor([1, 500, 1000][:batch])  # the slides' t ∈ [1, T]; diffusers' timestep is t − 1
    return x, t, context, cond


@pytest.mark.parametrize("name", list(CONFIGS))
def test_controlnet_residuals_and_the_controlled_unet_equal_diffusers(name):
    config = ControlNetConfig(CONFIGS[name], hint_channels=HINTS[name])
    ours = randomise(ControlNet(config), seed=3).eval()
    theirs = ControlNetModel(**strip_meta(controlnet_to_diffusers(config))).eval()
    assert set(ours.state_dict()) == set(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    x, t, context, cond = inputs(config.unet, config.factor)
    with torch.no_grad():
        down, mid = ours(x, t, context, None, cond, scale=0.7)
        ref = theirs(x, t - 1, encoder_hidden_states=context, controlnet_cond=cond, conditioning_scale=0.7, return_dict=False)
    assert len(down) == len(ref[0])
    for a, b in zip(down, ref[0]):
        assert a.shape == b.shape and (a - b).abs().max() < TOLERANCE
    assert (mid - ref[1]).abs().max() < TOLERANCE

    unet = randomise(UNet(config.unet), seed=4).eval()
    their_unet = UNet2DConditionModel(**strip_meta(unet_to_diffusers(config.unet, sample_size=8))).eval()
    their_unet.load_state_dict(unet.state_dict())
    with torch.no_grad():
        eps = ControlledUNet(unet, ours, cond, 0.7)(x, t, context)
        ref_eps = their_unet(x, t - 1, encoder_hidden_states=context, down_block_additional_residuals=ref[0],
                             mid_block_additional_residual=ref[1]).sample
    assert (eps - ref_eps).abs().max() < TOLERANCE
    assert (eps - unet(x, t, context)).abs().max() > 1e-2  # the control changed ε: the test would see a dropped residual


def test_from_unet_copies_what_diffusers_copies():
    config = CONFIGS["course-like"]
    unet = randomise(UNet(config), seed=5)
    ours = ControlNet.from_unet(unet, hint_channels=HINTS["course-like"])
    their_unet = UNet2DConditionModel(**strip_meta(unet_to_diffusers(config, sample_size=8)))
    their_unet.load_state_dict(unet.state_dict())
    theirs = ControlNetModel.from_unet(their_unet, conditioning_embedding_out_channels=HINTS["course-like"])
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert set(mine) == set(ref)
    for key in mine:
        if key.startswith("controlnet_cond_embedding.") and not key.startswith("controlnet_cond_embedding.conv_out"):
            continue  # the hint encoder's first layers are drawn at random in both
        assert torch.equal(mine[key], ref[key]), key


def test_the_controlled_unet_starts_exactly_as_the_base_model():
    config = CONFIGS["course-like"]
    unet = randomise(UNet(config), seed=6).eval()
    net = ControlNet.from_unet(unet, hint_channels=HINTS["course-like"]).eval()
    x, t, context, cond = inputs(config, 4)
    with torch.no_grad():
        assert torch.equal(ControlledUNet(unet, net, cond, 1.0)(x, t, context), unet(x, t, context))


def test_zero_convolutions_leave_zero_at_the_first_step():
    """Z starts at 0 but its gradient is its input (§3.1): one step moves every zero convolution."""
    config = CONFIGS["course-like"]
    unet = randomise(UNet(config), seed=7).requires_grad_(False)
    net = ControlNet.from_unet(unet, hint_channels=HINTS["course-like"])
    x, t, context, cond = inputs(config, 4)
    ControlledUNet(unet, net, cond)(x, t, context).square().mean().backward()
    for z in list(net.controlnet_down_blocks) + [net.controlnet_mid_block]:
        assert z.weight.grad.abs().sum() > 0
    assert net.controlnet_cond_embedding.conv_out.weight.grad.abs().sum() == 0  # behind the zero convs: no gradient yet
    assert all(p.grad is None for p in unet.parameters())


def test_guidance_halves_each_get_the_condition():
    config = CONFIGS["course-like"]
    unet = randomise(UNet(config), seed=8).eval()
    net = randomise(ControlNet(ControlNetConfig(config, hint_channels=HINTS["course-like"])), seed=9).eval()
    x, t, context, cond = inputs(config, 4, batch=2)
    controlled = ControlledUNet(unet, net, cond)
    with torch.no_grad():
        both = controlled(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, context]))
        assert torch.allclose(both[:2], controlled(x, t, context), atol=1e-5)
        assert torch.allclose(both[2:], both[:2], atol=1e-5)


def test_a_condition_of_the_wrong_size_names_the_expected_one():
    config = CONFIGS["course-like"]
    net = ControlNet(ControlNetConfig(config, hint_channels=HINTS["course-like"]))
    x, t, context, _ = inputs(config, 4)
    with pytest.raises(ValueError, match=r"must be \(B, 3, 32, 32\) for latents of \(8, 8\), got \(3, 3, 64, 64\)"):
        net(x, t, context, None, torch.zeros(3, 3, 64, 64))
    with pytest.raises(ValueError, match=r"got \(3, 1, 32, 32\)"):
        net(x, t, context, None, torch.zeros(3, 1, 32, 32))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_controlnet_config_round_trips(name):
    config = ControlNetConfig(CONFIGS[name], hint_channels=HINTS[name])
    back = controlnet_from_diffusers(controlnet_to_diffusers(config))
    assert back.hint_channels == config.hint_channels and back.conditioning_channels == 3
    assert back.unet == config.unet.__class__(**{**config.unet.__dict__, "out_channels": config.unet.in_channels})


# ----------------------------------------------------------------------------- the stock pipeline


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_stock_controlnet_pipeline_gives_the_course_images(tmp_path, scale):
    """Our models exported: diffusers' StableDiffusionControlNetPipeline, offline, gives the image of the course's path."""
    from diffusers import StableDiffusionControlNetPipeline

    from course import export as ex
    from course.autoencoder import AEConfig, Autoencoder
    from course.paths import data_dir
    from course.pipeline import generate_latents
    from course.shipped import IMAGE_SIZE, UNET, make_clip
    from course.tokenizer import DIRNAME

    torch.manual_seed(0)
    unet, ae, clip = randomise(UNet(UNET), seed=7).eval(), Autoencoder(AEConfig()).eval(), make_clip().eval()
    with torch.no_grad():  # random weights with the size of trained ones: ε̂ of order 1
        unet.conv_out.weight.mul_(0.1)
    net = randomise(ControlNet.from_unet(unet), seed=8).eval()
    with torch.no_grad():
        for z in list(net.controlnet_down_blocks) + [net.controlnet_mid_block]:
            z.weight.mul_(0.1)
    folder = ex.export(tmp_path / "mini-sd", unet, ae, 0.9, clip.text, data_dir() / DIRNAME, IMAGE_SIZE)
    ex.export_controlnet(tmp_path / "controlnet", net)
    controlnet = ControlNetModel.from_pretrained(tmp_path / "controlnet", local_files_only=True)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(folder, controlnet=controlnet, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    cond = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    cond[..., 20:44, 20] = cond[..., 20:44, 43] = cond[..., 20, 20:44] = cond[..., 43, 20:44] = 1  # a square's outline
    prompt, steps, w, seed = "un grand carré bleu au centre", 10, 3.0, 5
    theirs = pipe(prompt, image=cond, num_inference_steps=steps, guidance_scale=w, controlnet_conditioning_scale=scale,
                  generator=torch.Generator().manual_seed(seed), output_type="pt").images
    their_z = pipe(prompt, image=cond, num_inference_steps=steps, guidance_scale=w, controlnet_conditioning_scale=scale,
                   generator=torch.Generator().manual_seed(seed), output_type="latent").images
    z = generate_latents(ControlledUNet(unet, net, cond, scale), clip, [prompt], "dpmpp", steps, w, seed)
    assert (their_z - z).abs().max().item() <= 1e-4
    with torch.no_grad():
        ours = ae.decode(z / 0.9).clamp(-1, 1)
    plain = generate_latents(unet, clip, [prompt], "dpmpp", steps, w, seed)
    assert theirs.shape == ours.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert (2 * theirs - 1 - ours).abs().max().item() <= 1e-3
    assert (z - plain).abs().max().item() > 0.1  # the control moved z_0 (|z_0| ~ 1): a dropped ControlNet would fail


# ----------------------------------------------------------------------------- the shipped ControlNet


def test_the_shipped_controlnet_loads_and_refuses_another_unets(tmp_path, monkeypatch):
    import json
    import shutil

    from course import checkpoints, shipped
    from course.paths import data_dir

    net = shipped.load_controlnet("canny")
    assert isinstance(net, ControlNet) and not net.training
    manifest = checkpoints.read_manifest(data_dir() / "controlnet_canny.safetensors")
    assert manifest["trained_with"][shipped.UNET_CHECKPOINT] == checkpoints.read_manifest(data_dir() / shipped.UNET_CHECKPOINT)["sha256"]
    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy)
    path = copy / "controlnet_canny.json"
    edited = json.loads(path.read_text())
    edited["trained_with"][shipped.UNET_CHECKPOINT] = "0" * 64
    path.write_text(json.dumps(edited))
    monkeypatch.setenv("COURSE_DATA_DIR", str(copy))
    with pytest.raises(checkpoints.CheckpointError, match="trained against another U-Net"):
        shipped.load_controlnet("canny")
    with pytest.raises(FileNotFoundError, match="train it with python -m course.controlnet_train train --kind mask --ship"):
        shipped.load_controlnet("mask")


def test_an_unknown_kind_to_train_is_one_line(tmp_path):
    from course.controlnet_train import main

    with pytest.raises(SystemExit, match=r"^error: controlnet_depth recipe: unknown control kind 'depth': choose one of canny, scribble, mask$"):
        main(["train", "--kind", "depth", "--run-dir", str(tmp_path / "run")])


def test_the_pipeline_refuses_bad_control_input():
    from course.pipeline import TextToImagePipeline

    pipe = TextToImagePipeline(device="cpu")
    good = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r"must be \(3, 64, 64\) or \(B, 3, 64, 64\) in \[0, 1\], got \(1, 1, 64, 64\)"):
        pipe("un carré", control=torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="a number ≥ 0"):
        pipe("un carré", control=good, control_scale=-0.5)
    with pytest.raises(ValueError, match="unknown control kind 'depth'"):
        pipe("un carré", control=good, control_kind="depth")
    with pytest.raises(ValueError, match=r"one control image or one per image \(2\), got 3"):
        pipe("un carré", control=torch.zeros(3, 3, 64, 64), num_images_per_prompt=2)
    edges = torch.zeros(1, 3, 64, 64)
    edges[..., 12:30, 12] = edges[..., 12:30, 29] = edges[..., 12, 12:30] = edges[..., 29, 12:30] = 1
    a = pipe("un grand carré bleu en haut à gauche", num_inference_steps=4, control=edges).tensors
    b = pipe("un grand carré bleu en haut à gauche", num_inference_steps=4, control=edges, control_scale=0).tensors
    c = pipe("un grand carré bleu en haut à gauche", num_inference_steps=4).tensors
    assert torch.equal(b, c) and (a - c).abs().max() > 0.05  # scale 0 is the base model; scale 1 changes the image
