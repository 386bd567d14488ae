"""Checks for lesson 00 (the tour): two warm-up exercises that show how checks work, a formula and a loop."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from course.checks.core import CheckResult, call, diagnose, failed, passed, run
from course.images import from_uint8
from course.language import tr


def check_to_signed(fn: Callable) -> CheckResult:
    """Check ``fn(image)``: (H, W, C) uint8 in [0, 255] → (C, H, W) float32 in [−1, 1]."""
    name = "to_signed"

    def body() -> CheckResult:
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
        image[0, 0] = (0, 128, 255)
        expected = from_uint8(image)
        actual = call(name, fn, image.copy())
        u8 = torch.from_numpy(image).permute(2, 0, 1)  # (C, H, W) uint8
        chw = u8.float()
        reshaped = torch.from_numpy(image).reshape(3, 5, 7).float() / 127.5 - 1
        overflow = (u8 * 2).float() / 255 - 1  # uint8 arithmetic wraps around above 255
        problem = diagnose(
            name,
            actual,
            expected,
            mistakes={
                tr(en="the image is in [0, 1], not [−1, 1]: after dividing by 255, map [0, 1] to [−1, 1]",
                   fr="l'image est dans [0, 1], pas dans [−1, 1] : après la division par 255, ramenez [0, 1] sur [−1, 1]"): chw / 255,
                tr(en="the image is in [−0.5, 0.5]: divide by 127.5, not 255, before subtracting 1",
                   fr="l'image est dans [−0.5, 0.5] : divisez par 127.5, et non par 255, avant de soustraire 1"): chw / 255 - 0.5,
                tr(en="the image is in [0, 2]: subtract 1 at the end",
                   fr="l'image est dans [0, 2] : soustrayez 1 à la fin"): chw / 127.5,
                tr(en="reshape/view was used to move the channels: it keeps the memory order and scrambles "
                      "the pixels; use .permute(2, 0, 1)",
                   fr="reshape/view a servi à déplacer les canaux : il garde l'ordre de la mémoire et mélange "
                      "les pixels ; utilisez .permute(2, 0, 1)"): reshaped,
                tr(en="uint8 arithmetic overflowed (values above 255 wrap around): call .float() first",
                   fr="l'arithmétique uint8 a débordé (au-delà de 255, les valeurs repartent de 0) : appelez d'abord .float()"): overflow,
            },
            shape_hint=tr(en="channels go first: (H, W, C) → (C, H, W) with .permute(2, 0, 1)",
                          fr="les canaux viennent en premier : (H, W, C) → (C, H, W) avec .permute(2, 0, 1)"),
            dtype_hint=tr(en="PyTorch images are float32: call .float() (numpy arithmetic gives float64)",
                          fr="les images PyTorch sont en float32 : appelez .float() (l'arithmétique numpy donne du float64)"),
        )
        detail = tr(en="0 → −1, 255 → +1, channels first", fr="0 → −1, 255 → +1, canaux en premier")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


def noise_strip(image: torch.Tensor, eps: torch.Tensor, mixes) -> list[torch.Tensor]:
    """The course's version: one image per level m, √(1 − m²)·image + m·ε (signal and noise variances add up to 1)."""
    return [(1 - m**2) ** 0.5 * image + m * eps for m in mixes]


def _fresh_noise(actual, image: torch.Tensor, eps: torch.Tensor, mixes) -> bool:
    """Whether ``actual`` (the stacked strip) is √(1 − m²)·image + m·ε' with an ε' of its own: the image's part right, the
    noise's part a standard noise unrelated to ``eps`` (drawn afresh with torch.randn_like, say)."""
    if not isinstance(actual, torch.Tensor) or actual.shape != (len(mixes), *image.shape) or not actual.is_floating_point():
        return False
    actual = actual.detach().to(eps.dtype)
    residuals = []
    for level, m in zip(actual, mixes):
        if m == 0:
            if not torch.allclose(level, image, atol=1e-5):
                return False
        else:
            residuals.append((level - (1 - m**2) ** 0.5 * image) / m)
    if not residuals:
        return False
    noise = torch.stack(residuals).flatten()
    given = eps.flatten().repeat(len(residuals))
    if not bool(torch.isfinite(noise).all()) or not 0.5 < float(noise.std()) < 2.0:
        return False
    return abs(float(torch.corrcoef(torch.stack([noise, given]))[0, 1])) < 0.5


