"""Checks for lesson 10 (what diffusion gets wrong): a Wilson interval, the bag-of-words distance, Attend-and-Excite's loss
and its update of the latent (strengths → loss → gradient → step)."""

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


def excite_update(z, t, strengths_at, counts, step_size):
    """One Attend-and-Excite update of the latent (Chefer et al. 2023, §4): z − α·∇_z Σ_b L_b(z), detached, where
    L_b is :func:`course.attend_excite.excite_loss` of image b's strengths ``strengths_at(z, t)`` (B, S)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        loss = excite_loss(strengths_at(z, t), counts)  # (B,)
        (grad,) = torch.autograd.grad(loss.sum(), z)  # each image's latent gets the gradient of its own loss
    return (z - step_size * grad).detach()


def check_excite_update(fn: Callable) -> CheckResult:
    """Check ``fn(z, t, strengths_at, counts, step_size)`` = :func:`excite_update`, on a small differentiable stand-in
    for the U-Net's subject strengths."""
    name = "excite_update"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(11)
        weights = torch.randn(16, 3, generator=g)
        z = torch.randn(3, 4, 2, 2, generator=g)
        counts, step, t = [2, 3, 1], 0.5, torch.tensor(801)

        def strengths_at(z, t):  # (B, 3): a smooth function of z, like the maps' peaks
            return torch.sigmoid(z.flatten(1) @ weights + 1e-3 * float(t))

        def moved(loss_of, sign=-1.0, size=step, scale=1.0):
            with torch.enable_grad():
                leaf = z.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(loss_of(strengths_at(leaf, t)), leaf)
            return z + sign * size * scale * grad

        expected = excite_update(z, t, strengths_at, counts, step)
        actual = call(name, fn, z.clone(), t.clone(), strengths_at, list(counts), step, error_hints={
            "does not require grad": tr(
                en="z must require a gradient before strengths_at(z, t) runs: z = z.detach().requires_grad_(True)",
                fr="z doit enregistrer son gradient avant l'appel à strengths_at(z, t) : z = z.detach().requires_grad_(True)"),
            "grad can be implicitly created only for scalar outputs": tr(
                en="the gradient needs one number: excite_loss gives one loss per image, (B,); take their sum",
                fr="le gradient demande un seul nombre : excite_loss donne une perte par image, (B,) ; prenez leur somme"),
        })
        if isinstance(actual, torch.Tensor) and actual.requires_grad:
            return failed(name, tr(en="the new latent still carries the autograd graph: return it detached, (z - step_size * grad).detach()",
                                   fr="le nouveau latent porte encore le graphe d'autograd : renvoyez-le détaché, (z - step_size * grad).detach()"))
        total = lambda s: excite_loss(s, counts).sum()  # noqa: E731
        mistakes = {
            tr(en="the latent went up the gradient: z − α·∇L lowers the loss, z + α·∇L raises it",
               fr="le latent a remonté le gradient : z − α·∇L fait baisser la perte, z + α·∇L la fait monter"): moved(total, sign=1.0),
            tr(en="the losses were averaged over the images: each latent then moves B times too little; sum them, each image has its own loss",
               fr="les pertes ont été moyennées sur les images : chaque latent bouge alors B fois trop peu ; sommez-les, chaque image a sa "
                  "propre perte"): moved(total, scale=1 / len(counts)),
            tr(en="the step size is missing: z − step_size·∇L",
               fr="le pas manque : z − step_size·∇L"): moved(total, size=1.0),
            tr(en="the loss is not Attend-and-Excite's: excite_loss(strengths, counts), the max over each image's subjects, not their mean",
               fr="ce n'est pas la bonne perte : excite_loss(strengths, counts), le max sur les sujets de chaque image, et non leur moyenne"):
                moved(lambda s: torch.stack([(1 - s[b, :n]).mean() for b, n in enumerate(counts)]).sum()),
            tr(en="the step was returned, not the moved latent: return z − step_size·∇L",
               fr="c'est le pas qui a été renvoyé, et non le latent déplacé : renvoyez z − step_size·∇L"): moved(total) - z,
            tr(en="the gradient was returned, not the moved latent: return z − step_size·∇L",
               fr="c'est le gradient qui a été renvoyé, et non le latent déplacé : renvoyez z − step_size·∇L"): (z - moved(total, size=1.0)),
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5)
        detail = tr(en="z − α·∇_z Σ_b L_b: each image's latent moves to excite its most neglected subject",
                    fr="z − α·∇_z Σ_b L_b : le latent de chaque image bouge pour exciter son sujet le plus négligé")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def _code(*lines: str) -> dict[str, str]:
    text = "\n   ".join(lines)
    return {"en": text, "fr": text}


