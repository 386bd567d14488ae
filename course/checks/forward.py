"""Checks for lesson 01 (the forward process): closed-form q_sample and the cosine ᾱ_t."""

from __future__ import annotations

import math
from typing import Callable

import torch

from course.checks.core import CheckResult, call, diagnose, passed, run
from course.forward import q_sample
from course.language import tr
from course.schedules import alphas_cumprod, cosine_alphas_cumprod, linear_betas


def _broadcast_hint() -> str:
    return tr(
        en="ᾱ_t has one value per image, shape (B,): reshape it to (B, 1, 1, 1) to broadcast over the image",
        fr="ᾱ_t a une valeur par image, de forme (B,) : donnez-lui la forme (B, 1, 1, 1) pour qu'il s'étende "
           "à toute l'image (broadcasting)",
    )


def _math_hint() -> str:
    return tr(
        en="math.sqrt/math.cos take one number: use the tensor versions, x.sqrt() or torch.sqrt(x), torch.cos(x)",
        fr="math.sqrt/math.cos ne prennent qu'un nombre : utilisez les versions pour tenseurs, x.sqrt() ou "
           "torch.sqrt(x), torch.cos(x)",
    )


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
        hints = {"must match the size": _broadcast_hint(), "converted to Python scalars": _math_hint()}
        # the learner's function gets copies: an in-place answer must not change the reference inputs
        actual = call(name, fn, x0.clone(), t.clone(), eps.clone(), abar.clone(), error_hints=hints)
        a = abar[t].view(-1, 1, 1, 1)
        a_prev = abar[t - 1].view(-1, 1, 1, 1)
        mistakes = {
            tr(en="ᾱ_{t−1} was used instead of ᾱ_t (an off-by-one in the index)",
               fr="ᾱ_{t−1} a été utilisé au lieu de ᾱ_t (un décalage de un dans l'indice)"): a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps,
            tr(en="the square roots are missing: use √ᾱ_t and √(1 − ᾱ_t)",
               fr="les racines carrées manquent : utilisez √ᾱ_t et √(1 − ᾱ_t)"): a * x0 + (1 - a) * eps,
            tr(en="the square root on ᾱ_t is missing (the x_0 term is √ᾱ_t·x_0)",
               fr="la racine carrée de ᾱ_t manque (le terme en x_0 est √ᾱ_t·x_0)"): a * x0 + (1 - a).sqrt() * eps,
            tr(en="the square root on 1 − ᾱ_t is missing (the noise term is √(1 − ᾱ_t)·ε)",
               fr="la racine carrée de 1 − ᾱ_t manque (le terme de bruit est √(1 − ᾱ_t)·ε)"): a.sqrt() * x0 + (1 - a) * eps,
            tr(en="the coefficients of x_0 and ε are swapped",
               fr="les coefficients de x_0 et de ε sont intervertis"): (1 - a).sqrt() * x0 + a.sqrt() * eps,
            tr(en="the noise term √(1 − ᾱ_t)·ε is missing",
               fr="le terme de bruit √(1 − ᾱ_t)·ε manque"): a.sqrt() * x0,
            tr(en="√(1 − ᾱ_t) was written √1 − ᾱ_t: the square root covers the whole 1 − ᾱ_t",
               fr="√(1 − ᾱ_t) a été écrit √1 − ᾱ_t : la racine carrée porte sur tout 1 − ᾱ_t"): a.sqrt() * x0 + (1 - a.sqrt()) * eps,
        }
        dtype_hint = tr(en="x_t must keep the dtype of x0: cast ᾱ_t with .to(x0)",
                        fr="x_t doit garder le dtype de x0 : convertissez ᾱ_t avec `.to(x0)`")
        problem = diagnose(name, actual, expected, mistakes=mistakes, dtype_hint=dtype_hint)
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
        tr(en="the division by f(0) is missing (ᾱ_0 must be exactly 1)",
           fr="la division par f(0) manque (ᾱ_0 doit valoir exactement 1)"): f,
        tr(en="t was divided by T twice (t/T is already in [0, 1])",
           fr="t a été divisé deux fois par T (t/T est déjà dans [0, 1])"): f_twice / f_twice[0],
        tr(en="the division t/T is missing: the cosine needs t/T ∈ [0, 1], not t",
           fr="la division t/T manque : le cosinus prend t/T ∈ [0, 1], pas t"): f_no_T / f_no_T[0],
        tr(en="the cosine is not squared",
           fr="le cosinus n'est pas élevé au carré"): torch.cos(angle) / torch.cos(angle[0]),
        tr(en="the offset s is missing",
           fr="le décalage s manque"): f_no_s / f_no_s[0],
        tr(en="the division by (1 + s) is missing",
           fr="la division par (1 + s) manque"): (torch.cos((t / T + s) * math.pi / 2) ** 2) / (math.cos(s * math.pi / 2) ** 2),
    }


def _names_a_mistake(actual: object, expected: torch.Tensor, mistakes: dict[str, torch.Tensor], atol: float) -> bool:
    """Whether ``diagnose`` named the answer's mistake (a sign flip, one of ``mistakes``, values shifted by one index).

    Decided from the tensors, not from the message's wording, so it holds in every language.
    """
    if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape or not actual.is_floating_point():
        return False
    actual = actual.detach().to(expected.dtype)

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.shape == b.shape and bool(torch.isclose(a, b.to(a.dtype), atol=atol, rtol=1e-4).all())

    shifted = expected.dim() == 1 and expected.numel() > 2 and (close(actual[1:], expected[:-1]) or close(actual[:-1], expected[1:]))
    return shifted or any(close(actual, wrong) for wrong in (-expected, *mistakes.values()))


def check_cosine_alphas_cumprod(fn: Callable) -> CheckResult:
    """Check ``fn(T, s)`` against ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2) (Nichol & Dhariwal 2021, eq. 17)."""
    name = "cosine_alphas_cumprod"

    def body() -> CheckResult:
        for T, s in ((1000, 0.008), (50, 0.02)):
            actual = call(name, fn, T, s, error_hints={"converted to Python scalars": _math_hint()})
            if isinstance(actual, torch.Tensor):
                actual = actual.double()
            expected, mistakes = cosine_alphas_cumprod(T, s, dtype=torch.float64), _cosine_mistakes(T, s)
            problem = diagnose(
                f"{name}(T={T}, s={s})",
                actual,
                expected,
                atol=1e-6,
                mistakes=mistakes,
                check_dtype=False,
                shape_hint=tr(en="ᾱ_t has one value per t ∈ {0, …, T}: length T + 1",
                              fr="ᾱ_t a une valeur par t ∈ {0, …, T} : longueur T + 1"),
            )
            if problem is not None:
                if T != 1000 and not _names_a_mistake(actual, expected, mistakes, atol=1e-6):
                    return CheckResult(False, problem.message + tr(
                        en=" — it worked for T=1000, s=0.008: are T or s hard-coded?",
                        fr=" — cela marchait pour T=1000, s=0.008 : T ou s seraient-ils écrits en dur ?",
                    ))
                return problem
        return passed(name, tr(en="ᾱ_0 = 1 and it falls like a squared cosine to ≈ 0 at t = T",
                               fr="ᾱ_0 = 1, puis il décroît comme un cosinus au carré jusqu'à ≈ 0 en t = T"))

    return run(name, body)
