"""Checks for lesson 09 (editing): img2img's first instant (Meng et al. 2022, as diffusers counts it), inpainting's
blend of the known region (Lugmayr et al. 2022, eq. 8), and InstructPix2Pix's two guidances (Brooks et al. 2023, eq. 3)."""

from __future__ import annotations

import math
from typing import Callable

import torch

from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.img2img import start_index
from course.language import tr

CASES = ((25, 0.6), (10, 0.35), (100, 0.29), (50, 1.0), (25, 0.5), (20, 0.55), (7, 0.3))


def check_start_index(fn: Callable) -> CheckResult:
    """Check ``fn(steps, strength)`` → the index of t_0 in the grid [t_1, …, t_S, 0]: S − ⌊S·strength⌋ (diffusers' rule)."""
    name = "start_index"

    def body() -> CheckResult:
        for steps, strength in CASES:
            got = call(name, fn, steps, strength)
            want = start_index(steps, strength)  # the course's, never through course.yours.pick
            if isinstance(got, bool) or not isinstance(got, int):
                if isinstance(got, float) and got == int(got):
                    return failed(name, tr(en=f"return an int (an index), got the float {got!r}: int(…) it",
                                           fr=f"renvoyez un int (un indice), reçu le flottant {got!r} : convertissez-le avec int(…)"))
                return failed(name, tr(en=f"return an int (an index), got {type(got).__name__}", fr=f"renvoyez un int (un indice), reçu {type(got).__name__}"))
            if got == want:
                continue
            x = steps * strength
            why = {
                want + 1: tr(en="one too many: the grid's first instant t_1 has index 0 (Python counts from 0)",
                             fr="un de trop : le premier instant de la grille, t_1, a l'indice 0 (Python compte à partir de 0)"),
                want - 1: tr(en="one too few: skip S − ⌊S·strength⌋ instants, not one less", fr="il en manque un : sautez S − ⌊S·force⌋ instants, pas un de moins"),
                int(x): tr(en="that is how many steps run (⌊S·strength⌋); the index of t_0 is how many are skipped",
                           fr="c'est le nombre de pas qui tournent (⌊S·force⌋) ; l'indice de t_0, c'est le nombre de pas sautés"),
                steps - math.ceil(x): tr(en="ceiling: the libraries take the floor, int(steps * strength)",
                                         fr="partie entière par excès : les bibliothèques prennent la partie entière par défaut, int(steps * strength)"),
                steps - round(x): tr(en="rounded: the libraries take the floor, int(steps * strength), so 100 steps at 0.29 run 28, not 29",
                                     fr="arrondi : les bibliothèques prennent la partie entière, int(steps * strength), si bien que 100 pas "
                                        "à 0,29 en font tourner 28, et non 29"),
            }
            detail = f" — {why[got]}" if got in why else ""
            return failed(name, tr(en=f"{steps} steps at strength {strength:g}: got {got}, expected {want}{detail}",
                                   fr=f"{steps} pas à la force {str(strength).replace('.', ',')} : reçu {got}, attendu {want}{detail}"))
        return passed(name, tr(en="S − ⌊S·strength⌋, the libraries' rule, with its floor: 100 steps at 0.29 start at index 72 and run 28",
                               fr="S − ⌊S·force⌋, la règle des bibliothèques, partie entière comprise : 100 pas à 0,29 partent de l'indice 72 "
                                  "et en font tourner 28"))

    return run(name, body)


def _blend(z, z0, eps, m, abar):
    return m * z + (1 - m) * (abar.sqrt() * z0 + (1 - abar).sqrt() * eps)


