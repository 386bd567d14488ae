"""Checks for lesson 01 (the forward process): closed-form q_sample, the t-step loop it replaces, and the cosine ᾱ_t."""

from __future__ import annotations

import math
from typing import Callable

import torch

from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.forward import q_sample, q_sample_iterated
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


def _iterated(x0, t, betas, generator, *, steps=None, noise="fresh", update=True, roots="both") -> torch.Tensor:
    """t noising steps x_k = √(1 − β_k)·x_{k−1} + √β_k·ε_k as a learner writes them, or one typical mistake: ``steps``
    the k visited (default 1 … t), ``noise`` "once" (one ε for every step) or "float32" (drawn without dtype=x0.dtype),
    ``update=False`` (every step starts again from x_0), ``roots`` the square roots kept ("signal": only √(1 − β_k),
    "noise": only √β_k, "none")."""
    x = x0
    eps_once = torch.randn(x0.shape, generator=generator, dtype=x0.dtype) if noise == "once" else None
    for k in (range(1, t + 1) if steps is None else steps):
        if noise == "once":
            eps = eps_once
        else:
            eps = torch.randn(x0.shape, generator=generator, dtype=torch.float32 if noise == "float32" else x0.dtype).to(x0.dtype)
        b = betas[k]
        keep, add = {"both": ((1 - b).sqrt(), b.sqrt()), "signal": ((1 - b).sqrt(), b), "noise": (1 - b, b.sqrt()), "none": (1 - b, b)}[roots]
        x = keep * (x if update else x0) + add * eps
    return x


def check_q_sample_iterated(fn: Callable) -> CheckResult:
    """Check ``fn(x0, t, betas, generator)``: t noising steps k = 1 … t (Ho et al. 2020, eq. 2), a fresh ε_k each,
    drawn with the generator as ``torch.randn(x0.shape, generator=generator, dtype=x0.dtype)``."""
    name = "q_sample_iterated"

    def body() -> CheckResult:
        betas = linear_betas(50)
        x0 = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
        no_step_0 = tr(en="the steps are k = 1 … t, range(1, t + 1): there is no step 0",
                       fr="les étapes sont k = 1 … t, range(1, t + 1) : il n'y a pas d'étape 0")
        hints = {"t must be in [1": no_step_0, "t doit être dans [1": no_step_0,  # course.forward's message, in either language
                 "out of bounds": tr(en="the steps are k = 1 … t, range(1, t + 1)", fr="les étapes sont k = 1 … t, range(1, t + 1)")}
        for t in (7, 3):
            seed = 20 + t
            gen = lambda: torch.Generator().manual_seed(seed)  # noqa: E731  the same draws for every candidate
            expected = q_sample_iterated(x0, t, betas, generator=gen())
            actual = call(name, fn, x0.clone(), t, betas.clone(), gen(), error_hints=hints)
            if isinstance(actual, torch.Tensor) and actual.shape == expected.shape:
                again = call(name, fn, x0.clone(), t, betas.clone(), gen(), error_hints=hints)
                if isinstance(again, torch.Tensor) and not torch.equal(again, actual):
                    return failed(name, tr(
                        en="two runs with the same seed differ: draw every ε_k with the generator, "
                           "torch.randn(x0.shape, generator=generator, dtype=x0.dtype) (torch.randn_like takes no generator)",
                        fr="deux exécutions avec la même graine diffèrent : tirez chaque ε_k avec le générateur, "
                           "torch.randn(x0.shape, generator=generator, dtype=x0.dtype) (torch.randn_like n'en prend pas)"))
            one_jump = q_sample(x0, t, torch.randn(x0.shape, generator=gen(), dtype=x0.dtype), alphas_cumprod(betas))
            mistakes = {
                tr(en=f"only t − 1 = {t - 1} steps: the loop must visit k = 1 … t, range(1, t + 1)",
                   fr=f"seulement t − 1 = {t - 1} étapes : la boucle doit parcourir k = 1 … t, range(1, t + 1)"):
                    _iterated(x0, t, betas, gen(), steps=range(1, t)),
                tr(en="step k used β_{k−1} (the loop runs k = 0 … t − 1, or reads betas[k − 1]): the steps are k = 1 … t, "
                      "range(1, t + 1), and step k uses betas[k]",
                   fr="l'étape k a pris β_{k−1} (la boucle parcourt k = 0 … t − 1, ou lit betas[k − 1]) : les étapes sont k = 1 … t, "
                      "range(1, t + 1), et l'étape k utilise betas[k]"):
                    _iterated(x0, t, betas, gen(), steps=range(0, t)),
                tr(en="the loop runs k = 0 … t: the steps are k = 1 … t, range(1, t + 1) (β_0 = 0 is no step, but it used up a draw)",
                   fr="la boucle parcourt k = 0 … t : les étapes sont k = 1 … t, range(1, t + 1) (β_0 = 0 n'est pas une étape, mais "
                      "elle a consommé un tirage)"):
                    _iterated(x0, t, betas, gen(), steps=range(0, t + 1)),
                tr(en="time runs backwards: noising goes k = 1, 2, …, t, each step with its own β_k",
                   fr="le temps recule : le bruitage va de k = 1 à t, chaque étape avec son propre β_k"):
                    _iterated(x0, t, betas, gen(), steps=range(t, 0, -1)),
                tr(en="the same ε is reused at every step: draw a fresh ε_k inside the loop",
                   fr="le même ε sert à chaque étape : tirez un ε_k neuf à l'intérieur de la boucle"):
                    _iterated(x0, t, betas, gen(), noise="once"),
                tr(en="the noise was drawn in float32 while x0 is float64: the draws differ; pass dtype=x0.dtype to torch.randn",
                   fr="le bruit a été tiré en float32 alors que x0 est en float64 : les tirages diffèrent ; passez dtype=x0.dtype à "
                      "torch.randn"):
                    _iterated(x0, t, betas, gen(), noise="float32"),
                tr(en="x is never updated: every step starts again from x0; assign the step's result back to x",
                   fr="x n'est jamais mis à jour : chaque étape repart de x0 ; réaffectez le résultat de l'étape à x"):
                    _iterated(x0, t, betas, gen(), update=False),
                tr(en="a square root is missing in the step, on 1 − β_k: √(1 − β_k)·x + √β_k·ε_k",
                   fr="une racine carrée manque dans l'étape, sur 1 − β_k : √(1 − β_k)·x + √β_k·ε_k"):
                    _iterated(x0, t, betas, gen(), roots="noise"),
                tr(en="a square root is missing in the step, on β_k: √(1 − β_k)·x + √β_k·ε_k",
                   fr="une racine carrée manque dans l'étape, sur β_k : √(1 − β_k)·x + √β_k·ε_k"):
                    _iterated(x0, t, betas, gen(), roots="signal"),
                tr(en="the square roots are missing in the step: √(1 − β_k)·x + √β_k·ε_k",
                   fr="les racines carrées manquent dans l'étape : √(1 − β_k)·x + √β_k·ε_k"):
                    _iterated(x0, t, betas, gen(), roots="none"),
                tr(en="this is the closed form, one jump with one draw: the exercise asks for t separate steps, one ε_k each",
                   fr="c'est la forme close, un seul saut avec un seul tirage : l'exercice demande t étapes séparées, un ε_k chacune"):
                    one_jump,
            }
            if t != 7:
                mistakes[tr(en=f"the loop ignores t: it took 7 steps where t = {t}; loop over range(1, t + 1)",
                            fr=f"la boucle ignore t : elle a fait 7 étapes alors que t = {t} ; parcourez range(1, t + 1)")] = \
                    _iterated(x0, 7, betas, gen())
            problem = diagnose(f"{name}(t={t})", actual, expected, mistakes=mistakes, atol=1e-10, rtol=1e-8,
                               dtype_hint=tr(en="x_t keeps the dtype of x0: draw the noise with dtype=x0.dtype",
                                             fr="x_t garde le dtype de x0 : tirez le bruit avec dtype=x0.dtype"))
            if problem is not None:
                return problem
        return passed(name, tr(en="t steps k = 1 … t, a fresh ε_k drawn with the generator at each",
                               fr="t étapes k = 1 … t, avec à chacune un ε_k neuf tiré par le générateur"))

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


