"""Drawing shape scenes into images (Pillow, anti-aliased by supersampling).

Objects sit in the cells of a 3 × 3 grid. A large object spans about 29 % of the image side, a
small one about 21 %; position, size and colour are jittered slightly so no two renders are the
same. Any side from 16 pixels up works; below that the shapes are not legible.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from course.scenes import Scene

RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 170, 70), "blue": (40, 90, 220), "yellow": (240, 210, 40),
    "orange": (245, 140, 30), "purple": (145, 60, 200), "pink": (250, 140, 200), "grey": (140, 140, 140),
}
BACKGROUND_RGB: dict[str, tuple[int, int, int]] = {"white": (245, 245, 245), "black": (25, 25, 25), "beige": (225, 205, 170)}
RADIUS = {"large": 0.44, "small": 0.31}  # half-extent of an object, in cells
MIN_SIZE = 16
SUPERSAMPLE = 4


def _regular(n: int, start_deg: float, radius: float = 1.0) -> list[tuple[float, float]]:
    return [
        (radius * math.cos(math.radians(start_deg + 360 * k / n)), radius * math.sin(math.radians(start_deg + 360 * k / n)))
        for k in range(n)
    ]


def _star() -> list[tuple[float, float]]:
    outer, inner = _regular(5, -90), _regular(5, -54, 0.45)
    return [p for pair in zip(outer, inner) for p in pair]


def _heart() -> list[tuple[float, float]]:
    pts = []
    for k in range(48):
        th = 2 * math.pi * k / 48
        x = 16 * math.sin(th) ** 3
        y = -(13 * math.cos(th) - 5 * math.cos(2 * th) - 2 * math.cos(3 * th) - math.cos(4 * th))
        pts.append((x / 16.5, (y + 2.5) / 15.5))
    return pts


def _crescent(d: float = 0.45, r: float = 0.8, shift: float = 0.3) -> list[tuple[float, float]]:
    """The unit circle minus a circle of radius r centred d to the right: horns to the right, moved right by shift so
    that the ink is centred on the object's cell (lesson 11's new concept)."""
    x = (1 - r * r + d * d) / (2 * d)  # where the two circles cross, at (x, ±y)
    y = math.sqrt(1 - x * x)
    a, b = math.atan2(y, x), math.atan2(y, x - d)
    outer = [(math.cos(th), math.sin(th)) for th in np.linspace(a, 2 * math.pi - a, 40)]
    inner = [(d + r * math.cos(th), r * math.sin(th)) for th in np.linspace(2 * math.pi - b, b, 32)]
    return [(px + shift, py) for px, py in outer + inner]


_W = 0.34  # half-width of the cross's arms
# Unit outlines, centred on (0, 0), extent about [−1, 1], y pointing down (image coordinates).
OUTLINES: dict[str, list[tuple[float, float]] | None] = {
    "circle": None,
    "square": [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)],
    "triangle": [(x, y + 0.25) for x, y in _regular(3, -90)],
    "star": _star(),
    "heart": _heart(),
    "diamond": [(0, -1), (0.72, 0), (0, 1), (-0.72, 0)],
    "cross": [
        (-_W, -1), (_W, -1), (_W, -_W), (1, -_W), (1, _W), (_W, _W),
        (_W, 1), (-_W, 1), (-_W, _W), (-1, _W), (-1, -_W), (-_W, -_W),
    ],
    "hexagon": _regular(6, 0),
    "crescent": _crescent(),  # course.scenes.NEW_SHAPES: lesson 11 only
}


def render(scene: Scene, size: int = 32, rng: np.random.Generator | Sequence[np.random.Generator] | None = None) -> np.ndarray:
    """Draw ``scene`` as a (size, size, 3) uint8 array; ``rng`` jitters positions, sizes and colours. A sequence of
    generators, one per object, jitters each object by its own (an edit's two scenes then draw the objects it keeps
    identically, lesson 09)."""
    rngs = list(rng) if isinstance(rng, (list, tuple)) else [rng] * len(scene.objects)
    if len(rngs) != len(scene.objects):
        raise ValueError(f"give one generator per object ({len(scene.objects)}), got {len(rngs)}")
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ValueError(f"image size must be an integer ≥ {MIN_SIZE} pixels (shapes are not legible below), got {size!r}")
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), BACKGROUND_RGB[scene.background])
    draw = ImageDraw.Draw(image)
    cell = big / 3
    for obj, rng in zip(scene.objects, rngs):
        radius = RADIUS[obj.size] * cell
        colour = RGB[obj.colour]
        cx, cy = (obj.cell[1] + 0.5) * cell, (obj.cell[0] + 0.5) * cell
        if rng is not None:
            radius *= rng.uniform(0.9, 1.1)
            slack = max(cell / 2 - radius, 0) * 0.6
            cx, cy = cx + rng.uniform(-slack, slack), cy + rng.uniform(-slack, slack)
            shift = rng.integers(-12, 13, size=3).tolist()
            colour = tuple(min(max(c + d, 0), 255) for c, d in zip(colour, shift))
        outline = OUTLINES[obj.shape]
        if outline is None:
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
        else:
            draw.polygon([(cx + radius * x, cy + radius * y) for x, y in outline], fill=colour)
    return np.asarray(image.reduce(SUPERSAMPLE))  # box filter: each pixel averages SUPERSAMPLE² samples
