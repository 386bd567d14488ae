"""Checks for lesson 04 (the U-Net): a residual block's forward pass and masked cross-attention."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from course.attention import attention
from course.checks.core import CheckResult, call, diagnose, passed, run
from course.language import tr
from course.unet import ResBlock


def check_resblock(fn: Callable) -> CheckResult:
    """Check ``fn(block, x, emb)`` against ``block(x, emb)`` for a :class:`course.unet.ResBlock`."""
    name = "resblock"

    def body() -> CheckResult:
        torch.manual_seed(6)
        block = ResBlock(8, 16, 32).eval()
        for p in block.parameters():
            p.data.normal_(0, 0.3)
        x, emb = torch.randn(2, 8, 5, 5), torch.randn(2, 32)
        with torch.no_grad():
            expected = block(x, emb)
            h = block.conv1(F.silu(block.norm1(x)))
            shift = block.time_emb_proj(F.silu(emb))[:, :, None, None]
            end = lambda h: block.conv2(F.silu(block.norm2(h)))  # noqa: E731
            mistakes = {
                tr(en="the skip connection is missing: return h + conv_shortcut(x)",
                   fr="la connexion résiduelle manque : renvoyez h + conv_shortcut(x)"): end(h + shift),
                tr(en="the time embedding is missing (h + time_emb_proj(silu(emb))[:, :, None, None])",
                   fr="le codage du temps manque (h + time_emb_proj(silu(emb))[:, :, None, None])"): end(h) + block.conv_shortcut(x),
                tr(en="SiLU was not applied to the embedding before its projection",
                   fr="la SiLU n'a pas été appliquée au codage du temps avant sa projection"):
                    end(h + block.time_emb_proj(emb)[:, :, None, None]) + block.conv_shortcut(x),
                tr(en="the first normalisation/activation is missing: conv1(silu(norm1(x)))",
                   fr="la première normalisation/activation manque : conv1(silu(norm1(x)))"): end(block.conv1(x) + shift) + block.conv_shortcut(x),
            }
        actual = call(
            name, fn, block, x.clone(), emb.clone(),
            error_hints={
                "must match the size": tr(
                    en="the embedding (B, C) must become (B, C, 1, 1) to shift every pixel: [:, :, None, None]",
                    fr="le codage (B, C) doit devenir (B, C, 1, 1) pour décaler chaque pixel : [:, :, None, None]",
                ),
                "object has no attribute": tr(
                    en="a ResBlock's layers bear diffusers' names: norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut",
                    fr="les couches d'un ResBlock portent les noms de diffusers : norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut",
                ),
            },
        )
        if isinstance(actual, torch.Tensor):
            actual = actual.detach()
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-4)
        return problem if problem is not None else passed(name, "conv(silu(norm(x))) + emb, conv(silu(norm(h))), + conv_shortcut(x)")

    return run(name, body)


def check_cross_attention(fn: Callable) -> CheckResult:
    """Check ``fn(q, k, v, key_mask)`` = softmax(q·kᵀ/√d, masked keys → −∞)·v, q (B, N, d), k, v (B, L, d), key_mask (B, L)."""
    name = "cross_attention"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(7)
        q, k, v = torch.randn(2, 6, 8, generator=g), torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
        key_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
        expected = attention(q, k, v, key_mask[:, None, :])
        actual = call(name, fn, q.clone(), k.clone(), v.clone(), key_mask.clone())
        scores = q @ k.transpose(-2, -1)
        masked = lambda s: s.masked_fill(~key_mask[:, None, :], float("-inf"))  # noqa: E731
        mistakes = {
            tr(en="the padding mask is ignored: padded tokens still receive attention",
               fr="le masque de remplissage est ignoré : les jetons de remplissage reçoivent encore de l'attention"):
                (scores / math.sqrt(8)).softmax(-1) @ v,
            tr(en="the scores are not divided by √d",
               fr="les scores ne sont pas divisés par √d"): masked(scores).softmax(-1) @ v,
            tr(en="the softmax runs over the queries (dim=1) instead of the keys (dim=-1)",
               fr="le softmax porte sur les requêtes (dim=1) au lieu des clés (dim=-1)"):
                torch.nan_to_num(masked(scores / math.sqrt(8)).softmax(1)) @ v,
            tr(en="masked scores were set to 0 instead of −∞: exp(0) = 1 still gives them weight",
               fr="les scores masqués ont été mis à 0 au lieu de −∞ : exp(0) = 1 leur donne encore du poids"):
                scores.div(math.sqrt(8)).masked_fill(~key_mask[:, None, :], 0).softmax(-1) @ v,
        }
        problem = diagnose(
            name, actual, expected, mistakes=mistakes, atol=1e-5,
            shape_hint=tr(en="one output row per query: (B, N, d) — weights (B, N, L) times values (B, L, d)",
                          fr="une ligne de sortie par requête : (B, N, d) — les poids (B, N, L) multipliés par les valeurs (B, L, d)"),
        )
        detail = tr(en="softmax(q·kᵀ/√d) over the unmasked keys, times v", fr="softmax(q·kᵀ/√d) sur les clés non masquées, multiplié par v")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)
