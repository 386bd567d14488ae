"""An independent judge of generated shape images: an attribute classifier, prompt adherence, FID-like.

The classifier is trained on rendered scenes of every (shape, colour) combination (split ``all``)
and never sees a generated image: it measures what a generated image shows, not what a generator
was trained on. Its penultimate features give an FID-like distance (Heusel et al. 2017, eq. 2,
computed on these features instead of Inception's).

Train the evaluator (about 35 minutes on 2 CPU cores; recipe ``course.recipes.EVALUATOR_RECIPE``)::

    python -m course.eval train          # into runs/evaluator/ (data/ untouched)
    python -m course.eval ship           # then replace data/evaluator.safetensors with it
    python -m course.eval train --ship   # both at once
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course import checkpoints
from course.data import LABELS, ShapesDataset, render_tensors, scene_labels
from course.language import tr
from course.paths import data_dir
from course.scenes import Scene

INPUT_SIZE = 64
CHECKPOINT = "evaluator.safetensors"
LABEL_NAMES = tuple(LABELS)
# an attribute as a French edition shows it (figure labels, printed results); the English edition shows the names themselves
ATTRIBUTE_NAMES_FR = {"kind": "type de scène", "background": "fond", "count": "nombre", "shape": "forme", "colour": "couleur", "size": "taille",
                      "position": "position", "shape2": "forme 2", "colour2": "couleur 2", "axis": "axe"}


def attribute_name(name: str) -> str:
    """An attribute (a key of ``LABELS``) as a learner reads it: "shape" in English, « forme » in French."""
    return tr(en=name, fr=ATTRIBUTE_NAMES_FR.get(name, name))


class AttributeClassifier(nn.Module):
    """A small CNN with one head per label of :data:`course.data.LABELS`; any input size is resized to 64×64."""

    def __init__(self, width: int = 16, features: int = 256):
        super().__init__()
        self.config = {"width": width, "features": features, "input_size": INPUT_SIZE, "labels": list(LABEL_NAMES)}
        w = width

        def conv(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(  # 64 → 4 pixels; two convolutions per stage where the maps are small (cheap)
            *conv(3, w), nn.MaxPool2d(2),
            *conv(w, 2 * w), nn.MaxPool2d(2),
            *conv(2 * w, 4 * w), *conv(4 * w, 4 * w), nn.MaxPool2d(2),
            *conv(4 * w, 8 * w), *conv(8 * w, 8 * w), nn.MaxPool2d(2),
        )
        self.neck = nn.Sequential(nn.Flatten(), nn.Linear(8 * w * 4 * 4, features), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({name: nn.Linear(features, len(values)) for name, values in LABELS.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, features) of images (B, 3, H, W) in [−1, 1]."""
        if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=x.shape[-1] > INPUT_SIZE)
        return self.neck(self.body(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}


def classifier_loss(logits: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Sum over labels of the cross-entropy, ignoring attributes that do not apply (label −1)."""
    return sum(F.cross_entropy(logits[name], labels[:, i], ignore_index=-1) for i, name in enumerate(LABEL_NAMES))


# ----------------------------------------------------------------------------- loading


@functools.lru_cache(maxsize=1)
def load_evaluator(path: str | None = None) -> AttributeClassifier:
    """The shipped evaluator (``data/evaluator.safetensors``), checksum and config verified, in eval mode."""
    path = Path(path) if path else data_dir() / CHECKPOINT
    model = AttributeClassifier()
    tensors, _ = checkpoints.load(path, config=model.config)
    model.load_state_dict(tensors)
    return model.eval()


@torch.no_grad()
def predict(images: torch.Tensor, model: AttributeClassifier | None = None, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Predicted label index per attribute, for images (B, 3, H, W) in [−1, 1]."""
    model = model or load_evaluator()
    device = next(model.parameters()).device
    out: dict[str, list[torch.Tensor]] = {name: [] for name in LABEL_NAMES}
    for chunk in images.split(batch_size):
        logits = model(chunk.to(device, torch.float32))
        for name in LABEL_NAMES:
            out[name].append(logits[name].argmax(1).cpu())
    return {name: torch.cat(v) for name, v in out.items()}


@torch.no_grad()
def features(images: torch.Tensor, model: AttributeClassifier | None = None, batch_size: int = 256) -> torch.Tensor:
    model = model or load_evaluator()
    device = next(model.parameters()).device
    return torch.cat([model.features(c.to(device, torch.float32)).cpu() for c in images.split(batch_size)])


# ----------------------------------------------------------------------------- adherence


def attributes_to_labels(attributes: dict) -> dict[str, int]:
    """{"shape": "circle", "colour": "red", …} → label indices; a ValueError names a bad key or value."""
    labels = {}
    for name, value in attributes.items():
        if name not in LABELS:
            raise ValueError(f"unknown attribute {name!r}: choose among {', '.join(LABEL_NAMES)}")
        if value not in LABELS[name]:
            raise ValueError(f"unknown {name} {value!r}: choose one of {', '.join(map(str, LABELS[name]))}")
        labels[name] = LABELS[name].index(value)
    return labels


def scene_attributes(scene: Scene, include: Sequence[str] | None = None) -> dict:
    """The attributes a scene asks for, as names (pairs: top/left object first), optionally restricted."""
    labels = scene_labels(scene)
    attributes = {name: LABELS[name][i] for name, i in labels.items() if i >= 0}
    if include is not None:
        attributes = {k: v for k, v in attributes.items() if k in include}
    return attributes


def adherence(images: torch.Tensor, attributes: Sequence[dict | Scene], model: AttributeClassifier | None = None) -> dict:
    """How often generated images show what their prompts asked.

    ``attributes[i]`` is a dict of attribute names (or a Scene) for image i. Returns per-attribute
    accuracy (over the images that asked for that attribute), the all-correct rate, and n.
    """
    if len(images) != len(attributes):
        raise ValueError(f"got {len(images)} images but {len(attributes)} attribute sets")
    if len(images) == 0:
        raise ValueError("adherence needs at least one image")
    asked = [attributes_to_labels(scene_attributes(a) if isinstance(a, Scene) else a) for a in attributes]
    predicted = predict(images, model)
    hits: dict[str, list[bool]] = {}
    all_correct = []
    for i, wanted in enumerate(asked):
        ok = [predicted[name][i].item() == value for name, value in wanted.items()]
        for (name, _), good in zip(wanted.items(), ok):
            hits.setdefault(name, []).append(good)
        all_correct.append(all(ok))
    return {
        "per_attribute": {name: sum(v) / len(v) for name, v in hits.items()},
        "all_correct": sum(all_correct) / len(all_correct),
        "n": len(images),
    }


def per_class_accuracy(predicted: torch.Tensor, truth: torch.Tensor, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(right, asked) for each class that was asked at least once: where a judge's errors concentrate."""
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and truth {tuple(truth.shape)} differ in shape")
    out = {}
    for i, name in enumerate(names):
        asked = truth == i
        if asked.any():
            out[name] = (int((predicted[asked] == i).sum()), int(asked.sum()))
    return out


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2(Σ_a Σ_b)^½) between Gaussian fits of two feature sets (Heusel et al. 2017)."""
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples per set")
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return ((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * middle).item()


def fid_like(generated: torch.Tensor, real: torch.Tensor, model: AttributeClassifier | None = None) -> float:
    """Fréchet distance between evaluator features of generated and real images (lower is better)."""
    return frechet_distance(features(generated, model), features(real, model))


# ----------------------------------------------------------------------------- training


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mild noise so the judge tolerates the grain of generated images."""
    sigma = torch.rand(x.shape[0], 1, 1, 1, generator=gen) * 0.1
    return x + sigma * torch.randn(x.shape, generator=gen)


def accuracy_table(model: AttributeClassifier, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Per-attribute accuracy on labelled images (attributes that apply only)."""
    predicted = predict(images, model)
    table = {}
    for i, name in enumerate(LABEL_NAMES):
        mask = labels[:, i] >= 0
        table[name] = (predicted[name][mask] == labels[mask, i]).float().mean().item()
    return table


def _to_signed(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1


def train_evaluator(recipe=None, run_dir: Path | None = None, ship: bool = False, force: bool = False, allow_recipe_change: bool = False) -> dict:
    """Render data at 32 and 64 pixels, train the classifier, measure it on fresh renders; export it into ``run_dir``
    (default runs/evaluator) and replace data/evaluator.safetensors only if ``ship``."""
    from course import distributed
    from course import train as training
    from course.recipes import EVALUATOR_RECIPE

    recipe = recipe or EVALUATOR_RECIPE
    run_dir = Path(run_dir or Path("runs") / recipe.model)
    if ship:
        training.check_shippable(recipe, force)
    seed, batch_size, n_train = recipe.seed, recipe.batch_size, recipe.pool
    with training.run_lock(run_dir):
        start = time.perf_counter()
        halves = [render_tensors(ShapesDataset(n_train // 2, size=s, split="all", seed=seed)) for s in (32, 64)]
        if distributed.is_main():
            print(f"rendered {n_train} training images in {time.perf_counter() - start:.0f} s", flush=True)

        def get_batch(step: int):  # a function of the step: a resumed run draws the batches an uninterrupted one would
            gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
            half = halves[step % 2]  # alternate 32- and 64-pixel batches
            idx = torch.randint(len(half[0]), (batch_size,), generator=gen)
            return _augment(_to_signed(half[0][idx]), gen), half[1][idx]

        model = training.build(AttributeClassifier, seed)
        result = training.train(model, lambda m, b: classifier_loss(m(b[0]), b[1]), get_batch, recipe.train_config(), run_dir=run_dir, desc="evaluator",
                                recipe=recipe.training_dict(), allow_recipe_change=allow_recipe_change)
        if not distributed.is_main():
            return {}  # torchrun's other processes only train: rank 0 measures, exports and ships
        metrics = {}
        for size in (32, 64):
            for split in ("all", "heldout"):
                imgs, labels = render_tensors(ShapesDataset(recipe.eval_images, size=size, split=split, seed=seed + 1000))
                table = accuracy_table(result.ema, _to_signed(imgs), labels)
                metrics[f"{split}_{size}px"] = {k: round(v, 4) for k, v in table.items()}
        path = training.export_run(
            run_dir, recipe, result.ema, config=result.ema.config, history=result.history,
            metrics={"accuracy_on_fresh_clean_renders": metrics, "n_train": n_train, "total_wall_time_s": round(time.perf_counter() - start, 1)},
            command=recipe.command("--ship") if ship else recipe.command(),
        )
        manifest = training.finish(run_dir, recipe, path, ship, force)
    load_evaluator.cache_clear()
    return manifest


def main(argv: list[str] | None = None) -> int:
    from course import distributed
    from course import train as training
    from course.recipes import EVALUATOR_RECIPE

    parser = argparse.ArgumentParser(prog="python -m course.eval", description="Train or inspect the shipped evaluator.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the evaluator into runs/evaluator/ (with --ship: and replace data/evaluator.safetensors)")
    training.add_recipe_arguments(t, EVALUATOR_RECIPE)
    training.add_ship_command(sub, EVALUATOR_RECIPE)
    sub.add_parser("report", help="print the shipped evaluator's manifest metrics")
    args = parser.parse_args(argv)
    with training.user_errors():
        if args.command == "train":
            recipe = training.recipe_from_args(EVALUATOR_RECIPE, args)
            manifest = train_evaluator(recipe, args.run_dir, args.ship, args.force, args.allow_recipe_change)
        elif args.command == "ship":
            training.ship(args.run_dir, EVALUATOR_RECIPE, args.force)
            return 0
        else:
            manifest = checkpoints.read_manifest(data_dir() / CHECKPOINT)
    if not distributed.is_main():
        return 0  # torchrun's other processes: rank 0 reports
    for split, table in manifest["metrics"]["accuracy_on_fresh_clean_renders"].items():
        print(f"{split:>12}: " + "  ".join(f"{k} {v:.2%}" for k, v in table.items()))
    print(f"wall time: {manifest['metrics']['total_wall_time_s']} s on {manifest['hardware']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
