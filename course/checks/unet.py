"""Checks for lesson 04 (the U-Net): a residual block's forward pass, one level of the way down assembled from its
blocks, and masked cross-attention."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from course.attention import attention
from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.language import tr
from course.unet import ResBlock, UNet, UNetConfig


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
                **dict.fromkeys(("(16) must match the size of tensor b (8)", "(8) must match the size of tensor b (16)"), tr(
                    en="x itself was added: here x has 8 channels and h 16, so add conv_shortcut(x), the 1 × 1 convolution "
                       "that brings x to h's channels (the identity when they are equal)",
                    fr="x a été ajouté tel quel : ici x a 8 canaux et h en a 16, il faut donc ajouter conv_shortcut(x), la "
                       "convolution 1 × 1 qui porte x au nombre de canaux de h (l'identité quand ils sont égaux)",
                )),
                **dict.fromkeys(("(5) must match the size of tensor b (16)", "(16) must match the size of tensor b (5)"), tr(
                    en="the embedding (B, C) must become (B, C, 1, 1) to shift every pixel: [:, :, None, None]",
                    fr="le codage (B, C) doit devenir (B, C, 1, 1) pour décaler chaque pixel : [:, :, None, None]",
                )),
                "to have 8 channels, but got 16": tr(
                    en="conv_shortcut takes the block's input x (8 channels), not h",
                    fr="conv_shortcut prend l'entrée x du bloc (8 canaux), et non h",
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


def _undefined(name: str, actual, expected: torch.Tensor, mistakes: dict[str, torch.Tensor]) -> CheckResult | None:
    """Name a mistake whose output holds NaN (which :func:`diagnose` would call a division by zero), before diagnosing."""
    if not (isinstance(actual, torch.Tensor) and actual.shape == expected.shape and actual.is_floating_point()):
        return None
    actual = actual.detach().to(expected.dtype)
    if bool(torch.isfinite(actual).all()):
        return None
    for description, wrong in mistakes.items():
        if wrong.shape == expected.shape and torch.allclose(actual, wrong, atol=1e-5, rtol=1e-4, equal_nan=True):
            return failed(name, tr(en="looks like ", fr="erreur typique — ") + description)
    return None


def check_cross_attention(fn: Callable) -> CheckResult:
    """Check ``fn(q, k, v, key_mask)`` = softmax(q·kᵀ/√d, masked keys → −∞)·v, q (B, N, d), k, v (B, L, d), key_mask (B, L)."""
    name = "cross_attention"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(7)
        q, k, v = torch.randn(2, 6, 8, generator=g), torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
        key_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
        expected = attention(q, k, v, key_mask[:, None, :])
        actual = call(name, fn, q.clone(), k.clone(), v.clone(), key_mask.clone(), error_hints={
            "at non-singleton dimension 1": tr(
                en="key_mask (B, L) sets keys aside, the last axis of the scores (B, N, L): give it an axis for the queries, key_mask[:, None, :]",
                fr="key_mask (B, L) écarte des clés, le dernier axe des scores (B, N, L) : donnez-lui un axe pour les requêtes, key_mask[:, None, :]",
            ),
        })
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
        inverted = (scores / math.sqrt(8)).masked_fill(key_mask[:, None, :], float("-inf"))  # only the padding kept
        mistakes[tr(en="the mask is inverted: key_mask is True for the keys to keep, so the scores to set to −∞ are those where it is False",
                    fr="le masque est inversé : key_mask vaut True pour les clés gardées, ce sont donc les scores où il vaut False qu'il faut mettre à −∞")] = \
            torch.nan_to_num(inverted.softmax(-1)) @ v
        problem = _undefined(name, actual, expected, {
            tr(en="the mask is inverted: only the padding receives attention, and a prompt without padding has every key at −∞, "
                  "hence NaN (0/0); key_mask is True for the keys to keep: mask where it is False (~key_mask)",
               fr="le masque est inversé : seul le remplissage reçoit de l'attention, et un prompt sans remplissage a toutes ses clés "
                  "à −∞, d'où des NaN (0/0) ; key_mask vaut True pour les clés gardées : masquez là où il vaut False (~key_mask)"):
                inverted.softmax(-1) @ v,
            tr(en="the softmax runs over the queries (dim=1) instead of the keys (dim=-1): a masked key is −∞ for every query, "
                  "so its column is NaN (0/0)",
               fr="le softmax porte sur les requêtes (dim=1) au lieu des clés (dim=-1) : une clé masquée vaut −∞ pour toutes "
                  "les requêtes, sa colonne donne donc des NaN (0/0)"):
                masked(scores / math.sqrt(8)).softmax(1) @ v,
        })
        if problem is None:  # (a failed CheckResult is falsy: test None, not truth)
            problem = diagnose(
                name, actual, expected, mistakes=mistakes, atol=1e-5,
                shape_hint=tr(en="one output row per query: (B, N, d) — weights (B, N, L) times values (B, L, d)",
                              fr="une ligne de sortie par requête : (B, N, d) — les poids (B, N, L) multipliés par les valeurs (B, L, d)"),
            )
        detail = tr(en="softmax(q·kᵀ/√d) over the unmasked keys, times v", fr="softmax(q·kᵀ/√d) sur les clés non masquées, multiplié par v")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def _walk(level, h, emb, context, mask, *, keep="each", before_attention=False, attend="all", swap=False, downsample=True, keep_down=True):
    """One level of the way down, done right (the defaults) or with one typical mistake: ``keep`` "each", "last" or
    "none" (which pairs' outputs become skips), ``attend`` "all", "no mask", "no context" or "none"."""
    skips = []
    for i, resnet in enumerate(level.resnets):
        attention = level.attentions[i] if level.attentions is not None and attend != "none" else None

        def attend_to(h):
            if attend == "no context":
                return attention(h)
            return attention(h, context) if attend == "no mask" else attention(h, context, mask)

        if swap and attention is not None:
            h = resnet(attend_to(h), emb)
        else:
            h = resnet(h, emb)
            if before_attention and keep == "each":
                skips.append(h)
            h = attend_to(h) if attention is not None else h
        if keep == "each" and not before_attention:
            skips.append(h)
    if keep == "last":
        skips.append(h)
    if level.downsamplers is not None and downsample:
        h = level.downsamplers[0](h)
        if keep_down:
            skips.append(h)
    return h, skips


def _same(a: tuple[torch.Tensor, list[torch.Tensor]], b: tuple[torch.Tensor, list[torch.Tensor]]) -> bool:
    close = lambda x, y: x.shape == y.shape and bool(torch.allclose(x, y, atol=1e-5, rtol=1e-4))  # noqa: E731
    return close(a[0], b[0]) and len(a[1]) == len(b[1]) and all(close(x, y) for x, y in zip(a[1], b[1]))


def check_down_level(fn: Callable) -> CheckResult:
    """Check ``fn(level, h, emb, context, mask)`` = ``level(h, emb, context, mask)`` → (h, skips) for the levels of a small
    random U-Net: with attention and a downsampler, without attention, and the last level (no downsampler)."""
    name = "down_level"

    def body() -> CheckResult:
        torch.manual_seed(4)
        unet = UNet(UNetConfig(channels=(16, 16, 16), attention=(False, True, True), heads=2, context_dim=8, groups=4, layers_per_block=2)).eval()
        g = torch.Generator().manual_seed(4)
        h, emb, context = torch.randn(2, 16, 8, 8, generator=g), torch.randn(2, 64, generator=g), torch.randn(2, 5, 8, generator=g)
        mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :]  # (B, 1, 1, L), as UNet.forward passes it
        mistakes = {
            tr(en="no skip was kept: skips must receive h after each resnet (and its attention), then the downsampler's output",
               fr="aucune connexion de saut n'a été gardée : skips doit recevoir h après chaque resnet (et son attention), puis la "
                  "sortie du downsampler"): dict(keep="none", keep_down=False),
            tr(en="only the downsampler's output was kept: h also goes into skips after each resnet (and its attention)",
               fr="seule la sortie du downsampler a été gardée : h va aussi dans skips après chaque resnet (et son attention)"): dict(keep="none"),
            tr(en="only the last pair's output was kept: append h inside the loop, after each resnet (and its attention)",
               fr="seule la sortie de la dernière paire a été gardée : ajoutez h dans la boucle, après chaque resnet (et son attention)"):
                dict(keep="last"),
            tr(en="the skip was kept before the attention: append h once the attention has run on it",
               fr="la connexion de saut a été gardée avant l'attention : ajoutez h une fois que l'attention l'a transformé"):
                dict(before_attention=True),
            tr(en="the attention was skipped: where the level has attentions, h = level.attentions[i](h, context, mask) after resnet i",
               fr="l'attention a été sautée : quand le niveau en a, h = level.attentions[i](h, context, mask) après le resnet i"):
                dict(attend="none"),
            tr(en="the attention did not receive the prompt: pass it context and mask, level.attentions[i](h, context, mask)",
               fr="l'attention n'a pas reçu le prompt : passez-lui context et mask, level.attentions[i](h, context, mask)"):
                dict(attend="no context"),
            tr(en="the mask was not passed to the attention: level.attentions[i](h, context, mask)",
               fr="le masque n'a pas été passé à l'attention : level.attentions[i](h, context, mask)"): dict(attend="no mask"),
            tr(en="resnet and attention in the wrong order: the resnet comes first, then its attention",
               fr="resnet et attention dans le mauvais ordre : le resnet d'abord, puis son attention"): dict(swap=True),
            tr(en="the downsampler was forgotten: at the end, h = level.downsamplers[0](h) where the level has one, and it is a skip too",
               fr="le downsampler a été oublié : à la fin, h = level.downsamplers[0](h) quand le niveau en a un, et c'est aussi une "
                  "connexion de saut"): dict(downsample=False),
            tr(en="the downsampler's output was not appended to skips: the way up needs it too",
               fr="la sortie du downsampler n'a pas été ajoutée à skips : la remontée en a besoin aussi"): dict(keep_down=False),
        }
        error_hints = {
            "'NoneType'": tr(
                en="a level without attention has level.attentions = None, and the last level level.downsamplers = None: test `is not None` first",
                fr="un niveau sans attention a level.attentions = None, et le dernier niveau level.downsamplers = None : testez d'abord `is not None`",
            ),
            "'DownBlock' object has no attribute": tr(
                en="a level's parts are level.resnets, level.attentions (or None) and level.downsamplers (or None)",
                fr="les pièces d'un niveau sont level.resnets, level.attentions (ou None) et level.downsamplers (ou None)",
            ),
        }
        for i in (1, 0, 2):  # attention and a downsampler; no attention; no downsampler
            level = unet.down_blocks[i]
            with torch.no_grad():
                expected = level(h, emb, context, mask)
                out = call(name, fn, level, h.clone(), emb.clone(), context.clone(), mask.clone(), error_hints=error_hints)
            where = f"down_blocks[{i}]"
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                return failed(name, tr(en=f"expected a pair (h, skips), got {type(out).__name__}",
                                       fr=f"une paire (h, skips) était attendue, reçu {type(out).__name__}"))
            out_h, out_skips = out
            if isinstance(out_h, (list, tuple)) and isinstance(out_skips, torch.Tensor):
                return failed(name, tr(en="return (h, skips), in that order", fr="renvoyez (h, skips), dans cet ordre"))
            if not isinstance(out_h, torch.Tensor) or not isinstance(out_skips, (list, tuple)) or not all(isinstance(s, torch.Tensor) for s in out_skips):
                return failed(name, tr(en="expected h, a tensor, and skips, a list of tensors",
                                       fr="h, un tenseur, et skips, une liste de tenseurs, étaient attendus"))
            actual = (out_h.detach(), [s.detach() for s in out_skips])
            if _same(actual, expected):
                continue
            with torch.no_grad():
                for description, mistake in mistakes.items():
                    wrong = _walk(level, h, emb, context, mask, **mistake)
                    if not _same(wrong, expected) and _same(actual, wrong):
                        return failed(name, tr(en=f"{where}: looks like ", fr=f"{where} : erreur typique — ") + description)
            n_pairs, down = len(level.resnets), level.downsamplers is not None
            if len(actual[1]) != len(expected[1]):
                why = tr(en=f"{where}: {len(actual[1])} skips, expected {len(expected[1])}: one after each of its {n_pairs} resnets",
                         fr=f"{where} : {len(actual[1])} connexions de saut, {len(expected[1])} attendues : une après chacun de ses {n_pairs} resnets")
                return failed(name, why + (tr(en=", then the downsampler's output", fr=", puis la sortie du downsampler") if down else ""))
            for label, a, e in [("h", actual[0], expected[0])] + [(f"skips[{j}]", a, e) for j, (a, e) in enumerate(zip(actual[1], expected[1]))]:
                problem = diagnose(name, a, e, atol=1e-5)
                if problem is not None:
                    return failed(name, f"{where}, {label}" + tr(en=": ", fr=" : ") + problem.message.split(tr(en=": ", fr=" : "), 1)[-1])
        return passed(name, tr(en="each resnet, then its attention, leaves a skip; the downsampler's output is one too",
                               fr="chaque resnet, suivi de son attention, laisse une connexion de saut ; la sortie du downsampler aussi"))

    return run(name, body)


