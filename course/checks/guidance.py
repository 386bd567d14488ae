"""Checks for lesson 07: the classifier-free guidance combination."""

from __future__ import annotations

from typing import Callable

import torch

from course.checks.core import CheckResult, call, diagnose, passed, run
from course.guidance import guidance_combination
from course.language import tr


def check_guidance(fn: Callable) -> CheckResult:
    """Check ``fn(eps_cond, eps_uncond, w)`` = w·ε(c) + (1 − w)·ε(∅) for several w."""
    name = "guidance"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(11)
        cond, uncond = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
        for w in (3.0, 0.0, 1.0, 7.5):
            expected = guidance_combination(cond, uncond, w)
            actual = call(name, fn, cond.clone(), uncond.clone(), w)
            mistakes = {
                tr(en="ε(c) and ε(∅) are swapped: the push must go towards the prompt",
                   fr="ε(c) et ε(∅) sont intervertis : la poussée doit aller vers le prompt"): guidance_combination(uncond, cond, w),
                tr(en="the (1 − w)·ε(∅) term is missing",
                   fr="le terme (1 − w)·ε(∅) manque"): w * cond,
                tr(en="the sign of the (1 − w)·ε(∅) term is flipped",
                   fr="le signe du terme (1 − w)·ε(∅) est inversé"): w * cond - (1 - w) * uncond,
                tr(en="this is Ho & Salimans' (2022) convention, (1 + w)·ε(c) − w·ε(∅): the same idea, with their w one less "
                      "than the slide's (their w = 0 is the slide's w = 1); write the slide's form, w·ε(c) + (1 − w)·ε(∅)",
                   fr="c'est la convention de Ho & Salimans (2022), (1 + w)·ε(c) − w·ε(∅) : la même idée, avec leur w inférieur "
                      "de 1 à celui de la diapositive (leur w = 0 est le w = 1 de la diapositive) ; écrivez la forme de la "
                      "diapositive, w·ε(c) + (1 − w)·ε(∅)"): (1 + w) * cond - w * uncond,
            }
            problem = diagnose(f"{name} (w = {w})", actual, expected, mistakes=mistakes, atol=1e-5)
            if problem is not None:
                return problem
        return passed(name, tr(en="w·ε(c) + (1 − w)·ε(∅): w = 0 unconditional, w = 1 conditional, w > 1 guided",
                               fr="w·ε(c) + (1 − w)·ε(∅) : w = 0 non conditionnel, w = 1 conditionnel, w > 1 guidé"))

    return run(name, body)


def _toy_unet(z: torch.Tensor, t, context: torch.Tensor, context_mask: torch.Tensor | None = None) -> torch.Tensor:
    """A fixed "U-Net" with the real one's signature that reads z, the instant t and the unmasked text states."""
    keep = torch.ones(context.shape[:2], dtype=context.dtype) if context_mask is None else context_mask.to(context.dtype)
    text = (context * keep[..., None]).sum((1, 2)) / keep.sum(1)  # (B,)
    return 0.3 * z + 1e-3 * torch.as_tensor(t, dtype=z.dtype) + text.view(-1, *[1] * (z.dim() - 1))


def _reference_loop(z, grid, schedule, w, eps_at) -> torch.Tensor:
    """The guided DDIM loop written out, ``eps_at(z, t, t_prev)`` giving the guided ε̂."""
    from course.samplers import ddim_update

    for t, s in zip(grid[:-1], grid[1:]):
        z = ddim_update(z, eps_at(z, t, s), schedule.abar(t), schedule.abar(s))
    return z


