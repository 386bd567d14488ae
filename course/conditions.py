"""Condition images for ControlNet, computed from renders (slides: « Conditionnement Spatial », the figure
"Input image → annotation (canny edge detector) → Stable Diffusion"; Zhang et al. 2023, §4 and Fig. 7).

Each returns an (H, W) boolean map; :func:`to_condition` turns maps into what the ControlNet reads, white on
black in three channels, values in [0, 1] (as diffusers' pipeline feeds its ControlNets):

    canny(image)          Canny's detector (Canny 1986) on each colour channel, OR-ed (a yellow square on beige has
                          almost no grey-level contrast: on rgb2gray, Canny finds none of its edges)
    layout_mask(image)    the filled silhouettes: pixels far from the background's colour
    scribble(image, rng)  a hand-drawn-looking outline: the silhouettes' contour, displaced by a smooth random
                          field (± 1.5 px) and thickened to 2–3 px, as the paper's synthesized scribbles (§4)

Because every training image is a render, its exact condition is free: no annotator, no dataset.
:func:`shift_layouts` moves a render's objects off the 3 × 3 grid of the captions (up to a few pixels): layouts the
prompt cannot state, which only the condition can impose.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.feature import canny as _canny

KINDS = ("canny", "scribble", "mask")
CANNY_SIGMA = 1.0  # Gaussian smoothing before the gradient, in pixels (64-px renders: objects are 13–19 px wide)
MASK_THRESHOLD = 40  # a pixel is an object's when a channel differs from the background by more (0–255); colour jitter is ±12


def _rgb(image) -> np.ndarray:
    """(H, W, 3) uint8 from a numpy array (H, W, 3) or a tensor (3, H, W) in [−1, 1] or uint8."""
    if isinstance(image, torch.Tensor):
        x = image.detach().cpu()
        if x.dtype != torch.uint8:
            x = ((x.clamp(-1, 1) + 1) * 127.5).round().byte()
        image = x.permute(1, 2, 0).numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    return image


def canny(image, sigma: float = CANNY_SIGMA) -> np.ndarray:
    """Canny's edges (skimage.feature.canny) of each channel, OR-ed: (H, W) bool."""
    rgb = _rgb(image).astype(np.float64) / 255.0
    return np.logical_or.reduce([_canny(rgb[..., c], sigma=sigma) for c in range(3)])


def background_colour(image) -> np.ndarray:
    """The background's colour: the median of the border pixels (objects sit inside the 3 × 3 cells)."""
    rgb = _rgb(image).astype(np.int16)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    return np.median(border, axis=0)


def layout_mask(image, threshold: int = MASK_THRESHOLD) -> np.ndarray:
    """The filled silhouettes of the objects: (H, W) bool, True where a channel is far from the background."""
    rgb = _rgb(image).astype(np.int16)
    return np.abs(rgb - background_colour(image)).max(axis=-1) > threshold