HINTS = {
    "q_sample_iterated": (
        {"en": "start from x0 and repeat the noising step of part 1 for k going from 1 to t, with at each step a fresh noise drawn "
               "with the generator.",
         "fr": "partez de x0 et répétez l'étape de bruitage de la partie 1 pour k allant de 1 à t, avec à chaque étape un bruit "
               "neuf tiré par le générateur."},
        {"en": "for k = 1, …, t: ε_k ~ N(0, I) (torch.randn(x0.shape, generator=generator, dtype=x0.dtype)), then "
               "x ← √(1 − β_k)·x + √β_k·ε_k, i.e. q_step(x, k, ε_k, betas).",
         "fr": "pour k = 1, …, t : ε_k ~ N(0, I) (torch.randn(x0.shape, generator=generator, dtype=x0.dtype)), puis "
               "x ← √(1 − β_k)·x + √β_k·ε_k, c'est-à-dire q_step(x, k, ε_k, betas)."},
        {"en": "x = x0\n   for k in range(1, t + 1):\n       eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)\n"
               "       x = q_step(x, k, eps, betas)\n   return x",
         "fr": "x = x0\n   for k in range(1, t + 1):\n       eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)\n"
               "       x = q_step(x, k, eps, betas)\n   return x"},
    ),
    "q_sample": (
        {"en": "each image has its own t, hence its own ᾱ_t: pick them with t, give them a shape that spreads over the whole image, "
               "then mix the image and the noise.",
         "fr": "chaque image a son propre t, donc son propre ᾱ_t : prenez-les avec t, donnez-leur une forme qui s'étend à toute "
               "l'image, puis mélangez l'image et le bruit."},
        {"en": "x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, with ᾱ_t = alphas_cumprod[t] reshaped from (B,) to (B, 1, 1, 1).",
         "fr": "x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, avec ᾱ_t = alphas_cumprod[t] passé de la forme (B,) à (B, 1, 1, 1)."},
        {"en": "abar_t = alphas_cumprod[t].view(-1, 1, 1, 1)\n   return abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * eps",
         "fr": "abar_t = alphas_cumprod[t].view(-1, 1, 1, 1)\n   return abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * eps"},
    ),
    "cosine_alphas_cumprod": (
        {"en": "compute f for every t = 0, …, T at once, from one tensor holding all the t/T, then divide by f(0) so that ᾱ_0 = 1.",
         "fr": "calculez f pour tous les t = 0, …, T d'un coup, à partir d'un tenseur qui contient tous les t/T, puis divisez par f(0) "
               "pour que ᾱ_0 = 1."},
        {"en": "u = t/T for t = 0 … T; f = cos²((u + s)/(1 + s)·π/2); ᾱ = f / f(0).",
         "fr": "u = t/T pour t = 0 … T ; f = cos²((u + s)/(1 + s)·π/2) ; ᾱ = f / f(0)."},
        {"en": "u = torch.arange(T + 1, dtype=torch.float64) / T\n   f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2\n   return f / f[0]",
         "fr": "u = torch.arange(T + 1, dtype=torch.float64) / T\n   f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2\n   return f / f[0]"},
    ),
}
