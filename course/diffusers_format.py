"""The course's models in diffusers' own format: configs and weights, both ways, without importing diffusers.

The from-scratch U-Net (:mod:`course.unet`) and autoencoder (:mod:`course.autoencoder`) use the topology
and the parameter names of diffusers' ``UNet2DConditionModel`` and ``AutoencoderKL``, so their weights map
one to one (the tables below are the identity); only the configs are translated. The text encoder is
transformers' ``CLIPTextModel`` (Radford et al. 2021): the course's names with a ``text_model.`` prefix,
which transformers 5 reads without it too.

    unet_to_diffusers(config, sample_size) → dict      unet_from_diffusers(dict) → UNetConfig
    ae_to_diffusers(config, scaling, size) → dict      ae_from_diffusers(dict) → (AEConfig, scaling factor)
    clip_text_to_transformers(config) → dict           clip_text_from_transformers(dict) → (hidden, layers, …)
    controlnet_to_diffusers(config) → dict             controlnet_from_diffusers(dict) → ControlNetConfig
    check_weights(model, tensors, what)                 one sentence naming the first missing or mis-shaped tensor

A config this topology cannot express raises a ``ValueError`` naming the first mismatching key.
"""

from __future__ import annotations

from typing import Any

import torch

from course.autoencoder import AEConfig
from course.unet import UNetConfig

DIFFUSERS_VERSION = "0.42.1"  # written in the exported configs (the version the parity tests run against)


class FormatError(ValueError):
    """A folder or config that is not a diffusers model of this architecture (the message names the key or file)."""


# ----------------------------------------------------------------------------- U-Net


def unet_to_diffusers(c: UNetConfig, sample_size: int) -> dict[str, Any]:
    """``UNet2DConditionModel``'s config for the course U-Net ``c`` (latents of side ``sample_size``)."""
    if c.context_dim is None:
        raise FormatError("a U-Net without cross-attention (context_dim=None) has no UNet2DConditionModel equivalent")
    return {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": DIFFUSERS_VERSION,
        "sample_size": sample_size,
        "in_channels": c.in_channels,
        "out_channels": c.out_channels,
        "center_input_sample": False,
        "flip_sin_to_cos": True,  # [cos, sin], as course.embeddings.timestep_embedding
        "freq_shift": 0,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in c.attention],
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(c.attention)],
        "only_cross_attention": False,
        "block_out_channels": list(c.channels),
        "layers_per_block": c.layers_per_block,
        "downsample_padding": 1,
        "mid_block_scale_factor": 1,
        "act_fn": "silu",
        "norm_num_groups": c.groups,
        "norm_eps": 1e-5,
        "cross_attention_dim": c.context_dim,
        "transformer_layers_per_block": 1,
        "attention_head_dim": c.heads,  # for SD v1 this key holds the number of heads (a known misnomer in diffusers)
        "num_attention_heads": None,
        "use_linear_projection": False,
        "upcast_attention": False,
        "resnet_time_scale_shift": "default",
        "time_embedding_type": "positional",
        "addition_embed_type": "text" if c.pooled else None,
        "addition_embed_type_num_heads": c.pooled_heads,
        "class_embed_type": None,
        "encoder_hid_dim": None,
        "conv_in_kernel": 3,
        "conv_out_kernel": 3,
    }


