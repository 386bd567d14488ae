"""The full text-to-image pipeline (slides: « Intégration de CLIP et du Modèle de Diffusion », lesson 07).

    prompt → tokenizer → CLIP text encoder → token states ─┐
    noise z_T ─→ U-Net ε̂, classifier-free guidance, sampler × steps ─→ z_0 → decoder → image

Its call mirrors diffusers' ``StableDiffusionPipeline`` so the step to the real library is small:
``pipe(prompt, num_inference_steps=…, guidance_scale=…, generator=…, negative_prompt=…)`` returns PIL images.
Everything is loaded offline from ``data/``.

:func:`generate_latents` is the one path from prompt to latent: the pipeline, the evaluation
(:mod:`course.evaluation`) and the scheduler table all call it. :func:`check_request` refuses bad input
(a ``ValueError`` saying what to give instead) before any model runs; the command line calls it too.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from course.guidance import guided
from course.img2img import check_strength, encode, img2img_grid, noise_to, start_index
from course.images import as_batch
from course.inpaint import as_mask, blend, latent_mask, paste_back
from course.language import tr
from course.noise_schedule import NoiseSchedule
from course.samplers import DPM_FAMILY, SAMPLERS, grid_for, sample
from course.shipped import GUIDANCE, IMAGE_SIZE, T, betas, latent_shape, load_autoencoder, load_clip, load_unet, text_states
from course.tokenizer import unknown_words

MAX_GUIDANCE = 50.0  # w above this is refused: the image is pure saturated noise long before
USEFUL_GUIDANCE = 15.0  # w above this draws a warning: adherence peaks near w = 2–3 and falls after (lesson 07)
MAX_IMAGES = 1024  # images per pipeline call (≈ 50 MB of outputs); more: call it again, or see course.evaluation
BATCH_SIZE = 64  # images per U-Net batch: memory stays bounded whatever the number of images


class GuidanceWarning(UserWarning):
    """A guidance scale allowed but above :data:`USEFUL_GUIDANCE`."""


@dataclass
class PipelineOutput:
    images: list[Image.Image]
    tensors: torch.Tensor  # (B, 3, 64, 64) in [−1, 1]
    x0_hats: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (t, decoded x̂_0) per step, first batch, if asked


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    array = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in array]


def check_guidance(w: float, name: str = "guidance_scale") -> None:
    """A ``ValueError`` unless 0 ≤ w ≤ :data:`MAX_GUIDANCE` (NaN and ∞ would give a black or noise image)."""
    if not math.isfinite(w):
        raise ValueError(tr(en=f"{name} must be a finite number (1: no guidance, {GUIDANCE:g}: the shipped default), got {w}",
                            fr=f"{name} doit être un nombre fini (1 : sans guidance, {GUIDANCE:g} : la valeur par défaut du modèle livré), valeur reçue : {w}"))
    if not 0 <= w <= MAX_GUIDANCE:
        raise ValueError(tr(en=f"{name} must be in [0, {MAX_GUIDANCE:g}] (1: no guidance, 2–5: typical, {GUIDANCE:g}: the shipped default), got {w:g}",
                            fr=f"{name} doit être dans [0, {MAX_GUIDANCE:g}] (1 : sans guidance, 2–5 : l'usage, {GUIDANCE:g} : la valeur par défaut "
                               f"du modèle livré), valeur reçue : {w:g}"))


def check_request(
    prompt: str | list[str],
    num_inference_steps: int = 25,
    guidance_scale: float = GUIDANCE,
    sampler: str = "dpmpp",
    num_images_per_prompt: int = 1,
    negative_prompt: str | None = None,
    max_images: int = MAX_IMAGES,
    names: dict[str, str] | None = None,
) -> list[str]:
    """The prompts as a list, or a ``ValueError`` saying what is wrong and what to give instead.

    Needs no model: the command line calls it before loading anything (``names`` renames the arguments in
    the messages, e.g. ``{"guidance_scale": "--guidance"}``). A guidance scale above :data:`USEFUL_GUIDANCE`
    is allowed but draws a warning.
    """
    name = {k: (names or {}).get(k, k) for k in ("guidance_scale", "num_inference_steps", "sampler", "num_images_per_prompt")}
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError(tr(en="the prompt must be a non-empty text, e.g. « un cercle rouge en haut à gauche »",
                            fr="le prompt doit être un texte non vide, par exemple « un cercle rouge en haut à gauche »"))
    if negative_prompt is not None and not isinstance(negative_prompt, str):
        raise ValueError(tr(en=f"negative_prompt must be a text (or None), got {negative_prompt!r}",
                            fr=f"negative_prompt doit être un texte (ou None), valeur reçue : {negative_prompt!r}"))
    if sampler not in SAMPLERS:
        raise ValueError(tr(en=f"unknown {name['sampler']} {sampler!r}: choose one of {', '.join(SAMPLERS)}",
                            fr=f"{name['sampler']} {sampler!r} inconnu : choisissez parmi {', '.join(SAMPLERS)}"))
    try:
        w = float(guidance_scale)
    except (TypeError, ValueError):
        raise ValueError(tr(en=f"{name['guidance_scale']} must be a number (1: no guidance, 3: the shipped default), got {guidance_scale!r}",
                            fr=f"{name['guidance_scale']} doit être un nombre (1 : sans guidance, 3 : la valeur par défaut du modèle livré), "
                               f"valeur reçue : {guidance_scale!r}")) from None
    check_guidance(w, name["guidance_scale"])
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= T:
        raise ValueError(tr(en=f"{name['num_inference_steps']} must be an integer in [1, {T}] (the training steps; 20–50 is plenty), got {num_inference_steps!r}",
                            fr=f"{name['num_inference_steps']} doit être un entier de [1, {T}] (les pas de l'entraînement ; 20 à 50 suffisent largement), "
                               f"valeur reçue : {num_inference_steps!r}"))
    n = num_images_per_prompt
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(tr(en=f"{name['num_images_per_prompt']} must be an integer ≥ 1, got {n!r}",
                            fr=f"{name['num_images_per_prompt']} doit être un entier ≥ 1, valeur reçue : {n!r}"))
    if len(prompts) * n > max_images:
        raise ValueError(tr(en=f"{len(prompts) * n} images asked, at most {max_images} per call: ask for fewer, or run again with another seed",
                            fr=f"{len(prompts) * n} images demandées, {max_images} au plus par appel : demandez-en moins, ou relancez avec une autre graine"))
    if w > USEFUL_GUIDANCE:
        warnings.warn(tr(en=f"{name['guidance_scale']} {w:g} is far above the useful range (2–5; adherence falls beyond, lesson 07): expect saturated, noisy images",
                         fr=f"{name['guidance_scale']} {w:g} est bien au-delà de la plage utile (2–5 ; l'adhérence chute au-delà, leçon 07) : "
                            "attendez-vous à des images saturées et bruitées"), GuidanceWarning, stacklevel=2)
    return prompts


def as_generator(generator: torch.Generator | int | None) -> torch.Generator:
    """A seed (or None: seed 0) becomes a CPU ``torch.Generator``; a generator is returned as is."""
    if isinstance(generator, torch.Generator):
        return generator
    seed = 0 if generator is None else generator
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(tr(en=f"the seed must be an integer in [0, 2⁶³), got {seed!r}", fr=f"la graine doit être un entier de [0, 2⁶³), valeur reçue : {seed!r}"))
    return torch.Generator().manual_seed(seed)


def threads_for(n_images: int) -> int:
    """CPU threads worth using for ``n_images`` at once. One for one or two images: 8×8 latents are too small to
    share between cores (25 steps, one image, 2 cores: 0.36 s on one thread, 0.41 s on two). For bigger batches,
    the cores that other processes leave idle (from the 1-minute load average): a second thread on a busy core
    only fights the other process (lesson-02 model call: 2.2 s on 2 threads under load, 0.21 s on one)."""
    cores = os.cpu_count() or 1
    if n_images <= 2:
        return 1
    try:
        idle = cores - os.getloadavg()[0]
    except OSError:  # no load average on this system
        idle = cores
    return max(1, min(cores, int(idle + 0.5)))


@torch.no_grad()
def generate_latents(
    unet: torch.nn.Module,
    clip: torch.nn.Module,
    prompts: list[str],
    sampler: str = "dpmpp",
    steps: int = 25,
    guidance: float = GUIDANCE,
    generator: torch.Generator | int | None = None,
    negative_prompt: str | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    device: str | torch.device | None = None,
    x_T: torch.Tensor | None = None,
    noise_generator: torch.Generator | None = None,
    encode_text: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]] | None = None,
    schedule: torch.Tensor | None = None,
    **sampler_kwargs,
) -> torch.Tensor:
    """The one generation path, prompt → z_0 (B, C, h, w), in the U-Net's latent space (decode z_0 / scaling factor).

        prompts → tokenizer + CLIP → token states c, and ∅ (or the negative prompt)
        z_T ~ N(0, I) from ``generator`` (drawn on the generator's device), shape from the U-Net's config
        ε̃ = guided U-Net (course.guidance) → sampler × steps (course.samplers) → z_0

    ``x_T``: start from this noise instead of drawing it. ``noise_generator``: the per-step noise of stochastic
    samplers (default: ``generator``, which drew x_T). ``sampler_kwargs`` go to the sampler (e.g. ``eta`` for DDIM).
    ``encode_text``: prompts → (token states, mask), default the shipped tokenizer + ``clip``; ``schedule``: the
    U-Net's β_t (default the shipped one) — both for other models (:mod:`course.stable_diffusion`, real weights).
    The pipeline, the evaluation and the scheduler table all generate through this function.
    """
    check_guidance(guidance, "guidance")
    device = torch.device(device) if device is not None else next(unet.parameters()).device
    generator = as_generator(generator)
    if x_T is None:
        shape = (unet.config.in_channels, *latent_shape()[1:])  # (C, h, w): the U-Net's channels, the autoencoder's size
        x_T = torch.randn((len(prompts), *shape), generator=generator, device=generator.device)
    x_T = x_T.to(device)
    encode_text = encode_text or (lambda texts: text_states(texts, clip))
    context, mask = encode_text(prompts)  # 1–2. tokenizer and CLIP
    null, null_mask = encode_text([negative_prompt or ""])  # ∅, or what to steer away from
    eps = guided(unet, context, mask, null, null_mask, guidance)  # U-Net with guidance
    noise = noise_generator if noise_generator is not None else generator
    return sample(sampler, eps, x_T, betas() if schedule is None else schedule, steps, generator=noise, callback=callback, **sampler_kwargs)


def _start(z0: torch.Tensor, sampler: str, steps: int, strength: float, generator: torch.Generator, schedule: torch.Tensor | None):
    """(grid tail, ε, z_{t_0}, sampler options) of an edit starting from z_0 at ``strength`` (:mod:`course.img2img`)."""
    noise_schedule = NoiseSchedule.from_betas(betas() if schedule is None else schedule)
    tail = img2img_grid(grid_for(sampler, noise_schedule, steps), strength)
    eps = torch.randn(z0.shape, generator=generator, device=generator.device).to(z0.device)
    options = {"lower_order_final": steps < 15} if sampler in DPM_FAMILY else {}  # diffusers decides on the full grid's length
    return tail, eps, noise_schedule, options


@torch.no_grad()
def img2img_latents(
    unet: torch.nn.Module, clip: torch.nn.Module, z0: torch.Tensor, prompts: list[str], strength: float = 0.6, sampler: str = "dpmpp",
    steps: int = 25, guidance: float = GUIDANCE, generator: torch.Generator | int | None = None, negative_prompt: str | None = None,
    callback: Callable | None = None, schedule: torch.Tensor | None = None, **kwargs,
) -> torch.Tensor:
    """SDEdit in latent space (Meng et al. 2022): z_0 noised to t_0 = the first kept instant, then the sampler over the grid's
    tail, ⌊steps·strength⌋ steps (:mod:`course.img2img`). ``generator`` draws ε after whatever it drew before (the encoder's
    sample): diffusers' order. ``kwargs`` go to :func:`generate_latents`."""
    generator = as_generator(generator)
    tail, eps, noise_schedule, options = _start(z0, sampler, steps, check_strength(strength), generator, schedule)
    z_t0 = noise_to(z0, tail[0], eps, noise_schedule)
    return generate_latents(unet, clip, prompts, sampler, steps, guidance, generator, negative_prompt, callback, x_T=z_t0, grid=tail,
                            schedule=schedule, **options, **kwargs)


@torch.no_grad()
def inpaint_latents(
    unet: torch.nn.Module, clip: torch.nn.Module, z0: torch.Tensor, m: torch.Tensor, prompts: list[str], strength: float = 1.0,
    sampler: str = "dpmpp", steps: int = 25, guidance: float = GUIDANCE, generator: torch.Generator | int | None = None,
    negative_prompt: str | None = None, callback: Callable | None = None, schedule: torch.Tensor | None = None, **kwargs,
) -> torch.Tensor:
    """Training-free inpainting in latent space (:mod:`course.inpaint`): after every step, the region m = 0 is replaced by the
    known latent z_0 noised to that step with the starting noise ε. Strength 1 starts from ε itself (diffusers' inpainting);
    below 1, from z_0 noised to t_0 as img2img does."""
    generator = as_generator(generator)
    strength = check_strength(strength)
    tail, eps, noise_schedule, options = _start(z0, sampler, steps, strength, generator, schedule)
    z_t0 = eps if strength == 1 else noise_to(z0, tail[0], eps, noise_schedule)
    return generate_latents(unet, clip, prompts, sampler, steps, guidance, generator, negative_prompt, callback, x_T=z_t0, grid=tail,
                            schedule=schedule, project=blend(m.to(z0.device), z0, eps, noise_schedule), **options, **kwargs)


def warn_unknown(prompts: list[str], negative_prompt: str | None = None, new_word: str | None = None) -> None:
    """A warning naming the words the tokenizer never saw (each is read as <unk>); ``new_word``, a learned one, is known."""
    texts = prompts + ([negative_prompt] if negative_prompt else [])
    if new_word:
        texts = [t.replace(new_word, " ") for t in texts]
    unknown = sorted({w for p in texts for w in unknown_words(p)})
    if unknown:
        warnings.warn(tr(en=f"words the model never saw (read as <unk>): {', '.join(unknown)}",
                         fr=f"mots que le modèle n'a jamais vus (lus comme <unk>) : {', '.join(unknown)}"), stacklevel=3)


class TextToImagePipeline:
    """Our mini Stable Diffusion: tokenizer + CLIP + U-Net + sampler + guidance + decoder."""

    def __init__(self, device: str | None = None):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.unet = load_unet().to(self.device)
        self.clip = load_clip().to(self.device)
        self.vae, self.scaling_factor = load_autoencoder()
        self.vae = self.vae.to(self.device)
        self.words = None  # a learned new word (lesson 11): load_textual_inversion / load_lora_weights

    @classmethod
    def from_modules(cls, unet: torch.nn.Module, clip: torch.nn.Module, vae: torch.nn.Module, scaling_factor: float,
                     device: str = "cpu") -> "TextToImagePipeline":
        """The pipeline around given models (e.g. random weights in the parity tests) instead of the shipped ones."""
        pipe = cls.__new__(cls)
        pipe.device, pipe.unet, pipe.clip, pipe.vae, pipe.scaling_factor = device, unet.to(device), clip.to(device), vae.to(device), scaling_factor
        pipe.words = None
        return pipe

    def _set_word(self, token: str, vector: torch.Tensor) -> str:
        from course.textual_inversion import TextualInversion

        self.words = TextualInversion(self.clip.text, token, vector.to(self.device)).to(self.device).eval()
        return token

    def load_textual_inversion(self, path: str | Path | None = None) -> str:
        """A learned word (lesson 11; diffusers' method of the same name): its token works in the prompts from now on.
        ``path``: a diffusers textual-inversion file ``{token: v}``; default the shipped data/concept_ti.safetensors."""
        from course.textual_inversion import load_textual_inversion

        words = load_textual_inversion(path, self.clip.text)
        return self._set_word(words.token, words.vector.detach())

    def load_lora_weights(self, path: str | Path | None = None) -> str | None:
        """A LoRA of the U-Net (lesson 11; diffusers' method of the same name), and the new word it was trained with.
        ``path``: a diffusers LoRA file; default the shipped data/concept_lora.safetensors. This pipeline's U-Net (a copy) is adapted."""
        from course import checkpoints, lora
        from course.paths import data_dir

        path = Path(path) if path is not None else data_dir() / lora.CHECKPOINT
        if checkpoints.manifest_path(path).exists():
            checkpoints.load(path)  # the checksum, when the file has a manifest
        tensors, config = lora.read_lora_file(path)
        import copy

        self.unet = copy.deepcopy(self.unet)  # the shipped U-Net is shared (cached): adapt this pipeline's own copy
        if lora.lora_layers(self.unet):
            lora.remove_lora(self.unet)
        lora.load_lora(self.unet, tensors, config)
        if "word" in config:
            return self._set_word(*config["word"])
        return None

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, 32, D) of prompts: the shipped tokenizer and CLIP, and the learned word if one is loaded."""
        if self.words is not None:
            return self.words.text_states(prompts)
        return text_states(prompts, self.clip)

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
        batch_size: int = BATCH_SIZE,
        control: torch.Tensor | None = None,
        control_kind: str = "canny",
        control_scale: float = 1.0,
    ) -> PipelineOutput:
        """Images for ``prompt``, ``num_images_per_prompt`` each, in batches of ``batch_size`` (memory stays bounded).

        ``keep_x0_hat`` and ``callback`` follow the first batch only. With more than ``batch_size`` images, a
        stochastic sampler's per-step noise depends on ``batch_size``; x_T does not.

        ``control``: condition images (1 or one per image, 3, 64, 64) in [0, 1] (:mod:`course.conditions`) read by the
        shipped ControlNet of ``control_kind``, its residuals multiplied by ``control_scale`` (lesson 08).
        """
        prompts = check_request(prompt, num_inference_steps, guidance_scale, sampler, num_images_per_prompt, negative_prompt)
        if control is not None:
            control = self.check_control(control, control_kind, control_scale, len(prompts) * num_images_per_prompt)
        warn_unknown(prompts, negative_prompt, self.words.token if self.words is not None else None)
        generator = as_generator(generator)
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        shape = latent_shape(self.vae.config)
        if self.unet.config.in_channels != shape[0]:
            raise ValueError(f"the U-Net takes {self.unet.config.in_channels} channels, the autoencoder's latents have {shape[0]}")
        z_T = torch.randn((len(prompts), *shape), generator=generator, device=generator.device)  # 3. noise, all drawn at once
        x0_hats: list[tuple[int, torch.Tensor]] = []
        first = True

        def observe(t, z, z0_hat):
            if keep_x0_hat:
                x0_hats.append((t, self.decode(z0_hat).cpu()))
            if callback is not None:
                callback(t, z, z0_hat)

        images = []
        for i in range(0, len(prompts), batch_size):  # 4–5. guided U-Net and sampler, one batch at a time
            unet = self.unet
            if control is not None:
                from course.controlnet import ControlledUNet

                unet = ControlledUNet(self.unet, self.controlnets[control_kind], control[i : i + batch_size].to(self.device), control_scale)
            z0 = generate_latents(unet, self.clip, prompts[i : i + batch_size], sampler, num_inference_steps, guidance_scale, generator,
                                  negative_prompt, observe if first else None, self.device, x_T=z_T[i : i + batch_size], encode_text=self.encode_text)
            images.append(self.decode(z0).cpu())  # 6. decoder
            first = False
        images = torch.cat(images)
        return PipelineOutput(to_pil(images), images, x0_hats)

    @torch.no_grad()
    def img2img(
        self, image, prompt: str | list[str], strength: float = 0.6, num_inference_steps: int = 25, guidance_scale: float = GUIDANCE,
        generator: torch.Generator | int | None = None, negative_prompt: str | None = None, sampler: str = "dpmpp",
        num_images_per_prompt: int = 1, callback: Callable | None = None,
    ) -> PipelineOutput:
        """SDEdit (lesson 09): ``image`` (PIL, uint8 array or tensor in [−1, 1]; one, or one per prompt) noised to t_0 by
        ``strength`` ∈ (0, 1] and denoised towards ``prompt`` in ⌊num_inference_steps·strength⌋ steps (:mod:`course.img2img`)."""
        prompts, images, generator = self._edit_inputs(image, prompt, num_inference_steps, guidance_scale, sampler, num_images_per_prompt,
                                                       negative_prompt, strength, generator)
        z0 = encode(self.vae, self.scaling_factor, images, generator)  # the encoder's sample first, then ε: diffusers' order
        z = img2img_latents(self.unet, self.clip, z0, prompts, strength, sampler, num_inference_steps, guidance_scale, generator,
                            negative_prompt, callback)
        out = self.decode(z).cpu()
        return PipelineOutput(to_pil(out), out)

    @torch.no_grad()
    def inpaint(
        self, image, mask, prompt: str | list[str], strength: float = 1.0, num_inference_steps: int = 25, guidance_scale: float = GUIDANCE,
        generator: torch.Generator | int | None = None, negative_prompt: str | None = None, sampler: str = "dpmpp",
        num_images_per_prompt: int = 1, feather: int = 3, paste: bool = True, mask_rule: str = "any", callback: Callable | None = None,
    ) -> PipelineOutput:
        """Repaint the white region of ``mask`` after ``prompt``, keep the rest (lesson 09, :mod:`course.inpaint`): the known
        latent blended back after every step; then, with ``paste``, the input's own pixels outside the mask (the seam fix,
        feathered over ``feather`` pixels inside it). ``paste=False`` returns the decoder's image, as diffusers does."""
        notes: list[str] = []
        m = as_mask(mask, IMAGE_SIZE, notes)
        prompts, images, generator = self._edit_inputs(image, prompt, num_inference_steps, guidance_scale, sampler, num_images_per_prompt,
                                                       negative_prompt, strength, generator, notes)
        if m.shape[0] not in (1, len(prompts)):
            raise ValueError(f"give one mask or one per image ({len(prompts)}), got {m.shape[0]}")
        m = m.expand(len(prompts), -1, -1, -1).to(self.device)
        z0 = encode(self.vae, self.scaling_factor, images, generator)
        z = inpaint_latents(self.unet, self.clip, z0, latent_mask(m, self.vae.config.factor, mask_rule), prompts, strength, sampler,
                            num_inference_steps, guidance_scale, generator, negative_prompt, callback)
        out = self.decode(z)
        if paste:
            out = paste_back(images, out, m, feather)
        out = out.cpu()
        return PipelineOutput(to_pil(out), out)

    @torch.no_grad()
    def edit(
        self, image, instruction: str | list[str], guidance_scale: float | None = None, image_guidance_scale: float | None = None,
        num_inference_steps: int = 25, generator: torch.Generator | int | None = None, sampler: str = "dpmpp", num_images_per_prompt: int = 1,
        callback: Callable | None = None,
    ) -> PipelineOutput:
        """Edit ``image`` as ``instruction`` says (« rends le cercle bleu », "remove the heart"), InstructPix2Pix (lesson 09,
        :mod:`course.instruct`): the shipped editing model with text and image guidance s_T = ``guidance_scale``, s_I =
        ``image_guidance_scale`` (defaults: those chosen on validation, :func:`course.instruct.default_scales`)."""
        from course import instruct

        chosen_T, chosen_I = instruct.default_scales()
        s_T = chosen_T if guidance_scale is None else float(guidance_scale)
        s_I = chosen_I if image_guidance_scale is None else float(image_guidance_scale)
        instruct.check_scales(s_T, s_I)
        prompts = check_request(instruction, num_inference_steps, 1.0, sampler, num_images_per_prompt)
        unknown = sorted({w for p in prompts for w in instruct.unknown_words(p)})
        if unknown:
            warnings.warn(tr(en=f"words the editing model never saw (read as <unk>): {', '.join(unknown)}",
                             fr=f"mots que le modèle d'édition n'a jamais vus (lus comme <unk>) : {', '.join(unknown)}"), stacklevel=2)
        notes: list[str] = []
        images = as_batch(image, IMAGE_SIZE, notes)
        for note in notes:
            warnings.warn(note, stacklevel=2)
        if images.shape[0] not in (1, len(prompts)):
            raise ValueError(f"give one image or one per instruction ({len(prompts)}), got {images.shape[0]}")
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        images = images.repeat_interleave(num_images_per_prompt, 0) if images.shape[0] > 1 else images.expand(len(prompts), -1, -1, -1)
        if not hasattr(self, "instruct"):
            self.instruct = instruct.load_instruct().to(self.device)
        c_image = self.vae.encode(images.to(self.device))[0]  # the encoder's mean, unscaled (diffusers' InstructPix2Pix)
        z = instruct.edit_latents(self.instruct, c_image, prompts, s_T, s_I, sampler, num_inference_steps, as_generator(generator), callback)
        out = self.decode(z).cpu()
        return PipelineOutput(to_pil(out), out)

    def _edit_inputs(self, image, prompt, steps, guidance, sampler, n, negative_prompt, strength, generator, notes=None):
        """The checked prompts (each repeated n times), the input images as (B, 3, 64, 64) on the device, and the generator."""
        prompts = check_request(prompt, steps, guidance, sampler, n, negative_prompt)
        start_index(steps, strength)  # a ValueError now if no step would run
        notes = notes if notes is not None else []
        images = as_batch(image, IMAGE_SIZE, notes)
        for note in notes:
            warnings.warn(note, stacklevel=3)
        warn_unknown(prompts, negative_prompt)
        if images.shape[0] not in (1, len(prompts)):
            raise ValueError(f"give one image or one per prompt ({len(prompts)}), got {images.shape[0]}")
        prompts = [p for p in prompts for _ in range(n)]
        images = images.repeat_interleave(n, 0) if images.shape[0] > 1 else images.expand(len(prompts), -1, -1, -1)
        return prompts, images.to(self.device), as_generator(generator)

    def check_control(self, control: torch.Tensor, kind: str, scale: float, n: int) -> torch.Tensor:
        """``control`` as (n, 3, 64, 64), the ControlNet of ``kind`` loaded; a ``ValueError`` saying what to give otherwise."""
        from course.conditions import KINDS

        if kind not in KINDS:
            raise ValueError(f"unknown control kind {kind!r}: choose one of {', '.join(KINDS)}")
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"the control scale must be a number ≥ 0 (0: no control, 1: as trained), got {scale}")
        size = IMAGE_SIZE
        control = torch.as_tensor(control, dtype=torch.float32)
        if control.dim() == 3:
            control = control[None]
        if control.dim() != 4 or tuple(control.shape[1:]) != (3, size, size):
            raise ValueError(f"the control image must be (3, {size}, {size}) or (B, 3, {size}, {size}) in [0, 1], got {tuple(control.shape)}")
        if control.shape[0] not in (1, n):
            raise ValueError(f"give one control image or one per image ({n}), got {control.shape[0]}")
        if not hasattr(self, "controlnets"):
            self.controlnets = {}
        if kind not in self.controlnets:
            from course.shipped import load_controlnet

            self.controlnets[kind] = load_controlnet(kind).to(self.device)
        return control.expand(n, -1, -1, -1)

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
