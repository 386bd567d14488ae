"""The checkers of lessons 04, 05 and 10 that diagnose assemblies and loops, and the mistakes added to the older ones:
each typical mistake, written as a learner would, gets its own message, in English and in French."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from course.checks.unet import check_cross_attention, check_down_level, check_resblock

EN_WORDS = frozenset(
    "the an is are was were of and with not instead missing expected got looks like one per must use "
    "used take sum mean over only both step wrong way should has have been by".split()
)


@pytest.fixture(params=["en", "fr"])
def lang(request, monkeypatch):
    monkeypatch.setenv("COURSE_LANG", request.param)
    return request.param


def english_words(message: str) -> list[str]:
    text = re.sub(r"`[^`]*`", " ", message)
    text = re.sub(r"\b\w*[_.(]\w*\b", " ", text)
    return [w for w in re.findall(r"[A-Za-zÀ-ÿœ']+", text) if w.lower() in EN_WORDS]


def ok(result, lang):
    assert result.passed and result.message.startswith("✅"), result.message
    assert lang == "en" or not english_words(result.message), result.message
    return True


def wrong(result, lang, en, fr, raised=False):
    """Failed, on one line, naming the mistake in the edition's language (``raised``: the learner's code raised, and
    PyTorch's own error message, quoted, is in English)."""
    assert not result.passed and result.message.startswith("❌") and "\n" not in result.message, result.message
    fragment = en if lang == "en" else fr
    assert fragment in result.message, f"{fragment!r} not in {result.message!r}"
    said = result.message.split(" — ", 1)[-1] if raised else result.message  # the advice after PyTorch's message
    assert lang == "en" or not english_words(said), (english_words(said), result.message)
    return True


def stub(*args):
    raise NotImplementedError


# ----------------------------------------------------------------------------- lesson 04: the residual block


def my_resblock(block, x, emb):
    h = block.conv1(F.silu(block.norm1(x)))
    h = h + block.time_emb_proj(F.silu(emb))[:, :, None, None]
    h = block.conv2(F.silu(block.norm2(h)))
    return h + block.conv_shortcut(x)


def test_resblock_adding_x_itself_when_the_channels_change(lang):
    def plain_x(block, x, emb):
        h = block.conv1(F.silu(block.norm1(x))) + block.time_emb_proj(F.silu(emb))[:, :, None, None]
        return block.conv2(F.silu(block.norm2(h))) + x

    result = check_resblock(plain_x)
    assert wrong(result, lang, "x itself was added", "x a été ajouté tel quel", raised=True)
    assert "(B, C, 1, 1)" not in result.message  # no longer the embedding's advice
    assert wrong(check_resblock(lambda b, x, e: x + my_resblock(b, x, e) - b.conv_shortcut(x)), lang, "conv_shortcut(x)", "conv_shortcut(x)", raised=True)


def test_resblock_shortcut_on_h_and_the_embedding_advice_still_there(lang):
    def shortcut_of_h(block, x, emb):
        h = block.conv1(F.silu(block.norm1(x))) + block.time_emb_proj(F.silu(emb))[:, :, None, None]
        h = block.conv2(F.silu(block.norm2(h)))
        return h + block.conv_shortcut(h)

    assert wrong(check_resblock(shortcut_of_h), lang, "conv_shortcut takes the block's input x", "conv_shortcut prend l'entrée x du bloc", raised=True)
    no_broadcast = lambda block, x, emb: block.conv1(F.silu(block.norm1(x))) + block.time_emb_proj(F.silu(emb))  # noqa: E731
    assert wrong(check_resblock(no_broadcast), lang, "must become (B, C, 1, 1)", "doit devenir (B, C, 1, 1)", raised=True)
    assert ok(check_resblock(my_resblock), lang)


# ----------------------------------------------------------------------------- lesson 04: cross-attention


def attention(invert=False, dim=-1, mask_axis=None):
    def fn(q, k, v, key_mask):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        mask = key_mask if mask_axis == "none" else key_mask[:, :, None] if mask_axis == "queries" else key_mask[:, None, :]
        scores = scores.masked_fill(mask if invert else ~mask, float("-inf"))
        return scores.softmax(dim=dim) @ v

    return fn


