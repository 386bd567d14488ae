"""Training the instruction-editing model on exact triplets (lesson 09; Brooks et al. 2023, §3.2–3.3).

    python -m course.instruct_train train              # → runs/instruct_pix2pix/ (data/ untouched)
    python -m course.instruct_train train --ship       # and replace data/instruct_pix2pix.safetensors
    python -m course.instruct_train evaluate           # the table of the shipped model on held-out triplets

From the shipped U-Net, widened to 8 input channels (the 4 new ones at zero), with the shipped autoencoder and the
frozen CLIP text encoder; the new words' embedding rows learn with the U-Net. The loss is the base model's,

    L = E ‖ε − ε_θ(z_t, t, E(x), c_T)‖²        z_0 = the edited image's latent, E(x) = the input's (unscaled mean)

with the instruction dropped to "" (5 %), the input latent to zeros (5 %), or both (5 %), §3.3. Triplets are rendered
once into a pool of training pairs (:mod:`course.instructions`, no held-out pair anywhere). Along training, the edit
success and preservation of the EMA weights are measured on validation triplets (held-out pairs, another seed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course.ddpm import training_loss
from course.evaluation import TEST_SEED, VALIDATION_SEED
from course.instruct import InstructPix2Pix
from course.instruct_eval import evaluate
from course.instructions import Edit, render_edit, sample_edit
from course.recipes import INSTRUCT_RECIPE, InstructRecipe
from course.schedules import alphas_cumprod
from course.shipped import CLIP_CHECKPOINT, UNET_CHECKPOINT, betas, load_clip, load_unet

RECIPE = INSTRUCT_RECIPE


@torch.no_grad()
def pool(n: int, seed: int = 0) -> tuple[list[Edit], torch.Tensor, torch.Tensor]:
    """n training triplets, the inputs' latents (unscaled means) and the edits' (scaled), each (n, 4, 8, 8)."""
    from course.images import from_uint8
    from course.shipped import load_autoencoder

    rng = np.random.default_rng((seed, 31))
    edits = [sample_edit(rng, "train") for _ in range(n)]
    ae, factor = load_autoencoder()
    sources, targets = [], []
    for i in range(0, n, 512):
        pairs = [render_edit(e) for e in edits[i:i + 512]]
        sources.append(ae.encode(torch.stack([from_uint8(a) for a, _ in pairs]))[0])
        targets.append(ae.encode(torch.stack([from_uint8(b) for _, b in pairs]))[0] * factor)
    return edits, torch.cat(sources), torch.cat(targets)


def batch_getter(edits: list[Edit], sources: torch.Tensor, targets: torch.Tensor, recipe: InstructRecipe):
    """``get_batch(step)``: (edited latents, input latents with the dropped ones at zero, instructions with the dropped ones "")."""

    def get_batch(step: int):
        g = torch.Generator().manual_seed(recipe.seed * 65_537 + step)
        idx = torch.randint(len(edits), (recipe.batch_size,), generator=g)
        rng = np.random.default_rng((recipe.seed, step, 13))
        texts, keep_image = [], torch.ones(recipe.batch_size, 1, 1, 1)
        for row, i in enumerate(idx.tolist()):
            u = rng.random()
            drop_text = u < recipe.p_drop_text or recipe.p_drop_text + recipe.p_drop_image <= u < recipe.p_drop_text + recipe.p_drop_image + recipe.p_drop_both
            drop_image = recipe.p_drop_text <= u < recipe.p_drop_text + recipe.p_drop_image + recipe.p_drop_both
            texts.append("" if drop_text else edits[i].instruction("en" if rng.integers(2) else "fr", rng))
            keep_image[row] = 0.0 if drop_image else 1.0
        return targets[idx], sources[idx] * keep_image, texts

    return get_batch


def edit_loss(abar: torch.Tensor, snr_gamma: float | None):
    """``loss(model, batch)``: the base model's ε loss, conditioned on the input latent and the instruction."""

    def loss(model: InstructPix2Pix, batch) -> torch.Tensor:
        z0, c_image, texts = batch
        context, mask = model.text_states(texts)
        return training_loss(lambda x, t, c: model(x, t, context, mask, c_image), z0, abar, snr_gamma=snr_gamma)

    return loss


def _sha(name: str) -> str:
    from course import checkpoints
    from course.paths import data_dir

    return checkpoints.read_manifest(data_dir() / name).get("sha256", "")


