"""Attend-and-Excite (Chefer et al. 2023): at sampling time, push the latent until every subject is attended.

A subject the image leaves out ("catastrophic neglect", §3) is one whose cross-attention map is weak
everywhere. During the first denoising steps, before each DDIM step, the latent z_t is moved down the
gradient of

    L(z_t) = max over subjects s of (1 − max over pixels of G * A_s(z_t))        (§4, eq. 2–3)

where A_s is subject s's map (the word maps of :mod:`course.attention_maps`, softmaxed again over the
prompt's words after × 100, as the reference does), and G a small Gaussian blur: z_t ← z_t − α_t·∇L,
α_t falling from ``step_size`` to ``step_size``·√½. At a few early steps the update is repeated until
the weakest subject reaches a threshold (§4, "iterative latent refinement"). No weight changes; the price is
a backward pass through the U-Net per update.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from course.adapter import timestep_batch
from course.attention_maps import recording, subject_positions, token_maps, tokens
from course.guidance import guided
from course.noise_schedule import NoiseSchedule
from course.samplers import _ddim_update, grid_for
from course.shipped import GUIDANCE, betas, latent_shape, text_states


def gaussian_blur(maps: torch.Tensor, sigma: float = 0.5, size: int = 3) -> torch.Tensor:
    """Maps (B, S, h, w) blurred by a normalised size × size Gaussian (reflect padding), as the reference smooths them."""
    r = torch.arange(size, dtype=maps.dtype, device=maps.device) - (size - 1) / 2
    g = torch.exp(-r**2 / (2 * sigma**2))
    kernel = (g[:, None] * g[None, :]) / (g.sum() ** 2)
    B, S, h, w = maps.shape
    padded = F.pad(maps.reshape(B * S, 1, h, w), (size // 2,) * 4, mode="reflect")
    return F.conv2d(padded, kernel[None, None]).reshape(B, S, h, w)


def subject_strengths(maps: torch.Tensor, word_ends: Sequence[int], subjects: Sequence[Sequence[int]], sigma: float = 0.5) -> torch.Tensor:
    """(B, S): for each image's subjects, the peak of its blurred map after the words' softmax (0 where no subject).

    ``maps`` (B, L, h, w) from :func:`course.attention_maps.token_maps`; ``word_ends[b]``: the <eos> position of
    prompt b (its words are tokens 1 … eos − 1); ``subjects[b]``: token positions of its subjects."""
    S = max((len(s) for s in subjects), default=0)
    out = maps.new_zeros(len(subjects), max(S, 1))
    for b, (end, subs) in enumerate(zip(word_ends, subjects)):
        if not subs:
            continue
        words = (100 * maps[b, 1:end]).softmax(dim=0)  # (words, h, w): each pixel's share between the prompt's words
        chosen = words[[p - 1 for p in subs]][None]  # (1, S_b, h, w)
        out[b, : len(subs)] = gaussian_blur(chosen, sigma).flatten(2).amax(-1)[0]
    return out


def excite_loss(strengths: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """(B,): max over each image's subjects of 1 − strength (0 for an image without subjects), §4 eq. 3."""
    losses = []
    for b, n in enumerate(counts):
        losses.append((1 - strengths[b, :n]).amax() if n else strengths.new_zeros(()))
    return torch.stack(losses)


