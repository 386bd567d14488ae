"""Inpainting without training: blend the known region back at every step, then paste the original back
(Lugmayr et al. 2022, RePaint, eq. 8 without resampling; Avrahami et al. 2023, Blended Latent Diffusion, §3;
slides: « Inversion et Édition »).

    m       the mask in latent space (1: repaint, 0: keep), from the pixel mask M (white = repaint)
    z_0^k   the known image's latent, ε the starting noise (drawn once)
    after every step down to the instant s:
            z_s ← m·z_s + (1 − m)·(√ᾱ_s·z_0^k + √(1 − ᾱ_s)·ε)           the known region follows the forward process
    decode → x̂;   x = a·x̂ + (1 − a)·x_original,  a = M feathered inward  the paste-back (pixels outside M: exactly the input)

The blend is what diffusers' ``StableDiffusionInpaintPipeline`` does with a 4-channel U-Net (tests/test_inpaint.py);
it leaves a seam its users report: the decoder never gives back the input's pixels exactly, so the whole image
changes, outside the mask too (the autoencoder's round-trip error). The paste-back removes it; the feather hides
the edge between pasted and generated pixels.

Two choices differ from diffusers, on purpose: the latent mask marks a cell as soon as one of its 8×8 pixels is
masked (:func:`latent_mask` "any"; diffusers resizes by nearest neighbour, reading one pixel per cell, so a mask
smaller than a cell can vanish), and the paste-back (diffusers pastes only with ``padding_mask_crop``, unfeathered).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from course.img2img import noise_to
from course.language import tr
from course.noise_schedule import NoiseSchedule
from course.yours import pick

MaskRule = Literal["any", "nearest"]


class MaskWarning(UserWarning):
    """A mask allowed but probably not what was meant (it covers the whole image)."""


def as_mask(mask, size: int, notes: list[str] | None = None) -> torch.Tensor:
    """A pixel mask (B, 1, size, size) of 0 and 1 (1 = repaint) from a PIL image, a (H, W) or (H, W, 3) uint8 array, or a
    tensor (H, W), (1, H, W) or (B, 1, H, W) in [0, 1]; values ≥ 0.5 count as masked (diffusers' binarisation). Another
    size is resized (nearest) with a note. An empty mask is a ``ValueError``; a full one a :class:`MaskWarning`."""
    from PIL import Image

    notes = notes if notes is not None else []
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    if isinstance(mask, np.ndarray):
        if mask.ndim == 3 and mask.shape[-1] in (3, 4):
            mask = mask[..., :3].mean(axis=-1)
        if mask.ndim != 2:
            raise ValueError(f"the mask must be an (H, W) or (H, W, 3) array, got shape {mask.shape}")
        mask = torch.from_numpy(np.asarray(mask, dtype=np.float32) / (255.0 if mask.dtype == np.uint8 or mask.max() > 1 else 1.0))
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"the mask must be a PIL image, an array or a tensor in [0, 1], got {type(mask).__name__}")
    m = mask.float()
    m = m[None, None] if m.dim() == 2 else m[None] if m.dim() == 3 else m
    if m.dim() != 4 or m.shape[1] != 1:
        raise ValueError(f"the mask must be (H, W), (1, H, W) or (B, 1, H, W) in [0, 1], got {tuple(mask.shape)}")
    if tuple(m.shape[-2:]) != (size, size):
        notes.append(tr(en=f"mask resized from {m.shape[-1]}×{m.shape[-2]} to {size}×{size} (the model's image size)",
                        fr=f"masque redimensionné de {m.shape[-1]}×{m.shape[-2]} en {size}×{size} (la taille d'image du modèle)"))
        m = F.interpolate(m, size=(size, size), mode="nearest")
    m = (m >= 0.5).float()
    if not m.flatten(1).any(dim=1).all():
        raise ValueError(tr(en="the mask is empty (all black): there is nothing to repaint — white marks the region to repaint, black what to keep",
                            fr="le masque est vide (tout noir) : il n'y a rien à repeindre — le blanc marque la région à repeindre, le noir ce qu'on garde"))
    if m.flatten(1).all(dim=1).any():
        warnings.warn(tr(en="the mask covers the whole image: nothing of the input is kept, this is plain text-to-image generation",
                         fr="le masque couvre toute l'image : rien de l'image d'entrée n'est gardé, c'est une génération texte → image ordinaire"),
                      MaskWarning, stacklevel=2)
    return m


def latent_mask(mask: torch.Tensor, factor: int, rule: MaskRule = "any") -> torch.Tensor:
    """The pixel mask (B, 1, H, W) at the latent's resolution (B, 1, H/f, W/f). "any": a cell is repainted when one of
    its f × f pixels is (max-pooling); "nearest": diffusers' resize, which reads one pixel per cell (its top-left)."""
    if rule == "any":
        return F.max_pool2d(mask, factor)
    if rule == "nearest":
        return F.interpolate(mask, size=(mask.shape[-2] // factor, mask.shape[-1] // factor), mode="nearest")
    raise ValueError(f"unknown mask rule {rule!r}: choose one of any, nearest")


def blend(m: torch.Tensor, z0_known: torch.Tensor, eps: torch.Tensor, schedule: NoiseSchedule):
    """The sampler's ``project(s, z)``: z ← m·z + (1 − m)·z_s^known, z_s^known = √ᾱ_s·z_0^k + √(1 − ᾱ_s)·ε (the module's formula)."""

    def project(s, z: torch.Tensor) -> torch.Tensor:
        yours = pick("inpaint_blend")  # the learner's blend (course.yours.use)
        if yours is not None:
            return yours(z, z0_known, eps, m, torch.tensor(float(schedule.abar(s)), dtype=z.dtype, device=z.device))
        return m * z + (1 - m) * noise_to(z0_known, s, eps, schedule)

    return project


def feather(mask: torch.Tensor, width: int) -> torch.Tensor:
    """a ∈ [0, 1]: 1 deep inside the mask, rising linearly over ``width`` pixels from its edge, 0 outside (exactly).

    The mean of the mask eroded 0, 1, …, width − 1 times (3 × 3 erosions: a ramp in chessboard distance)."""
    if width < 0:
        raise ValueError(f"the feather width must be ≥ 0 pixels, got {width}")
    if width == 0:
        return mask.clone()
    eroded, total = mask, mask.clone()
    for _ in range(width - 1):
        eroded = 1 - F.max_pool2d(1 - eroded, 3, stride=1, padding=1)  # erosion by one pixel (the image's border is no edge: nothing is kept beyond it)
        total = total + eroded
    return total / width


def paste_back(original: torch.Tensor, generated: torch.Tensor, mask: torch.Tensor, width: int = 3) -> torch.Tensor:
    """x = a·x̂ + (1 − a)·x_original with a = :func:`feather` (mask, width): outside the mask the input, exactly."""
    a = feather(mask, width)
    return a * generated + (1 - a) * original
