"""Judging lesson 11's new word: a reader that knows the crescent, and the success / preservation tables.

The evaluator (:mod:`course.eval`) never saw a crescent: on fresh renders of one it reads the colour and the cell
right (100 %) but calls it a triangle, a circle or a square, and too often "small". So the reader adds two heads, shape
(the 8 shapes and the crescent) and size, on the evaluator's frozen features (a small probe), trained on renders of
all nine shapes, on their autoencoder round trips (what a generated image looks like at best) and on round trips of
noised latents (blurred, dented shapes, as generated ones often are); colour and cell stay the evaluator's own heads.
Validated on fresh scenes of all three views, and on the base model's own images (which never hold a crescent:
every "crescent" read there is a false alarm).

    python -m course.concept_eval reader --ship     train the probe (≈ 4 min), validate it, ship data/concept_reader.*

Measured (:func:`evaluate_model`), on held-out prompts never used in training (:func:`course.concept.heldout`):
success = the crescent is drawn with the asked colour, size and cell; and on ordinary held-out prompts
(:func:`course.evaluation.heldout_prompts`) the base model's adherence before vs after (preservation).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from course.concept import SHAPE, attributes, heldout
from course.scenes import BACKGROUNDS, COLOURS, SHAPES, SIZES, Obj, Scene

READER_SHAPES: tuple[str, ...] = (*SHAPES, SHAPE)
CHECKPOINT = "concept_reader.safetensors"
READER_SEED, READER_VALIDATION_SEED = 0, 1
CONCEPT_TEST_SEED, CONCEPT_VALIDATION_SEED = 777, 778


class ConceptReader(nn.Module):
    """Two heads (shape over 9 classes, size), a hidden layer each, on the evaluator's frozen 256 features."""

    def __init__(self, features: int = 256, hidden: int = 128):
        super().__init__()
        self.shape = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, len(READER_SHAPES)))
        self.size = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, len(SIZES)))

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"shape": self.shape(h), "size": self.size(h)}


def _scenes(n: int, seed: int) -> list[Scene]:
    rng = np.random.default_rng((seed, 23))
    return [Scene("single", BACKGROUNDS[rng.integers(3)], (Obj(READER_SHAPES[rng.integers(len(READER_SHAPES))], COLOURS[rng.integers(8)],
                                                            SIZES[rng.integers(2)], divmod(int(rng.integers(9)), 3)),)) for _ in range(n)]


VIEWS = ("renders", "round_trips", "noisy_round_trips")
LATENT_NOISE = 0.5  # the largest σ of the noisy round trips, in units of the latents' own scale


