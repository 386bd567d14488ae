"""Training and measuring the course's CLIP on the captioned shapes (lesson 03).

    python -m course.clip_train train          # trains into runs/clip/ (about 10 minutes on 2 CPU cores; data/ untouched)
    python -m course.clip_train ship           # then replaces data/clip.safetensors with it
    python -m course.clip_train train --ship   # both at once
    python -m course.clip_train evaluate       # retrieval and zero-shot accuracy of the shipped model

The recipe is ``course.recipes.CLIP_RECIPE``; a flag overrides one field.

Images come from the ``train`` split (held-out shape + colour pairs never appear); each step pairs
every image with one caption drawn among its phrasings, in French or in English.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course import distributed
from course import train as training
from course.captions import caption, caption_variants
from course.clip import CLIP, contrastive_loss
from course.data import ShapesDataset, render_scenes
from course.recipes import CLIP_RECIPE as RECIPE
from course.recipes import ClipRecipe
from course.scenes import Scene, sample_scene
from course.shipped import CLIP_CHECKPOINT as CHECKPOINT
from course.shipped import IMAGE_SIZE, load_clip  # noqa: F401 (the loader lives with the models)
from course.shipped import make_clip as make_model
from course.tokenizer import encode


@torch.no_grad()
def encode_text(prompts: list[str] | str, model: CLIP | None = None) -> dict[str, torch.Tensor]:
    """What the diffusion model consumes: per-token states (B, L, D), the padding mask (B, L) and the
    pooled (B, D) and projected, normalised (B, P) embeddings of each prompt."""
    model = model or load_clip()
    ids, mask = encode(prompts)
    device = next(model.parameters()).device
    hidden, pooled, projected = model.text(ids.to(device), mask.to(device))
    return {"tokens": hidden, "mask": mask.bool().to(device), "pooled": pooled, "embeds": torch.nn.functional.normalize(projected, dim=-1)}


def pool(n: int, seed: int, split: str = "train") -> tuple[list[Scene], torch.Tensor]:
    """n scenes and their 64×64 renders (uint8), drawn like ShapesDataset items."""
    dataset = ShapesDataset(n, size=IMAGE_SIZE, split=split, seed=seed)
    scenes, images = [], torch.empty(n, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    for i in range(n):
        scene, image, _, _ = dataset._draw(i)
        scenes.append(scene)
        images[i] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    return scenes, images


def batch_getter(scenes: list[Scene], images: torch.Tensor, batch_size: int, seed: int = 0):
    variants = {}

    def get_batch(step: int):
        g = torch.Generator().manual_seed(seed * 7919 + step)
        idx = torch.randint(len(scenes), (batch_size,), generator=g)
        rng = np.random.default_rng((seed, step))
        texts = []
        for i in idx.tolist():
            lang = "en" if rng.integers(2) else "fr"
            key = (i, lang)
            if key not in variants:
                variants[key] = caption_variants(scenes[i], lang)
            texts.append(variants[key][rng.integers(len(variants[key]))])
        ids, mask = encode(texts, pad_to_longest=True)
        return images[idx].float() / 127.5 - 1, ids, mask

    return get_batch


def clip_loss(model: CLIP, batch) -> torch.Tensor:
    images, ids, mask = batch
    return contrastive_loss(model(images, ids, mask))


def same_attributes(a: Scene, b: Scene) -> bool:
    """Whether two single-object scenes match in everything a canonical caption states (shape, colour, size, position)."""
    oa, ob = a.objects[0], b.objects[0]
    return (oa.shape, oa.colour, oa.size, oa.position) == (ob.shape, ob.colour, ob.size, ob.position)


@torch.no_grad()
def retrieval(model: CLIP, n: int = 100, split: str = "train", seed: int = 12345, lang: str = "en") -> dict[str, float]:
    """Top-1 text→image and image→text retrieval among n fresh single-object scenes with canonical captions.

    A retrieved item counts as right when its scene has the attributes the caption states (two scenes
    identical in shape, colour, size and position cannot be told apart by their captions).
    """
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng, split, ("single",)) for _ in range(n)]
    images = render_scenes(scenes, IMAGE_SIZE, seed=seed)
    texts = [caption(s, lang) for s in scenes]
    ids, mask = encode(texts)
    sim = model.encode_image(images) @ model.encode_text_embeds(ids, mask).T  # (images, texts)
    t2i = sim.argmax(0).tolist()
    i2t = sim.argmax(1).tolist()
    model.train(was_training)
    return {
        "text_to_image_top1": sum(same_attributes(scenes[j], scenes[i]) for i, j in enumerate(t2i)) / n,
        "image_to_text_top1": sum(same_attributes(scenes[i], scenes[j]) for i, j in enumerate(i2t)) / n,
    }


def evaluate(model: CLIP, n: int = RECIPE.eval_images) -> dict:
    model.eval()
    out = {}
    for split in ("train", "heldout"):
        for lang in ("en", "fr"):
            out[f"{split}_{lang}"] = retrieval(model, n=n, split=split, lang=lang)
    return out


def train_shipped(recipe: ClipRecipe = RECIPE, run_dir: Path | None = None, ship: bool = False, force: bool = False, allow_recipe_change: bool = False) -> dict:
    """Train ``recipe`` in ``run_dir`` (default runs/clip), export the weights there, and replace data/clip.safetensors
    only if ``ship`` (a run shorter than a tenth of the recipe refused unless ``force``). One process only: the
    contrastive loss compares every image with every caption of the batch, which a shard per process would not."""
    from dataclasses import asdict

    if distributed.world_size() > 1:
        raise distributed.shared(training.TrainingError(
            f"CLIP trains in one process: its contrastive loss compares each image with all {recipe.batch_size} captions of the batch, "
            f"and {distributed.world_size()} processes would each see only {recipe.batch_size // distributed.world_size()}; run it without torchrun"))
    run_dir = Path(run_dir or Path("runs") / recipe.model)
    if ship:
        training.check_shippable(recipe, force)
    with training.run_lock(run_dir):
        start = time.perf_counter()
        scenes, images = pool(recipe.pool, recipe.seed)
        print(f"rendered {recipe.pool} images in {time.perf_counter() - start:.0f} s", flush=True)
        model = training.build(make_model, recipe.seed)
        result = training.train(model, clip_loss, batch_getter(scenes, images, recipe.batch_size, recipe.seed), recipe.train_config(), run_dir=run_dir,
                                desc="CLIP", recipe=recipe.training_dict(), allow_recipe_change=allow_recipe_change)
        metrics = evaluate(result.model.eval(), recipe.eval_images)
        metrics["total_wall_time_s"] = round(time.perf_counter() - start, 1)
        metrics["temperature"] = round(1 / result.model.logit_scale.clamp(max=np.log(100)).exp().item(), 4)
        path = training.export_run(run_dir, recipe, result.model, config=asdict(model.config), history=result.history, metrics=metrics,
                                   command=recipe.command("--ship") if ship else recipe.command())
        manifest = training.finish(run_dir, recipe, path, ship, force)
    load_clip.cache_clear()
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.clip_train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train into runs/clip/ (with --ship: and replace data/clip.safetensors)")
    training.add_recipe_arguments(t, RECIPE)
    training.add_ship_command(sub, RECIPE)
    sub.add_parser("evaluate", help="retrieval of the shipped model")
    args = parser.parse_args(argv)
    with training.user_errors():
        if args.command == "train":
            metrics = train_shipped(training.recipe_from_args(RECIPE, args), args.run_dir, args.ship, args.force, args.allow_recipe_change)["metrics"]
        elif args.command == "ship":
            training.ship(args.run_dir, RECIPE, args.force)
            return 0
        else:
            metrics = evaluate(load_clip())
    for k, v in metrics.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