def check_guided_sampling(fn: Callable) -> CheckResult:
    """Check ``fn(unet, context, mask, null, null_mask, z, grid, schedule, w)``: the guided DDIM loop of text-to-image."""
    from course.grids import spaced
    from course.noise_schedule import NoiseSchedule
    from course.schedules import get_betas

    name = "guided_sampling"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(12)
        schedule, grid, w = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000)), spaced(1000, 5), 3.0
        z = torch.randn(2, 4, 2, 2, generator=g)
        context, null = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
        mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
        null_mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
        cond = lambda z_, t, m=mask: _toy_unet(z_, t, context, m)  # noqa: E731
        uncond = lambda z_, t, m=null_mask: _toy_unet(z_, t, null, m)  # noqa: E731
        loop = lambda eps_at, grid_=grid: _reference_loop(z, grid_, schedule, w, eps_at)  # noqa: E731
        expected = loop(lambda z_, t, s: guidance_combination(cond(z_, t), uncond(z_, t), w))
        actual = call(name, fn, _toy_unet, context.clone(), mask.clone(), null.clone(), null_mask.clone(), z.clone(), grid.clone(), schedule, w,
                      error_hints={"math domain error": tr(
                          en="ddim_update takes ᾱ_t and ᾱ_prev, numbers between 0 and 1 (schedule.abar(t)), not the instants; check their order too",
                          fr="ddim_update attend ᾱ_t et ᾱ_prev, des nombres entre 0 et 1 (schedule.abar(t)), pas les instants ; "
                             "vérifiez aussi leur ordre")})
        mistakes = {
            tr(en="the guided ε̃ equals ε(c): either the unconditional pass got the prompt instead of the empty prompt's "
                  "states (null, null_mask), or the guidance is not applied",
               fr="le ε̃ guidé vaut ε(c) : soit la passe non conditionnelle a reçu le prompt au lieu des états du prompt vide "
                  "(null, null_mask), soit la guidance n'est pas appliquée"):
                loop(lambda z_, t, s: cond(z_, t)),
            tr(en="ε(c) and ε(∅) are swapped in the guidance",
               fr="ε(c) et ε(∅) sont intervertis dans la guidance"):
                loop(lambda z_, t, s: guidance_combination(uncond(z_, t), cond(z_, t), w)),
            tr(en="the masks are not passed to the U-Net: it then reads the padding tokens too",
               fr="les masques ne sont pas transmis au U-Net : il lit alors aussi les jetons de remplissage"):
                loop(lambda z_, t, s: guidance_combination(cond(z_, t, None), uncond(z_, t, None), w)),
            tr(en="the pass without the prompt got the prompt's mask: give it null_mask",
               fr="la passe sans prompt a reçu le masque du prompt : passez-lui null_mask"):
                loop(lambda z_, t, s: guidance_combination(cond(z_, t), uncond(z_, t, mask), w)),
            tr(en="the U-Net is asked at t_prev: ε̂ must be predicted at the current instant t",
               fr="le U-Net est interrogé en t_prev : ε̂ doit être prédit à l'instant courant t"):
                loop(lambda z_, t, s: guidance_combination(cond(z_, s), uncond(z_, s), w)),
            tr(en="the loop stops one step early: the last step, down to t = 0, is missing",
               fr="la boucle s'arrête un pas trop tôt : il manque le dernier pas, jusqu'à t = 0"):
                loop(lambda z_, t, s: guidance_combination(cond(z_, t), uncond(z_, t), w), grid[:-1]),
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-4,
                           shape_hint=tr(en="return the latents z after the last step, with the shape of z_T",
                                         fr="renvoyez les latents z après le dernier pas, avec la forme de z_T"))
        detail = tr(en="at each instant, ε(c) and ε(∅) from the U-Net, guided, then one DDIM step",
                    fr="à chaque instant, ε(c) et ε(∅) donnés par le U-Net, guidés, puis un pas DDIM")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


HINTS = {
    "guidance": (
        {"en": "mix the two predictions: w = 1 must give ε(c) alone, w = 0 ε(∅) alone, w > 1 goes past ε(c), away from ε(∅).",
         "fr": "mélangez les deux prédictions : w = 1 doit donner ε(c) seul, w = 0 ε(∅) seul, w > 1 va au-delà de ε(c), loin de ε(∅)."},
        {"en": "the slide's form: ε̃ = w·ε(c) + (1 − w)·ε(∅), which is ε(∅) + w·(ε(c) − ε(∅)).",
         "fr": "la forme de la diapositive : ε̃ = w·ε(c) + (1 − w)·ε(∅), c'est-à-dire ε(∅) + w·(ε(c) − ε(∅))."},
        {"en": "return eps_uncond + w * (eps_cond - eps_uncond)", "fr": "return eps_uncond + w * (eps_cond - eps_uncond)"},
    ),
    "guided_sampling": (
        {"en": "the DDIM loop of lesson 06, with a guided network: at each instant the U-Net is asked twice, once with the "
               "prompt and once with the empty prompt, and your guidance mixes the two answers.",
         "fr": "la boucle DDIM de la leçon 06, avec un réseau guidé : à chaque instant on interroge deux fois le U-Net, une fois "
               "avec le prompt et une fois avec le prompt vide, et votre guidance mélange les deux réponses."},
        {"en": "for each (t, t_prev) of the grid: ε(c) = unet(z, t, context, mask), ε(∅) = unet(z, t, null, null_mask), "
               "ε̃ = my_guidance(ε(c), ε(∅), w), then z ← ddim_update(z, ε̃, ᾱ_t, ᾱ_prev).",
         "fr": "pour chaque (t, t_prev) de la grille : ε(c) = unet(z, t, context, mask), ε(∅) = unet(z, t, null, null_mask), "
               "ε̃ = my_guidance(ε(c), ε(∅), w), puis z ← ddim_update(z, ε̃, ᾱ_t, ᾱ_prev)."},
        {"en": "for t, t_prev in zip(grid[:-1], grid[1:]):\n       eps = my_guidance(unet(z, t, context, mask), unet(z, t, null, null_mask), w)\n"
               "       z = ddim_update(z, eps, schedule.abar(t), schedule.abar(t_prev))\n   return z",
         "fr": "for t, t_prev in zip(grid[:-1], grid[1:]):\n       eps = my_guidance(unet(z, t, context, mask), unet(z, t, null, null_mask), w)\n"
               "       z = ddim_update(z, eps, schedule.abar(t), schedule.abar(t_prev))\n   return z"},
    ),
}
