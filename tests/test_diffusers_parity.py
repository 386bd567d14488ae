"""The from-scratch U-Net and autoencoder equal diffusers' ``UNet2DConditionModel`` and ``AutoencoderKL``.

Random weights (not the initialisation, whose zeros would hide whole paths), the same inputs, the weights
moved across by name (the mapping is the identity), the config translated by :mod:`course.diffusers_format`.
These tests must fail, not skip, when diffusers is missing: it is a dev dependency.
"""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from course.autoencoder import AEConfig, Autoencoder
from course.diffusers_format import FormatError, ae_from_diffusers, ae_to_diffusers, check_weights, unet_from_diffusers, unet_to_diffusers
from course.unet import UNet, UNetConfig

TOLERANCE = 1e-5


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter drawn at random, scaled so that activations stay O(1) through the whole network."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model


def strip_meta(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}


UNET_CONFIGS = {
    "course-like": UNetConfig(channels=(16, 32, 32), attention=(True, True, True), heads=4, context_dim=24, groups=8, pooled=True, pooled_heads=4),
    "plain, some levels without attention": UNetConfig(channels=(16, 32), attention=(False, True), heads=2, context_dim=12, groups=4),
    # SD v1.5's topology (4 levels, 2 layers per block, cross-attention on the first three, 8 heads), small widths
    "SD v1.5 topology": UNetConfig(channels=(32, 64, 64, 64), attention=(True, True, True, False), heads=8, context_dim=32, groups=8, layers_per_block=2),
}


@pytest.mark.parametrize("name", list(UNET_CONFIGS))
def test_unet_equals_diffusers(name):
    config = UNET_CONFIGS[name]
    ours = randomise(UNet(config), seed=1).eval()
    theirs = UNet2DConditionModel(**strip_meta(unet_to_diffusers(config, sample_size=16))).eval()
    assert set(ours.state_dict()) == set(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, config.in_channels, 16, 16, generator=g)
    context = torch.randn(3, 7, config.context_dim, generator=g)
    t = torch.tensor([1, 500, 1000])  # the slides' t ∈ [1, T]; diffusers' timestep is t − 1
    with torch.no_grad():
        a = ours(x, t, context)
        b = theirs(x, t - 1, encoder_hidden_states=context).sample
    assert a.abs().max() > 0.1  # a real output, not zeros
    assert (a - b).abs().max().item() <= TOLERANCE


def test_unet_cross_attention_mask_equals_diffusers_encoder_attention_mask():
    config = UNET_CONFIGS["course-like"]
    config = UNetConfig(**{**config.__dict__, "pooled": False})
    ours = randomise(UNet(config), seed=3).eval()
    theirs = UNet2DConditionModel(**strip_meta(unet_to_diffusers(config, sample_size=8))).eval()
    theirs.load_state_dict(ours.state_dict())
    x, context = torch.randn(2, 4, 8, 8), torch.randn(2, 5, config.context_dim)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        a = ours(x, t, context, mask)
        b = theirs(x, t - 1, encoder_hidden_states=context, encoder_attention_mask=mask).sample
        assert not torch.allclose(a, ours(x, t, context), atol=1e-4)  # the mask changed something
    assert (a - b).abs().max().item() <= TOLERANCE


AE_CONFIGS = {
    "course-like": AEConfig(channels=(8, 16, 32, 32), layers_per_block=1, groups=8),
    "SD v1.5 topology (2 layers per block)": AEConfig(channels=(8, 16, 16, 16), layers_per_block=2, groups=4),
}


@pytest.mark.parametrize("name", list(AE_CONFIGS))
def test_autoencoder_equals_diffusers(name):
    config = AE_CONFIGS[name]
    ours = randomise(Autoencoder(config), seed=4).eval()
    theirs = AutoencoderKL(**strip_meta(ae_to_diffusers(config, 0.5, 32))).eval()
    assert set(ours.state_dict()) == set(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        mean, logvar = ours.encode(x)
        dist = theirs.encode(x).latent_dist
        z = torch.randn(mean.shape, generator=torch.Generator().manual_seed(6))
        decoded, reference = ours.decode(z), theirs.decode(z).sample
    assert mean.shape == (2, 4, 4, 4) and decoded.abs().max() > 0.1
    assert (mean - dist.mean).abs().max().item() <= TOLERANCE
    assert (logvar - dist.logvar).abs().max().item() <= TOLERANCE
    assert (decoded - reference).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("config", list(UNET_CONFIGS.values()))
def test_unet_config_round_trips(config):
    assert unet_from_diffusers(unet_to_diffusers(config, 8)) == config


def test_autoencoder_config_round_trips():
    config = AEConfig(channels=(8, 16, 16, 16), layers_per_block=2, groups=4)
    assert ae_from_diffusers(ae_to_diffusers(config, 0.25, 32)) == (config, 0.25)


def test_sd15_configs_translate():
    """SD v1.5's own config files (their keys and values, as published) map onto the course's configs."""
    unet = {"_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
            "center_input_sample": False, "cross_attention_dim": 768, "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
            "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64, "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3}
    c = unet_from_diffusers(unet)
    assert c.channels == (320, 640, 1280, 1280) and c.attention == (True, True, True, False) and c.heads == 8 and c.layers_per_block == 2
    vae = {"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
           "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 512,
           "up_block_types": ["UpDecoderBlock2D"] * 4}
    assert ae_from_diffusers(vae) == (AEConfig(channels=(128, 256, 512, 512), layers_per_block=2, groups=32), 0.18215)


@pytest.mark.parametrize("key, value", [("use_linear_projection", True), ("up_block_types", ["UpBlock2D", "UpBlock2D"]),
                                        ("addition_embed_type", "text_time"), ("attention_head_dim", [2, 4])])
def test_unet_config_mismatch_names_the_key(key, value):
    d = unet_to_diffusers(UNET_CONFIGS["plain, some levels without attention"], 8)
    d[key] = value
    with pytest.raises(FormatError, match=key):
        unet_from_diffusers(d)


def test_weights_of_another_size_name_the_tensor():
    model = Autoencoder(AE_CONFIGS["course-like"])
    tensors = dict(model.state_dict())
    tensors["decoder.conv_in.weight"] = torch.zeros(1, 4, 3, 3)
    with pytest.raises(FormatError, match=r"decoder.conv_in.weight.*\(1, 4, 3, 3\).*expected \(32, 4, 3, 3\)"):
        check_weights(model, tensors, "vae")
    del tensors["decoder.conv_in.weight"]
    with pytest.raises(FormatError, match="decoder.conv_in.weight' is missing"):
        check_weights(model, tensors, "vae")
