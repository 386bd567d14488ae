"""Checks for lesson 05 (latent space): the KL term of the autoencoder."""

from __future__ import annotations

from typing import Callable

import torch

from course.autoencoder import kl_divergence
from course.checks.core import CheckResult, call, diagnose, passed, run


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
            "a mean over every value instead of a sum per image (then a mean over the batch)": per_value.mean(),
            "the factor ½ is missing": 2 * expected,
            "σ² was taken as logvar itself: σ² = exp(logvar)": (0.5 * (mean.square() + logvar - 1 - logvar)).flatten(1).sum(1).mean(),
            "a sum over the batch as well (it should be averaged over images)": per_value.sum(),
            "the − log σ² term has the wrong sign": (0.5 * (mean.square() + logvar.exp() - 1 + logvar)).flatten(1).sum(1).mean(),
        }
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            return CheckResult(False, f"❌ {name}: expected one number (a 0-d tensor), got shape {tuple(actual.shape)}")
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-4)
        return problem if problem is not None else passed(name, "KL(N(μ, σ²) ‖ N(0, 1)), summed per image, averaged over the batch")

    return run(name, body)
