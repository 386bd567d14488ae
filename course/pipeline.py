"""The full text-to-image pipeline (slides: « Intégration de CLIP et du Modèle de Diffusion », lesson 07).

    prompt → tokenizer → CLIP text encoder → token states ─┐
    noise z_T ─→ U-Net ε̂, classifier-free guidance, sampler × steps ─→ z_0 → decoder → image

Its call mirrors diffusers' ``StableDiffusionPipeline`` so the step to the real library is small:
``pipe(prompt, num_inference_steps=…, guidance_scale=…, generator=…, negative_prompt=…)`` returns PIL images.
Everything is loaded offline from ``data/``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from PIL import Image

from course.guidance import guided
from course.shipped import GUIDANCE, IMAGE_SIZE, betas, load_autoencoder, load_clip, load_unet, text_states
from course.samplers import SAMPLERS, sample
from course.tokenizer import unknown_words


@dataclass
class PipelineOutput:
    images: list[Image.Image]
    tensors: torch.Tensor  # (B, 3, 64, 64) in [−1, 1]
    x0_hats: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (t, decoded x̂_0) per step, if asked


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    array = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in array]


class TextToImagePipeline:
    """Our mini Stable Diffusion: tokenizer + CLIP + U-Net + sampler + guidance + decoder."""

    def __init__(self, device: str | None = None):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.unet = load_unet().to(self.device)
        self.clip = load_clip().to(self.device)
        self.vae, self.scaling_factor = load_autoencoder()
        self.vae = self.vae.to(self.device)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int = 25,
        guidance_scale: float = GUIDANCE,
        generator: torch.Generator | int | None = None,
        negative_prompt: str | None = None,
        sampler: str = "dpmpp",
        num_images_per_prompt: int = 1,
        keep_x0_hat: bool = False,
        callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    ) -> PipelineOutput:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise ValueError("the prompt must be a non-empty text, e.g. « un cercle rouge en haut à gauche »")
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be ≥ 0 (1: no guidance, 3–5: typical), got {guidance_scale}")
        T = betas().numel() - 1
        if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= T:
            raise ValueError(f"num_inference_steps must be an integer in [1, {T}], got {num_inference_steps!r}")
        if num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be ≥ 1, got {num_images_per_prompt}")
        unknown = sorted({w for p in prompts + ([negative_prompt] if negative_prompt else []) for w in unknown_words(p)})
        if unknown:
            warnings.warn(f"words the model never saw (read as <unk>): {', '.join(unknown)}", stacklevel=2)
        if isinstance(generator, int) or generator is None:
            generator = torch.Generator().manual_seed(generator or 0)

        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        context, mask = text_states(prompts, self.clip)  # 1–2. tokenizer and CLIP
        null, null_mask = text_states([negative_prompt or ""], self.clip)  # ∅, or what to steer away from
        z_T = torch.randn((len(prompts), 4, IMAGE_SIZE // 8, IMAGE_SIZE // 8), generator=generator).to(self.device)  # 3. noise
        eps = guided(self.unet, context, mask, null, null_mask, guidance_scale)  # 4. U-Net with guidance
        x0_hats: list[tuple[int, torch.Tensor]] = []

        def observe(t, z, z0_hat):
            if keep_x0_hat:
                x0_hats.append((t, self.decode(z0_hat).cpu()))
            if callback is not None:
                callback(t, z, z0_hat)

        z0 = sample(sampler, eps, z_T, betas(), num_inference_steps, generator=generator, callback=observe)  # 5. sampler
        images = self.decode(z0).cpu()  # 6. decoder
        return PipelineOutput(to_pil(images), images, x0_hats)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z / self.scaling_factor).clamp(-1, 1)


def grid(images: list[Image.Image], columns: int | None = None) -> Image.Image:
    """Paste images side by side (rows of ``columns``) with a 2-pixel white gutter."""
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    w, h = images[0].size
    canvas = Image.new("RGB", (columns * (w + 2) - 2, rows * (h + 2) - 2), "white")
    for i, img in enumerate(images):
        canvas.paste(img, ((i % columns) * (w + 2), (i // columns) * (h + 2)))
    return canvas


def upscale(img: Image.Image, factor: int = 4) -> Image.Image:
    """Nearest-neighbour enlargement, so a 64×64 image is visible when saved."""
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def strip_image(x0_hats: list[tuple[int, torch.Tensor]], keep: int = 8) -> Image.Image:
    """The denoising strip: x̂_0 at ``keep`` evenly chosen steps, first image of the batch."""
    picks = np.linspace(0, len(x0_hats) - 1, min(keep, len(x0_hats))).round().astype(int)
    return grid([to_pil(x0_hats[i][1][:1])[0] for i in picks])