def check_inpaint_blend(fn: Callable) -> CheckResult:
    """Check ``fn(z, z0_known, eps, m, abar_s)`` → m·z + (1 − m)·(√ᾱ_s·z_0 + √(1 − ᾱ_s)·ε) (RePaint's known region)."""
    name = "inpaint_blend"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(9)
        z, z0, eps = (torch.randn(2, 4, 8, 8, generator=g) for _ in range(3))
        m = torch.zeros(2, 1, 8, 8)
        m[..., 2:6, 3:8] = 1
        for abar in (torch.tensor(0.4), torch.tensor(1.0)):
            expected = _blend(z, z0, eps, m, abar)
            mistakes = {
                tr(en="the mask is the wrong way round: m = 1 is the region to repaint, where the sampler's z stays",
                   fr="le masque est inversé : m = 1 marque la région à repeindre, où l'on garde le z de l'échantillonneur"): _blend(z, z0, eps, 1 - m, abar),
                tr(en="the known latent is pasted clean: at step s it must be noised to s, √ᾱ_s·z_0 + √(1 − ᾱ_s)·ε",
                   fr="le latent connu est collé sans bruit : au pas s, il doit être bruité jusqu'à s, √ᾱ_s·z_0 + √(1 − ᾱ_s)·ε"): m * z + (1 - m) * z0,
                tr(en="ᾱ_s where √ᾱ_s is needed (and 1 − ᾱ_s for its square root)",
                   fr="ᾱ_s là où il faut √ᾱ_s (et 1 − ᾱ_s au lieu de sa racine)"): m * z + (1 - m) * (abar * z0 + (1 - abar) * eps),
                tr(en="the noise is missing: √ᾱ_s·z_0 + √(1 − ᾱ_s)·ε", fr="le bruit manque : √ᾱ_s·z_0 + √(1 − ᾱ_s)·ε"):
                    m * z + (1 - m) * abar.sqrt() * z0,
            }
            if abar == 1:  # at the clean end every noising mistake agrees with the right answer: only the mask can be wrong
                mistakes = dict(list(mistakes.items())[:1])
            got = call(name, fn, z.clone(), z0.clone(), eps.clone(), m.clone(), abar.clone())
            problem = diagnose(name, got, expected, mistakes=mistakes, atol=1e-5,
                               shape_hint=tr(en="m (B, 1, h, w) broadcasts over the 4 channels", fr="m (B, 1, h, w) se diffuse sur les 4 canaux"))
            if problem is not None:
                return problem
        return passed(name, tr(en="inside the mask the sampler's latent, outside the known one noised to the same instant — at ᾱ = 1, z_0 itself",
                               fr="dans le masque le latent de l'échantillonneur, au-dehors le latent connu bruité au même instant — à ᾱ = 1, "
                                  "z_0 lui-même"))

    return run(name, body)


def check_dual_guidance(fn: Callable) -> CheckResult:
    """Check ``fn(eps_both, eps_image, eps_none, s_T, s_I)`` → ε(∅, ∅) + s_I·[ε(I, ∅) − ε(∅, ∅)] + s_T·[ε(I, T) − ε(I, ∅)]."""
    name = "dual_guidance"

    def body() -> CheckResult:
        from course.instruct import dual_guidance

        g = torch.Generator().manual_seed(11)
        both, image, none = (torch.randn(2, 4, 8, 8, generator=g) for _ in range(3))
        s_T, s_I = 5.0, 1.5
        expected = dual_guidance(both, image, none, s_T, s_I)  # the course's, never through course.yours.pick
        mistakes = {
            tr(en="s_T and s_I are swapped: s_I multiplies ε(I, ∅) − ε(∅, ∅), s_T multiplies ε(I, T) − ε(I, ∅)",
               fr="s_T et s_I sont inversés : s_I multiplie ε(I, ∅) − ε(∅, ∅), s_T multiplie ε(I, T) − ε(I, ∅)"): dual_guidance(both, image, none, s_I, s_T),
            tr(en="the text term starts from ε(∅, ∅): it is ε(I, T) − ε(I, ∅), the text's effect with the image already given",
               fr="le terme du texte part de ε(∅, ∅) : c'est ε(I, T) − ε(I, ∅), l'effet du texte une fois l'image donnée"):
                none + s_I * (image - none) + s_T * (both - none),
            tr(en="the image term is missing: this is lesson 07's guidance on the text alone",
               fr="le terme de l'image manque : c'est la guidance de la leçon 07, sur le texte seul"): image + s_T * (both - image),
            tr(en="ε(∅, ∅) is missing at the start: the three terms are ε(∅, ∅) + s_I·(…) + s_T·(…)",
               fr="ε(∅, ∅) manque au départ : les trois termes sont ε(∅, ∅) + s_I·(…) + s_T·(…)"): s_I * (image - none) + s_T * (both - image),
        }
        got = call(name, fn, both.clone(), image.clone(), none.clone(), s_T, s_I)
        problem = diagnose(name, got, expected, mistakes=mistakes, atol=1e-5)
        if problem is not None:
            return problem
        if not torch.allclose(call(name, fn, both, image, none, 1.0, 1.0), both, atol=1e-6):
            return failed(name, tr(en="with s_T = s_I = 1 the result must be ε(I, T), the plain conditional model",
                                   fr="avec s_T = s_I = 1 le résultat doit être ε(I, T), le modèle conditionnel seul"))
        return passed(name, tr(en="two guidances stacked: towards the image from nothing, then towards the text from the image alone; "
                                  "s_T = s_I = 1 gives ε(I, T) back",
                               fr="deux guidances empilées : vers l'image en partant de rien, puis vers le texte en partant de l'image seule ; "
                                  "s_T = s_I = 1 redonne ε(I, T)"))

    return run(name, body)


