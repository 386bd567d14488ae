"""Lesson 08's checkers: each typical mistake is named (English and French), a right answer passes, a stub is "not yet"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course.checks.controlnet import _residuals, check_controlnet_residuals, check_zero_conv
from course.controlnet import ControlNet, zero_conv


@pytest.fixture(params=["en", "fr"])
def lang(request, monkeypatch):
    monkeypatch.setenv("COURSE_LANG", request.param)
    return request.param


def stub(*args):
    raise NotImplementedError


def says(result, words):
    return not result.passed and words in result.message and "\n" not in result.message


def conv_with(**changes):
    def make(channels):
        conv = nn.Conv2d(channels, channels, changes.get("kernel", 1), padding=changes.get("kernel", 1) // 2, bias=changes.get("bias", True))
        if changes.get("zero_weight", True):
            nn.init.zeros_(conv.weight)
        if changes.get("zero_bias", True) and conv.bias is not None:
            nn.init.zeros_(conv.bias)
        return conv.requires_grad_(changes.get("trainable", True))
    return make


def test_zero_conv_accepts_the_course_and_refuses_a_stub(lang):
    assert check_zero_conv(zero_conv).passed
    assert check_zero_conv(stub).not_implemented


@pytest.mark.parametrize("make, en, fr", [
    (conv_with(zero_weight=False, zero_bias=False), "the weights are not zero", "les poids ne sont pas nuls"),
    (conv_with(zero_bias=False), "zero but not the bias", "nuls mais pas le biais"),
    (conv_with(kernel=3), "a zero convolution is 1 × 1", "une convolution zéro est 1 × 1"),
    (conv_with(bias=False), "keep the bias (at 0)", "gardez le biais (à 0)"),
    (conv_with(trainable=False), "it would stay at 0 forever", "elle resterait à 0 pour toujours"),
    (lambda c: nn.Conv2d(c, 2 * c, 1), "a skip keeps its channels", "une connexion garde ses canaux"),
    (lambda c: nn.Identity(), "a convolution is expected", "une convolution est attendue"),
    (lambda c: torch.zeros(c), "return a module", "renvoyez un module"),
], ids=["random", "bias", "3x3", "no bias", "frozen", "channels", "identity", "tensor"])
def test_zero_conv_names_each_mistake(make, en, fr, lang):
    assert says(check_zero_conv(make), en if lang == "en" else fr)


def right(net, x, emb, context, mask, cond, scale):
    return ControlNet.residuals(net, x, emb, context, mask, cond, scale)


def test_controlnet_residuals_accepts_the_course_and_refuses_a_stub(lang):
    assert check_controlnet_residuals(right).passed
    assert check_controlnet_residuals(stub).not_implemented


@pytest.mark.parametrize("mistake, en, fr", [
    (dict(hint=False), "the condition is not added", "la condition n'est pas ajoutée"),
    (dict(zero=False), "the zero convolutions are missing", "les convolutions zéro manquent"),
    (dict(mid_zero=False), "does not go through controlnet_mid_block", "ne passe pas par controlnet_mid_block"),
    (dict(scale_down=False, scale_mid=False), "the scale is missing", "l'échelle manque"),
    (dict(scale_down=False), "down residuals are not multiplied by scale", "résidus de la descente ne sont pas multipliés"),
    (dict(scale_mid=False), "mid residual is not multiplied by scale", "résidu du milieu n'est pas multiplié"),
    (dict(first=False), "the first skip, conv_in's output", "il manque la première connexion"),
    (dict(last_only=True), "only each block's last skip was kept", "seule la dernière connexion de chaque bloc"),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None)
def test_controlnet_residuals_names_each_mistake(mistake, en, fr, lang):
    assert says(check_controlnet_residuals(lambda *a: _residuals(*a, **mistake)), en if lang == "en" else fr)


def test_controlnet_residuals_explains_the_condition_added_at_the_wrong_place(lang):
    def late(net, x, emb, context, mask, cond, scale):
        h = net.conv_in(x)
        skips = [h]
        for block in net.down_blocks:
            h, new = block(h, emb, context, mask)
            skips += new
        h = net.mid_block(h + net.controlnet_cond_embedding(cond), emb, context, mask)
        return [scale * z(s) for z, s in zip(net.controlnet_down_blocks, skips)], scale * net.controlnet_mid_block(h)

    assert says(check_controlnet_residuals(late), "right after conv_in" if lang == "en" else "juste après conv_in")
    assert says(check_controlnet_residuals(lambda *a: _residuals(*a)[0]), "return a pair" if lang == "en" else "renvoyez une paire")


def test_the_learners_residuals_run_inside_the_controlnet():
    from course.checks.controlnet import SMALL, _inputs
    from course.controlnet import ControlNetConfig
    from course.yours import in_use, use

    net = ControlNet(ControlNetConfig(SMALL, hint_channels=(4, 8)))
    x, t, context, cond = _inputs()
    calls = []

    def mine(*args):
        calls.append(1)
        return right(*args)

    try:
        use(controlnet_residuals=mine)
        assert "controlnet_residuals" in in_use()
        net(x, t, context, None, cond)
        assert calls
    finally:
        use()
