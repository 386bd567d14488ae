"""Checks for lesson 10 (what diffusion gets wrong): a Wilson interval, the bag-of-words distance, Attend-and-Excite's loss."""

from __future__ import annotations

import math
from typing import Callable

import torch

from course.attend_excite import excite_loss
from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.geneval import wilson
from course.language import tr
from course.text_binding import relative_distance


def check_wilson(fn: Callable) -> CheckResult:
    """Check ``fn(k, n)`` = the 95 % Wilson score interval (lo, hi) of the proportion k/n (Wilson 1927)."""
    name = "wilson"

    def body() -> CheckResult:
        for k, n in ((7, 20), (0, 16), (16, 16), (60, 128), (1, 3)):
            out = call(name, fn, k, n)
            try:
                lo, hi = (float(v) for v in out)
            except (TypeError, ValueError):
                return failed(name, tr(en=f"expected two numbers (lo, hi), got {out!r}", fr=f"deux nombres (lo, hi) étaient attendus, reçu {out!r}"))
            expected = wilson(k, n)
            p, z = k / n, 1.96
            normal = (p - z * math.sqrt(p * (1 - p) / n), p + z * math.sqrt(p * (1 - p) / n))
            if all(abs(a - b) < 1e-4 for a, b in zip((lo, hi), expected)):
                continue
            got, want = f"({lo:.4f}, {hi:.4f})", f"({expected[0]:.4f}, {expected[1]:.4f})"
            where = tr(en=f"for k = {k}, n = {n}: got {got}, expected {want}", fr=f"pour k = {k}, n = {n} : reçu {got}, attendu {want}")
            clipped = (max(0.0, normal[0]), min(1.0, normal[1]))
            if any(all(abs(a - b) < 1e-4 for a, b in zip((lo, hi), c)) for c in (normal, clipped)):
                return failed(name, where + tr(
                    en=" — that is the normal approximation p ± z·√(p(1 − p)/n); Wilson's centre moves towards ½: (p + z²/2n)/(1 + z²/n)",
                    fr=" — c'est l'approximation normale p ± z·√(p(1 − p)/n) ; le milieu de l'intervalle de Wilson se rapproche de ½ : (p + z²/2n)/(1 + z²/n)",
                ))
            if lo > hi:
                return failed(name, where + tr(en=" — lo and hi are swapped", fr=" — lo et hi sont intervertis"))
            return failed(name, where)
        return passed(name, tr(
            en="centre (p + z²/2n)/(1 + z²/n), half-width z·√(p(1 − p)/n + z²/4n²)/(1 + z²/n): never outside [0, 1], never empty at 0/n",
            fr="milieu (p + z²/2n)/(1 + z²/n), demi-largeur z·√(p(1 − p)/n + z²/4n²)/(1 + z²/n) : jamais hors de [0, 1], "
               "jamais vide en 0/n",
        ))

    return run(name, body)


def check_relative_distance(fn: Callable) -> CheckResult:
    """Check ``fn(s, s_other, where)`` = Σ‖s − s'‖² / Σ‖s‖² over the positions where ``where`` is 1."""
    name = "relative_distance"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(10)
        s, s2 = torch.randn(3, 6, 4, generator=g), torch.randn(3, 6, 4, generator=g)
        where = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
        expected = relative_distance(s, s2, where)
        actual = call(name, fn, s.clone(), s2.clone(), where.clone())
        w = where.float()
        mistakes = {
            tr(en="the positions where `where` is 0 were counted too: multiply each position's squared norm by `where`",
               fr="les positions où `where` vaut 0 ont été comptées aussi : multipliez la norme au carré de chaque position par `where`"):
                (s - s2).square().sum() / s.square().sum(),
            tr(en="only the numerator is restricted to `where`: the denominator Σ‖s‖² must be taken over the same positions",
               fr="seul le numérateur est restreint à `where` : le dénominateur Σ‖s‖² doit porter sur les mêmes positions"):
                ((s - s2).square().sum(-1) * w).sum() / s.square().sum(),
            tr(en="norms, not squared norms: Σ‖s − s'‖² / Σ‖s‖²",
               fr="des normes, et non des normes au carré : Σ‖s − s'‖² / Σ‖s‖²"):
                ((s - s2).norm(dim=-1) * w).sum() / (s.norm(dim=-1) * w).sum(),
            tr(en="a mean of per-position ratios, not a ratio of sums",
               fr="une moyenne des rapports position par position, et non un rapport de sommes"):
                (((s - s2).square().sum(-1) / s.square().sum(-1)) * w).sum() / w.sum(),
        }
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            return failed(name, tr(
                en=f"expected one number (a 0-d tensor), got shape {tuple(actual.shape)} — sum over batch, positions and features",
                fr=f"un seul nombre était attendu (un tenseur de dimension 0), reçu la forme {tuple(actual.shape)} — sommez sur le lot, "
                   "les positions et les caractéristiques",
            ))
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5, check_dtype=False)
        detail = tr(en="Σ‖s − s'‖² / Σ‖s‖² over the chosen positions: 0 = the same states, about 1 = unrelated ones",
                    fr="Σ‖s − s'‖² / Σ‖s‖² sur les positions choisies : 0 = les mêmes états, environ 1 = des états sans rapport")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def check_excite_loss(fn: Callable) -> CheckResult:
    """Check ``fn(strengths, counts)`` = per image, max over its ``counts[b]`` subjects of 1 − strength (Chefer et al. 2023, eq. 3)."""
    name = "excite_loss"

    def body() -> CheckResult:
        strengths = torch.tensor([[0.9, 0.2, 0.0], [0.4, 0.7, 0.6], [0.8, 0.0, 0.0]])
        counts = [2, 3, 1]
        expected = excite_loss(strengths, counts)
        actual = call(name, fn, strengths.clone(), list(counts))
        mistakes = {
            tr(en="the subjects' mean, not their max: the loss must follow the *most neglected* subject",
               fr="la moyenne des sujets, et non leur max : la perte doit suivre le sujet *le plus négligé*"): torch.stack(
                [(1 - strengths[b, :n]).mean() for b, n in enumerate(counts)]),
            tr(en="the best-attended subject was taken (min of 1 − strength): the loss must follow the weakest one",
               fr="le sujet le mieux servi par l'attention a été pris (min de 1 − force) : la perte doit suivre le plus faible"): torch.stack(
                [(1 - strengths[b, :n]).amin() for b, n in enumerate(counts)]),
            tr(en="the unused columns (beyond counts[b]) were counted: an empty slot of strength 0 is not a neglected subject",
               fr="les colonnes inutilisées (au-delà de counts[b]) ont été comptées : une case vide, de force 0, n'est pas un sujet négligé"):
                (1 - strengths).amax(1),
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-6,
                           shape_hint=tr(en="one loss per image: (B,) — a max over that image's first counts[b] subjects",
                                         fr="une perte par image : (B,) — un max sur les counts[b] premiers sujets de cette image"))
        detail = tr(en="max over the subjects of 1 − strength: the gradient goes to the most neglected word",
                    fr="max sur les sujets de 1 − force : le gradient va au mot le plus négligé")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)
