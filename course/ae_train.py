"""Training and judging the autoencoder of latent diffusion (lesson 05).

    python -m course.ae_train train           # trains into runs/autoencoder/ (data/ untouched)
    python -m course.ae_train ship            # then replaces data/autoencoder.safetensors with it
    python -m course.ae_train train --ship    # both at once
    python -m course.ae_train evaluate        # PSNR and evaluator accuracy on reconstructions

The recipe (steps, learning rate, loss weights…) is ``course.recipes.AE_RECIPE``; a flag overrides one field.

Legibility first: the latent model can never draw better than its decoder, so the number that matters
is not PSNR but whether the independent evaluator still reads every attribute on reconstructions of
held-out renders (the ceiling for lesson 05's text-to-image model).

Training reads random 32×32 crops of 64×64 renders (aligned on the 8-pixel latent grid): the network is
convolutional, so a crop teaches it the same thing at a quarter of the cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from course import distributed
from course import train as training
from course.autoencoder import Autoencoder, kl_divergence, psnr, reconstruction_loss
from course.data import ShapesDataset, render_tensors
from course.recipes import AE_RECIPE as RECIPE
from course.recipes import AERecipe
from course.shipped import AUTOENCODER as CHECKPOINT
from course.shipped import IMAGE_SIZE, load_autoencoder  # noqa: F401 (the loader lives with the models)
from course.shipped import ae_config_dict as config_dict

KL_WEIGHT = RECIPE.kl_weight
EDGE_WEIGHT = RECIPE.edge_weight
OBJECT_WEIGHT = RECIPE.object_weight  # extra weight of object pixels in the reconstruction loss


def to_signed(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1


def batch_getter(images: torch.Tensor, batch_size: int, crop: int = RECIPE.crop, seed: int = 0):
    """``get_batch(step)``: random crop×crop windows, offsets on the 8-pixel grid, of random pool images."""
    offsets = list(range(0, IMAGE_SIZE - crop + 1, 8))

    def get_batch(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 100_003 + step)
        idx = torch.randint(len(images), (batch_size,), generator=g)
        oy, ox = (offsets[i] for i in torch.randint(len(offsets), (2,), generator=g).tolist())
        return to_signed(images[idx, :, oy : oy + crop, ox : ox + crop])

    return get_batch


def ae_loss(model: Autoencoder, x: torch.Tensor) -> torch.Tensor:
    recon, mean, logvar = model(x)
    return reconstruction_loss(x, recon, EDGE_WEIGHT, OBJECT_WEIGHT) + KL_WEIGHT * kl_divergence(mean, logvar)


@torch.no_grad()
def reconstruct(model: Autoencoder, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Decode(encode(x)) using the mean of q(z|x), as the diffusion model's latents do."""
    out = [model.decode(model.encode(chunk)[0]).clamp(-1, 1) for chunk in images.split(batch_size)]
    return torch.cat(out)


@torch.no_grad()
def scaling_factor(model: Autoencoder, images: torch.Tensor) -> float:
    """1 / std of the latents, so that the diffusion model sees unit-variance data (Rombach et al. 2022, §4.3.2)."""
    latents = torch.cat([model.encode(chunk)[0] for chunk in images.split(256)])
    return 1.0 / latents.std().item()


def legibility(model: Autoencoder, n: int = RECIPE.eval_images, seed: int = 4242) -> dict:
    """PSNR and evaluator accuracy per attribute on reconstructions of fresh renders (split ``all`` and ``heldout``)."""
    from course.eval import accuracy_table, load_evaluator

    judge = load_evaluator()
    out = {}
    for split in ("all", "heldout"):
        uint8, labels = render_tensors(ShapesDataset(n, size=IMAGE_SIZE, split=split, seed=seed))
        x = to_signed(uint8)
        recon = reconstruct(model, x)
        out[split] = {
            "psnr_db": round(psnr(x, recon), 2),
            "accuracy_on_reconstructions": {k: round(v, 4) for k, v in accuracy_table(judge, recon, labels).items()},
            "accuracy_on_originals": {k: round(v, 4) for k, v in accuracy_table(judge, x, labels).items()},
        }
    return out


def make_model() -> Autoencoder:
    return Autoencoder()


def train_shipped(recipe: AERecipe = RECIPE, run_dir: Path | None = None, ship: bool = False, force: bool = False, allow_recipe_change: bool = False) -> dict:
    """Train ``recipe`` in ``run_dir`` (default runs/autoencoder), export the EMA weights there, and replace
    data/autoencoder.safetensors only if ``ship`` (a run shorter than a tenth of the recipe refused unless ``force``)."""
    run_dir = Path(run_dir or Path("runs") / recipe.model)
    if ship:
        training.check_shippable(recipe, force)  # before any work
    with training.run_lock(run_dir):
        start = time.perf_counter()
        images, _ = render_tensors(ShapesDataset(recipe.pool, size=IMAGE_SIZE, split="train", seed=recipe.seed))
        if distributed.is_main():
            print(f"rendered {recipe.pool} images in {time.perf_counter() - start:.0f} s", flush=True)
        model = training.build(make_model, recipe.seed)
        result = training.train(model, ae_loss, batch_getter(images, recipe.batch_size, recipe.crop, recipe.seed), recipe.train_config(), run_dir=run_dir,
                                desc="autoencoder", recipe=recipe.training_dict(), allow_recipe_change=allow_recipe_change)
        if not distributed.is_main():
            return {}  # torchrun's other processes only train: rank 0 measures, exports and ships
        ema = result.ema
        metrics = {"legibility": legibility(ema, recipe.eval_images), "scaling_factor": scaling_factor(ema, to_signed(images[: recipe.scaling_images]))}
        metrics["total_wall_time_s"] = round(time.perf_counter() - start, 1)
        path = training.export_run(run_dir, recipe, ema, config=config_dict(ema.config), history=result.history, metrics=metrics,
                                   command=recipe.command("--ship") if ship else recipe.command())
        manifest = training.finish(run_dir, recipe, path, ship, force)
    load_autoencoder.cache_clear()
    return manifest


def report(metrics: dict) -> None:
    for split, m in metrics["legibility"].items():
        worst = min(m["accuracy_on_reconstructions"].items(), key=lambda kv: kv[1])
        print(f"{split:>8}: PSNR {m['psnr_db']} dB; evaluator on reconstructions — worst attribute {worst[0]} {worst[1]:.2%}")
        print("          " + "  ".join(f"{k} {v:.2%}" for k, v in m["accuracy_on_reconstructions"].items()))
    print(f"scaling factor {metrics['scaling_factor']:.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.ae_train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train into runs/autoencoder/ (with --ship: and replace data/autoencoder.safetensors)")
    training.add_recipe_arguments(t, RECIPE)
    training.add_ship_command(sub, RECIPE)
    sub.add_parser("evaluate", help="legibility of the shipped autoencoder")
    args = parser.parse_args(argv)
    with training.user_errors():
        if args.command == "train":
            recipe = training.recipe_from_args(RECIPE, args)
            metrics = train_shipped(recipe, args.run_dir, args.ship, args.force, args.allow_recipe_change).get("metrics", {})
        elif args.command == "ship":
            training.ship(args.run_dir, RECIPE, args.force)
            return 0
        else:
            model, factor = load_autoencoder()
            metrics = {"legibility": legibility(model), "scaling_factor": factor}
    if not distributed.is_main():
        return 0  # torchrun's other processes: rank 0 reports
    report(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
