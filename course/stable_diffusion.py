"""Real Stable Diffusion v1.5 weights in the course's own code (slides: « Stable Diffusion », « Intégration de CLIP et
du Modèle de Diffusion »; Rombach et al. 2022, latent diffusion; Radford et al. 2021, CLIP).

    sd = load("stable-diffusion-v1-5/stable-diffusion-v1-5", "cuda", torch.float16)   # a repo (downloaded once) or a folder
    images = generate(sd, ["A white tabby cat close-up on a desk"], steps=25, guidance=7.5, seed=0)   # (B, 3, 512, 512) in [−1, 1]

What runs is the course's: the from-scratch U-Net, autoencoder and CLIP text encoder (:mod:`course.unet`,
:mod:`course.autoencoder`, :mod:`course.clip`) holding SD v1.5's weights, sized from the folder's own configs
(:func:`course.export.load_folder`), the guidance (:mod:`course.guidance`) and the samplers (:mod:`course.samplers`),
through :func:`course.pipeline.generate_latents`, the course's one generation path. Only CLIP's BPE tokenizer (its
49 408-token vocabulary) comes from transformers. diffusers is never imported.

As diffusers' ``StableDiffusionPipeline``: prompts padded to the tokenizer's 77 tokens, no attention mask; ∅ the
empty prompt (or the negative prompt); x_T ~ N(0, I) of shape (B, 4, H/8, W/8) drawn on the CPU from ``seed``
(diffusers' ``randn_tensor`` with a CPU generator); β_t from the scheduler config (scaled_linear, β from 0.00085 to
0.012, T = 1000); the U-Net reads the slides' t ∈ [1, T] and feeds t − 1 to its embedding; z_0 / 0.18215 decoded.
With ``sampler="dpmpp"`` the images equal the stock pipeline's with ``DPMSolverMultistepScheduler`` configured as
:func:`course.export.scheduler_config` says (tests/test_stable_diffusion.py, on tiny random models of SD v1.5's
exact topology, in float32: about 1e-6 apart on images in [−1, 1], asserted ≤ 1e-3).

Precision: with fp16 weights the networks run in half precision while the sampler's arithmetic (x_t, x̂_0, the
DPM-Solver updates) stays float32 (:class:`InModelDtype`); the stock pipeline keeps its latents in fp16 instead.

Memory on the GPU, computed (not measured) for one 512×512 image with guidance (a batch of 2 through the U-Net), fp16:

    weights      1.066 B parameters (U-Net 859.5 M, autoencoder 83.7 M, text encoder 123.1 M) × 2 bytes   ≈ 1.99 GiB
    U-Net step   live activations at 64×64 latents, attention fused (scaled_dot_product_attention)        ≈ 0.12 GiB
    decoding     one 512×512 image (its largest tensors: 256 channels × 512², 128 MiB each)               ≈ 0.38 GiB
    peak         weights + decoding (images are decoded one at a time)                                    ≈ 2.4 GiB (2.5 GB)

plus CUDA's own context and kernel workspaces, not counted. Written out, the self-attention at 64×64 latents is a
4096 × 4096 matrix per head: 2 × 8 × 4096² × 2 bytes = 512 MiB for one layer, and the U-Net step's live activations
would peak near 2.1 GiB instead of 0.12; the fused kernel never stores the matrix. Live activations were counted on
meta tensors (shapes only, no data). Loading builds each module in float32 on the CPU first (≈ 3.4 GB for the U-Net)
before converting it.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course.diffusers_format import FormatError
from course.export import load_folder
from course.language import tr
from course.pipeline import check_request, generate_latents
from course.schedules import linear_betas, scaled_linear_betas

REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
# what generating needs from the repository: configs, the tokenizer and the fp16 weights (≈ 2.1 GB)
ALLOW_PATTERNS = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "tokenizer/*",
    "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors",
    "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.fp16.safetensors",
]


class InModelDtype(nn.Module):
    """The U-Net run in its weights' dtype, seen from outside in float32: the sampler's maths stays float32."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet
        self.config = unet.config

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self.unet.conv_in.weight.dtype
        return self.unet(x.to(dtype), t, context.to(dtype), context_mask).float()


@dataclass
class StableDiffusion:
    """SD v1.5 in the course's modules, with its tokenizer, latent scaling factor and β_t."""

    unet: InModelDtype
    vae: nn.Module
    text_encoder: nn.Module
    tokenizer: Any  # transformers' CLIPTokenizer
    scaling_factor: float
    betas: torch.Tensor  # β_t, t = 0 … T (β_0 = 0)
    device: torch.device
    dtype: torch.dtype


def betas_from(config: dict[str, Any]) -> torch.Tensor:
    """β_t (t = 0 … T) of a diffusers scheduler config, or a ``FormatError`` naming the key the course cannot run."""
    if config.get("prediction_type", "epsilon") != "epsilon":
        raise FormatError(f"scheduler config key 'prediction_type' = {config['prediction_type']!r}: these samplers run ε-prediction models")
    if config.get("trained_betas") is not None:
        raise FormatError("scheduler config key 'trained_betas' is set: only a named schedule (scaled_linear, linear) is read")
    makers = {"scaled_linear": scaled_linear_betas, "linear": linear_betas}
    name = config.get("beta_schedule", "linear")
    if name not in makers:
        raise FormatError(f"scheduler config key 'beta_schedule' = {name!r}: expected scaled_linear or linear")
    return makers[name](int(config.get("num_train_timesteps", 1000)), float(config.get("beta_start", 0.0001)), float(config.get("beta_end", 0.02)))


