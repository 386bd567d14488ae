"""Checks for lesson 05 (latent space): the KL term of the autoencoder."""

from __future__ import annotations

from typing import Callable

import torch

from course.autoencoder import kl_divergence
from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.language import tr


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