@torch.no_grad()
def _views(scenes: list[Scene], seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Renders of ``scenes``, their autoencoder round trips, and round trips of noised latents (σ ~ U(0, 0.5)): shapes
    as a generator draws them at best, and blurred or dented as it draws them often, each (N, 3, 64, 64) in [−1, 1]."""
    from course.data import render_scenes
    from course.shipped import IMAGE_SIZE, load_autoencoder

    x = render_scenes(scenes, IMAGE_SIZE, seed=seed)
    ae, _ = load_autoencoder()
    g = torch.Generator().manual_seed(seed)
    clean, noisy = [], []
    for chunk in x.split(256):
        z = ae.encode(chunk)[0]
        clean.append(ae.decode(z).clamp(-1, 1))
        sigma = torch.rand(len(z), 1, 1, 1, generator=g) * LATENT_NOISE * z.std()
        noisy.append(ae.decode(z + sigma * torch.randn(z.shape, generator=g)).clamp(-1, 1))
    return x, torch.cat(clean), torch.cat(noisy)


def _labels(scenes: list[Scene]) -> dict[str, torch.Tensor]:
    return {"shape": torch.tensor([READER_SHAPES.index(s.objects[0].shape) for s in scenes]),
            "size": torch.tensor([SIZES.index(s.objects[0].size) for s in scenes])}


def train_reader(n: int = 6000, steps: int = 1500, seed: int = READER_SEED) -> tuple[ConceptReader, dict]:
    """Fit the probe on n scenes (renders + round trips, with the evaluator's grain), validate on fresh ones."""
    from course.eval import features

    torch.manual_seed(seed)
    scenes = _scenes(n, seed)
    views = _views(scenes, seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.cat(views)
    x = x + torch.rand(len(x), 1, 1, 1, generator=g) * 0.1 * torch.randn(x.shape, generator=g)  # the evaluator's own augmentation
    h = features(x)
    labels = {k: v.repeat(len(views)) for k, v in _labels(scenes).items()}
    reader = ConceptReader(h.shape[1])
    opt = torch.optim.Adam(reader.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(steps):
        logits = reader(h)
        loss = sum(nn.functional.cross_entropy(logits[k], labels[k]) for k in logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    reader.eval()
    return reader, validate(reader)


def validate(reader: ConceptReader, n: int = 1800) -> dict:
    """Accuracy of the probe's heads on fresh scenes (another seed): renders and round trips, and on crescents alone."""
    from course.eval import features

    scenes = _scenes(n, READER_VALIDATION_SEED)
    truth = _labels(scenes)
    crescent = truth["shape"] == READER_SHAPES.index(SHAPE)
    out = {}
    for name, images in zip(VIEWS, _views(scenes, READER_VALIDATION_SEED + 1)):
        with torch.no_grad():
            pred = {k: v.argmax(1) for k, v in reader(features(images)).items()}
        for k in pred:
            out[f"{name}_{k}"] = round((pred[k] == truth[k]).float().mean().item(), 4)
            out[f"{name}_{k}_crescents"] = round((pred[k][crescent] == truth[k][crescent]).float().mean().item(), 4)
        out[f"{name}_crescent_false_alarms"] = round((pred["shape"][~crescent] == READER_SHAPES.index(SHAPE)).float().mean().item(), 4)
    out["n"] = n
    return out


@functools.lru_cache(maxsize=1)
def load_reader(path: str | None = None) -> ConceptReader:
    from course import checkpoints
    from course.paths import data_dir

    tensors, _ = checkpoints.load(path or data_dir() / CHECKPOINT)
    reader = ConceptReader(tensors["shape.0.weight"].shape[1], tensors["shape.0.weight"].shape[0])
    reader.load_state_dict(tensors)
    return reader.eval()


@torch.no_grad()
def read(images: torch.Tensor) -> list[dict[str, str]]:
    """What each image (B, 3, 64, 64) in [−1, 1] shows: shape (crescent included) and size by the probe, colour and
    position by the evaluator."""
    from course.eval import LABELS, load_evaluator

    evaluator, reader = load_evaluator(), load_reader()
    out = []
    for chunk in images.split(256):
        h = evaluator.features(chunk.float())
        own = {k: v.argmax(1) for k, v in reader(h).items()}
        theirs = {k: evaluator.heads[k](h).argmax(1) for k in ("colour", "position")}
        for i in range(len(chunk)):
            out.append({"shape": READER_SHAPES[own["shape"][i]], "size": SIZES[own["size"][i]],
                        "colour": LABELS["colour"][theirs["colour"][i]], "position": LABELS["position"][theirs["position"][i]]})
    return out


def judge(images: torch.Tensor, scenes: list[Scene]) -> dict:
    """Per-attribute accuracy and success (all four right) of images against the concept scenes they were asked for;
    fidelity (the crescent is drawn) and editability (colour, size and cell all as asked, Gal et al. 2023's two axes
    on our world); what was drawn instead of the crescent, and the split by colours the examples show or not."""
    from course.concept import EXAMPLE_COLOURS

    seen = read(images)
    asked = [attributes(s) for s in scenes]
    hits = {k: [s[k] == a[k] for s, a in zip(seen, asked)] for k in ("shape", "colour", "size", "position")}
    ok = [all(h[i] for h in hits.values()) for i in range(len(scenes))]
    new_colour = [a["colour"] not in EXAMPLE_COLOURS for a in asked]
    instead: dict[str, int] = {}
    for s in seen:
        if s["shape"] != SHAPE:
            instead[s["shape"]] = instead.get(s["shape"], 0) + 1

    def rate(values, where=None):
        chosen = [v for v, w in zip(values, where or [True] * len(values)) if w]
        return round(sum(chosen) / max(1, len(chosen)), 4)

    rest = [hits["colour"][i] and hits["size"][i] and hits["position"][i] for i in range(len(scenes))]
    return {"success": rate(ok), "per_attribute": {k: rate(v) for k, v in hits.items()},
            "fidelity": rate(hits["shape"]), "editability": rate(rest),
            "success_new_colours": rate(ok, new_colour), "success_example_colours": rate(ok, [not c for c in new_colour]),
            "drawn_instead": dict(sorted(instead.items(), key=lambda kv: -kv[1])), "n": len(scenes)}


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a rate p over n trials."""
    if n == 0:
        return (0.0, 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(float(centre - half), 4), round(float(centre + half), 4))


@torch.no_grad()
def generate(model, prompts: list[str], steps: int, guidance: float, seed: int = 0, batch: int = 128) -> torch.Tensor:
    """Images (B, 3, 64, 64) of a :class:`course.concept_train.ConceptModel` for prompts: DDIM η = 0, the batch starting
    at prompt i seeded ``seed + i`` (as :func:`course.evaluation.generate_batched`)."""
    from course.pipeline import generate_latents
    from course.shipped import load_autoencoder

    ae, factor = load_autoencoder()
    out = []
    for i in range(0, len(prompts), batch):
        z = generate_latents(model.unet, None, prompts[i:i + batch], "ddim", steps, guidance, seed + i, encode_text=model.encode_text)
        out.append(ae.decode(z / factor).clamp(-1, 1))
    return torch.cat(out)


def preservation(unet: nn.Module, n: int, steps: int, guidance: float) -> dict:
    """The evaluator's adherence on ordinary held-out prompts (shape, colour, size, position), DDIM η = 0."""
    from course.evaluation import evaluate

    r = evaluate(unet, n=n, steps=steps, guidance=guidance)
    return {"all_correct": r["all_correct"], "per_attribute": r["per_attribute"], "n": n}


def evaluate_model(model, recipe, prompt_seed: int = CONCEPT_TEST_SEED) -> dict:
    """The held-out table of a trained :class:`~course.concept_train.ConceptModel`: success on prompts with the new word,
    and ordinary adherence after (textual inversion leaves the U-Net untouched: not measured again, it is the base's)."""
    start = time.perf_counter()
    scenes, prompts = heldout(recipe.eval_prompts, prompt_seed)
    images = generate(model, prompts, recipe.eval_sampling_steps, recipe.guidance)
    seconds = (time.perf_counter() - start) / len(prompts)
    result = {"concept": judge(images, scenes), "seconds_per_image": round(seconds, 3),
              "sampling": f"DDIM eta=0, {recipe.eval_sampling_steps} steps, w = {recipe.guidance}"}
    result["concept"]["success_interval"] = wilson(result["concept"]["success"], len(scenes))
    if recipe.method != "ti":
        result["preservation"] = preservation(model.unet, recipe.preservation_prompts, recipe.eval_sampling_steps, recipe.guidance)
    return result


def base_false_alarms(reader: ConceptReader | None = None, n: int = 256) -> float:
    """How often the reader sees a crescent in the base model's images of ordinary validation prompts (there is none)."""
    from course.eval import features
    from course.evaluation import VALIDATION_SEED, generate_batched, heldout_prompts

    _, prompts = heldout_prompts(n, VALIDATION_SEED)
    images = generate_batched(prompts, steps=25, guidance=2.5)
    with torch.no_grad():
        shape = (reader or load_reader())(features(images))["shape"].argmax(1)
    return round((shape == READER_SHAPES.index(SHAPE)).float().mean().item(), 4)


def base_preservation(recipe) -> dict:
    """The shipped U-Net's ordinary adherence, measured as :func:`evaluate_model` measures the others'."""
    from course.shipped import load_unet

    return preservation(load_unet(), recipe.preservation_prompts, recipe.eval_sampling_steps, recipe.guidance)


def main(argv: list[str] | None = None) -> int:
    from course import checkpoints, current_profile
    from course.paths import data_dir

    parser = argparse.ArgumentParser(prog="python -m course.concept_eval", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reader", help="train the crescent reader (a probe on the evaluator's features) and validate it")
    r.add_argument("--ship", action="store_true", help=f"write data/{CHECKPOINT} (default: runs/concept_reader/)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    reader, metrics = train_reader()
    load_reader.cache_clear()
    metrics["base_model_false_alarms"] = base_false_alarms(reader)
    out = (data_dir() if args.ship else Path("runs") / "concept_reader") / CHECKPOINT
    checkpoints.save(out, reader.state_dict(), {"kind": "weights", "command": "python -m course.concept_eval reader --ship",
                                                 "config": {"shapes": list(READER_SHAPES), "sizes": list(SIZES)},
                                                 "hardware": checkpoints.hardware(), "wall_time_s": round(time.perf_counter() - start, 1),
                                                 "metrics": {"validation": metrics}, "torch": torch.__version__,
                                                 "profile": current_profile().name})
    print(f"wrote {out}: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
