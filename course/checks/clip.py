"""Checks for lesson 03 (CLIP): the similarity matrix and the symmetric contrastive loss."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from course.checks.core import CheckResult, call, diagnose, passed, run
from course.clip import contrastive_loss


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
            "the features were not normalised to unit length (use F.normalize(x, dim=-1))": scale.exp() * img @ txt.T,
            "logit_scale was used as the factor itself; the factor is exp(logit_scale)": scale * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T,
            "the temperature factor exp(logit_scale) is missing": F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T,
            "the features were normalised along the batch (dim=0) instead of along the features (dim=-1)": scale.exp() * F.normalize(img, dim=0) @ F.normalize(txt, dim=0).T,
        }
        problem = diagnose(
            name, actual, expected, mistakes=mistakes, atol=1e-4,
            shape_hint="one row per image, one column per text: (B_images, B_texts) — transpose the texts",
        )
        return problem if problem is not None else passed(name, "cosine similarities scaled by exp(logit_scale)")

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
            "only the image→text direction (rows) is there: CLIP averages both directions": F.cross_entropy(logits, target),
            "only the text→image direction (columns) is there: CLIP averages both directions": F.cross_entropy(logits.T, target),
            "the two directions are summed, not averaged": F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target),
        }
        if isinstance(actual, torch.Tensor) and actual.dim() != 0:
            return CheckResult(False, f"❌ {name}: expected one number (a 0-d tensor), got shape {tuple(actual.shape)}")
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5)
        return problem if problem is not None else passed(name, "(CE(rows) + CE(columns)) / 2 with the diagonal as targets")

    return run(name, body)
