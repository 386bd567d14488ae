"""Lesson 02's image model: a small conv ε-predictor for 32×32 single shapes on white, conditioned on (shape, colour).

Train it with::

    python -m course.shapes_ddpm train          # into runs/shapes_ddpm/ (data/ untouched)
    python -m course.shapes_ddpm ship           # then replace data/shapes_ddpm.safetensors with it
    python -m course.shapes_ddpm train --ship   # both at once

The recipe is ``course.recipes.SHAPES_DDPM_RECIPE``; a flag overrides one field.

Training draws scenes from the ``train`` split (held-out (shape, colour) pairs never appear) and
drops the condition 10 % of the time, so the same network also predicts ε without a condition.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

from course import checkpoints
from course.data import LABELS, ShapesDataset, render_scenes
from course.ddpm import ddpm_sample, training_loss
from course.denoisers import ConvDenoiser
from course.paths import data_dir
from course.recipes import SHAPES_DDPM_RECIPE as RECIPE
from course.recipes import ShapesDDPMRecipe
from course.scenes import COLOURS, HELD_OUT, POSITIONS, SHAPES, SIZES, single
from course.schedules import alphas_cumprod, linear_betas

CHECKPOINT = "shapes_ddpm.safetensors"
IMAGE_SIZE = 32
T = 1000
P_UNCOND = RECIPE.p_uncond
BACKGROUNDS = ("white",)  # one background: the model's capacity goes to shapes, colours and positions
SHAPE_INDEX, COLOUR_INDEX = list(LABELS).index("shape"), list(LABELS).index("colour")


def make_model() -> ConvDenoiser:
    return ConvDenoiser(channels=3, width=32, emb_dim=128, conditional=True)


def batch_getter(batch_size: int, seed: int = 0, p_uncond: float | None = None):
    """``get_batch(step)``: images (B, 3, 32, 32) and conditions (B, 2), a pure function of the step."""
    dataset = ShapesDataset(10**9, size=IMAGE_SIZE, split="train", seed=seed, kinds=("single",), backgrounds=BACKGROUNDS)

    def get_batch(step: int):
        items = [dataset[step * batch_size + k] for k in range(batch_size)]
        images = torch.stack([item["image"] for item in items])
        cond = torch.tensor([[item["labels"]["shape"], item["labels"]["colour"]] for item in items])
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        cond[torch.rand(batch_size, generator=g) < (P_UNCOND if p_uncond is None else p_uncond)] = -1  # condition dropout
        return images, cond

    return get_batch


def loss_fn(alphas_cumprod_: torch.Tensor):
    return lambda model, batch: training_loss(model, batch[0], alphas_cumprod_.to(batch[0].device), cond=batch[1])


RENAMED = {".emb.": ".time_emb_proj.", ".skip.": ".conv_shortcut."}  # the ResBlock's names before it took diffusers' (issue 15)


def renamed(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint saved with the ResBlock's earlier names (``emb``, ``skip``), under today's; others unchanged."""
    def new(key: str) -> str:
        for old, name in RENAMED.items():
            key = key.replace(old, name)
        return key
    return {new(k): v for k, v in tensors.items()}


@functools.lru_cache(maxsize=1)
def load_model(path: str | None = None) -> ConvDenoiser:
    """The shipped model (EMA weights), checksum and config verified, in eval mode."""
    model = make_model()
    tensors, _ = checkpoints.load(Path(path) if path else data_dir() / CHECKPOINT, config=model.config)
    model.load_state_dict(renamed(tensors))
    return model.eval()


def prompts(n: int, held_out: bool = False, seed: int = 0) -> list[tuple[str, str]]:
    """n (shape, colour) pairs, cycling through the training pairs (or the held-out ones)."""
    pairs = sorted(HELD_OUT) if held_out else [(s, c) for s in SHAPES for c in COLOURS if (s, c) not in HELD_OUT]
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(pairs), generator=g).tolist()
    return [pairs[order[i % len(pairs)]] for i in range(n)]


