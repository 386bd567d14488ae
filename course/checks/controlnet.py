"""Checks for lesson 08 (ControlNet, Zhang et al. 2023): the zero convolution, and the ControlNet's residuals
assembled from its blocks."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.controlnet import ControlledUNet, ControlNet, ControlNetConfig
from course.language import tr
from course.unet import UNet, UNetConfig, embed

SMALL = UNetConfig(channels=(8, 16), attention=(False, True), heads=2, context_dim=12, groups=4, layers_per_block=2)  # 6 skips: a missing first one (5) and one per block (3) differ
HINT_CHANNELS = (4, 8)  # one halving: condition images twice the latents' side


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return module


def _inputs(seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    x, context = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 5, 12, generator=g)
    cond = (torch.rand(2, 3, 8, 8, generator=g) > 0.7).float()
    return x, torch.tensor([10, 700]), context, cond


def check_zero_conv(fn: Callable) -> CheckResult:
    """Check ``fn(channels)``: a trainable 1 × 1 convolution whose output starts at 0, so that the controlled U-Net
    starts exactly as the base model (Zhang et al. 2023, §3.1)."""
    name = "zero_conv"

    def body() -> CheckResult:
        torch.manual_seed(0)
        conv = call(name, fn, 16)
        if not isinstance(conv, nn.Module):
            return failed(name, tr(en=f"return a module (nn.Conv2d), got {type(conv).__name__}",
                                   fr=f"renvoyez un module (nn.Conv2d), reçu {type(conv).__name__}"))
        if not isinstance(conv, nn.Conv2d):
            return failed(name, tr(en=f"a convolution is expected (nn.Conv2d), got {type(conv).__name__}",
                                   fr=f"une convolution est attendue (nn.Conv2d), reçu {type(conv).__name__}"))
        if (conv.in_channels, conv.out_channels) != (16, 16):
            return failed(name, tr(en=f"{conv.in_channels} → {conv.out_channels} channels: a skip keeps its channels, here 16 → 16",
                                   fr=f"{conv.in_channels} → {conv.out_channels} canaux : une connexion garde ses canaux, ici 16 → 16"))
        if tuple(conv.kernel_size) != (1, 1):
            return failed(name, tr(en=f"kernel {tuple(conv.kernel_size)}: a zero convolution is 1 × 1 (it mixes channels, not neighbours)",
                                   fr=f"noyau {tuple(conv.kernel_size)} : une convolution zéro est 1 × 1 (elle mélange les canaux, pas les voisins)"))
        if conv.bias is None:
            return failed(name, tr(en="bias=False: keep the bias (at 0), as the paper and diffusers do",
                                   fr="bias=False : gardez le biais (à 0), comme l'article et diffusers"))
        if conv.weight.abs().max() > 0:
            return failed(name, tr(en="the weights are not zero: set them with nn.init.zeros_(conv.weight)",
                                   fr="les poids ne sont pas nuls : mettez-les à zéro avec nn.init.zeros_(conv.weight)"))
        if conv.bias.abs().max() > 0:
            return failed(name, tr(en="the weights are zero but not the bias: the output is then the bias, not 0 — nn.init.zeros_(conv.bias)",
                                   fr="les poids sont nuls mais pas le biais : la sortie vaut alors le biais, pas 0 — nn.init.zeros_(conv.bias)"))
        if not (conv.weight.requires_grad and conv.bias.requires_grad):
            return failed(name, tr(en="the convolution is frozen (requires_grad=False): it would stay at 0 forever",
                                   fr="la convolution est gelée (requires_grad=False) : elle resterait à 0 pour toujours"))
        x = torch.randn(2, 16, 3, 3)
        conv(x).sum().backward()
        if conv.weight.grad is None or conv.weight.grad.abs().max() == 0:
            return failed(name, tr(en="no gradient reaches the weights", fr="aucun gradient n'atteint les poids"))
        unet = _randomise(UNet(SMALL), 1).eval()
        net = ControlNet.from_unet(unet, hint_channels=HINT_CHANNELS)
        net = _randomise(net, 2)
        net.controlnet_down_blocks = nn.ModuleList(call(name, fn, z.in_channels) for z in net.controlnet_down_blocks)
        net.controlnet_mid_block = call(name, fn, net.controlnet_mid_block.in_channels)
        xs, t, context, cond = _inputs()
        with torch.no_grad():
            if not torch.equal(ControlledUNet(unet, net.eval(), cond)(xs, t, context), unet(xs, t, context)):
                return failed(name, tr(en="with your zero convolutions the controlled U-Net does not start as the base model",
                                       fr="avec vos convolutions zéro, le U-Net contrôlé ne part pas du modèle de base"))
        return passed(name, tr(en="a 1 × 1 convolution at 0 that will learn: with it, the controlled U-Net starts exactly as the base "
                                  "model (max difference 0), even though the copy's weights are random here",
                               fr="une convolution 1 × 1 à 0 qui apprendra : avec elle, le U-Net contrôlé part exactement du modèle de "
                                  "base (écart maximal 0), alors même que les poids de la copie sont ici aléatoires"))

    return run(name, body)


def _residuals(net: ControlNet, x, emb, context, mask, cond, scale, *, hint=True, zero=True, scale_down=True, scale_mid=True,
               first=True, last_only=False, mid_zero=True):
    """The residuals of ``net`` with one of the typical mistakes (the right ones are ``ControlNet.residuals``)."""
    h = net.conv_in(x) + (net.controlnet_cond_embedding(cond) if hint else 0)
    skips, kept = [h], [first]
    for block in net.down_blocks:
        h, new = block(h, emb, context, mask)
        skips += new
        kept += [not last_only or i == len(new) - 1 for i in range(len(new))]
    h = net.mid_block(h, emb, context, mask)
    pairs = [(z, s) for z, s, k in zip(net.controlnet_down_blocks, skips, kept) if k]
    down = [(scale if scale_down else 1) * (z(s) if zero else s) for z, s in pairs]
    return down, (scale if scale_mid else 1) * (net.controlnet_mid_block(h) if mid_zero else h)


def _flat(down, mid) -> torch.Tensor:
    return torch.cat([r.flatten() for r in [*down, mid]])


def check_controlnet_residuals(fn: Callable) -> CheckResult:
    """Check ``fn(net, x, emb, context, mask, cond, scale)`` → (down residuals, mid residual) against ``ControlNet.residuals``."""
    name = "controlnet_residuals"

    def body() -> CheckResult:
        torch.manual_seed(4)
        net = _randomise(ControlNet(ControlNetConfig(SMALL, hint_channels=HINT_CHANNELS)), 5).eval()
        x, t, context, cond = _inputs(6)
        scale = 0.6
        with torch.no_grad():
            mask, emb = embed(net, x, t, context, None)
            args = (net, x, emb, context, mask, cond, scale)
            down, mid = ControlNet.residuals(*args)  # the course's, never through course.yours.pick
            expected = _flat(down, mid)
            wrong = {
                tr(en="the condition is not added: h = conv_in(x) + controlnet_cond_embedding(cond)",
                   fr="la condition n'est pas ajoutée : h = conv_in(x) + controlnet_cond_embedding(cond)"): dict(hint=False),
                tr(en="the zero convolutions are missing: each skip goes through its own controlnet_down_blocks[i]",
                   fr="les convolutions zéro manquent : chaque connexion passe par sa propre controlnet_down_blocks[i]"): dict(zero=False),
                tr(en="the mid block's output does not go through controlnet_mid_block",
                   fr="la sortie du bloc du milieu ne passe pas par controlnet_mid_block"): dict(mid_zero=False),
                tr(en="the scale is missing: multiply every residual by scale", fr="l'échelle manque : multipliez chaque résidu par scale"):
                    dict(scale_down=False, scale_mid=False),
                tr(en="the down residuals are not multiplied by scale", fr="les résidus de la descente ne sont pas multipliés par scale"):
                    dict(scale_down=False),
                tr(en="the mid residual is not multiplied by scale", fr="le résidu du milieu n'est pas multiplié par scale"): dict(scale_mid=False),
            }
            mistakes = {description: _flat(*_residuals(*args, **kw)) for description, kw in wrong.items()}
        out = call(name, fn, *args, error_hints={"must match the size of tensor b": tr(
            en="controlnet_cond_embedding(cond) has the shape of conv_in(x): add it right after conv_in, before the down blocks",
            fr="controlnet_cond_embedding(cond) a la forme de conv_in(x) : ajoutez-le juste après conv_in, avant les blocs de la descente")})
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (list, tuple)) and isinstance(out[1], torch.Tensor)):
            return failed(name, tr(en="return a pair: (the list of down residuals, the mid residual)",
                                   fr="renvoyez une paire : (la liste des résidus de la descente, le résidu du milieu)"))
        got_down, got_mid = out
        if len(got_down) != len(down):
            n_blocks = len(net.down_blocks)
            why = {len(down) - 1: tr(en="the first skip, conv_in's output (+ the condition), is missing from the list",
                                     fr="il manque la première connexion, la sortie de conv_in (+ la condition)"),
                   n_blocks + 1: tr(en="only each block's last skip was kept: keep all of them (skips += new)",
                                    fr="seule la dernière connexion de chaque bloc a été gardée : gardez-les toutes (skips += new)")}
            return failed(name, tr(en=f"{len(got_down)} down residuals, expected {len(down)} (one per skip of the U-Net)",
                                   fr=f"{len(got_down)} résidus de la descente, {len(down)} attendus (un par connexion du U-Net)")
                          + (f" — {why[len(got_down)]}" if len(got_down) in why else ""))
        for i, (a, b) in enumerate(zip(got_down, down)):
            if not isinstance(a, torch.Tensor) or a.shape != b.shape:
                shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
                return failed(name, tr(en=f"down residual {i}: got {shape}, expected {tuple(b.shape)} (are the skips in the U-Net's order?)",
                                       fr=f"résidu {i} de la descente : reçu {shape}, attendu {tuple(b.shape)} (les connexions sont-elles dans "
                                          "l'ordre du U-Net ?)"))
        problem = diagnose(name, _flat(got_down, got_mid), expected, mistakes=mistakes, atol=1e-5)
        return problem if problem is not None else passed(name, tr(
            en="conv_in(x) + E(c), the copy's way down and mid block, a zero convolution on each output, times the scale",
            fr="conv_in(x) + E(c), la descente et le bloc du milieu de la copie, une convolution zéro sur chaque sortie, fois l'échelle"))

    return run(name, body)


HINTS = {
    "zero_conv": (
        {"en": "a 1 × 1 convolution from channels to channels, then set its weight and its bias to zero: its output is 0 "
               "whatever it receives, yet its gradient is not.",
         "fr": "une convolution 1 × 1 de channels vers channels, puis mettez son poids et son biais à zéro : sa sortie vaut 0 "
               "quoi qu'elle reçoive, mais pas son gradient."},
        {"en": "conv = nn.Conv2d(channels, channels, kernel_size=1); nn.init.zeros_ on conv.weight and on conv.bias.",
         "fr": "conv = nn.Conv2d(channels, channels, kernel_size=1) ; nn.init.zeros_ sur conv.weight et sur conv.bias."},
        {"en": "conv = nn.Conv2d(channels, channels, 1)\n   nn.init.zeros_(conv.weight)\n   nn.init.zeros_(conv.bias)\n   return conv",
         "fr": "conv = nn.Conv2d(channels, channels, 1)\n   nn.init.zeros_(conv.weight)\n   nn.init.zeros_(conv.bias)\n   return conv"},
    ),
    "controlnet_residuals": (
        {"en": "the U-Net's way down, on a copy, with the condition added at the start; then one zero convolution per output "
               "kept, and everything times the scale.",
         "fr": "la descente du U-Net, sur une copie, avec la condition ajoutée au départ ; puis une convolution zéro par sortie "
               "gardée, et le tout fois l'échelle."},
        {"en": "h = conv_in(x) + controlnet_cond_embedding(cond); skips = [h]; for each down block: h, new = block(h, emb, context, mask), "
               "skips += new; h = mid_block(h, emb, context, mask); residual i = scale · controlnet_down_blocks[i](skips[i]), "
               "mid = scale · controlnet_mid_block(h).",
         "fr": "h = conv_in(x) + controlnet_cond_embedding(cond) ; skips = [h] ; pour chaque bloc de la descente : h, new = block(h, emb, "
               "context, mask), skips += new ; h = mid_block(h, emb, context, mask) ; résidu i = scale · controlnet_down_blocks[i](skips[i]), "
               "milieu = scale · controlnet_mid_block(h)."},
        {"en": "h = net.conv_in(x) + net.controlnet_cond_embedding(cond)\n   skips = [h]\n   for block in net.down_blocks:\n"
               "       h, new = block(h, emb, context, mask)\n       skips += new\n   h = net.mid_block(h, emb, context, mask)\n"
               "   down = [scale * z(s) for z, s in zip(net.controlnet_down_blocks, skips)]\n   return down, scale * net.controlnet_mid_block(h)",
         "fr": "h = net.conv_in(x) + net.controlnet_cond_embedding(cond)\n   skips = [h]\n   for block in net.down_blocks:\n"
               "       h, new = block(h, emb, context, mask)\n       skips += new\n   h = net.mid_block(h, emb, context, mask)\n"
               "   down = [scale * z(s) for z, s in zip(net.controlnet_down_blocks, skips)]\n   return down, scale * net.controlnet_mid_block(h)"},
    ),
}
