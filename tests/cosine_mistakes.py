"""Wrong versions of the cosine schedule (Nichol & Dhariwal 2021, eq. 17) and what the checker must call each one,
in English and in French: one table for tests/test_checks_lessons.py and tests/test_checks_french.py."""

from __future__ import annotations

import math

import torch


def cosine(f_of_u, normalise: bool = True, length: int = 1):
    """ᾱ_t = f(t/T) / f(0) over t = 0 … T (+ length − 1), for a given f(u, s, T)."""

    def fn(T, s):
        u = torch.arange(T + length, dtype=torch.float64) / T
        f = f_of_u(u, s, T)
        return f / f[0] if normalise else f

    return fn


def right(u, s, T):
    return torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2


# (learner's function, words of the English message, words of the French message)
MISTAKES = [
    (cosine(right, normalise=False), ("division by f(0)",), ("la division par f(0) manque",)),
    (cosine(lambda u, s, T: torch.cos((u + s) / (1 + s) * math.pi / 2)), ("not squared",), ("élevé au carré",)),
    (cosine(lambda u, s, T: torch.cos(u * math.pi / 2) ** 2), ("offset s is missing",), ("le décalage s manque",)),
    (cosine(lambda u, s, T: torch.cos((u + s) * math.pi / 2) ** 2), ("(1 + s) is missing",), ("(1 + s) manque",)),
    (cosine(lambda u, s, T: right(u * T, s, T)), ("division t/T is missing",), ("la division t/T manque",)),
    (cosine(lambda u, s, T: right(u / T, s, T)), ("divided by T twice",), ("divisé deux fois par T",)),
    (cosine(right, length=0), ("wrong shape", "T + 1"), ("longueur T + 1",)),
]
