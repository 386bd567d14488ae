"""Checks for lesson 05 (latent space): the KL term of the autoencoder, and the generation loop of latent diffusion
(noise → guided U-Net → DDIM step, down to z_0 → the decoder, once)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from course.autoencoder import kl_divergence
from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.guidance import guidance_combination, guided
from course.language import tr
from course.noise_schedule import NoiseSchedule
from course.samplers import ddim, ddim_update, spaced
from course.schedules import alphas_cumprod, get_betas
from course.unet import UNet, UNetConfig


def check_kl_divergence(fn: Callable) -> CheckResult:
    """Check ``fn(mean, logvar)`` = ½ Σ (μ² + σ² − 1 − log σ²) summed per image, averaged over the batch."""
    name = "kl_divergence"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(8)
        mean, logvar = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g) * 0.5
        expected = kl_divergence(mean, logvar)
        actual = call(name, fn, mean.clone(), logvar.clone())
        per_value = 0.5 * (mean.square() + logvar.exp() - 1 - logvar)
        mistakes = {
            tr(en="a mean over every value instead of a sum per image (then a mean over the batch)",
               fr="une moyenne sur toutes les valeurs au lieu d'une somme par image (puis d'une moyenne sur le lot)"): per_value.mean(),
            tr(en="the factor ½ is missing",
               fr="le facteur ½ manque"): 2 * expected,
            tr(en="σ² was taken as logvar itself: σ² = exp(logvar)",
               fr="σ² a été pris égal à logvar lui-même : σ² = exp(logvar)"):
                (0.5 * (mean.square() + logvar - 1 - logvar)).flatten(1).sum(1).mean(),
            tr(en="a sum over the batch as well (it should be averaged over images)",
               fr="une somme sur le lot aussi (il faut en faire la moyenne sur les images)"): per_value.sum(),
            tr(en="the − log σ² term has the wrong sign",
               fr="le terme − log σ² n'a pas le bon signe"):
                (0.5 * (mean.square() + logvar.exp() - 1 + logvar)).flatten(1).sum(1).mean(),
        }
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            return failed(name, tr(en=f"expected one number (a 0-d tensor), got shape {tuple(actual.shape)}",
                                   fr=f"un seul nombre était attendu (un tenseur de dimension 0), reçu la forme {tuple(actual.shape)}"))
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-4)
        detail = tr(en="KL(N(μ, σ²) ‖ N(0, 1)), summed per image, averaged over the batch",
                    fr="KL(N(μ, σ²) ‖ N(0, 1)), sommée par image, moyennée sur le lot")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def course_text_to_image(unet, decode, context, null, z_T, timesteps, abar, w, scale):
    """The course's own generation, built from its pieces: :func:`course.guidance.guided` (one batched U-Net pass for
    ε(c) and ε(∅)) and :func:`course.samplers.ddim` on the grid ``timesteps``, then ``decode(z_0 / scale)``."""
    keep = torch.ones(context.shape[:2], dtype=torch.bool, device=context.device)
    eps = guided(unet, context, keep, null[:1], keep[:1], w)
    z0 = ddim(eps, z_T, torch.as_tensor(timesteps).cpu(), NoiseSchedule(torch.as_tensor(abar).cpu()))  # instants and ᾱ: plain numbers
    return decode(z0 / scale)


def _generation(unet, decode, context, null, z_T, timesteps, abar, w, scale, *, guidance="right", t_prev=False, last=True,
                move=True, decoding="divide", to_t_minus_1=False):
    """The loop done right (the defaults), or with one typical mistake. Reference code: never the learner's (no course.yours)."""
    z = z_T
    pairs = list(zip(timesteps[:-1], timesteps[1:]))
    for t, s in pairs if last else pairs[:-1]:
        at = s if t_prev else t
        eps_c, eps_u = unet(z, at, context), unet(z, at, null)
        eps = {"right": guidance_combination(eps_c, eps_u, w), "none": eps_c, "null": eps_u,
               "reversed": eps_c + w * (eps_u - eps_c), "ho": (1 + w) * eps_c - w * eps_u}[guidance]
        z = ddim_update(z, eps, abar[t], abar[t - 1] if to_t_minus_1 else abar[s]) if move else z
    return decode({"divide": z / scale, "none": z, "multiply": z * scale}[decoding])