# keys whose value must be exactly this for the course's U-Net to compute what diffusers computes (absent = default)
_UNET_FIXED = {
    "center_input_sample": False, "flip_sin_to_cos": True, "freq_shift": 0, "mid_block_type": "UNetMidBlock2DCrossAttn",
    "only_cross_attention": False, "downsample_padding": 1, "mid_block_scale_factor": 1, "act_fn": "silu", "norm_eps": 1e-5,
    "transformer_layers_per_block": 1, "num_attention_heads": None, "upcast_attention": False, "resnet_time_scale_shift": "default",
    "time_embedding_type": "positional", "class_embed_type": None, "encoder_hid_dim": None, "conv_in_kernel": 3, "conv_out_kernel": 3,
    "dual_cross_attention": False, "use_linear_projection": False, "time_cond_proj_dim": None, "projection_class_embeddings_input_dim": None,
    "timestep_post_act": None, "reverse_transformer_layers_per_block": None, "attention_type": "default", "class_embeddings_concat": False,
    "mid_block_only_cross_input_proj": False, "cross_attention_norm": None, "encoder_hid_dim_type": None, "num_class_embeds": None,
    "time_embedding_dim": None, "time_embedding_act_fn": None, "dropout": 0.0,
}
_UNET_DEFAULTS = {"layers_per_block": 2, "norm_num_groups": 32, "attention_head_dim": 8, "addition_embed_type": None, "addition_embed_type_num_heads": 64,
                  "in_channels": 4, "out_channels": 4, "cross_attention_dim": 1280}


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(value, (int, float)):
        return abs(value - expected) <= 1e-12 * max(1.0, abs(expected))
    return value == expected


def _per_level(d: dict, key: str, n: int) -> Any:
    """A diffusers key that may be one value or one per level: the value, if it is the same at every level."""
    value = d.get(key, _UNET_DEFAULTS.get(key))
    if isinstance(value, (list, tuple)):
        if len(value) != n or len(set(value)) != 1:
            raise FormatError(f"config key {key!r} = {list(value)}: the course U-Net uses one value for all {n} levels")
        return value[0]
    return value


def unet_from_diffusers(d: dict[str, Any]) -> UNetConfig:
    """The course ``UNetConfig`` of a ``UNet2DConditionModel`` config, or a ``FormatError`` naming the first key it cannot run."""
    if d.get("_class_name", "UNet2DConditionModel") != "UNet2DConditionModel":
        raise FormatError(f"config key '_class_name' = {d['_class_name']!r}: expected 'UNet2DConditionModel'")
    for key, expected in _UNET_FIXED.items():
        if key in d and not _same(d[key], expected):
            raise FormatError(f"config key {key!r} = {d[key]!r}: this architecture needs {expected!r}")
    channels = tuple(d.get("block_out_channels", (320, 640, 1280, 1280)))
    n = len(channels)
    down = d.get("down_block_types", ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"])
    up = d.get("up_block_types", ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3)
    if len(down) != n or any(b not in ("CrossAttnDownBlock2D", "DownBlock2D") for b in down):
        raise FormatError(f"config key 'down_block_types' = {list(down)}: expected {n} of CrossAttnDownBlock2D / DownBlock2D")
    attention = tuple(b == "CrossAttnDownBlock2D" for b in down)
    expected_up = ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)]
    if list(up) != expected_up:
        raise FormatError(f"config key 'up_block_types' = {list(up)}: the mirror of down_block_types is {expected_up}")
    addition = d.get("addition_embed_type")
    if addition not in (None, "text"):
        raise FormatError(f"config key 'addition_embed_type' = {addition!r}: this architecture has None or 'text'")
    context_dim = _per_level(d, "cross_attention_dim", n)
    try:
        return UNetConfig(
            in_channels=d.get("in_channels", 4), out_channels=d.get("out_channels", 4), channels=channels, attention=attention,
            heads=_per_level(d, "attention_head_dim", n), context_dim=context_dim, groups=d.get("norm_num_groups", 32),
            pooled=addition == "text", layers_per_block=_per_level(d, "layers_per_block", n),
            pooled_heads=d.get("addition_embed_type_num_heads", 64),
        )
    except ValueError as e:
        raise FormatError(f"U-Net config: {e}") from None


# ----------------------------------------------------------------------------- ControlNet

# the keys of diffusers' ControlNetModel taken over from the U-Net's config (the copy has the U-Net's topology)
_CONTROLNET_FROM_UNET = (
    "in_channels", "flip_sin_to_cos", "freq_shift", "down_block_types", "mid_block_type", "only_cross_attention", "block_out_channels",
    "layers_per_block", "downsample_padding", "mid_block_scale_factor", "act_fn", "norm_num_groups", "norm_eps", "cross_attention_dim",
    "transformer_layers_per_block", "attention_head_dim", "num_attention_heads", "use_linear_projection", "class_embed_type",
    "addition_embed_type", "addition_embed_type_num_heads", "upcast_attention", "resnet_time_scale_shift", "encoder_hid_dim",
)


