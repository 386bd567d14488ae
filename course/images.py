"""Images as tensors: the course's convention is float (C, H, W) or (B, C, H, W) in [−1, 1].

Diffusion models work on data centred on 0 with unit-ish scale, like the noise ε ~ N(0, I);
images are mapped from [0, 255] to [−1, 1] before noising and back for display.
"""

from __future__ import annotations

import numpy as np
import torch

from course.language import tr


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


def as_batch(image, size: int, notes: list[str] | None = None, what: str = "image") -> torch.Tensor:
    """Any one image (PIL image, (H, W, 3) uint8 array, tensor (3, H, W) or (B, 3, H, W) in [−1, 1]) as a float
    batch (B, 3, size, size) in [−1, 1]; another mode or size is converted, and ``notes`` says so (lesson 09)."""
    from PIL import Image

    notes = notes if notes is not None else []
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            notes.append(tr(en=f"{what} converted from mode {image.mode} to RGB", fr=f"{what} : converti du mode {image.mode} en RGB"))
            image = image.convert("RGB")
        image = np.asarray(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"the {what} must be an (H, W, 3) uint8 array, got {image.dtype} with shape {image.shape}")
        image = from_uint8(image)
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        raise ValueError(f"the {what} must be a PIL image, an (H, W, 3) uint8 array or a float tensor in [−1, 1], got {type(image).__name__}")
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"the {what} must be (3, H, W) or (B, 3, H, W) in [−1, 1], got {tuple(image.shape)}")
    if x.min() < -1.001 or x.max() > 1.001:
        raise ValueError(f"the {what} must be in [−1, 1] (the course's convention; from [0, 1]: 2·x − 1), got values in [{x.min():.2f}, {x.max():.2f}]")
    if tuple(x.shape[-2:]) != (size, size):
        notes.append(tr(en=f"{what} resized from {x.shape[-1]}×{x.shape[-2]} to {size}×{size} (the model's image size)",
                        fr=f"{what} : redimensionné de {x.shape[-1]}×{x.shape[-2]} en {size}×{size} (la taille d'image du modèle)"))
        x = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.float().clamp(-1, 1)


def read_image(path, size: int, notes: list[str] | None = None, what: str = "image") -> torch.Tensor:
    """An image file as (1, 3, size, size) in [−1, 1] (:func:`as_batch`); a ``ValueError`` naming the file if unreadable."""
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the {what} {str(path)!r}: {err}") from None
    return as_batch(image, size, notes, what)