def check_noise_strip(fn: Callable) -> CheckResult:
    """Check ``fn(image, eps, mixes)``: the list [√(1 − m²)·image + m·ε for each m in mixes], in order."""
    name = "noise_strip"

    def body() -> CheckResult:
        g = torch.Generator().manual_seed(1)
        image, eps = torch.rand(3, 4, 5, generator=g) * 2 - 1, torch.randn(3, 4, 5, generator=g)
        mixes = [0.0, 0.3, 0.6, 0.9, 1.0]
        expected = torch.stack(noise_strip(image, eps, mixes))
        actual = call(name, fn, image.clone(), eps.clone(), list(mixes), error_hints={"must be Tensor, not float": tr(
            en="m is a Python number: write (1 - m**2) ** 0.5 or math.sqrt(1 - m**2), not torch.sqrt",
            fr="m est un nombre Python : écrivez (1 - m**2) ** 0.5 ou math.sqrt(1 - m**2), pas torch.sqrt")})
        if isinstance(actual, (list, tuple)):
            if len(actual) != len(mixes):
                return failed(name, tr(en=f"expected one image per level, {len(mixes)} in all, got {len(actual)}",
                                       fr=f"une image par niveau était attendue, {len(mixes)} en tout, reçu {len(actual)}"))
            if not all(isinstance(a, torch.Tensor) and a.shape == image.shape for a in actual):
                return failed(name, tr(en=f"every image of the list must have the shape of the input, {tuple(image.shape)}",
                                       fr=f"chaque image de la liste doit avoir la forme de l'entrée, {tuple(image.shape)}"))
            actual = torch.stack(list(actual))
        elif isinstance(actual, torch.Tensor) and actual.shape == image.shape:
            return failed(name, tr(en="a single image came back: return a list, one image per level m (append inside the loop)",
                                   fr="une seule image est revenue : renvoyez une liste, une image par niveau m (avec append, dans la boucle)"))
        m = torch.tensor(mixes).view(-1, 1, 1, 1)
        mistakes = {
            tr(en="the weights are 1 − m and m: then the variances do not add up to 1; the image's weight is √(1 − m²)",
               fr="les poids valent 1 − m et m : la somme des variances ne vaut alors plus 1 ; le poids de l'image est √(1 − m²)"):
                (1 - m) * image + m * eps,
            tr(en="m was used as a variance (√(1 − m)·image + √m·ε): here m is the noise's standard deviation, √(1 − m²)·image + m·ε",
               fr="m a été pris comme une variance (√(1 − m)·image + √m·ε) : ici m est l'écart-type du bruit, √(1 − m²)·image + m·ε"):
                (1 - m).sqrt() * image + m.sqrt() * eps,
            tr(en="the image is not shrunk: image + m·ε grows in variance; multiply the image by √(1 − m²)",
               fr="l'image n'est pas atténuée : image + m·ε voit sa variance grandir ; multipliez l'image par √(1 − m²)"):
                image + m * eps,
            tr(en="the two weights are swapped: the noise gets m, the image √(1 − m²)",
               fr="les deux poids sont intervertis : le bruit reçoit m, l'image √(1 − m²)"): m * image + (1 - m**2).sqrt() * eps,
            tr(en="the noise is subtracted: add it, √(1 − m²)·image + m·ε",
               fr="le bruit est retranché : ajoutez-le, √(1 − m²)·image + m·ε"): (1 - m**2).sqrt() * image - m * eps,
            tr(en="every image uses the last level: compute each image inside the loop, with that loop's m",
               fr="toutes les images prennent le dernier niveau : calculez chaque image dans la boucle, avec le m de ce tour"):
                torch.stack(noise_strip(image, eps, [mixes[-1]] * len(mixes))),
        }
        problem = diagnose(name, actual, expected, mistakes=mistakes, atol=1e-5,
                           shape_hint=tr(en="return a list with one image per level m", fr="renvoyez une liste avec une image par niveau m"))
        if problem is not None and _fresh_noise(actual, image, eps, mixes):
            return failed(name, tr(en="a new noise was drawn instead of the one given: use the noise `eps` provided, √(1 − m²)·image + m·eps",
                                   fr="un nouveau bruit a été tiré au lieu de celui qui est fourni : utilisez le bruit `eps` fourni, "
                                      "√(1 − m²)·image + m·eps"))
        detail = tr(en="one image per level, √(1 − m²)·image + m·ε, from the clean image (m = 0) to pure noise (m = 1)",
                    fr="une image par niveau, √(1 − m²)·image + m·ε, de l'image propre (m = 0) au bruit pur (m = 1)")
        return problem if problem is not None else passed(name, detail)

    return run(name, body)


HINTS = {
    "noise_strip": (
        {"en": "one loop over the levels: for each m, mix the image and the noise, and put the result in a list, in order.",
         "fr": "une boucle sur les niveaux : pour chaque m, mélangez l'image et le bruit, et rangez le résultat dans une liste, dans "
               "l'ordre."},
        {"en": "for each m: √(1 − m²)·image + m·ε (the variances 1 − m² and m² add up to 1); the answer is the list of these images.",
         "fr": "pour chaque m : √(1 − m²)·image + m·ε (les variances 1 − m² et m² ont pour somme 1) ; la réponse est la liste de "
               "ces images."},
        {"en": "strip = []\n   for m in mixes:\n       strip.append((1 - m**2) ** 0.5 * image + m * eps)\n   return strip",
         "fr": "strip = []\n   for m in mixes:\n       strip.append((1 - m**2) ** 0.5 * image + m * eps)\n   return strip"},
    ),
    "to_signed": (
        {"en": "three moves: put the channels first, turn the integers into floats, then rescale [0, 255] to [−1, 1].",
         "fr": "trois gestes : mettre les canaux en premier, passer des entiers aux flottants, puis ramener [0, 255] sur [−1, 1]."},
        {"en": "(H, W, C) → (C, H, W) with .permute(2, 0, 1); then x / 127.5 − 1 sends 0 to −1 and 255 to +1.",
         "fr": "(H, W, C) → (C, H, W) avec .permute(2, 0, 1) ; puis x / 127.5 − 1 envoie 0 sur −1 et 255 sur +1."},
        {"en": "x = torch.from_numpy(image).permute(2, 0, 1).float()\n   return x / 127.5 - 1",
         "fr": "x = torch.from_numpy(image).permute(2, 0, 1).float()\n   return x / 127.5 - 1"},
    ),
}
