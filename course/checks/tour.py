"""Checks for lesson 00 (the tour): a warm-up exercise that shows how checks work."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from course.checks.core import CheckResult, call, diagnose, passed, run
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
