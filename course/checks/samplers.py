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
            tr(en="a sign error in x̂_0: the noise must be subtracted, x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t",
               fr="erreur de signe dans x̂_0 : le bruit doit être retranché, x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t"):
                a_prev.sqrt() * ((x_t + (1 - a_t).sqrt() * eps) / a_t.sqrt()) + (1 - a_prev).sqrt() * eps,
            tr(en="x̂_0 is not divided by √ᾱ_t",
               fr="x̂_0 n'est pas divisé par √ᾱ_t"): a_prev.sqrt() * (x_t - (1 - a_t).sqrt() * eps) + (1 - a_prev).sqrt() * eps,
            tr(en="the ε̂ term uses the noise level of t, √(1 − ᾱ_t), instead of that of t_prev, √(1 − ᾱ_prev)",
               fr="le terme en ε̂ garde le niveau de bruit de t, √(1 − ᾱ_t), au lieu de celui de t_prev, √(1 − ᾱ_prev)"):
                a_prev.sqrt() * x0 + (1 - a_t).sqrt() * eps,
            tr(en="the result is x̂_0 itself: that jumps straight to t = 0 instead of stopping at t_prev",
               fr="le résultat est x̂_0 lui-même : on saute directement à t = 0 au lieu de s'arrêter à t_prev"): x0,
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


def _toy_eps(x: torch.Tensor, t) -> torch.Tensor:
    """A fixed "network" whose answer depends on x and on the instant t, so that every mistake shows."""
    return 0.3 * x + 1e-3 * torch.as_tensor(t, dtype=x.dtype)


def _reference_ddim(model, x, grid, schedule, instants=None) -> torch.Tensor:
    """The DDIM loop (η = 0) written out, for the checker: ε̂ at t, then the step to the next instant."""
    instants = list(zip(grid[:-1], grid[1:])) if instants is None else instants
    for t, s in instants:
        eps = model(x, t)
        a_t, a_s = schedule.abar(t).to(x.dtype), schedule.abar(s).to(x.dtype)
        x = a_s.sqrt() * (x - (1 - a_t).sqrt() * eps) / a_t.sqrt() + (1 - a_s).sqrt() * eps
    return x


def check_ddim_sampler(fn: Callable) -> CheckResult:
    """Check ``fn(model, x, grid, schedule)``: the DDIM loop over a grid t_0 > t_1 > … > 0, ε̂ = model(x, t) at each t."""
    from course.grids import spaced
    from course.noise_schedule import NoiseSchedule
    from course.schedules import get_betas

    name = "ddim_sampler"

    def body() -> CheckResult:
        schedule = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000))
        grid = spaced(1000, 6)
        x = torch.randn(2, 3, generator=torch.Generator().manual_seed(4))
        pairs = list(zip(grid[:-1], grid[1:]))
        expected = _reference_ddim(_toy_eps, x, grid, schedule)
        actual = call(name, fn, _toy_eps, x.clone(), grid.clone(), schedule)
        at_prev = lambda x_, t: _toy_eps(x_, dict((float(a), b) for a, b in pairs)[float(t)])  # noqa: E731  ε̂ read at t_prev
        step_numbers = {float(t): i for i, t in enumerate(grid)}
        mistakes = {
            tr(en="the network is asked at t_prev: ε̂ must be predicted at the current instant t",
               fr="le réseau est interrogé en t_prev : ε̂ doit être prédit à l'instant courant t"):
                _reference_ddim(at_prev, x, grid, schedule),
            tr(en="the loop stops one step early: the last step, down to t = 0, is missing",
               fr="la boucle s'arrête un pas trop tôt : il manque le dernier pas, jusqu'à t = 0"):
                _reference_ddim(_toy_eps, x, grid, schedule, pairs[:-1]),
            tr(en="x is never updated: assign the step's result back to x at each iteration",
               fr="x n'est jamais mis à jour : réaffectez le résultat du pas à x à chaque itération"): x,
            tr(en="the network gets the step number i instead of the instant t = grid[i]",
               fr="le réseau reçoit le numéro du pas i au lieu de l'instant t = grid[i]"):
                _reference_ddim(lambda x_, t: _toy_eps(x_, step_numbers[float(t)]), x, grid, schedule),
            tr(en="ᾱ_t and ᾱ_prev are swapped in the step",
               fr="ᾱ_t et ᾱ_prev sont intervertis dans le pas"):
                _swapped(x, pairs, schedule),
            tr(en="time runs forward: the grid must be walked from its first instant (the noisiest) down to 0",
               fr="le temps avance : la grille se parcourt depuis son premier instant (le plus bruité) jusqu'à 0"):
                _reference_ddim(_toy_eps, x, grid.flip(0), schedule),
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-4,
                           shape_hint=tr(en="return x after the last step, with the shape of the x you were given",
                                         fr="renvoyez x après le dernier pas, avec la forme du x reçu"))
        detail = tr(en=f"{len(pairs)} steps from t = {int(grid[0])} down to 0, ε̂ at each t, then the DDIM step",
                    fr=f"{len(pairs)} pas de t = {int(grid[0])} jusqu'à 0, ε̂ à chaque t, puis le pas DDIM")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def _swapped(x, pairs, schedule):
    """The loop with ᾱ_t and ᾱ_prev exchanged in every step."""
    for t, s in pairs:
        eps = _toy_eps(x, t)
        a_t, a_s = schedule.abar(s).to(x.dtype), schedule.abar(t).to(x.dtype)
        x = a_s.sqrt() * (x - (1 - a_t).sqrt() * eps) / a_t.sqrt() + (1 - a_s).sqrt() * eps
    return x


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
    "ddim_sampler": (
        {"en": "walk the grid pair by pair, (t, t_prev) = (grid[0], grid[1]), (grid[1], grid[2]), … down to 0: at each pair, ask the "
               "network for ε̂ at t, then take one DDIM step to t_prev.",
         "fr": "parcourez la grille paire par paire, (t, t_prev) = (grid[0], grid[1]), (grid[1], grid[2]), … jusqu'à 0 : à chaque "
               "paire, demandez ε̂ au réseau en t, puis faites un pas DDIM jusqu'à t_prev."},
        {"en": "for each pair: ε̂ = model(x, t); x ← my_ddim_step(x, ε̂, ᾱ_t, ᾱ_prev) with ᾱ_t = schedule.abar(t); return x at the end.",
         "fr": "pour chaque paire : ε̂ = model(x, t) ; x ← my_ddim_step(x, ε̂, ᾱ_t, ᾱ_prev) avec ᾱ_t = schedule.abar(t) ; renvoyez x à la fin."},
        {"en": "for t, t_prev in zip(grid[:-1], grid[1:]):\n       eps = model(x, t)\n"
               "       x = my_ddim_step(x, eps, schedule.abar(t), schedule.abar(t_prev))\n   return x",
         "fr": "for t, t_prev in zip(grid[:-1], grid[1:]):\n       eps = model(x, t)\n"
               "       x = my_ddim_step(x, eps, schedule.abar(t), schedule.abar(t_prev))\n   return x"},
    ),
}
