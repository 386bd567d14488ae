"""Checks for lesson 06 (schedulers): one deterministic DDIM step and one Euler step."""

from __future__ import annotations

from typing import Callable

import torch

from course.checks.core import CheckResult, call, diagnose, passed, run
from course.language import tr


def check_ddim_step(fn: Callable) -> CheckResult:
    """Check ``fn(x_t, eps, abar_t, abar_prev)`` = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev)·ε, x̂_0 = (x_t − √(1 − ᾱ_t)·ε)/√ᾱ_t (η = 0)."""
    name = "ddim_step"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(9)
        x_t, eps = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
        a_t, a_prev = torch.tensor(0.3), torch.tensor(0.6)
        x0 = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        expected = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        actual = call(name, fn, x_t.clone(), eps.clone(), a_t.clone(), a_prev.clone())
        mistakes = {
            tr(en="ᾱ_t and ᾱ_prev are swapped",
               fr="ᾱ_t et ᾱ_prev sont intervertis"):
                a_t.sqrt() * ((x_t - (1 - a_prev).sqrt() * eps) / a_prev.sqrt()) + (1 - a_t).sqrt() * eps,
            tr(en="the ε term is missing: the step must re-noise x̂_0 to the level of t_prev",
               fr="le terme en ε manque : le pas doit rebruiter x̂_0 jusqu'au niveau de t_prev"): a_prev.sqrt() * x0,
            tr(en="the square roots are missing on ᾱ",
               fr="les racines carrées sur ᾱ manquent"): a_prev * ((x_t - (1 - a_t) * eps) / a_t) + (1 - a_prev) * eps,
            tr(en="x̂_0 is multiplied by ᾱ_prev, not by √ᾱ_prev",
               fr="x̂_0 est multiplié par ᾱ_prev, et non par √ᾱ_prev"): a_prev * x0 + (1 - a_prev).sqrt() * eps,
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5)
        detail = tr(en="predict x̂_0, then re-noise it to t_prev with the same ε",
                    fr="prédire x̂_0, puis le rebruiter jusqu'à t_prev avec le même ε")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def check_euler_step(fn: Callable) -> CheckResult:
    """Check ``fn(y, eps, sigma, sigma_next)`` = y + (σ_next − σ)·ε, an Euler step of dy/dσ = ε (Karras et al. 2022)."""
    name = "euler_step"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(10)
        y, eps = torch.randn(3, 4, generator=g) * 5, torch.randn(3, 4, generator=g)
        s, s_next = torch.tensor(4.0), torch.tensor(2.5)
        expected = y + (s_next - s) * eps
        actual = call(name, fn, y.clone(), eps.clone(), s.clone(), s_next.clone())
        mistakes = {
            tr(en="the step goes the wrong way: it is (σ_next − σ)·ε, and σ_next < σ",
               fr="le pas va dans le mauvais sens : c'est (σ_next − σ)·ε, et σ_next < σ"): y + (s - s_next) * eps,
            tr(en="the step size is missing: multiply ε by (σ_next − σ)",
               fr="la taille du pas manque : multipliez ε par (σ_next − σ)"): y - eps,
            tr(en="the derivative was taken as x̂_0 instead of ε = (y − x̂_0)/σ",
               fr="la dérivée a été prise égale à x̂_0 au lieu de ε = (y − x̂_0)/σ"): y + (s_next - s) * (y - s * eps),
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5)
        return problem if problem is not None else passed(name, "y_next = y + (σ_next − σ)·ε")

    return run(name, body)


HINTS = {
    "ddim_step": (
        {"en": "guess the clean image x̂_0 from x_t and ε̂, then noise it again, to the level of t_prev, with the same ε̂.",
         "fr": "devinez l'image propre x̂_0 à partir de x_t et de ε̂, puis rebruitez-la jusqu'au niveau de t_prev, avec le même ε̂."},
        {"en": "x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t, then x_prev = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev)·ε̂.",
         "fr": "x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t, puis x_prev = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev)·ε̂."},
        {"en": "x0_hat = (x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()\n   return abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps",
         "fr": "x0_hat = (x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()\n   return abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps"},
    ),
    "euler_step": (
        {"en": "an Euler step follows the slope for one step: new value = old value + slope × change of σ.",
         "fr": "un pas d'Euler suit la pente sur un pas : nouvelle valeur = ancienne + pente × variation de σ."},
        {"en": "the slope dy/dσ is ε̂; σ goes down, so the change σ_next − σ is negative: y + (σ_next − σ)·ε̂.",
         "fr": "la pente dy/dσ vaut ε̂ ; σ diminue, donc la variation σ_next − σ est négative : y + (σ_next − σ)·ε̂."},
        {"en": "return y + (sigma_next - sigma) * eps", "fr": "return y + (sigma_next - sigma) * eps"},
    ),
}
