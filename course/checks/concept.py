"""Checks for lesson 11 (a new word): putting back the table's other rows after a step of textual inversion (the
diffusers script's way; Gal et al. 2023, eq. 2), and LoRA's forward (Hu et al. 2022, eq. 3)."""

from __future__ import annotations

from typing import Callable

import torch

from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.language import tr


def _restore(table, original, ids):
    out = original.clone()
    out[ids] = table[ids]
    return out


def check_restore_rows(fn: Callable) -> CheckResult:
    """Check ``fn(table, original, trained_ids)`` → the table with every row but ``trained_ids`` back to ``original``'s."""
    name = "restore_rows"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(4)
        for ids in ([7], [2, 5]):
            original = torch.randn(9, 6, generator=g)
            table = original + 0.1 * torch.randn(9, 6, generator=g)  # after a step: every row moved a little (weight decay)
            keep = original.clone()
            expected = _restore(table, original, ids)
            others = [i for i in range(9) if i not in ids]
            mistakes = {
                tr(en="the trained rows were put back too: they are the ones to keep as the step left them",
                   fr="les lignes entraînées ont été remises aussi : ce sont elles qu'il faut garder telles que le pas les a laissées"): original,
                tr(en="only the trained rows were put back, the wrong way round: put back every row except trained_ids",
                   fr="seules les lignes entraînées ont été remises, à l'envers : remettez toutes les lignes sauf trained_ids"): _restore(table, original, others),
                tr(en="nothing was put back: the table is returned as the step left it", fr="rien n'a été remis : la table est renvoyée telle que le pas l'a laissée"):
                    table,
            }
            got = call(name, fn, table, original, list(ids))
            problem = diagnose(name, got, expected, mistakes=mistakes, atol=0, rtol=0)
            if problem is not None:
                return problem
            if not torch.equal(original, keep):
                return failed(name, tr(en="`original` was modified: it is the reference to copy from, leave it as it is",
                                       fr="`original` a été modifié : c'est la référence dont on copie, laissez-la intacte"))
        return passed(name, tr(en="every row but the new word's is the original again, bit for bit: weight decay and Adam moved them, you put them back",
                               fr="chaque ligne sauf celle du nouveau mot redevient l'originale, au bit près : la pénalité et Adam les avaient bougées, "
                                  "vous les avez remises"))

    return run(name, body)


def _lora(x, W, b, A, B, scale):
    return x @ W.T + b + scale * (x @ A.T) @ B.T


def check_lora_forward(fn: Callable) -> CheckResult:
    """Check ``fn(x, W, b, A, B, scale)`` → x Wᵀ + b + scale · (x Aᵀ) Bᵀ for x (…, d_in), W (d_out, d_in), A (r, d_in), B (d_out, r)."""
    name = "lora_forward"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(8)
        d_in, d_out, r = 12, 10, 3
        W, b = torch.randn(d_out, d_in, generator=g), torch.randn(d_out, generator=g)
        A, B = torch.randn(r, d_in, generator=g), torch.randn(d_out, r, generator=g)
        scale = 2.0  # α / r with α = 6, r = 3
        for x in (torch.randn(2, 5, d_in, generator=g), torch.randn(7, d_in, generator=g)):
            expected = _lora(x, W, b, A, B, scale)
            mistakes = {
                tr(en="the scale α/r is missing", fr="l'échelle α/r manque"): _lora(x, W, b, A, B, 1.0),
                tr(en="the base layer is missing: LoRA adds to W x + b, it does not replace it",
                   fr="la couche de base manque : LoRA s'ajoute à W x + b, il ne la remplace pas"): scale * (x @ A.T) @ B.T,
                tr(en="the bias b is missing", fr="le biais b manque"): x @ W.T + scale * (x @ A.T) @ B.T,
                tr(en="the update is scaled by r/α: the scale is α/r", fr="la mise à jour est multipliée par r/α : l'échelle vaut α/r"):
                    _lora(x, W, b, A, B, 1 / scale),
            }
            got = call(name, fn, x.clone(), W.clone(), b.clone(), A.clone(), B.clone(), scale,
                       error_hints={"mat1 and mat2": tr(en="A is (r, d_in) and B (d_out, r), as nn.Linear weights: x @ A.T, then @ B.T",
                                                        fr="A est (r, d_in) et B (d_out, r), comme des poids de nn.Linear : x @ A.T, puis @ B.T")})
            problem = diagnose(name, got, expected, mistakes=mistakes, atol=1e-4, rtol=1e-4,
                               shape_hint=tr(en="the output is (…, d_out), like the base layer's", fr="la sortie est (…, d_out), comme celle de la couche de base"))
            if problem is not None:
                return problem
        zero = call(name, fn, x, W, b, A, torch.zeros_like(B), scale)
        if not torch.allclose(zero, x @ W.T + b, atol=1e-5):
            return failed(name, tr(en="with B = 0 (a new LoRA) the output must be the base layer's, W x + b",
                                   fr="avec B = 0 (un LoRA neuf) la sortie doit être celle de la couche de base, W x + b"))
        return passed(name, tr(en="W x + b + (α/r)·B A x, through the rank-r bottleneck; with B = 0 it is the base layer exactly",
                               fr="W x + b + (α/r)·B A x, par le goulot de rang r ; avec B = 0 c'est exactement la couche de base"))

    return run(name, body)


HINTS = {
    "restore_rows": (
        {"en": "start from a copy of the original table, then copy in only the rows the step was meant to train.",
         "fr": "partez d'une copie de la table d'origine, puis recopiez-y seulement les lignes que le pas devait entraîner."},
        {"en": "out = original.clone(); out[trained_ids] = table[trained_ids] — a list of indices selects those rows.",
         "fr": "out = original.clone() ; out[trained_ids] = table[trained_ids] — une liste d'indices sélectionne ces lignes."},
        {"en": "out = original.clone()\n   out[trained_ids] = table[trained_ids]\n   return out",
         "fr": "out = original.clone()\n   out[trained_ids] = table[trained_ids]\n   return out"},
    ),
    "lora_forward": (
        {"en": "the base layer's output, plus the same input through two small matrices, A (down to r numbers) then B (back up), times α/r.",
         "fr": "la sortie de la couche de base, plus la même entrée passée par deux petites matrices, A (on descend à r nombres) puis B (on remonte), "
               "fois α/r."},
        {"en": "h = x Wᵀ + b + scale · (x Aᵀ) Bᵀ — the weights are stored as nn.Linear's, (out, in), hence the transposes.",
         "fr": "h = x Wᵀ + b + scale · (x Aᵀ) Bᵀ — les poids sont rangés comme ceux de nn.Linear, (sortie, entrée), d'où les transposées."},
        {"en": "return x @ W.T + b + scale * (x @ A.T) @ B.T",
         "fr": "return x @ W.T + b + scale * (x @ A.T) @ B.T"},
    ),
}
