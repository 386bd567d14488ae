"""Checks for lesson 01 (the forward process): closed-form q_sample and the cosine ᾱ_t."""

from __future__ import annotations

import math
from typing import Callable

import torch

from course.checks.core import CheckResult, call, diagnose, passed, run
from course.forward import q_sample
from course.schedules import alphas_cumprod, cosine_alphas_cumprod, linear_betas

_BROADCAST_HINT = "ᾱ_t has one value per image, shape (B,): reshape it to (B, 1, 1, 1) to broadcast over the image"
_MATH_HINT = "math.sqrt/math.cos take one number: use the tensor versions, x.sqrt() or torch.sqrt(x), torch.cos(x)"


def check_q_sample(fn: Callable) -> CheckResult:
    """Check ``fn(x0, t, eps, alphas_cumprod)`` against x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (Ho et al. 2020, eq. 4)."""
    name = "q_sample"

    def body() -> CheckResult:
        gen = torch.Generator().manual_seed(0)
        x0 = torch.randn(4, 3, 8, 8, generator=gen)
        eps = torch.randn(4, 3, 8, 8, generator=gen)
        t = torch.tensor([1, 10, 500, 1000])
        abar = alphas_cumprod(linear_betas(1000)).float()  # float32 like the images, so x_t stays float32
        expected = q_sample(x0, t, eps, abar)
        hints = {"must match the size": _BROADCAST_HINT, "converted to Python scalars": _MATH_HINT}
        # the learner's function gets copies: an in-place answer must not change the reference inputs
        actual = call(name, fn, x0.clone(), t.clone(), eps.clone(), abar.clone(), error_hints=hints)
        a = abar[t].view(-1, 1, 1, 1)
        a_prev = abar[t - 1].view(-1, 1, 1, 1)
        mistakes = {
            "ᾱ_{t−1} was used instead of ᾱ_t (an off-by-one in the index)": a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps,
            "the square roots are missing: use √ᾱ_t and √(1 − ᾱ_t)": a * x0 + (1 - a) * eps,
            "the square root on ᾱ_t is missing (the x_0 term is √ᾱ_t·x_0)": a * x0 + (1 - a).sqrt() * eps,
            "the square root on 1 − ᾱ_t is missing (the noise term is √(1 − ᾱ_t)·ε)": a.sqrt() * x0 + (1 - a) * eps,
            "the coefficients of x_0 and ε are swapped": (1 - a).sqrt() * x0 + a.sqrt() * eps,
            "the noise term √(1 − ᾱ_t)·ε is missing": a.sqrt() * x0,
            "√(1 − ᾱ_t) was written √1 − ᾱ_t: the square root covers the whole 1 − ᾱ_t": a.sqrt() * x0 + (1 - a.sqrt()) * eps,
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, dtype_hint="x_t must keep the dtype of x0: cast ᾱ_t with .to(x0)")
        return problem if problem is not None else passed(name, "x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε")

    return run(name, body)


def _cosine_mistakes(T: int, s: float) -> dict[str, torch.Tensor]:
    t = torch.arange(T + 1, dtype=torch.float64)
    angle = (t / T + s) / (1 + s) * math.pi / 2
    f = torch.cos(angle) ** 2
    f_no_s = torch.cos(t / T * math.pi / 2) ** 2
    u_twice = t / T / T
    f_twice = torch.cos((u_twice + s) / (1 + s) * math.pi / 2) ** 2
    f_no_T = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return {
        "the division by f(0) is missing (ᾱ_0 must be exactly 1)": f,
        "t was divided by T twice (t/T is already in [0, 1])": f_twice / f_twice[0],
        "the division t/T is missing: the cosine needs t/T ∈ [0, 1], not t": f_no_T / f_no_T[0],
        "the cosine is not squared": torch.cos(angle) / torch.cos(angle[0]),
        "the offset s is missing": f_no_s / f_no_s[0],
        "the division by (1 + s) is missing": (torch.cos((t / T + s) * math.pi / 2) ** 2) / (math.cos(s * math.pi / 2) ** 2),
    }


def check_cosine_alphas_cumprod(fn: Callable) -> CheckResult:
    """Check ``fn(T, s)`` against ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2) (Nichol & Dhariwal 2021, eq. 17)."""
    name = "cosine_alphas_cumprod"

    def body() -> CheckResult:
        for T, s in ((1000, 0.008), (50, 0.02)):
            actual = call(name, fn, T, s, error_hints={"converted to Python scalars": _MATH_HINT})
            if isinstance(actual, torch.Tensor):
                actual = actual.double()
            problem = diagnose(
                f"{name}(T={T}, s={s})",
                actual,
                cosine_alphas_cumprod(T, s, dtype=torch.float64),
                atol=1e-6,
                mistakes=_cosine_mistakes(T, s),
                check_dtype=False,
                shape_hint="ᾱ_t has one value per t ∈ {0, …, T}: length T + 1",
            )
            if problem is not None:
                if T != 1000 and "looks like" not in problem.message:
                    return CheckResult(False, problem.message + " — it worked for T=1000, s=0.008: are T or s hard-coded?")
                return problem
        return passed(name, "ᾱ_0 = 1 and it falls like a squared cosine to ≈ 0 at t = T")

    return run(name, body)
