"""img2img, or SDEdit: perturb an image, then denoise it (Meng et al. 2022, §3; slides: « Inversion et Édition »).

    image x → encoder → z_0 (× the scaling factor)
    z_{t_0} = √ᾱ_{t_0}·z_0 + √(1 − ᾱ_{t_0})·ε          the forward process of lesson 01, stopped at t_0 (q(z_t | z_0))
    z_{t_0} → guided U-Net + sampler over the grid's tail t_0 > … > 0 → z'_0 → decoder → the edited image

``strength`` ∈ (0, 1] says how far up the noise goes. Which steps run is the libraries' convention, and a known
trap: of the S steps of the sampler's grid t_1 > … > t_S, only the last ⌊S·strength⌋ run (diffusers'
``StableDiffusionImg2ImgPipeline.get_timesteps``), so 25 steps at strength 0.6 run 15, from the 11th instant of
the 25-step grid; and ⌊·⌋ is taken on a float, so 100 steps at strength 0.29 run 28, not 29.
:func:`kept_steps` and :func:`start_index` say it before anything runs; :func:`img2img_grid` is the grid that runs.

The encoder's posterior is sampled (z_0 = μ + σ·ε', diffusers' default) with the same generator that then draws the
noise ε: the exported model in diffusers' pipeline gives the same image (tests/test_img2img.py).
"""

from __future__ import annotations

import math

import torch

from course.language import tr
from course.noise_schedule import NoiseSchedule
from course.yours import pick


def check_strength(strength: float, name: str = "strength") -> float:
    """``strength`` as a float, or a ``ValueError`` unless 0 < strength ≤ 1."""
    try:
        s = float(strength)
    except (TypeError, ValueError):
        s = math.nan
    if not math.isfinite(s) or not 0 < s <= 1:
        raise ValueError(tr(en=f"{name} must be in (0, 1] (0.3: a light touch, 0.6: a new drawing on the same layout, 1: start from pure noise), got {strength!r}",
                            fr=f"{name} doit être dans ]0, 1] (0,3 : une retouche légère, 0,6 : un nouveau dessin sur la même mise en page, "
                               f"1 : repartir du bruit pur), valeur reçue : {strength!r}"))
    return s


def kept_steps(steps: int, strength: float) -> int:
    """How many of the ``steps`` steps run at ``strength``: ⌊steps·strength⌋, at most ``steps`` (diffusers' rule)."""
    return min(int(steps * check_strength(strength)), steps)


def start_index(steps: int, strength: float) -> int:
    """The index i of t_0 in the ``steps``-step grid [t_1, …, t_S, 0] (0-based): the first S − ⌊S·strength⌋ instants are skipped.

    A ``ValueError`` when no step would run (⌊S·strength⌋ = 0): the output would be the input's round trip through
    the autoencoder, not an edit."""
    kept = kept_steps(steps, strength)
    if kept < 1:
        need = math.ceil(1 / strength)
        raise ValueError(tr(en=f"strength {strength:g} with {steps} steps runs ⌊{steps}·{strength:g}⌋ = 0 steps: raise the strength, or use at least {need} steps",
                            fr=f"une force de {strength:g} avec {steps} pas fait tourner ⌊{steps}·{strength:g}⌋ = 0 pas : augmentez la force, "
                               f"ou prenez au moins {need} pas"))
    return steps - kept


def img2img_grid(grid: torch.Tensor, strength: float) -> torch.Tensor:
    """The tail of a sampler's grid [t_1, …, t_S, 0] that img2img runs at ``strength``: [t_0, …, 0], ⌊S·strength⌋ steps."""
    steps = len(grid) - 1
    index = start_index(steps, strength)  # a ValueError when no step would run, whoever computes the index
    yours = pick("start_index")  # the learner's rule (course.yours.use)
    return grid[yours(steps, strength) if yours is not None else index:]


def noise_to(z0: torch.Tensor, t, eps: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """z_t = √ᾱ_t·z_0 + √(1 − ᾱ_t)·ε at a grid instant t (Ho et al. 2020, eq. 4; t = 0 gives z_0 back)."""
    return float(schedule.alpha(t)) * z0 + float(schedule.sigma(t)) * eps


def encode(vae: torch.nn.Module, scaling_factor: float, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z_0 = scaling · (μ + σ·ε') for images (B, 3, H, W) in [−1, 1], ε' drawn from ``generator`` (diffusers'
    ``retrieve_latents(vae.encode(x), generator)``, sample mode); ``generator=None`` takes the mean μ."""
    mean, logvar = vae.encode(images)
    if generator is None:
        return scaling_factor * mean
    noise = torch.randn(mean.shape, generator=generator, device=generator.device).to(mean.device)
    return scaling_factor * (mean + (0.5 * logvar).exp() * noise)