def train_shipped(recipe: InstructRecipe = RECIPE, run_dir: Path | None = None, ship: bool = False, force: bool = False,
                  allow_recipe_change: bool = False) -> dict:
    """Train ``recipe`` in ``run_dir`` (default runs/instruct_pix2pix); the curve every ``eval_every`` steps, the table at the end."""
    from course import ldm
    from course import distributed
    from course import train as training

    run_dir = Path(run_dir or Path("runs") / recipe.model)
    if ship:
        training.check_shippable(recipe, force)
    with training.run_lock(run_dir):
        start = time.perf_counter()
        edits, sources, targets = pool(recipe.pool, recipe.seed)
        if distributed.is_main():
            print(f"pool of {recipe.pool} triplets rendered and encoded in {time.perf_counter() - start:.0f} s", flush=True)
        unet, text = load_unet(), load_clip().text
        model = training.build(lambda: InstructPix2Pix.from_base(unet, text), recipe.seed)
        get_batch = batch_getter(edits, sources, targets, recipe)
        loss = edit_loss(alphas_cumprod(betas()), recipe.snr_gamma)
        config = recipe.train_config()
        curve_path = run_dir / "curve.json"
        curve = json.loads(curve_path.read_text()) if curve_path.exists() else []
        every = recipe.eval_every or recipe.steps
        for stop in list(range(every, recipe.steps, every)) + [recipe.steps]:
            result = training.train(model, loss, get_batch, config, run_dir=run_dir, desc="InstructPix2Pix", stop_at=stop,
                                    recipe=recipe.training_dict(), allow_recipe_change=allow_recipe_change)
            if not distributed.is_main() or any(point["step"] == stop for point in curve):
                continue
            quick = evaluate(result.ema.eval(), max(1, recipe.curve_edits // 6), recipe.curve_sampling_steps, recipe.text_guidance,
                             recipe.image_guidance, VALIDATION_SEED)["per_kind"]["all"]
            curve.append({"step": stop, "training_minutes": round(result.history.wall_time / 60, 2), **quick})
            ldm._write_atomically(curve_path, json.dumps(curve, indent=1))
            print(f"step {stop}: {curve[-1]}", flush=True)
        if not distributed.is_main():
            return {}  # torchrun's other processes only train: rank 0 measures, exports and ships
        metrics = {"test": evaluate(result.ema.eval(), recipe.eval_per_kind, recipe.eval_sampling_steps, recipe.text_guidance,
                                    recipe.image_guidance, TEST_SEED), "curve": curve, "total_wall_time_s": round(time.perf_counter() - start, 1)}
        from course.instructions import NEW_WORDS
        from course.unet import config_dict

        config_out = {"unet": config_dict(result.ema.unet.config), "new_words": list(NEW_WORDS)}
        path = training.export_run(run_dir, recipe, result.ema, config=config_out, history=result.history, metrics=metrics,
                                   command=recipe.command("--ship") if ship else recipe.command(),
                                   extra={"trained_with": {UNET_CHECKPOINT: _sha(UNET_CHECKPOINT), CLIP_CHECKPOINT: _sha(CLIP_CHECKPOINT)}})
        manifest = training.finish(run_dir, recipe, path, ship, force)
    return manifest


def main(argv: list[str] | None = None) -> int:
    from course import distributed
    from course import train as training

    parser = argparse.ArgumentParser(prog="python -m course.instruct_train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help=f"train into runs/{RECIPE.model}/ (with --ship: and replace data/{RECIPE.checkpoint})")
    training.add_recipe_arguments(t, RECIPE)
    training.add_ship_command(sub, RECIPE)
    e = sub.add_parser("evaluate", help="edit success and preservation of the shipped model on held-out triplets")
    e.add_argument("--per-kind", type=int, default=RECIPE.eval_per_kind)
    e.add_argument("--steps", type=int, default=RECIPE.eval_sampling_steps)
    args = parser.parse_args(argv)
    with training.user_errors():
        if args.command == "train":
            recipe = training.recipe_from_args(RECIPE, args)
            metrics = train_shipped(recipe, args.run_dir, args.ship, args.force, args.allow_recipe_change).get("metrics", {})
        elif args.command == "ship":
            training.ship(args.run_dir, RECIPE, args.force)
            return 0
        else:
            metrics = evaluate(None, args.per_kind, args.steps)
    if not distributed.is_main():
        return 0  # torchrun's other processes: rank 0 reports
    for k, v in metrics.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