def controlnet_to_diffusers(c) -> dict[str, Any]:
    """``ControlNetModel``'s config for the course ControlNet ``c`` (a :class:`course.controlnet.ControlNetConfig`)."""
    unet = unet_to_diffusers(c.unet, sample_size=8)
    return {
        "_class_name": "ControlNetModel",
        "_diffusers_version": DIFFUSERS_VERSION,
        **{k: unet[k] for k in _CONTROLNET_FROM_UNET},
        "conditioning_channels": c.conditioning_channels,
        "conditioning_embedding_out_channels": list(c.hint_channels),
        "controlnet_conditioning_channel_order": "rgb",
        "global_pool_conditions": False,
    }


def controlnet_from_diffusers(d: dict[str, Any]):
    """The course ``ControlNetConfig`` of a ``ControlNetModel`` config, or a ``FormatError`` naming the first key it cannot run."""
    from course.controlnet import ControlNetConfig

    if d.get("_class_name", "ControlNetModel") != "ControlNetModel":
        raise FormatError(f"config key '_class_name' = {d['_class_name']!r}: expected 'ControlNetModel'")
    for key, expected in (("controlnet_conditioning_channel_order", "rgb"), ("global_pool_conditions", False)):
        if key in d and d[key] != expected:
            raise FormatError(f"config key {key!r} = {d[key]!r}: this architecture needs {expected!r}")
    unet_keys = {k: v for k, v in d.items() if k in _CONTROLNET_FROM_UNET}
    up = ["CrossAttnUpBlock2D" if b == "CrossAttnDownBlock2D" else "UpBlock2D" for b in reversed(d.get("down_block_types", ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]))]
    unet = unet_from_diffusers({**unet_keys, "up_block_types": up, "out_channels": d.get("in_channels", 4)})
    return ControlNetConfig(unet, d.get("conditioning_channels", 3), tuple(d.get("conditioning_embedding_out_channels", (16, 32, 96, 256))))


# ----------------------------------------------------------------------------- autoencoder


def ae_to_diffusers(c: AEConfig, scaling_factor: float, sample_size: int) -> dict[str, Any]:
    """``AutoencoderKL``'s config for the course autoencoder ``c`` (images of side ``sample_size``)."""
    n = len(c.channels)
    return {
        "_class_name": "AutoencoderKL",
        "_diffusers_version": DIFFUSERS_VERSION,
        "in_channels": c.in_channels,
        "out_channels": c.in_channels,
        "down_block_types": ["DownEncoderBlock2D"] * n,
        "up_block_types": ["UpDecoderBlock2D"] * n,
        "block_out_channels": list(c.channels),
        "layers_per_block": c.layers_per_block,
        "act_fn": "silu",
        "latent_channels": c.latent_channels,
        "norm_num_groups": c.groups,
        "sample_size": sample_size,
        "scaling_factor": scaling_factor,
        "shift_factor": None,
        "latents_mean": None,
        "latents_std": None,
        "force_upcast": True,
        "use_quant_conv": True,
        "use_post_quant_conv": True,
        "mid_block_add_attention": True,
    }


_AE_FIXED = {"act_fn": "silu", "shift_factor": None, "latents_mean": None, "latents_std": None, "use_quant_conv": True, "use_post_quant_conv": True,
             "mid_block_add_attention": True}