def sample(model, pairs: list[tuple[str, str]], seed: int = 0, device: str = "cpu", **kwargs) -> torch.Tensor:
    """DDPM samples (B, 3, 32, 32) for (shape, colour) pairs."""
    cond = torch.tensor([[SHAPES.index(s), COLOURS.index(c)] for s, c in pairs], device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    return ddpm_sample(model, (len(pairs), 3, IMAGE_SIZE, IMAGE_SIZE), linear_betas(T), cond=cond, generator=g, device=device, clip_x0=1.0, **kwargs)


def real_images(pairs: list[tuple[str, str]], seed: int = 0) -> torch.Tensor:
    """Renders of the training distribution for these (shape, colour) pairs: random position and size, on white."""
    g = torch.Generator().manual_seed(seed)
    scenes = [
        single(s, c, POSITIONS[int(torch.randint(9, (1,), generator=g))], SIZES[int(torch.randint(2, (1,), generator=g))], BACKGROUNDS[0])
        for s, c in pairs
    ]
    return render_scenes(scenes, IMAGE_SIZE, seed=seed)


def evaluate(model, n: int = 128, seed: int = 0, device: str = "cpu") -> dict:
    """Adherence (shape, colour) and FID-like of n samples against real renders of the same pairs."""
    from course.eval import adherence, fid_like

    pairs = prompts(n, seed=seed)
    images = sample(model, pairs, seed=seed, device=device, progress=True).cpu()
    wanted = [{"shape": s, "colour": c} for s, c in pairs]
    result = adherence(images, wanted)
    result["fid_like"] = fid_like(images, real_images(pairs, seed))
    result["fid_like_real_vs_real"] = fid_like(real_images(pairs, seed + 1), real_images(pairs, seed))
    return result


def train_shipped(recipe: ShapesDDPMRecipe = RECIPE, run_dir: Path | None = None, device: str | None = None, ship: bool = False, force: bool = False,
                  allow_recipe_change: bool = False) -> dict:
    """Train ``recipe`` in ``run_dir`` (default runs/shapes_ddpm), export the EMA weights there, and replace
    data/shapes_ddpm.safetensors only if ``ship`` (a run shorter than a tenth of the recipe refused unless ``force``)."""
    from course import distributed
    from course import train as training

    run_dir = Path(run_dir or Path("runs") / recipe.model)
    if ship:
        training.check_shippable(recipe, force)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with training.run_lock(run_dir):
        start = time.perf_counter()
        model = training.build(make_model, recipe.seed)
        abar = alphas_cumprod(linear_betas(T))
        result = training.train(model, loss_fn(abar), batch_getter(recipe.batch_size, recipe.seed, recipe.p_uncond), recipe.train_config(), run_dir=run_dir,
                                device=device, desc="shapes DDPM", recipe=recipe.training_dict(), allow_recipe_change=allow_recipe_change)
        if not distributed.is_main():
            return {}  # torchrun's other processes only train: rank 0 measures, exports and ships
        metrics = evaluate(result.ema, n=recipe.eval_samples, seed=recipe.seed, device=device)
        metrics["total_wall_time_s"] = round(time.perf_counter() - start, 1)
        path = training.export_run(run_dir, recipe, result.ema.cpu(), config=result.ema.config, history=result.history, metrics=metrics,
                                   command=recipe.command("--ship") if ship else recipe.command())
        manifest = training.finish(run_dir, recipe, path, ship, force)
    load_model.cache_clear()
    return manifest


def main(argv: list[str] | None = None) -> int:
    from course import distributed
    from course import train as training

    parser = argparse.ArgumentParser(prog="python -m course.shapes_ddpm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train into runs/shapes_ddpm/ (with --ship: and replace data/shapes_ddpm.safetensors)")
    training.add_recipe_arguments(t, RECIPE)
    training.add_ship_command(sub, RECIPE)
    e = sub.add_parser("evaluate", help="adherence and FID-like of the shipped model")
    e.add_argument("--n", type=int, default=RECIPE.eval_samples)
    args = parser.parse_args(argv)
    with training.user_errors():
        if args.command == "train":
            recipe = training.recipe_from_args(RECIPE, args)
            metrics = train_shipped(recipe, args.run_dir, ship=args.ship, force=args.force, allow_recipe_change=args.allow_recipe_change).get("metrics", {})
        elif args.command == "ship":
            training.ship(args.run_dir, RECIPE, args.force)
            return 0
        else:
            metrics = evaluate(load_model(), n=args.n)
    if not distributed.is_main():
        return 0  # torchrun's other processes: rank 0 reports
    print({k: v for k, v in metrics.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
