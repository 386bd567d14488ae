"""The shipped text-to-image models, loaded from ``data/`` (the models layer; no training code here).

    tokenizer → CLIP text encoder (lesson 03) → latent U-Net (lessons 04–05) → autoencoder's decoder (lesson 05)

Everything inference needs lives here once: the image size, the latent U-Net's architecture and
noise schedule, the guidance scale chosen on validation prompts, and the loaders, which verify each
file's sha256 and config. The training commands (``course.ae_train``, ``course.clip_train``,
``course.ldm``) import from this module; the pipeline never imports them.
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path

import torch

from course import checkpoints
from course.autoencoder import AEConfig, Autoencoder
from course.clip import CLIP, ClipConfig
from course.paths import data_dir
from course.schedules import get_betas
from course.tokenizer import EOS_ID, PAD_ID, encode, vocab_size
from course.unet import UNet, UNetConfig, config_dict

IMAGE_SIZE = 64  # the renders the autoencoder, CLIP and the latent U-Net are trained on (64×64×3)
AUTOENCODER = "autoencoder.safetensors"
CLIP_CHECKPOINT = "clip.safetensors"
UNET_CHECKPOINT = "ldm_unet.safetensors"

T = 1000  # training steps of the latent model's diffusion
SCHEDULE = "scaled_linear"  # Stable Diffusion's
# Stable Diffusion's U-Net topology (diffusers' UNet2DConditionModel), small: three levels of one ResBlock each on the
# way down (two on the way up), self- and cross-attention at every level and in the mid block, an attention-pooled
# summary of the prompt added to the time embedding (addition_embed_type="text"). Widths (48, 96, 128): one training
# step costs what the previous, course-specific U-Net's (64, 128, 128) did (1.11 s vs 1.10 s forward + backward, batch 128, 1 thread).
UNET = UNetConfig(in_channels=4, out_channels=4, channels=(48, 96, 128), attention=(True, True, True), heads=4, context_dim=128, pooled=True,
                  layers_per_block=1, pooled_heads=4)
GUIDANCE = 2.5  # the guidance scale w chosen on 512 validation prompts by the shipped run (its manifest: guidance_sweep_validation)


def betas() -> torch.Tensor:
    """β_t of the latent model, t = 0 … T (see :mod:`course.schedules`)."""
    return get_betas(SCHEDULE, T)


def ae_config_dict(config: AEConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def latent_shape(ae_config: AEConfig = AEConfig(), image_size: int = IMAGE_SIZE) -> tuple[int, int, int]:
    """(C, H, W) of a latent: one halving per autoencoder level after the first."""
    factor = ae_config.factor
    if image_size % factor:
        raise ValueError(f"image size {image_size} is not a multiple of the autoencoder's factor {factor}")
    return (ae_config.latent_channels, image_size // factor, image_size // factor)


def make_clip() -> CLIP:
    return CLIP(ClipConfig(vocab_size=vocab_size(), image_size=IMAGE_SIZE))


def make_unet() -> UNet:
    return UNet(UNET)


def _path(path: str | Path | None, name: str) -> Path:
    return Path(path) if path else data_dir() / name


@functools.lru_cache(maxsize=1)
def load_autoencoder(path: str | None = None) -> tuple[Autoencoder, float]:
    """The shipped autoencoder (eval mode) and its latent scaling factor, checksum and config verified."""
    model = Autoencoder()
    tensors, manifest = checkpoints.load(_path(path, AUTOENCODER), config=ae_config_dict(model.config))
    model.load_state_dict(tensors)
    return model.eval(), float(manifest["metrics"]["scaling_factor"])


@functools.lru_cache(maxsize=1)
def load_clip(path: str | None = None) -> CLIP:
    """The shipped CLIP, checksum and config verified, in eval mode."""
    model = make_clip()
    tensors, _ = checkpoints.load(_path(path, CLIP_CHECKPOINT), config=asdict(model.config))
    model.load_state_dict(tensors)
    return model.eval()


def trained_with() -> dict[str, str]:
    """{file: sha256} of the autoencoder and CLIP in data/: what a U-Net trained now learns to work with."""
    return {name: checkpoints.read_manifest(data_dir() / name)["sha256"] for name in (AUTOENCODER, CLIP_CHECKPOINT)}


def unet_mismatch(manifest: dict | None = None, path: str | Path | None = None) -> str | None:
    """The sentence saying that the U-Net was trained with another autoencoder or CLIP than data/ holds, or None.

    The U-Net's manifest records ``trained_with``, the sha256 of both; a manifest without it (older) is not checked.
    """
    path = _path(path, UNET_CHECKPOINT)
    if manifest is None:
        if not checkpoints.manifest_path(path).exists():
            return None
        manifest = checkpoints.read_manifest(path)
    shown = f"data/{path.name}" if path.parent.resolve() == data_dir().resolve() else str(path)
    for name, what in ((AUTOENCODER, "autoencoder"), (CLIP_CHECKPOINT, "CLIP")):
        recorded = (manifest.get("trained_with") or {}).get(name)
        if recorded is None or not checkpoints.manifest_path(data_dir() / name).exists():
            continue
        current = str(checkpoints.read_manifest(data_dir() / name).get("sha256"))
        if current != recorded:
            return (
                f"{shown} was trained with another {what} (sha {recorded[:12]}…; data/{name} is {current[:12]}…); "
                f"retrain the U-Net (python -m course.ldm train --ship) or restore data/{name} (git checkout data/{name})"
            )
    return None


@functools.lru_cache(maxsize=1)
def load_unet(path: str | None = None) -> UNet:
    """The shipped latent U-Net (EMA weights), checksum and config verified, in eval mode.

    Refuses (:class:`~course.checkpoints.CheckpointError`) a U-Net trained with another autoencoder or CLIP than
    the shipped ones: its latents or text states would mean something else, and the images would be noise.
    """
    model = make_unet()
    tensors, manifest = checkpoints.load(_path(path, UNET_CHECKPOINT), config=config_dict(model.config))
    mismatch = unet_mismatch(manifest, _path(path, UNET_CHECKPOINT))
    if mismatch:
        raise checkpoints.CheckpointError(mismatch)
    model.load_state_dict(tensors)
    return model.eval()


def load_controlnet(kind: str = "canny", path: str | Path | None = None):
    """The shipped ControlNet of ``kind`` (data/controlnet_<kind>.safetensors, lesson 08), checksum verified, in eval mode.

    Refuses one trained against another U-Net than the shipped one: its residuals were learnt for that U-Net's skips.
    """
    from course.controlnet import ControlNet

    name = f"controlnet_{kind}.safetensors"
    path = _path(path, name)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the {kind} ControlNet is not shipped; train it with "
                                f"python -m course.controlnet_train train --kind {kind} --ship (lesson 08)")
    tensors, manifest = checkpoints.load(path)
    expected = checkpoints.read_manifest(data_dir() / UNET_CHECKPOINT)["sha256"]
    if manifest.get("trained_with", {}).get(UNET_CHECKPOINT, expected) != expected:
        raise checkpoints.CheckpointError(f"{path.name} was trained against another U-Net than data/{UNET_CHECKPOINT}: retrain it "
                                          f"(python -m course.controlnet_train train --kind {kind} --ship)")
    net = ControlNet.from_unet(load_unet(), manifest["config"]["conditioning_channels"], tuple(manifest["config"]["hint_channels"]))
    net.load_state_dict(tensors)
    return net.eval()


def text_states(prompts: list[str], clip: CLIP | None = None, eos_padding: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen CLIP token states (B, L, 128), L = the tokenizer's full length, for prompts ("" is the unconditional ∅)."""
    return encoder_states((clip or load_clip()).text, prompts, eos_padding)


@torch.no_grad()
def encoder_states(text: torch.nn.Module, prompts: list[str], eos_padding: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states as StableDiffusionPipeline computes them, for any text encoder of the course's tokenizer.

    As in Stable Diffusion, every prompt is padded to the same length and the U-Net sees every position, padding
    included (the padding's states carry the prompt too: CLIP's causal attention lets them read it); the mask
    returned is all True, for callers that pass one along. ``eos_padding``: pad with <eos> instead of <pad>, as
    Stable Diffusion v1's tokenizer does (an experiment of benchmarks/composition_probes.py).
    """
    ids, _ = encode(prompts, allow_empty=True)  # (B, L): <bos> words… <eos> <pad>…
    if eos_padding:
        ids = ids.masked_fill(ids == PAD_ID, EOS_ID)
    device = next(text.parameters()).device
    hidden, _, _ = text(ids.to(device))  # no attention mask, as transformers' CLIPTextModel in StableDiffusionPipeline
    return hidden, torch.ones(ids.shape, dtype=torch.bool, device=device)