def generate_latents(
    unet: torch.nn.Module,
    clip: torch.nn.Module,
    prompts: list[str],
    steps: int = 50,
    guidance: float = GUIDANCE,
    generator: torch.Generator | int | None = None,
    subjects: Sequence[Sequence[int]] | None = None,
    excite_steps: int | None = None,
    step_size: float = 20.0,
    refine_at: dict[int, float] | None = None,
    refine_iterations: int = 5,
    sigma: float = 0.5,
) -> tuple[torch.Tensor, dict]:
    """DDIM (η = 0) with Attend-and-Excite: z_0 (scaled, as the course pipeline's) and what was done.

    ``subjects``: token positions per prompt (default: its shape nouns, :func:`subject_positions`);
    ``excite_steps``: how many of the first steps update z_t (default half, as the reference's 25 of 50);
    ``refine_at``: {step index: strength threshold} for iterative refinement (default the reference's 0.05, 0.5, 0.8
    at steps 0, 10, 20 of 50, scaled to ``steps``). Returns (z_0, {"updates": …, "final_strengths": …})."""
    from course.pipeline import as_generator

    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    generator = as_generator(generator)
    subjects = [subject_positions(p) for p in prompts] if subjects is None else [list(s) for s in subjects]
    if len(subjects) != len(prompts):
        raise ValueError(f"got {len(prompts)} prompts but {len(subjects)} subject lists")
    word_ends = [len(tokens(p)) - 1 for p in prompts]
    for p, subs, end in zip(prompts, subjects, word_ends):
        if any(not 1 <= s < end for s in subs):
            raise ValueError(f"subject positions {subs} are not words of {p!r} (its words are tokens 1…{end - 1})")
    counts = [len(s) for s in subjects]
    excite_steps = steps // 2 if excite_steps is None else excite_steps
    if refine_at is None:
        refine_at = {round(steps * k / 50): v for k, v in ((0, 0.05), (10, 0.5), (20, 0.8))}
    device = next(unet.parameters()).device
    schedule = NoiseSchedule.from_betas(betas())
    grid = grid_for("ddim", schedule, steps)
    x = torch.randn((len(prompts), unet.config.in_channels, *latent_shape()[1:]), generator=generator, device=generator.device).to(device)
    context, mask = text_states(prompts, clip)
    null, null_mask = text_states([""], clip)
    eps_fn = guided(unet, context, mask, null, null_mask, guidance)
    scales = torch.linspace(1.0, 0.5, max(steps, 1)).sqrt()
    updates = 0
    last = None

    def strengths_at(z, t):
        with recording(unet, keep_graph=True) as layers:
            unet(z, timestep_batch(float(t), z), context, mask)
            return subject_strengths(token_maps(layers), word_ends, subjects, sigma)

    for i, (t, s) in enumerate(zip(grid[:-1], grid[1:])):
        if i < excite_steps and any(counts):
            rounds = 1 + (refine_iterations if i in refine_at else 0)
            for _ in range(rounds):
                with torch.enable_grad():
                    z = x.detach().requires_grad_(True)
                    strengths = strengths_at(z, t)
                    loss = excite_loss(strengths, counts)
                    if i in refine_at and _ > 0 and bool((loss <= 1 - refine_at[i]).all()):
                        break
                    (grad,) = torch.autograd.grad(loss.sum(), z)
                x = (z - step_size * float(scales[i]) * grad).detach()
                updates += 1
                last = strengths.detach()
        with torch.no_grad():
            t_batch = timestep_batch(float(t), x)
            eps = eps_fn(x, t_batch)
            abar_t, abar_s = float(schedule.abar(t)), float(schedule.abar(s))
            x0_hat = (x - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
            x = _ddim_update(x, x0_hat, eps, abar_t, abar_s, 0.0, None)
    return x, {"updates": updates, "final_strengths": None if last is None else last.tolist()}


def generate(prompts: list[str], seed: int = 0, unet=None, steps: int = 50, guidance: float = GUIDANCE, **options) -> torch.Tensor:
    """Images (B, 3, 64, 64) in [−1, 1] from the shipped models with Attend-and-Excite (``options``: see :func:`generate_latents`)."""
    from course.shipped import load_autoencoder, load_clip, load_unet

    autoencoder, factor = load_autoencoder()
    z0, _ = generate_latents(unet or load_unet(), load_clip(), prompts, steps, guidance, seed, **options)
    with torch.no_grad():
        return autoencoder.decode(z0 / factor).clamp(-1, 1)