def load_tokenizer(folder: str | Path):
    """CLIP's BPE tokenizer saved in ``folder`` (transformers, imported here only)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def cached(repo: str = REPO, cache_dir: str | Path | None = None) -> Path | None:
    """The local copy of ``repo`` holding every file generation needs, or None (never touches the network)."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo, allow_patterns=ALLOW_PATTERNS, cache_dir=cache_dir, local_files_only=True))
    except (OSError, ValueError):
        return None
    needed = [p for p in ALLOW_PATTERNS if "*" not in p] + ["tokenizer/tokenizer_config.json"]
    return folder if all((folder / p).exists() for p in needed) else None


def download(repo: str = REPO, cache_dir: str | Path | None = None) -> Path:
    """SD v1.5's configs, tokenizer and fp16 weights (≈ 2.1 GB, once; then read from the Hugging Face cache)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, allow_patterns=ALLOW_PATTERNS, cache_dir=cache_dir))
    except (OSError, ValueError) as e:
        raise ConnectionError(f"could not download {repo} from huggingface.co ({type(e).__name__}): "
                              "connect to the network, or give load() the path of a local copy") from None


def reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds, name lookup included."""
    opened: list[bool] = []

    def attempt():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            opened.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=attempt, daemon=True)  # a slow name lookup ignores socket timeouts
    thread.start()
    thread.join(timeout)
    return bool(opened)


def unavailable(repo: str = REPO, timeout: float = 3.0) -> str | None:
    """Why real SD v1.5 cannot run here now, in one sentence, or None: a CUDA GPU, and the weights cached or reachable."""
    if not torch.cuda.is_available():
        return tr(en="no CUDA GPU on this machine, and Stable Diffusion v1.5 needs one (fp16, about 2.5 GB of GPU memory)",
                  fr="pas de GPU CUDA sur cette machine, et Stable Diffusion v1.5 en demande un (fp16, environ 2,5 Go de mémoire GPU)")
    if cached(repo) is not None:
        return None
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "false", "") or not reachable(timeout=timeout):
        return tr(en=f"huggingface.co is out of reach and {repo} is not in the local cache",
                  fr=f"huggingface.co est injoignable et {repo} n'est pas dans le cache local")
    return None


def load(folder_or_repo: str | Path = REPO, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> StableDiffusion:
    """SD v1.5 (a diffusers folder, or a Hugging Face repo downloaded once) in the course's modules on ``device``.

    Defaults: the GPU in fp16 if there is one, else the CPU in float32.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    folder = Path(folder_or_repo)
    if not folder.is_dir():
        folder = cached(str(folder_or_repo)) or download(str(folder_or_repo))
    parts = load_folder(folder, dtype)
    tokenizer = load_tokenizer(parts.tokenizer_dir)
    parts.text_encoder.eos_token_id = tokenizer.eos_token_id  # its pooled state (unused by SD) at the real <|endoftext|>
    return StableDiffusion(InModelDtype(parts.unet).to(device), parts.vae.to(device), parts.text_encoder.to(device), tokenizer,
                           parts.scaling_factor, betas_from(parts.scheduler), device, dtype)


def token_ids(tokenizer, prompts: list[str]) -> torch.Tensor:
    """(B, 77) ids: <|startoftext|> words… <|endoftext|>, padded to the tokenizer's full length (truncated beyond)."""
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids


@torch.no_grad()
def encode_text(sd: StableDiffusion, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's last hidden states (B, 77, 768) for ``prompts``, computed without attention mask, and an all-True mask."""
    ids = token_ids(sd.tokenizer, prompts).to(sd.device)
    hidden, _, _ = sd.text_encoder(ids)
    return hidden, torch.ones(ids.shape, dtype=torch.bool, device=sd.device)


def initial_noise(sd: StableDiffusion, batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    """x_T ~ N(0, I), (B, 4, H/8, W/8), float32, drawn on the CPU from ``seed`` (diffusers' randn_tensor, CPU generator)."""
    factor = sd.vae.config.factor
    levels = 2 ** (len(sd.unet.config.channels) - 1)
    if height % (factor * levels) or width % (factor * levels) or height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive multiples of {factor * levels} (the autoencoder's ×{factor} and the U-Net's "
                         f"{len(sd.unet.config.channels)} levels), got {height}×{width}")
    shape = (batch, sd.unet.config.in_channels, height // factor, width // factor)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def decode(sd: StableDiffusion, z: torch.Tensor) -> torch.Tensor:
    """Latents z_0 → images (B, 3, H, W) in [−1, 1], float32 on the CPU, decoded one at a time (memory stays bounded)."""
    dtype = sd.vae.post_quant_conv.weight.dtype
    return torch.cat([sd.vae.decode((z_i[None] / sd.scaling_factor).to(dtype)).float().clamp(-1, 1).cpu() for z_i in z])


def generate(sd: StableDiffusion, prompts: str | list[str], sampler: str = "dpmpp", steps: int = 25, guidance: float = 7.5, seed: int = 0,
             height: int = 512, width: int = 512, negative_prompt: str | None = None) -> torch.Tensor:
    """Images (B, 3, H, W) in [−1, 1] for ``prompts``, through the course's one generation path, guidance and sampler."""
    prompts = check_request(prompts, steps, guidance, sampler, negative_prompt=negative_prompt)
    x_T = initial_noise(sd, len(prompts), height, width, seed)
    z0 = generate_latents(sd.unet, sd.text_encoder, prompts, sampler, steps, guidance, generator=seed, negative_prompt=negative_prompt,
                          device=sd.device, x_T=x_T, noise_generator=torch.Generator(sd.device).manual_seed(seed),
                          encode_text=lambda texts: encode_text(sd, texts), schedule=sd.betas)
    return decode(sd, z0)