def scribble(image, rng: np.random.Generator, jitter: float = 1.5, width: int = 1) -> np.ndarray:
    """A scribble of the silhouettes: their contour, displaced by a smooth random field, thickened (H, W) bool."""
    mask = layout_mask(image)
    contour = mask & ~ndimage.binary_erosion(mask)
    H, W = mask.shape
    field = rng.normal(size=(2, max(H // 8, 2), max(W // 8, 2)))  # a coarse field, zoomed: smooth displacements
    dy, dx = (ndimage.zoom(f, (H / f.shape[0], W / f.shape[1]), order=3)[:H, :W] for f in field)
    scale = jitter / max(np.abs(field).max(), 1e-6)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    moved = ndimage.map_coordinates(contour.astype(np.float64), [ys + scale * dy, xs + scale * dx], order=1) > 0.25
    return ndimage.binary_dilation(moved, iterations=width)


def condition(image, kind: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """The condition map of ``kind`` (one of :data:`KINDS`) for one image."""
    if kind not in KINDS:
        raise ValueError(f"unknown control kind {kind!r}: choose one of {', '.join(KINDS)}")
    if kind == "canny":
        return canny(image)
    if kind == "mask":
        return layout_mask(image)
    return scribble(image, rng if rng is not None else np.random.default_rng(0))


def to_condition(maps) -> torch.Tensor:
    """Boolean maps (B, H, W) or one (H, W) → the ControlNet's input (B, 3, H, W), white on black, in [0, 1]."""
    x = torch.as_tensor(np.asarray(maps), dtype=torch.float32)
    if x.dim() == 2:
        x = x[None]
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


PICTURE_SHARE = 0.1  # an image with more than this share of mid-grey pixels is a picture, not a map


def read_control(path, kind: str, size: int, notes: list[str] | None = None) -> torch.Tensor:
    """A condition (1, 3, size, size) from an image file: a map (white on black) used as it is, or a picture turned
    into one by the kind's detector; resized to ``size`` with a note. ``notes`` collects what was done."""
    from PIL import Image

    if kind not in KINDS:
        raise ValueError(f"unknown control kind {kind!r}: choose one of {', '.join(KINDS)}")
    notes = notes if notes is not None else []
    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the control image {str(path)!r}: {err}") from None
    rgb = image.convert("RGB")
    if rgb.size != (size, size):
        notes.append(f"control image resized from {rgb.size[0]}×{rgb.size[1]} to {size}×{size} (the model's image size)")
        rgb = rgb.resize((size, size), Image.BOX)
    array = np.asarray(rgb)
    grey = array.mean(axis=-1) / 255
    if ((grey > 0.2) & (grey < 0.8)).mean() > PICTURE_SHARE:
        notes.append(f"the control image looks like a picture, not a {kind} map: its {kind} map was computed")
        result = condition(array, kind)
    else:
        result = grey > (0.2 if kind != "mask" else 0.5)  # a thin line loses contrast when shrunk: a low threshold keeps it
    if not result.any():
        notes.append(f"the {kind} map is empty (all black): the ControlNet has nothing to follow")
    return to_condition(result)


def move(image: np.ndarray, dy: int, dx: int, fill: np.ndarray | None = None) -> np.ndarray:
    """The image (H, W, 3) moved by (dy, dx) pixels, what comes in filled with ``fill`` (default: the background's colour)."""
    H, W = image.shape[:2]
    out = np.empty_like(image)
    out[...] = (background_colour(image) if fill is None else fill).astype(image.dtype)
    src = image[max(-dy, 0): H - max(dy, 0), max(-dx, 0): W - max(dx, 0)]
    out[max(dy, 0): max(dy, 0) + src.shape[0], max(dx, 0): max(dx, 0) + src.shape[1]] = src
    return out


def shift_layout(image: np.ndarray, max_shift: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """The render (H, W, 3) with its objects moved by up to ``max_shift`` pixels along each axis, off the 3 × 3 grid,
    the background filled in, and the shift (dy, dx); the shift is narrowed so that no object leaves the image."""
    mask = layout_mask(image)
    if max_shift == 0 or not mask.any():
        return image, (0, 0)
    ys, xs = np.nonzero(mask)
    H, W = mask.shape
    dy = int(rng.integers(max(-max_shift, -ys.min()), min(max_shift, H - 1 - ys.max()) + 1))
    dx = int(rng.integers(max(-max_shift, -xs.min()), min(max_shift, W - 1 - xs.max()) + 1))
    return move(image, dy, dx), (dy, dx)


def shift_layouts(images: torch.Tensor, max_shift: int, seed: int = 0, offsets: bool = False):
    """:func:`shift_layout` on each uint8 render (N, 3, H, W): layouts the grid of the captions cannot express.
    With ``offsets``, also the (N, 2) shifts (dy, dx)."""
    rng = np.random.default_rng((seed, 13))
    moved = [shift_layout(img.permute(1, 2, 0).numpy(), max_shift, rng) for img in images]
    out = torch.from_numpy(np.stack([m for m, _ in moved])).permute(0, 3, 1, 2).contiguous()
    return (out, torch.tensor([d for _, d in moved])) if offsets else out


def unshift(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Images (N, 3, H, W) in [−1, 1] moved back by their layouts' shifts (N, 2): onto the grid that judges read."""
    uint8 = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    back = np.stack([move(img, -int(dy), -int(dx)) for img, (dy, dx) in zip(uint8, offsets.tolist())])
    return torch.from_numpy(back).permute(0, 3, 1, 2).float() / 127.5 - 1


def conditions(images: torch.Tensor, kind: str, seed: int = 0) -> torch.Tensor:
    """The conditions (N, 3, H, W) of uint8 renders (N, 3, H, W): one :func:`condition` each."""
    rng = np.random.default_rng((seed, 11))
    return to_condition(np.stack([condition(img, kind, rng) for img in images]))
