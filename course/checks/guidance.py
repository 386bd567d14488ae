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
            }
            problem = diagnose(f"{name} (w = {w})", actual, expected, mistakes=mistakes, atol=1e-5)
            if problem is not None:
                return problem
        return passed(name, tr(en="w·ε(c) + (1 − w)·ε(∅): w = 0 unconditional, w = 1 conditional, w > 1 guided",
                               fr="w·ε(c) + (1 − w)·ε(∅) : w = 0 non conditionnel, w = 1 conditionnel, w > 1 guidé"))

    return run(name, body)


HINTS = {
    "guidance": (
        {"en": "mix the two predictions: w = 1 must give ε(c) alone, w = 0 ε(∅) alone, w > 1 goes past ε(c), away from ε(∅).",
         "fr": "mélangez les deux prédictions : w = 1 doit donner ε(c) seul, w = 0 ε(∅) seul, w > 1 va au-delà de ε(c), loin de ε(∅)."},
        {"en": "the slide's form: ε̃ = w·ε(c) + (1 − w)·ε(∅), which is ε(∅) + w·(ε(c) − ε(∅)).",
         "fr": "la forme de la diapositive : ε̃ = w·ε(c) + (1 − w)·ε(∅), c'est-à-dire ε(∅) + w·(ε(c) − ε(∅))."},
        {"en": "return eps_uncond + w * (eps_cond - eps_uncond)", "fr": "return eps_uncond + w * (eps_cond - eps_uncond)"},
    ),
}
