"""Checks for lesson 00 (the tour): a warm-up exercise that shows how checks work."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from course.checks.core import CheckResult, call, diagnose, passed, run
from course.images import from_uint8


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
                "the image is in [0, 1], not [−1, 1]: after dividing by 255, map [0, 1] to [−1, 1]": chw / 255,
                "the image is in [−0.5, 0.5]: divide by 127.5, not 255, before subtracting 1": chw / 255 - 0.5,
                "the image is in [0, 2]: subtract 1 at the end": chw / 127.5,
                "reshape/view was used to move the channels: it keeps the memory order and scrambles "
                "the pixels; use .permute(2, 0, 1)": reshaped,
                "uint8 arithmetic overflowed (values above 255 wrap around): call .float() first": overflow,
            },
            shape_hint="channels go first: (H, W, C) → (C, H, W) with .permute(2, 0, 1)",
            dtype_hint="PyTorch images are float32: call .float() (numpy arithmetic gives float64)",
        )
        return problem if problem is not None else passed(name, "0 → −1, 255 → +1, channels first")

    return run(name, body)