HINTS = {
    "wilson": (
        {"en": "compared with the normal interval, Wilson's moves the centre from p towards ½ and keeps some width even at 0/n: "
               "two formulas, both from p = k/n, n and z.",
         "fr": "par rapport à l'intervalle normal, celui de Wilson rapproche le milieu de ½ et garde de la largeur même en 0/n : "
               "deux formules, toutes deux à partir de p = k/n, de n et de z."},
        {"en": "p = k/n; centre = (p + z²/2n)/(1 + z²/n); half = z·√(p(1 − p)/n + z²/4n²)/(1 + z²/n); (centre − half, centre + half), "
               "kept inside [0, 1].",
         "fr": "p = k/n ; milieu = (p + z²/2n)/(1 + z²/n) ; demi-largeur = z·√(p(1 − p)/n + z²/4n²)/(1 + z²/n) ; "
               "(milieu − demi-largeur, milieu + demi-largeur), gardés dans [0, 1]."},
        _code("p = k / n",
              "centre = (p + z * z / (2 * n)) / (1 + z * z / n)",
              "half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)",
              "return max(0.0, centre - half), min(1.0, centre + half)"),
    ),
    "relative_distance": (
        {"en": "a ratio of two sums over the chosen positions only: squared distances between the two states above, squared "
               "norms of s below.",
         "fr": "un rapport de deux sommes, sur les seules positions choisies : les distances au carré entre les deux états en "
               "haut, les normes au carré de s en bas."},
        {"en": "per position, ‖s − s'‖² is the sum over D of (s − s')², a (B, L) tensor; multiply it by where (0 or 1) and sum "
               "everything; the same for ‖s‖²; divide.",
         "fr": "à chaque position, ‖s − s'‖² est la somme sur D de (s − s')², un tenseur (B, L) ; multipliez-le par where (0 ou 1) "
               "et sommez tout ; de même pour ‖s‖² ; divisez."},
        _code("where = where.to(s.dtype)",
              "return ((s - s_other).square().sum(-1) * where).sum() / (s.square().sum(-1) * where).sum()"),
    ),
    "excite_loss": (
        {"en": "for each image, look only at its own subjects (the first counts[b] columns): its loss is that of its most "
               "neglected subject.",
         "fr": "pour chaque image, ne regardez que ses propres sujets (les counts[b] premières colonnes) : sa perte est celle de "
               "son sujet le plus négligé."},
        {"en": "loss_b = max over s < counts[b] of (1 − strengths[b, s]); one number per image, gathered into a (B,) tensor.",
         "fr": "perte_b = max sur s < counts[b] de (1 − strengths[b, s]) ; un nombre par image, rassemblés en un tenseur (B,)."},
        _code("return torch.stack([(1 - strengths[b, :n]).amax() for b, n in enumerate(counts)])"),
    ),
    "excite_update": (
        {"en": "make z able to record its gradient (a \"leaf\" tensor), compute the strengths then the loss from it, take the "
               "gradient of the loss with respect to z and take a step in the opposite direction; return a plain, detached tensor.",
         "fr": "rendez z capable d'enregistrer son gradient (un tenseur « feuille »), calculez à partir de lui les forces puis la "
               "perte, prenez le gradient de la perte par rapport à z et faites un pas dans le sens opposé ; renvoyez un tenseur "
               "ordinaire, détaché."},
        {"en": "L = Σ_b excite_loss(strengths_at(z, t), counts)_b; z_new = z − step_size·∇_z L, detached from the graph.",
         "fr": "L = Σ_b excite_loss(strengths_at(z, t), counts)_b ; z_nouveau = z − step_size·∇_z L, détaché du graphe."},
        _code("z = z.detach().requires_grad_(True)",
              "loss = excite_loss(strengths_at(z, t), counts)",
              "(grad,) = torch.autograd.grad(loss.sum(), z)",
              "return (z - step_size * grad).detach()"),
    ),
}