HINTS = {
    "dual_guidance": (
        {"en": "lesson 07's guidance twice: first from nothing towards the image, then from the image alone towards image and text.",
         "fr": "la guidance de la leçon 07, deux fois : d'abord de rien vers l'image, puis de l'image seule vers l'image et le texte."},
        {"en": "ε̃ = ε(∅, ∅) + s_I·(ε(I, ∅) − ε(∅, ∅)) + s_T·(ε(I, T) − ε(I, ∅)); here eps_both = ε(I, T), eps_image = ε(I, ∅), eps_none = ε(∅, ∅).",
         "fr": "ε̃ = ε(∅, ∅) + s_I·(ε(I, ∅) − ε(∅, ∅)) + s_T·(ε(I, T) − ε(I, ∅)) ; ici eps_both = ε(I, T), eps_image = ε(I, ∅), eps_none = ε(∅, ∅)."},
        {"en": "return eps_none + s_I * (eps_image - eps_none) + s_T * (eps_both - eps_image)",
         "fr": "return eps_none + s_I * (eps_image - eps_none) + s_T * (eps_both - eps_image)"},
    ),
    "start_index": (
        {"en": "of the S instants of the grid, the last ⌊S·strength⌋ run; the index of the first one that runs is how many come before it.",
         "fr": "des S instants de la grille, les ⌊S·force⌋ derniers tournent ; l'indice du premier qui tourne, c'est le nombre de ceux qui le "
               "précèdent."},
        {"en": "kept = min(int(steps · strength), steps) — int, not round: the libraries floor; the index is steps − kept.",
         "fr": "kept = min(int(steps · strength), steps) — int, pas round : les bibliothèques prennent la partie entière ; l'indice vaut "
               "steps − kept."},
        {"en": "kept = min(int(steps * strength), steps)\n   return steps - kept",
         "fr": "kept = min(int(steps * strength), steps)\n   return steps - kept"},
    ),
    "inpaint_blend": (
        {"en": "keep the sampler's latent where m = 1; elsewhere put the known image's latent, noised to the instant the sampler has "
               "reached, so both halves carry the same amount of noise.",
         "fr": "gardez le latent de l'échantillonneur là où m = 1 ; ailleurs mettez le latent de l'image connue, bruité jusqu'à l'instant "
               "atteint par l'échantillonneur, pour que les deux moitiés portent autant de bruit."},
        {"en": "known = √ᾱ_s·z_0 + √(1 − ᾱ_s)·ε (lesson 01's q(z_s | z_0)); result = m·z + (1 − m)·known.",
         "fr": "known = √ᾱ_s·z_0 + √(1 − ᾱ_s)·ε (la q(z_s | z_0) de la leçon 01) ; résultat = m·z + (1 − m)·known."},
        {"en": "known = abar_s.sqrt() * z0_known + (1 - abar_s).sqrt() * eps\n   return m * z + (1 - m) * known",
         "fr": "known = abar_s.sqrt() * z0_known + (1 - abar_s).sqrt() * eps\n   return m * z + (1 - m) * known"},
    ),
}