def test_cross_attention_inverted_mask_is_named_not_a_division_by_zero(lang):
    result = check_cross_attention(attention(invert=True))
    assert wrong(result, lang, "the mask is inverted", "le masque est inversé")
    assert "division" not in result.message
    inverted_zeroed = lambda q, k, v, m: torch.nan_to_num(attention(invert=True)(q, k, v, m))  # noqa: E731
    assert wrong(check_cross_attention(inverted_zeroed), lang, "the mask is inverted", "le masque est inversé")


def test_cross_attention_softmax_over_the_queries_with_nan(lang):
    result = check_cross_attention(attention(dim=1))
    assert wrong(result, lang, "softmax runs over the queries", "le softmax porte sur les requêtes")
    assert "NaN" in result.message and "division" not in result.message


def test_cross_attention_mask_without_the_queries_axis(lang):
    for axis in ("none", "queries"):
        assert wrong(check_cross_attention(attention(mask_axis=axis)), lang, "key_mask[:, None, :]", "key_mask[:, None, :]", raised=True)
    assert ok(check_cross_attention(attention()), lang)


# ----------------------------------------------------------------------------- lesson 04: one level of the way down


def down_level(keep="each", before_attention=False, attend="all", swap=False, downsample=True, keep_down=True):
    """A learner's level, right (the defaults) or with one mistake."""

    def fn(level, h, emb, context, mask):
        skips = []
        for i, resnet in enumerate(level.resnets):
            attn = level.attentions[i] if level.attentions is not None and attend != "none" else None
            if swap and attn is not None:
                h = attn(h, context, mask)
            h = resnet(h, emb)
            if before_attention:
                skips.append(h)
            if attn is not None and not swap:
                h = attn(h) if attend == "no context" else attn(h, context) if attend == "no mask" else attn(h, context, mask)
            if keep == "each" and not before_attention:
                skips.append(h)
        if keep == "last":
            skips.append(h)
        if level.downsamplers is not None and downsample:
            h = level.downsamplers[0](h)
            if keep_down:
                skips.append(h)
        return h, skips

    return fn


def test_down_level_right_answers(lang):
    assert ok(check_down_level(down_level()), lang)
    assert ok(check_down_level(lambda level, h, emb, context, mask: level(h, emb, context, mask)), lang)


def test_down_level_stub():
    result = check_down_level(stub)
    assert not result.passed and result.not_implemented


