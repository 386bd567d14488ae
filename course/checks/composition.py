"""Checks for lesson 10 (what diffusion gets wrong): a Wilson interval, the bag-of-words distance, Attend-and-Excite's loss."""

from __future__ import annotations

import math
from typing import Callable

import torch

from course.attend_excite import excite_loss
from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.geneval import wilson
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
                return failed(name, f"expected two numbers (lo, hi), got {out!r}")
            expected = wilson(k, n)
            p, z = k / n, 1.96
            normal = (p - z * math.sqrt(p * (1 - p) / n), p + z * math.sqrt(p * (1 - p) / n))
            if all(abs(a - b) < 1e-4 for a, b in zip((lo, hi), expected)):
                continue
            where = f"for k = {k}, n = {n}: got ({lo:.4f}, {hi:.4f}), expected ({expected[0]:.4f}, {expected[1]:.4f})"
            clipped = (max(0.0, normal[0]), min(1.0, normal[1]))
            if any(all(abs(a - b) < 1e-4 for a, b in zip((lo, hi), c)) for c in (normal, clipped)):
                return failed(name, f"{where} — that is the normal approximation p ± z·√(p(1 − p)/n); Wilson's centre moves towards ½: (p + z²/2n)/(1 + z²/n)")
            if lo > hi:
                return failed(name, f"{where} — lo and hi are swapped")
            return failed(name, f"{where}")
        return passed(name, "centre (p + z²/2n)/(1 + z²/n), half-width z·√(p(1 − p)/n + z²/4n²)/(1 + z²/n): never outside [0, 1], never empty at 0/n")

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
            "the positions where `where` is 0 were counted too: multiply each position's squared norm by `where`":
                (s - s2).square().sum() / s.square().sum(),
            "only the numerator is restricted to `where`: the denominator Σ‖s‖² must be taken over the same positions":
                ((s - s2).square().sum(-1) * w).sum() / s.square().sum(),
            "norms, not squared norms: Σ‖s − s'‖² / Σ‖s‖²": ((s - s2).norm(dim=-1) * w).sum() / (s.norm(dim=-1) * w).sum(),
            "a mean of per-position ratios, not a ratio of sums": (((s - s2).square().sum(-1) / s.square().sum(-1)) * w).sum() / w.sum(),
        }
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            return failed(name, f"expected one number (a 0-d tensor), got shape {tuple(actual.shape)} — sum over batch, positions and features")
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5, check_dtype=False)
        return problem if problem is not None else passed(name, "Σ‖s − s'‖² / Σ‖s‖² over the chosen positions: 0 = the same states, about 1 = unrelated ones")

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
            "the subjects' mean, not their max: the loss must follow the *most neglected* subject": torch.stack(
                [(1 - strengths[b, :n]).mean() for b, n in enumerate(counts)]),
            "the best-attended subject was taken (min of 1 − strength): the loss must follow the weakest one": torch.stack(
                [(1 - strengths[b, :n]).amin() for b, n in enumerate(counts)]),
            "the unused columns (beyond counts[b]) were counted: an empty slot of strength 0 is not a neglected subject": (1 - strengths).amax(1),
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-6,
                           shape_hint="one loss per image: (B,) — a max over that image's first counts[b] subjects")
        return problem if problem is not None else passed(name, "max over the subjects of 1 − strength: the gradient goes to the most neglected word")

    return run(name, body)
