"""The captioned shapes dataset: the course's default offline data (a torch Dataset).

Each item is drawn on the fly, deterministically from ``(seed, split, index)``: the same index
always gives the same image and caption, whatever the order or the number of workers.
An item holds the image (3, H, W) in [−1, 1], one caption (French or English, one of several
phrasings), and the structured labels of the scene as integer indices (−1 where an attribute does
not apply), which the evaluator of :mod:`course.eval` learns to predict.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from course.captions import LANGS, caption
from course.images import from_uint8
from course.render import render
from course.scenes import BACKGROUNDS, COLOURS, KINDS, POSITIONS, SHAPES, SIZES, SPLITS, Scene, sample_scene

AXES: tuple[str, ...] = ("vertical", "horizontal")
# label name → the values it indexes; a scene's labels use −1 where the attribute does not apply
LABELS: dict[str, tuple] = {
    "kind": KINDS,
    "background": BACKGROUNDS,
    "count": (1, 2, 3),
    "shape": SHAPES,  # single/count: the object; pair: the top (or left) object
    "colour": COLOURS,
    "size": SIZES,  # single/count only
    "position": POSITIONS,  # single only
    "shape2": SHAPES,  # pair only: the bottom (or right) object
    "colour2": COLOURS,
    "axis": AXES,  # pair only: one above the other (vertical) or side by side (horizontal)
}


def scene_labels(scene: Scene) -> dict[str, int]:
    """The label indices of a scene (−1 = not applicable); pairs are described top/left object first."""
    labels = dict.fromkeys(LABELS, -1)
    labels["kind"] = KINDS.index(scene.kind)
    labels["background"] = BACKGROUNDS.index(scene.background)
    labels["count"] = scene.count - 1
    scene = scene.canonical()
    first = scene.objects[0]
    labels["shape"], labels["colour"] = SHAPES.index(first.shape), COLOURS.index(first.colour)
    if scene.kind == "pair":
        second = scene.objects[1]
        labels["shape2"], labels["colour2"] = SHAPES.index(second.shape), COLOURS.index(second.colour)
        labels["axis"] = AXES.index("vertical" if scene.relation == "above" else "horizontal")
    else:
        labels["size"] = SIZES.index(first.size)
        if scene.kind == "single":
            labels["position"] = POSITIONS.index(first.position)
    return labels


def item_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one item: a pure function of (seed, split, index)."""
    return np.random.default_rng((seed, SPLITS.index(split), index))


class ShapesDataset(Dataset):
    """``n`` captioned shape scenes of side ``size`` from ``split`` ("train", "heldout" or "all").

    ``lang`` is "en", "fr" or "both" (each item picks one language at random); ``kinds`` restricts
    the scene kinds ("single", "count", "pair") and ``backgrounds`` the backgrounds.
    """

    def __init__(
        self,
        n: int,
        size: int = 32,
        split: str = "train",
        seed: int = 0,
        kinds: tuple[str, ...] = KINDS,
        lang: str = "both",
        backgrounds: tuple[str, ...] = BACKGROUNDS,
    ):
        if n < 1:
            raise ValueError(f"n must be ≥ 1, got {n}")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        if lang not in (*LANGS, "both"):
            raise ValueError(f"unknown language {lang!r}: choose one of en, fr, both")
        for kind in kinds:
            if kind not in KINDS:
                raise ValueError(f"unknown scene kind {kind!r}: choose among {', '.join(KINDS)}")
        for background in backgrounds:
            if background not in BACKGROUNDS:
                raise ValueError(f"unknown background {background!r}: choose among {', '.join(BACKGROUNDS)}")
        render(sample_scene(np.random.default_rng(0)), size)  # fails early, with a clear message, on a bad size
        self.n, self.size, self.split, self.seed, self.kinds, self.lang = n, size, split, seed, tuple(kinds), lang
        self.backgrounds = tuple(backgrounds)

    def __len__(self) -> int:
        return self.n

    def _draw(self, index: int) -> tuple[Scene, np.ndarray, str, str]:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for a dataset of {self.n} items")
        rng = item_rng(self.seed, self.split, index)
        scene = sample_scene(rng, self.split, self.kinds, self.backgrounds)
        image = render(scene, self.size, rng)
        lang = LANGS[int(rng.integers(2))] if self.lang == "both" else self.lang
        return scene, image, caption(scene, lang, rng), lang

    def scene(self, index: int) -> Scene:
        """The structured scene behind item ``index``."""
        return self._draw(index)[0]

    def __getitem__(self, index: int) -> dict:
        scene, image, text, lang = self._draw(index)
        return {"image": from_uint8(image), "caption": text, "lang": lang, "labels": scene_labels(scene)}


def render_scenes(scenes: list[Scene], size: int = 32, seed: int = 0) -> torch.Tensor:
    """Render scenes to a (B, 3, size, size) batch in [−1, 1], jittered deterministically by ``seed``."""
    rng = np.random.default_rng(seed)
    return torch.stack([from_uint8(render(scene, size, rng)) for scene in scenes])


def render_tensors(dataset: ShapesDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All of a dataset at once: uint8 images (N, 3, H, W) and labels (N, len(LABELS)) as indices (−1 = n/a)."""
    images = torch.empty(len(dataset), 3, dataset.size, dataset.size, dtype=torch.uint8)
    labels = torch.empty(len(dataset), len(LABELS), dtype=torch.long)
    for i in range(len(dataset)):
        scene, image, _, _ = dataset._draw(i)
        images[i] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        labels[i] = torch.tensor(list(scene_labels(scene).values()))
    return images, labels