@pytest.mark.parametrize("mistake, en, fr", [
    (dict(keep="none", keep_down=False), "no skip was kept", "aucune connexion de saut n'a été gardée"),
    (dict(keep="none"), "only the downsampler's output was kept", "seule la sortie du downsampler a été gardée"),
    (dict(keep="last"), "only the last pair's output was kept", "seule la sortie de la dernière paire"),
    (dict(before_attention=True), "kept before the attention", "gardée avant l'attention"),
    (dict(attend="none"), "the attention was skipped", "l'attention a été sautée"),
    (dict(attend="no context"), "did not receive the prompt", "n'a pas reçu le prompt"),
    (dict(attend="no mask"), "the mask was not passed", "le masque n'a pas été passé"),
    (dict(swap=True), "the wrong order", "dans le mauvais ordre"),
    (dict(downsample=False), "the downsampler was forgotten", "le downsampler a été oublié"),
    (dict(keep_down=False), "output was not appended to skips", "n'a pas été ajoutée à skips"),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None)
def test_down_level_mistakes(lang, mistake, en, fr):
    assert wrong(check_down_level(down_level(**mistake)), lang, en, fr)


def test_down_level_shapes_of_the_answer(lang):
    assert wrong(check_down_level(lambda level, h, e, c, m: level(h, e, c, m)[::-1]), lang, "in that order", "dans cet ordre")
    assert wrong(check_down_level(lambda level, h, e, c, m: level(h, e, c, m)[0]), lang, "expected a pair (h, skips)", "une paire (h, skips)")

    def no_none_test(level, h, emb, context, mask):  # right on a level with attention, a crash on one without
        skips = []
        for resnet, attn in zip(level.resnets, level.attentions):
            h = attn(resnet(h, emb), context, mask)
            skips.append(h)
        h = level.downsamplers[0](h)
        return h, skips + [h]

    assert wrong(check_down_level(no_none_test), lang, "test `is not None` first", "testez d'abord `is not None`", raised=True)


# ----------------------------------------------------------------------------- lesson 05: the generation loop


def text_to_image(guidance="right", at_prev=False, stop_early=False, frozen=False, decoding="divide", swap_abar=False, clamp=False,
                  instants=False, int_t=False, to_t_minus_1=False):
    """A learner's generation loop, right (the defaults) or with one mistake."""
    from course.samplers import ddim_update

    def fn(unet, decode, context, null, z_T, timesteps, abar, w, scale):
        z = z_T
        pairs = list(zip(timesteps[:-1], timesteps[1:]))
        for t, t_prev in pairs[:-1] if stop_early else pairs:
            if int_t:
                t, t_prev = int(t), int(t_prev)
            if to_t_minus_1:
                t_prev = t - 1
            at = t_prev if at_prev else t
            eps_c, eps_u = unet(z, at, context), unet(z, at, null)
            eps = {"right": eps_u + w * (eps_c - eps_u), "none": eps_c, "null": eps_u, "reversed": eps_c + w * (eps_u - eps_c),
                   "ho": (1 + w) * eps_c - w * eps_u}[guidance]
            if instants:
                step = ddim_update(z, eps, t, t_prev)
            else:
                step = ddim_update(z, eps, abar[t_prev], abar[t]) if swap_abar else ddim_update(z, eps, abar[t], abar[t_prev])
            z = z if frozen else step
        image = decode({"divide": z / scale, "none": z, "multiply": z * scale, "latent": None}[decoding]) if decoding != "latent" else z / scale
        return image.clamp(-1, 1) if clamp else image

    return fn


def test_text_to_image_right_answers(lang):
    from course.checks.latent import check_text_to_image, course_text_to_image

    assert ok(check_text_to_image(text_to_image()), lang)
    assert ok(check_text_to_image(text_to_image(clamp=True)), lang)  # clamped for display: the same images
    assert ok(check_text_to_image(course_text_to_image), lang)
    assert check_text_to_image(stub).not_implemented


@pytest.mark.parametrize("mistake, en, fr", [
    (dict(decoding="none"), "without dividing by the scaling factor", "sans être divisé par le facteur d'échelle"),
    (dict(decoding="multiply"), "multiplied by the scaling factor", "multiplié par le facteur d'échelle"),
    (dict(guidance="none"), "no guidance: ε(c) alone", "pas de guidance : seul ε(c)"),
    (dict(guidance="null"), "only ε(∅) was used", "seul ε(∅) a servi"),
    (dict(guidance="reversed"), "the guidance goes the wrong way", "la guidance va dans le mauvais sens"),
    (dict(at_prev=True), "asked at t_prev", "interrogé à t_prev"),
    (dict(stop_early=True), "stops one step early", "s'arrête un pas trop tôt"),
    (dict(frozen=True), "z never moves", "z ne bouge jamais"),
    (dict(guidance="ho"), "Ho & Salimans' (2022) convention, (1 + w)·ε(c) − w·ε(∅)", "la convention de Ho & Salimans (2022), (1 + w)·ε(c) − w·ε(∅)"),
    (dict(to_t_minus_1=True), "the step goes to t − 1 instead of the next instant of the grid, t_prev",
     "le pas va jusqu'à t − 1 au lieu de l'instant suivant de la grille, t_prev"),
    (dict(decoding="latent"), "got a latent (2, 4, 8, 8), expected an image (2, 3, 16, 16)", "reçu un latent (2, 4, 8, 8)"),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None)
def test_text_to_image_mistakes(lang, mistake, en, fr):
    from course.checks.latent import check_text_to_image

    assert wrong(check_text_to_image(text_to_image(**mistake)), lang, en, fr)


def test_text_to_image_swapped_alphas_crash_is_explained(lang):
    from course.checks.latent import check_text_to_image

    assert wrong(check_text_to_image(text_to_image(swap_abar=True)), lang, "(check the order too)", "(vérifiez aussi l'ordre)", raised=True)


def test_text_to_image_instants_given_to_ddim_update_are_explained(lang):
    from course.checks.latent import check_text_to_image

    result = check_text_to_image(text_to_image(instants=True))
    assert wrong(result, lang, "ddim_update takes ᾱ_t and ᾱ_prev, numbers between 0 and 1, not the instants",
                 "ddim_update attend ᾱ_t et ᾱ_prev, des nombres entre 0 et 1, pas les instants", raised=True)
    assert "abar[t], abar[t_prev]" in result.message


def test_text_to_image_t_converted_to_an_int_is_explained(lang):
    from course.checks.latent import check_text_to_image

    assert wrong(check_text_to_image(text_to_image(int_t=True)), lang, "the U-Net takes t as a tensor, as it comes out of `timesteps`",
                 "le U-Net attend t sous forme de tenseur, tel qu'il sort de `timesteps`", raised=True)


# ----------------------------------------------------------------------------- lesson 10: Attend-and-Excite's update


def excite_update(sign=-1.0, reduce="sum", step=True, detach=True, leaf=True, loss="max", returns="latent"):
    """A learner's update, right (the defaults) or with one mistake."""
    from course.attend_excite import excite_loss

    def fn(z, t, strengths_at, counts, step_size):
        if leaf:
            z = z.detach().requires_grad_(True)
        strengths = strengths_at(z, t)
        losses = excite_loss(strengths, counts) if loss == "max" else torch.stack([(1 - strengths[b, :n]).mean() for b, n in enumerate(counts)])
        total = {"sum": losses.sum(), "mean": losses.mean(), "none": losses}[reduce]
        (grad,) = torch.autograd.grad(total, z)
        size = step_size if step else 1.0
        out = {"latent": z + sign * size * grad, "step": sign * size * grad, "grad": grad}[returns]
        return out.detach() if detach else out

    return fn


def test_excite_update_right_answers(lang):
    from course.checks.composition import check_excite_update, excite_update as course_update

    assert ok(check_excite_update(excite_update()), lang)
    assert ok(check_excite_update(course_update), lang)
    assert check_excite_update(stub).not_implemented


@pytest.mark.parametrize("mistake, en, fr", [
    (dict(sign=1.0), "went up the gradient", "a remonté le gradient"),
    (dict(reduce="mean"), "averaged over the images", "moyennées sur les images"),
    (dict(step=False), "the step size is missing", "le pas manque"),
    (dict(loss="mean"), "the loss is not Attend-and-Excite's", "ce n'est pas la bonne perte"),
    (dict(returns="step"), "the step was returned", "c'est le pas qui a été renvoyé"),
    (dict(returns="grad"), "the gradient was returned", "c'est le gradient qui a été renvoyé"),
    (dict(detach=False), "still carries the autograd graph", "porte encore le graphe d'autograd"),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None)
def test_excite_update_mistakes(lang, mistake, en, fr):
    from course.checks.composition import check_excite_update

    assert wrong(check_excite_update(excite_update(**mistake)), lang, en, fr)


@pytest.mark.parametrize("mistake, en, fr", [
    (dict(leaf=False), "z must require a gradient", "z doit enregistrer son gradient"),
    (dict(reduce="none"), "the gradient needs one number", "le gradient demande un seul nombre"),
])
def test_excite_update_crashes_are_explained(lang, mistake, en, fr):
    from course.checks.composition import check_excite_update

    assert wrong(check_excite_update(excite_update(**mistake)), lang, en, fr, raised=True)


# ----------------------------------------------------------------------------- every new checker: unfinished, not a function, a crash


def new_checkers():
    from course.checks.composition import check_excite_update
    from course.checks.latent import check_text_to_image

    return [check_down_level, check_text_to_image, check_excite_update]


@pytest.mark.parametrize("index", range(3), ids=["down_level", "text_to_image", "excite_update"])
def test_new_checkers_on_unfinished_and_broken_code(index, lang, capsys):
    checker = new_checkers()[index]
    for unfinished in (stub, lambda *a: None, lambda *a: ...):
        result = checker(unfinished)
        assert not result.passed and result.not_implemented and result.message.startswith("⏳")
    capsys.readouterr()
    assert wrong(checker(42), lang, "expected a function, got int", "une fonction était attendue, reçu int")
    crash = checker(lambda *a: 1 / 0)  # Python's own message, quoted, stays in English
    assert not crash.passed and crash.message.startswith("❌") and "\n" not in crash.message and "ZeroDivisionError" in crash.message
    assert ("your code raised" if lang == "en" else "votre code a levé") in crash.message
