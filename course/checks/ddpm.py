"""Checks for lesson 02 (DDPM): the ε-prediction loss and one reverse step."""

from __future__ import annotations

from typing import Callable

import torch

from course.checks.core import CheckResult, call, diagnose, failed, passed, run
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
