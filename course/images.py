"""Images as tensors: the course's convention is float (C, H, W) or (B, C, H, W) in [−1, 1].

Diffusion models work on data centred on 0 with unit-ish scale, like the noise ε ~ N(0, I);
images are mapped from [0, 255] to [−1, 1] before noising and back for display.
"""

from __future__ import annotations

import numpy as np
import torch


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 in [0, 255] → (C, H, W) float32 in [−1, 1]."""
    if array.dtype != np.uint8 or array.ndim != 3:
        raise ValueError(f"expected an (H, W, C) uint8 array, got {array.dtype} with shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float() / 127.5 - 1


def to_display(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (B, C, H, W) tensor in [−1, 1] → (H, W, C) / (B, H, W, C) floats in [0, 1], clipped."""
    x = x.detach().float().cpu()
    x = ((x + 1) / 2).clamp(0, 1)
    return x.movedim(-3, -1).numpy()


def cat(size: int | None = None) -> torch.Tensor:
    """The tabby cat of the slides (scikit-image's ``chelsea``, CC0), (3, H, W) in [−1, 1].

    With ``size``, the centre square is cropped and resized to size × size.
    """
    from skimage import data

    x = from_uint8(data.chelsea())  # (3, 300, 451), ships with scikit-image: no download
    if size is None:
        return x
    if size < 8:
        raise ValueError(f"size must be ≥ 8 pixels, got {size}")
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = x[:, top : top + side, left : left + side]
    return torch.nn.functional.interpolate(square[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
