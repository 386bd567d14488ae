"""Checks for lesson 02 (DDPM): the ε-prediction loss, one reverse step and the whole sampling loop."""

from __future__ import annotations

import contextlib
import traceback
from typing import Callable

import torch

from course.checks.core import TODO, CheckResult, _Raised, call, diagnose, failed, passed, run, unfinished_inside
from course.ddpm import p_sample_step, posterior_variance
from course.forward import q_sample
from course.language import tr
from course.schedules import alphas_cumprod, linear_betas


def _reshape_hint() -> str:
    return tr(
        en="one value per sample, shape (B,): reshape it to (B, 1, …) with .view(-1, *[1] * (x.dim() - 1))",
        fr="une valeur par échantillon, de forme (B,) : donnez-lui la forme (B, 1, …) avec .view(-1, *[1] * (x.dim() - 1))",
    )


def _toy_model(x_t: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
    """A fixed stand-in for ε_θ, so the check does not depend on training."""
    return 0.6 * x_t + 1e-3 * t.view(-1, *[1] * (x_t.dim() - 1)).to(x_t.dtype)


def check_epsilon_loss(fn: Callable) -> CheckResult:
    """Check ``fn(model, x0, t, eps, alphas_cumprod)`` = mean ‖ε − ε_θ(x_t, t)‖² with x_t = q_sample (Ho et al. 2020, eq. 14)."""
    name = "epsilon_loss"

    def body() -> CheckResult:
        gen = torch.Generator().manual_seed(2)
        x0, eps = torch.randn(4, 3, 6, 6, generator=gen), torch.randn(4, 3, 6, 6, generator=gen)
        t = torch.tensor([1, 250, 600, 1000])
        abar = alphas_cumprod(linear_betas(1000)).float()
        x_t = q_sample(x0, t, eps, abar)
        pred = _toy_model(x_t, t)
        expected = (eps - pred).square().mean()
        actual = call(name, fn, _toy_model, x0.clone(), t.clone(), eps.clone(), abar.clone(), error_hints={"must match the size": _reshape_hint()})
        x_prev = q_sample(x0, t - 1, eps, abar)
        mistakes = {
            tr(en="the slide's formula, E‖ε_θ‖², without the target ε: it is minimised by predicting 0",
               fr="la formule de la diapositive, E‖ε_θ‖², sans la cible ε : on la minimise en prédisant 0"): pred.square().mean(),
            tr(en="ε_θ was given x_0 instead of the noised x_t",
               fr="ε_θ a reçu x_0 au lieu de l'image bruitée x_t"): (eps - _toy_model(x0, t)).square().mean(),
            tr(en="a sum instead of a mean (the loss would grow with the image size)",
               fr="une somme au lieu d'une moyenne (la perte grandirait avec la taille de l'image)"): (eps - pred).square().sum(),
            tr(en="ε + ε_θ instead of ε − ε_θ",
               fr="ε + ε_θ au lieu de ε − ε_θ"): (eps + pred).square().mean(),
            tr(en="the square root of the mean (an RMS), not the mean of the squares",
               fr="la racine carrée de la moyenne (une RMS), et non la moyenne des carrés"): (eps - pred).square().mean().sqrt(),
            tr(en="x_t was built with t − 1 (an off-by-one)",
               fr="x_t a été construit avec t − 1 (un décalage de un)"): (eps - _toy_model(x_prev, t)).square().mean(),
        }
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            return failed(name, tr(
                en=f"expected one number (a 0-d tensor), got shape {tuple(actual.shape)} — take the mean",
                fr=f"un seul nombre était attendu (un tenseur de dimension 0), reçu la forme {tuple(actual.shape)} — prenez la moyenne",
            ))
        problem = diagnose(name, actual, expected, mistakes=mistakes, rtol=1e-4, atol=1e-6)
        return problem if problem is not None else passed(name, tr(en="L = mean ‖ε − ε_θ(x_t, t)‖²", fr="L = moyenne ‖ε − ε_θ(x_t, t)‖²"))

    return run(name, body)


def check_p_sample_step(fn: Callable) -> CheckResult:
    """Check ``fn(x_t, t, eps_pred, z, betas, alphas_cumprod)`` = μ_θ(x_t, t) + σ_t·z, σ_t = √β_t, no noise at t = 1."""
    name = "p_sample_step"

    def body() -> CheckResult:
        gen = torch.Generator().manual_seed(3)
        x_t, eps_pred, z = (torch.randn(5, 2, 4, 4, generator=gen) for _ in range(3))
        t = torch.tensor([1, 2, 100, 700, 1000])
        betas = linear_betas(1000).float()
        abar = alphas_cumprod(betas)
        expected = p_sample_step(x_t, t, eps_pred, z, betas, abar)
        actual = call(
            name, fn, x_t.clone(), t.clone(), eps_pred.clone(), z.clone(), betas.clone(), abar.clone(),
            error_hints={"must match the size": _reshape_hint()},
        )
        b = betas[t].view(-1, 1, 1, 1)
        a = abar[t].view(-1, 1, 1, 1)
        a_prev = abar[t - 1].view(-1, 1, 1, 1)
        mean = (x_t - b / (1 - a).sqrt() * eps_pred) / (1 - b).sqrt()
        last = (t > 1).float().view(-1, 1, 1, 1)
        mistakes = {
            tr(en="noise was added at the last step (t = 1): x_0 = μ_θ(x_1, 1), without σ·z",
               fr="du bruit a été ajouté au dernier pas (t = 1) : x_0 = μ_θ(x_1, 1), sans σ·z"): mean + b.sqrt() * z,
            tr(en="σ_t·z is missing: the step must add fresh noise for t > 1",
               fr="σ_t·z manque : le pas doit ajouter un bruit neuf pour t > 1"): mean,
            tr(en="the mean divides by √ᾱ_t instead of √α_t = √(1 − β_t)",
               fr="la moyenne divise par √ᾱ_t au lieu de √α_t = √(1 − β_t)"): (x_t - b / (1 - a).sqrt() * eps_pred) / a.sqrt() + last * b.sqrt() * z,
            tr(en="the ε coefficient lacks its square root: β_t / √(1 − ᾱ_t)",
               fr="il manque la racine carrée dans le coefficient de ε : β_t / √(1 − ᾱ_t)"): (x_t - b / (1 - a) * eps_pred) / (1 - b).sqrt() + last * b.sqrt() * z,
            tr(en="ε_θ is added instead of subtracted in the mean",
               fr="ε_θ est ajouté au lieu d'être soustrait dans la moyenne"): (x_t + b / (1 - a).sqrt() * eps_pred) / (1 - b).sqrt() + last * b.sqrt() * z,
            tr(en="σ_t = √β̃_t was used; this exercise asks for σ_t = √β_t",
               fr="σ_t = √β̃_t a été utilisé ; cet exercice demande σ_t = √β_t"): mean + last * posterior_variance(t, betas, abar).sqrt().view(-1, 1, 1, 1) * z,
            tr(en="β_t was used where the noise scale is √β_t",
               fr="β_t a été utilisé là où l'échelle du bruit est √β_t"): mean + last * b * z,
            tr(en="ᾱ_{t−1} was used instead of ᾱ_t (an off-by-one)",
               fr="ᾱ_{t−1} a été utilisé au lieu de ᾱ_t (un décalage de un)"): (x_t - b / (1 - a_prev).clamp_min(1e-12).sqrt() * eps_pred) / (1 - b).sqrt() + last * b.sqrt() * z,
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-4, rtol=1e-4)
        detail = tr(en="x_{t−1} = (x_t − β_t/√(1 − ᾱ_t)·ε_θ)/√α_t + σ_t·z, and z is ignored at t = 1",
                    fr="x_{t−1} = (x_t − β_t/√(1 − ᾱ_t)·ε_θ)/√α_t + σ_t·z, et z est ignoré en t = 1")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def _guarded(fn: Callable, unfinished: list[str]) -> Callable:
    """``fn``, noting in ``unfinished`` the name of an unfinished function it calls (a NotImplementedError raised
    deeper than ``fn``'s own body), so that the check can say which exercise to finish first."""
    if not callable(fn):
        return fn

    def guarded(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotImplementedError as err:
            frames = traceback.extract_tb(err.__traceback__)
            if len(frames) > 2:  # guarded → fn → a function fn calls
                unfinished.append(frames[-1].name)
            raise

    return guarded


def _unfinished_inside(name: str, inner: str) -> CheckResult:
    return unfinished_inside(name, inner)


# ----------------------------------------------------------------------------- the sampling loop


@contextlib.contextmanager
def _quiet_progress():
    """Silence every tqdm bar opened meanwhile: a learner's loop may wrap its range in tqdm, and a check prints one line."""
    from tqdm import std

    original = vars(std.tqdm)["__init__"]

    def quiet(self, *args, **kwargs):
        kwargs["disable"] = True
        original.__get__(self, type(self))(*args, **kwargs)

    std.tqdm.__init__ = quiet
    try:
        yield
    finally:
        std.tqdm.__init__ = original


def _t_problem(t, batch: int) -> str | None:
    """Why ``t`` is not what a model wants (a (B,) integer tensor, one instant per sample), or None."""
    if not isinstance(t, torch.Tensor):
        return tr(en=f"t is given as a plain number ({type(t).__name__}): the model and the step want one instant per sample, "
                     "a (B,) tensor, torch.full((B,), t)",
                  fr=f"t est passé comme un simple nombre ({type(t).__name__}) : le modèle et le pas attendent un instant par "
                     "échantillon, un tenseur de forme (B,), torch.full((B,), t)")
    if t.shape != (batch,):
        return tr(en=f"t has shape {tuple(t.shape)}: the model wants one instant per sample, shape (B,) = ({batch},), torch.full((B,), t)",
                  fr=f"t a la forme {tuple(t.shape)} : le modèle attend un instant par échantillon, de forme (B,) = ({batch},), "
                     "torch.full((B,), t)")
    if t.is_floating_point():
        return tr(en=f"t holds {t.dtype} values: instants are integers, torch.full((B,), t) with an int t",
                  fr=f"t contient des valeurs {t.dtype} : les instants sont des entiers, torch.full((B,), t) avec un t entier")
    return None


class _WatchedModel:
    """The toy ε_θ, recording the instant t of every call and why the first bad t was bad (not a (B,) integer tensor)."""

    def __init__(self) -> None:
        self.instants: list[int] = []
        self.bad_t: str | None = None

    def __call__(self, x_t: torch.Tensor, t, cond=None) -> torch.Tensor:
        problem = _t_problem(t, x_t.shape[0])
        if problem is not None:
            self.bad_t = self.bad_t or problem
            t = torch.as_tensor(t).reshape(-1)[:1].long().expand(x_t.shape[0])
        self.instants.append(int(t[0]))
        return _toy_model(x_t, t)


def _reference_sampler(model, shape, betas, generator, *, start: str = "noise", noise: str = "fresh") -> torch.Tensor:
    """Ho et al.'s Algorithm 2 as a learner writes it: x_T ~ N(0, I), then for t = T … 1 a fresh z and one step.

    The generator gives x_T first, then one z per step in the order t = T, T − 1, …: the order of
    :func:`course.ddpm.ddpm_sample` (which draws no z at t = 1, where z is unused, so both agree).
    ``start="zeros"``, ``noise="once"`` (one z for every step) or ``noise="none"`` (z = 0) are the typical mistakes.
    """
    abar = alphas_cumprod(betas)
    T = betas.numel() - 1
    x = torch.randn(shape, generator=generator) if start == "noise" else torch.zeros(shape)
    z_once = torch.randn(shape, generator=generator) if noise == "once" else None
    for step in range(T, 0, -1):
        t = torch.full((shape[0],), step, dtype=torch.long)
        z = torch.randn(shape, generator=generator) if noise == "fresh" else z_once if noise == "once" else torch.zeros(shape)
        x = p_sample_step(x, t, model(x, t), z, betas, abar)
    return x


def _instants_problem(instants: list[int], T: int) -> str | None:
    """What is wrong with the instants the model was asked at, if anything (the right ones: T, T − 1, …, 1)."""
    if instants == list(range(T, 0, -1)):
        return None
    if not instants:
        return tr(en="the model is never called: each step needs ε_θ(x_t, t) = model(x, t)",
                  fr="le modèle n'est jamais appelé : chaque pas a besoin de ε_θ(x_t, t) = model(x, t)")
    if instants == list(range(T - 1, -1, -1)):
        return tr(en="t runs from T − 1 down to 0, as in diffusers; in the course t runs from T down to 1: range(T, 0, -1)",
                  fr="t va de T − 1 à 0, comme dans diffusers ; dans le cours, t va de T à 1 : range(T, 0, -1)")
    if instants == list(range(T - 1, 0, -1)):
        return tr(en=f"the loop starts at t = T − 1 = {T - 1}: the first step is t = T = {T} (an off-by-one in the range)",
                  fr=f"la boucle commence en t = T − 1 = {T - 1} : le premier pas est t = T = {T} (un décalage de un dans le range)")
    if instants == list(range(T, -1, -1)):
        return tr(en="the loop goes down to t = 0: the last step is t = 1, which gives x_0 (range(T, 0, -1) stops before 0)",
                  fr="la boucle descend jusqu'à t = 0 : le dernier pas est t = 1, qui donne x_0 (range(T, 0, -1) s'arrête avant 0)")
    if instants == list(range(T, 1, -1)):
        return tr(en="the loop stops at t = 2: the last step, t = 1, is missing (range(T, 0, -1) goes down to 1)",
                  fr="la boucle s'arrête en t = 2 : il manque le dernier pas, t = 1 (range(T, 0, -1) descend jusqu'à 1)")
    if len(instants) > 1 and instants == sorted(instants):
        return tr(en="time runs forward: sampling goes from t = T (pure noise) down to t = 1, range(T, 0, -1)",
                  fr="le temps avance : l'échantillonnage va de t = T (bruit pur) jusqu'à t = 1, range(T, 0, -1)")
    first = ", ".join(str(t) for t in instants[:4]) + (", …" if len(instants) > 4 else "")
    return tr(en=f"the model was asked at t = {first} ({len(instants)} calls): expected one call per step, at t = {T}, {T - 1}, …, 1",
              fr=f"le modèle a été interrogé en t = {first} ({len(instants)} appels) : un appel par pas était attendu, en t = {T}, {T - 1}, …, 1")


def check_ddpm_sample(fn: Callable) -> CheckResult:
    """Check ``fn(model, shape, betas, generator)``: ancestral sampling from x_T ~ N(0, I), t = T … 1 (Ho et al. 2020, Alg. 2).

    The reference is :func:`_reference_sampler` on a toy ε_θ and a short schedule (T = 20), with the same seed.
    """
    name = "ddpm_sample"
    T, shape, seed = 20, (6, 2), 7

    def body() -> CheckResult:
        betas = linear_betas(T)
        expected = _reference_sampler(_toy_model, shape, betas, torch.Generator().manual_seed(seed))
        model = _WatchedModel()
        hints = {
            "out of bounds": tr(en=f"T is len(betas) − 1 (here {T}): do not write 1000", fr=f"T vaut len(betas) − 1 (ici {T}) : n'écrivez pas 1000"),
            "must match the size": _reshape_hint(),
            "tensors used as indices": tr(en="t must hold integers: torch.full((B,), t) with an int t",
                                          fr="t doit contenir des entiers : torch.full((B,), t) avec un t entier"),
        }
        unfinished: list[str] = []
        try:
            with _quiet_progress():
                actual = call(name, _guarded(fn, unfinished), model, shape, betas.clone(), torch.Generator().manual_seed(seed),
                              error_hints=hints)
        except _Raised:
            if unfinished:
                return _unfinished_inside(name, unfinished[0])
            if model.bad_t is not None:
                return failed(name, model.bad_t)
            if model.instants and model.instants[0] > T:
                return failed(name, tr(en=f"the loop starts at t = {model.instants[0]}, but this schedule has T = len(betas) − 1 = {T} "
                                          "steps: read T off betas, do not write 1000",
                                       fr=f"la boucle commence en t = {model.instants[0]}, mais ce planning compte T = len(betas) − 1 = "
                                          f"{T} pas : lisez T sur betas, n'écrivez pas 1000"))
            raise
        if model.bad_t is not None:
            return failed(name, model.bad_t)
        problem = _instants_problem(model.instants, T)
        if problem is not None:
            return failed(name, problem)
        if isinstance(actual, torch.Tensor) and actual.shape == expected.shape:
            with _quiet_progress():
                again = call(name, fn, _WatchedModel(), shape, betas.clone(), torch.Generator().manual_seed(seed))
            if isinstance(again, torch.Tensor) and not torch.equal(again, actual):
                return failed(name, tr(
                    en="two runs with the same seed differ: draw every noise with the generator, torch.randn(shape, generator=generator) "
                       "(torch.randn_like takes no generator)",
                    fr="deux exécutions avec la même graine diffèrent : tirez chaque bruit avec le générateur, "
                       "torch.randn(shape, generator=generator) (torch.randn_like n'en prend pas)"))
        x_T = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        abar = alphas_cumprod(betas)
        one = torch.ones(shape[0], dtype=torch.long)
        mistakes = {
            tr(en="the same z is reused at every step: draw a fresh z ~ N(0, I) inside the loop",
               fr="le même z sert à chaque pas : tirez un z ~ N(0, I) neuf à l'intérieur de la boucle"):
                _reference_sampler(_toy_model, shape, betas, torch.Generator().manual_seed(seed), noise="once"),
            tr(en="no fresh noise is added: z = 0 at every step gives the mean path, not a sample; draw z ~ N(0, I) at each step",
               fr="aucun bruit neuf n'est ajouté : avec z = 0 à chaque pas, on suit la moyenne, ce n'est pas un tirage ; tirez "
                  "z ~ N(0, I) à chaque pas"):
                _reference_sampler(_toy_model, shape, betas, torch.Generator().manual_seed(seed), noise="none"),
            tr(en="the loop starts from zeros: x_T must be pure noise, torch.randn(shape, generator=generator)",
               fr="la boucle part de zéros : x_T doit être du bruit pur, torch.randn(shape, generator=generator)"):
                _reference_sampler(_toy_model, shape, betas, torch.Generator().manual_seed(seed), start="zeros"),
            tr(en="x is never updated: assign the step's result back to x (x = my_p_sample_step(x, …)) at every step",
               fr="x n'est jamais mis à jour : réaffectez le résultat du pas à x (x = my_p_sample_step(x, …)) à chaque pas"): x_T,
            tr(en="x is never updated: every step starts again from x_T; assign the step's result back to x",
               fr="x n'est jamais mis à jour : chaque pas repart de x_T ; réaffectez le résultat du pas à x"):
                p_sample_step(x_T, one, _toy_model(x_T, one), torch.zeros(shape), betas, abar),
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-4, rtol=1e-4,
                           shape_hint=tr(en="return x_0, with the shape you were given", fr="renvoyez x_0, avec la forme reçue"))
        detail = tr(en=f"x_T ~ N(0, I), then t = {T}, …, 1 with a fresh z at each step, the same draws as the course's sampler",
                    fr=f"x_T ~ N(0, I), puis t = {T}, …, 1 avec un z neuf à chaque pas, les mêmes tirages que l'échantillonneur du cours")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


HINTS = {
    "epsilon_loss": (
        {"en": "noise x0 up to x_t with the t and ε you are given, ask the model which noise it sees in x_t, and compare its answer "
               "with the true ε.",
         "fr": "bruitez x0 jusqu'à x_t avec le t et le ε fournis, demandez au modèle quel bruit il voit dans x_t, et comparez sa "
               "réponse au vrai ε."},
        {"en": "x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (q_sample, lesson 01), then L = mean of (ε − model(x_t, t))² over every value: one number.",
         "fr": "x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (q_sample, leçon 01), puis L = moyenne de (ε − model(x_t, t))² sur toutes les valeurs : "
               "un seul nombre."},
        {"en": "x_t = q_sample(x0, t, eps, alphas_cumprod)\n   return (eps - model(x_t, t)).square().mean()",
         "fr": "x_t = q_sample(x0, t, eps, alphas_cumprod)\n   return (eps - model(x_t, t)).square().mean()"},
    ),
    "p_sample_step": (
        {"en": "the mean takes the predicted noise away from x_t and rescales; then the step adds fresh noise σ_t·z, except at the "
               "last step, t = 1.",
         "fr": "la moyenne retire de x_t le bruit prédit, puis remet à l'échelle ; le pas ajoute ensuite un bruit neuf σ_t·z, sauf au "
               "dernier pas, t = 1."},
        {"en": "x_{t−1} = (x_t − β_t/√(1 − ᾱ_t)·ε_θ)/√(1 − β_t) + [t > 1]·√β_t·z, with β_t = betas[t] and ᾱ_t = alphas_cumprod[t] "
               "shaped (B, 1, …).",
         "fr": "x_{t−1} = (x_t − β_t/√(1 − ᾱ_t)·ε_θ)/√(1 − β_t) + [t > 1]·√β_t·z, avec β_t = betas[t] et ᾱ_t = alphas_cumprod[t] "
               "mis à la forme (B, 1, …)."},
        {"en": "shape = (-1,) + (1,) * (x_t.dim() - 1)\n   b, a = betas[t].view(shape).to(x_t), alphas_cumprod[t].view(shape).to(x_t)\n"
               "   mean = (x_t - b / (1 - a).sqrt() * eps_pred) / (1 - b).sqrt()\n   return mean + (t > 1).view(shape).to(x_t) * b.sqrt() * z",
         "fr": "shape = (-1,) + (1,) * (x_t.dim() - 1)\n   b, a = betas[t].view(shape).to(x_t), alphas_cumprod[t].view(shape).to(x_t)\n"
               "   mean = (x_t - b / (1 - a).sqrt() * eps_pred) / (1 - b).sqrt()\n   return mean + (t > 1).view(shape).to(x_t) * b.sqrt() * z"},
    ),
    "ddpm_sample": (
        {"en": "start from pure noise x_T, drawn with the generator; then walk t from T down to 1: at each step ask the model for ε at t, "
               "draw a fresh z, and take one step with your my_p_sample_step. Return the last x.",
         "fr": "partez d'un bruit pur x_T, tiré avec le générateur ; parcourez ensuite t de T jusqu'à 1 : à chaque pas, demandez ε au "
               "modèle en t, tirez un z neuf et faites un pas avec votre my_p_sample_step. Renvoyez le dernier x."},
        {"en": "T = len(betas) − 1 and ᾱ = alphas_cumprod(betas); x ~ N(0, I); for t = T, T − 1, …, 1: t as a (B,) tensor, "
               "z ~ N(0, I), x ← my_p_sample_step(x, t, model(x, t), z, β, ᾱ).",
         "fr": "T = len(betas) − 1 et ᾱ = alphas_cumprod(betas) ; x ~ N(0, I) ; pour t = T, T − 1, …, 1 : t en tenseur de forme (B,), "
               "z ~ N(0, I), x ← my_p_sample_step(x, t, model(x, t), z, β, ᾱ)."},
        {"en": "abar = alphas_cumprod(betas)\n   x = torch.randn(shape, generator=generator)\n"
               "   for step in tqdm(range(len(betas) - 1, 0, -1)):\n       t = torch.full((shape[0],), step)\n"
               "       z = torch.randn(shape, generator=generator)\n       x = my_p_sample_step(x, t, model(x, t), z, betas, abar)\n   return x",
         "fr": "abar = alphas_cumprod(betas)\n   x = torch.randn(shape, generator=generator)\n"
               "   for step in tqdm(range(len(betas) - 1, 0, -1)):\n       t = torch.full((shape[0],), step)\n"
               "       z = torch.randn(shape, generator=generator)\n       x = my_p_sample_step(x, t, model(x, t), z, betas, abar)\n   return x"},
    ),
}