def ae_from_diffusers(d: dict[str, Any]) -> tuple[AEConfig, float]:
    """The course ``AEConfig`` and latent scaling factor of an ``AutoencoderKL`` config (``FormatError`` naming the first bad key)."""
    if d.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        raise FormatError(f"config key '_class_name' = {d['_class_name']!r}: expected 'AutoencoderKL'")
    for key, expected in _AE_FIXED.items():
        if key in d and d[key] != expected:
            raise FormatError(f"config key {key!r} = {d[key]!r}: this architecture needs {expected!r}")
    channels = tuple(d.get("block_out_channels", (64,)))
    n = len(channels)
    for key, block in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
        if list(d.get(key, [block] * n)) != [block] * n:
            raise FormatError(f"config key {key!r} = {d[key]}: expected {n} × {block}")
    if d.get("out_channels", 3) != d.get("in_channels", 3):
        raise FormatError(f"config key 'out_channels' = {d['out_channels']}: the course autoencoder gives back as many channels as it reads")
    try:
        config = AEConfig(channels=channels, layers_per_block=d.get("layers_per_block", 1), latent_channels=d.get("latent_channels", 4),
                          groups=d.get("norm_num_groups", 32), in_channels=d.get("in_channels", 3))
    except ValueError as e:
        raise FormatError(f"autoencoder config: {e}") from None
    return config, float(d.get("scaling_factor", 0.18215))


# ----------------------------------------------------------------------------- CLIP text encoder

# course ClipConfig field → transformers CLIPTextConfig key
CLIP_TEXT_KEYS = {"vocab_size": "vocab_size", "hidden_size": "hidden_size", "intermediate_size": "intermediate_size", "layers": "num_hidden_layers",
                  "heads": "num_attention_heads", "max_positions": "max_position_embeddings", "projection_dim": "projection_dim",
                  "layer_norm_eps": "layer_norm_eps"}


def clip_text_to_transformers(c, pad_id: int, bos_id: int, eos_id: int) -> dict[str, Any]:
    """``CLIPTextModel``'s config.json for the course text encoder (``ClipConfig`` c)."""
    d = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_act": "quick_gelu", "attention_dropout": 0.0,
         "dropout": 0.0, "initializer_range": 0.02, "initializer_factor": 1.0, "torch_dtype": "float32", "pad_token_id": pad_id,
         "bos_token_id": bos_id, "eos_token_id": eos_id}
    d.update({theirs: getattr(c, ours) for ours, theirs in CLIP_TEXT_KEYS.items()})
    return d


def clip_text_from_transformers(d: dict[str, Any]) -> dict[str, Any]:
    """The ``ClipConfig`` fields of a ``CLIPTextModel`` config.json (``FormatError`` naming the first key it cannot run)."""
    if d.get("hidden_act", "quick_gelu") != "quick_gelu":
        raise FormatError(f"config key 'hidden_act' = {d['hidden_act']!r}: the course's CLIP uses 'quick_gelu'")
    defaults = {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8,
                "max_position_embeddings": 77, "projection_dim": 512, "layer_norm_eps": 1e-5}
    return {ours: d.get(theirs, defaults[theirs]) for ours, theirs in CLIP_TEXT_KEYS.items()}


def clip_text_state_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The course text encoder's tensors under ``CLIPTextModel``'s names (``text_model.`` prefix; no projection)."""
    return {f"text_model.{k}": v for k, v in state.items() if not k.startswith("text_projection")}


def clip_text_state_from_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``CLIPTextModel``'s tensors (with or without ``text_model.``) under the course's names."""
    out = {k.removeprefix("text_model."): v for k, v in state.items()}
    return {k: v for k, v in out.items() if not k.endswith("position_ids")}


# ----------------------------------------------------------------------------- weights


def check_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], what: str, optional: tuple[str, ...] = ()) -> None:
    """Raise a ``FormatError`` naming the first tensor missing, unexpected or of the wrong shape for ``model``."""
    expected = model.state_dict()
    for name, value in expected.items():
        if name not in tensors:
            if name.startswith(optional):
                continue
            raise FormatError(f"{what}: tensor {name!r} is missing (expected shape {tuple(value.shape)})")
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise FormatError(f"{what}: tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {tuple(value.shape)}")
    extra = [k for k in tensors if k not in expected]
    if extra:
        raise FormatError(f"{what}: unexpected tensor {extra[0]!r} ({len(extra)} in all): not this architecture")