class _Decoder(nn.Module):
    """A stand-in for the autoencoder's decoder: latents (B, 4, h, w) → images (B, 3, 2h, 2w)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(torch.nn.functional.interpolate(z, scale_factor=2.0)))


def check_text_to_image(fn: Callable) -> CheckResult:
    """Check ``fn(unet, decode, context, null, z_T, timesteps, abar, w, scale)``: from z_T, at each pair (t, t_prev) of
    ``timesteps``, ε̃ = ε(∅) + w·(ε(c) − ε(∅)) and one DDIM step (:func:`course.samplers.ddim_update`); then
    ``decode(z_0 / scale)``, once. On a small random U-Net and decoder."""
    name = "text_to_image"

    def body() -> CheckResult:
        torch.manual_seed(5)
        unet = UNet(UNetConfig(channels=(8, 16), attention=(False, True), heads=2, context_dim=8, groups=4, pooled=True, pooled_heads=2)).eval()
        nn.init.normal_(unet.conv_out.weight, std=0.05)  # a trained ε̂, not the untrained 0
        decode = _Decoder().eval()
        g = torch.Generator().manual_seed(5)
        z_T, context = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 5, 8, generator=g)
        null = torch.randn(1, 5, 8, generator=g).expand(2, -1, -1)  # ∅'s states, once per image
        timesteps = spaced(1000, 4).long()  # [751, 501, 251, 1, 0]
        abar = alphas_cumprod(get_betas("scaled_linear", 1000))
        w, scale = 3.0, 0.7
        inputs = (unet, decode, context, null, z_T, timesteps, abar, w, scale)
        with torch.no_grad():
            expected = _generation(*inputs)
            actual = call(name, fn, unet, decode, context.clone(), null.clone(), z_T.clone(), timesteps.clone(), abar.clone(), w, scale,
                          error_hints={
                              "math domain error": tr(
                                  en="ddim_update takes ᾱ_t and ᾱ_prev, numbers between 0 and 1, not the instants: "
                                     "ddim_update(z, eps, abar[t], abar[t_prev]) (check the order too)",
                                  fr="ddim_update attend ᾱ_t et ᾱ_prev, des nombres entre 0 et 1, pas les instants : "
                                     "ddim_update(z, eps, abar[t], abar[t_prev]) (vérifiez aussi l'ordre)"),
                              "'int' object has no attribute 'numel'": tr(
                                  en="the U-Net takes t as a tensor, as it comes out of `timesteps`: do not convert it to an int",
                                  fr="le U-Net attend t sous forme de tenseur, tel qu'il sort de `timesteps` : ne le convertissez pas en int"),
                              "only integer tensors of a single element can be converted to an index": tr(
                                  en="abar is indexed by the instant itself: abar[t], with t taken from timesteps",
                                  fr="abar s'indexe par l'instant lui-même : abar[t], t pris dans timesteps"),
                          })
            mistakes = {
                tr(en="z_0 was decoded without dividing by the scaling factor: decode(z / scale)",
                   fr="z_0 a été décodé sans être divisé par le facteur d'échelle : decode(z / scale)"): _generation(*inputs, decoding="none"),
                tr(en="z_0 was multiplied by the scaling factor: the latents were scaled by it to reach variance 1, so divide: decode(z / scale)",
                   fr="z_0 a été multiplié par le facteur d'échelle : les latents ont été multipliés par lui pour atteindre la variance 1, "
                      "il faut donc diviser : decode(z / scale)"): _generation(*inputs, decoding="multiply"),
                tr(en="no guidance: ε(c) alone was used; combine it with ε(∅): ε(∅) + w·(ε(c) − ε(∅))",
                   fr="pas de guidance : seul ε(c) a servi ; combinez-le à ε(∅) : ε(∅) + w·(ε(c) − ε(∅))"): _generation(*inputs, guidance="none"),
                tr(en="only ε(∅) was used: the prompt never reaches the U-Net; ε̃ = ε(∅) + w·(ε(c) − ε(∅))",
                   fr="seul ε(∅) a servi : le prompt n'atteint jamais le U-Net ; ε̃ = ε(∅) + w·(ε(c) − ε(∅))"): _generation(*inputs, guidance="null"),
                tr(en="the guidance goes the wrong way: ε(c) + w·(ε(∅) − ε(c)) pushes towards ∅; it is ε(∅) + w·(ε(c) − ε(∅))",
                   fr="la guidance va dans le mauvais sens : ε(c) + w·(ε(∅) − ε(c)) pousse vers ∅ ; c'est ε(∅) + w·(ε(c) − ε(∅))"):
                    _generation(*inputs, guidance="reversed"),
                tr(en="this is Ho & Salimans' (2022) convention, (1 + w)·ε(c) − w·ε(∅): the same idea, with their w one less than "
                      "this lesson's (their w = 0 is our w = 1); write ε(∅) + w·(ε(c) − ε(∅))",
                   fr="c'est la convention de Ho & Salimans (2022), (1 + w)·ε(c) − w·ε(∅) : la même idée, avec leur w inférieur de 1 "
                      "à celui de cette leçon (leur w = 0 est notre w = 1) ; écrivez ε(∅) + w·(ε(c) − ε(∅))"):
                    _generation(*inputs, guidance="ho"),
                tr(en="the step goes to t − 1 instead of the next instant of the grid, t_prev: ddim_update(z, eps, abar[t], abar[t_prev])",
                   fr="le pas va jusqu'à t − 1 au lieu de l'instant suivant de la grille, t_prev : "
                      "ddim_update(z, eps, abar[t], abar[t_prev])"):
                    _generation(*inputs, to_t_minus_1=True),
                tr(en="the U-Net was asked at t_prev: it predicts the noise of z_t, so give it t, the instant z is at",
                   fr="le U-Net a été interrogé à t_prev : il prédit le bruit de z_t, donnez-lui donc t, l'instant où en est z"):
                    _generation(*inputs, t_prev=True),
                tr(en="the loop stops one step early: walk every pair (t, t_prev) of timesteps, down to t_prev = 0",
                   fr="la boucle s'arrête un pas trop tôt : parcourez toutes les paires (t, t_prev) de timesteps, jusqu'à t_prev = 0"):
                    _generation(*inputs, last=False),
                tr(en="z never moves: z_T itself was decoded; keep the result of each step, z = ddim_update(z, …)",
                   fr="z ne bouge jamais : c'est z_T lui-même qui a été décodé ; gardez le résultat de chaque pas, z = ddim_update(z, …)"):
                    _generation(*inputs, move=False),
            }
        if isinstance(actual, torch.Tensor) and actual.shape == expected.shape and torch.allclose(actual.detach(), expected.clamp(-1, 1), atol=1e-4):
            actual = expected  # clamped to [−1, 1] for display: the same images
        if isinstance(actual, torch.Tensor) and actual.shape == z_T.shape:
            return failed(name, tr(en=f"got a latent {tuple(actual.shape)}, expected an image {tuple(expected.shape)}: decode z_0 once, at the end, decode(z / scale)",
                                   fr=f"reçu un latent {tuple(actual.shape)}, une image {tuple(expected.shape)} était attendue : décodez z_0 une fois, "
                                      "à la fin, decode(z / scale)"))
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-4)
        detail = tr(en="z_T → (ε̃ = ε(∅) + w·(ε(c) − ε(∅)), one DDIM step) at every pair of instants → z_0 → decode(z_0 / scale), once",
                    fr="z_T → (ε̃ = ε(∅) + w·(ε(c) − ε(∅)), un pas de DDIM) à chaque paire d'instants → z_0 → decode(z_0 / scale), une seule fois")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def _code(*lines: str) -> dict[str, str]:
    text = "\n   ".join(lines)
    return {"en": text, "fr": text}


HINTS = {
    "kl": (
        {"en": "compute the formula for every latent value, add up the values of one image, then average over the images.",
         "fr": "calculez la formule pour chaque valeur latente, additionnez les valeurs d'une même image, puis faites la moyenne "
               "sur les images."},
        {"en": "σ² = exp(logvar): ½(μ² + exp(logvar) − 1 − logvar) for each value; sum over every axis but the batch's; mean over the batch.",
         "fr": "σ² = exp(logvar) : ½(μ² + exp(logvar) − 1 − logvar) pour chaque valeur ; somme sur tous les axes sauf celui du lot ; "
               "moyenne sur le lot."},
        _code("per_value = 0.5 * (mean.square() + logvar.exp() - 1 - logvar)",
              "return per_value.flatten(1).sum(1).mean()"),
    ),
    "text_to_image": (
        {"en": "start from the noise z_T; for each pair of consecutive instants, ask the U-Net for the noise with the prompt and "
               "with ∅, combine the two by guidance, take one DDIM step; only at the end, decode z_0 (brought back to the "
               "decoder's scale).",
         "fr": "partez du bruit z_T ; pour chaque paire d'instants consécutifs, demandez au U-Net le bruit avec le prompt et avec ∅, "
               "combinez les deux par la guidance, faites un pas de DDIM ; à la fin seulement, décodez z_0 (ramené à l'échelle du "
               "décodeur)."},
        {"en": "for (t, t_prev) in zip(timesteps[:-1], timesteps[1:]): ε̃ = ε(∅) + w·(ε(c) − ε(∅)) with ε(c) = unet(z, t, context), "
               "ε(∅) = unet(z, t, null); z = ddim_update(z, ε̃, abar[t], abar[t_prev]). Then decode(z / scale).",
         "fr": "pour (t, t_prev) dans zip(timesteps[:-1], timesteps[1:]) : ε̃ = ε(∅) + w·(ε(c) − ε(∅)) avec ε(c) = unet(z, t, context), "
               "ε(∅) = unet(z, t, null) ; z = ddim_update(z, ε̃, abar[t], abar[t_prev]). Puis decode(z / scale)."},
        _code("z = z_T",
              "for t, t_prev in zip(timesteps[:-1], timesteps[1:]):",
              "    eps_c, eps_u = unet(z, t, context), unet(z, t, null)",
              "    eps = eps_u + w * (eps_c - eps_u)",
              "    z = ddim_update(z, eps, abar[t], abar[t_prev])",
              "return decode(z / scale)"),
    ),
}