def _code(*lines: str) -> dict[str, str]:
    text = "\n   ".join(lines)
    return {"en": text, "fr": text}


HINTS = {
    "resblock": (
        {"en": "two stages of normalisation → SiLU → convolution; in between, add the time embedding (one shift per channel); "
               "at the end, add the input, through the shortcut.",
         "fr": "deux étages normalisation → SiLU → convolution ; entre les deux, ajoutez le codage du temps (un décalage par canal) ; "
               "à la fin, ajoutez l'entrée, passée par le raccourci."},
        {"en": "h = conv1(silu(norm1(x))) + time_emb_proj(silu(emb)), the embedding made (B, C, 1, 1); "
               "out = conv2(silu(norm2(h))) + conv_shortcut(x).",
         "fr": "h = conv1(silu(norm1(x))) + time_emb_proj(silu(emb)), le codage mis en forme (B, C, 1, 1) ; "
               "sortie = conv2(silu(norm2(h))) + conv_shortcut(x)."},
        _code("h = block.conv1(F.silu(block.norm1(x)))",
              "h = h + block.time_emb_proj(F.silu(emb))[:, :, None, None]",
              "h = block.conv2(F.silu(block.norm2(h)))",
              "return h + block.conv_shortcut(x)"),
    ),
    "down_level": (
        {"en": "walk the level's resnets in order, each followed by its attention when the level has some; set h aside after "
               "each pair; then the downsampler, if any, whose output is set aside too.",
         "fr": "parcourez les resnets du niveau dans l'ordre, chacun suivi de son attention quand le niveau en a ; mettez h de côté "
               "après chaque paire ; puis le downsampler, s'il y en a un, dont la sortie est mise de côté elle aussi."},
        {"en": "for each i: h = resnets[i](h, emb); h = attentions[i](h, context, mask) if attentions is not None; "
               "skips.append(h). Then, if downsamplers is not None: h = downsamplers[0](h); skips.append(h). Return (h, skips).",
         "fr": "pour chaque i : h = resnets[i](h, emb) ; h = attentions[i](h, context, mask) si attentions n'est pas None ; "
               "skips.append(h). Puis, si downsamplers n'est pas None : h = downsamplers[0](h) ; skips.append(h). Renvoyez (h, skips)."},
        _code("skips = []",
              "for i, resnet in enumerate(level.resnets):",
              "    h = resnet(h, emb)",
              "    if level.attentions is not None:",
              "        h = level.attentions[i](h, context, mask)",
              "    skips.append(h)",
              "if level.downsamplers is not None:",
              "    h = level.downsamplers[0](h)",
              "    skips.append(h)",
              "return h, skips"),
    ),
    "cross_attention": (
        {"en": "compare every query with every key (a score), give the keys set aside a score of −∞ so that their weight is 0, "
               "turn each query's scores into weights that sum to 1, and average the values with them.",
         "fr": "comparez chaque requête à chaque clé (un score), donnez aux clés écartées un score de −∞ pour que leur poids soit nul, "
               "changez les scores de chaque requête en poids de somme 1, et faites avec eux la moyenne des valeurs."},
        {"en": "scores = q·kᵀ/√d, (B, N, L); −∞ where key_mask is False, the mask given an axis for the N queries; "
               "softmax over the last axis (the keys); then weights @ v, (B, N, d).",
         "fr": "scores = q·kᵀ/√d, (B, N, L) ; −∞ là où key_mask vaut False, le masque muni d'un axe pour les N requêtes ; "
               "softmax sur le dernier axe (les clés) ; puis poids @ v, (B, N, d)."},
        _code("scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])",
              "scores = scores.masked_fill(~key_mask[:, None, :], float(\"-inf\"))",
              "return scores.softmax(dim=-1) @ v"),
    ),
}
