"""Checks for lesson 03 (CLIP): the similarity matrix and the symmetric contrastive loss."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.clip import contrastive_loss
from course.language import tr


def check_similarity(fn: Callable) -> CheckResult:
    """Check ``fn(image_features, text_features, logit_scale)`` = exp(logit_scale)·normalize(I)·normalize(T)ᵀ."""
    name = "similarity"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(4)
        img, txt = torch.randn(5, 8, generator=g) * 3, torch.randn(6, 8, generator=g) * 2
        scale = torch.tensor(math.log(20.0))
        expected = scale.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
        actual = call(name, fn, img.clone(), txt.clone(), scale.clone())
        mistakes = {
            tr(en="the features were not normalised to unit length (use F.normalize(x, dim=-1))",
               fr="les vecteurs de caractéristiques n'ont pas été ramenés à une norme 1 (utilisez F.normalize(x, dim=-1))"):
                scale.exp() * img @ txt.T,
            tr(en="logit_scale was used as the factor itself; the factor is exp(logit_scale)",
               fr="logit_scale a été pris lui-même comme facteur ; le facteur est exp(logit_scale)"):
                scale * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T,
            tr(en="the temperature factor exp(logit_scale) is missing",
               fr="le facteur de température exp(logit_scale) manque"):
                F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T,
            tr(en="the features were normalised along the batch (dim=0) instead of along the features (dim=-1)",
               fr="les vecteurs ont été normalisés le long du lot (dim=0) au lieu de le long des caractéristiques (dim=-1)"):
                scale.exp() * F.normalize(img, dim=0) @ F.normalize(txt, dim=0).T,
        }
        problem = diagnose(
            name, actual, expected, mistakes=mistakes, atol=1e-4,
            shape_hint=tr(en="one row per image, one column per text: (B_images, B_texts) — transpose the texts",
                          fr="une ligne par image, une colonne par texte : (B_images, B_texts) — transposez les textes"),
        )
        detail = tr(en="cosine similarities scaled by exp(logit_scale)", fr="similarités cosinus multipliées par exp(logit_scale)")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def check_contrastive_loss(fn: Callable) -> CheckResult:
    """Check ``fn(logits)`` = the mean of the image→text and text→image cross-entropies (Radford et al. 2021)."""
    name = "contrastive_loss"

    def body() -> CheckResult:
        logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(5)) * 4
        expected = contrastive_loss(logits)
        actual = call(name, fn, logits.clone())
        target = torch.arange(6)
        mistakes = {
            tr(en="only the image→text direction (rows) is there: CLIP averages both directions",
               fr="seul le sens image→texte (les lignes) est présent : CLIP fait la moyenne des deux sens"): F.cross_entropy(logits, target),
            tr(en="only the text→image direction (columns) is there: CLIP averages both directions",
               fr="seul le sens texte→image (les colonnes) est présent : CLIP fait la moyenne des deux sens"): F.cross_entropy(logits.T, target),
            tr(en="the two directions are summed, not averaged",
               fr="les deux sens sont additionnés au lieu d'être moyennés"): F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target),
        }
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            return failed(name, tr(en=f"expected one number (a 0-d tensor), got shape {tuple(actual.shape)}",
                                   fr=f"un seul nombre était attendu (un tenseur de dimension 0), reçu la forme {tuple(actual.shape)}"))
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5)
        detail = tr(en="(CE(rows) + CE(columns)) / 2 with the diagonal as targets",
                    fr="(CE(lignes) + CE(colonnes)) / 2, avec la diagonale pour cibles")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)
