"""Training a ControlNet on the shipped model (lesson 08; Zhang et al. 2023, §3.3).

    python -m course.controlnet_train train              # Canny edges → runs/controlnet_canny/ (data/ untouched)
    python -m course.controlnet_train train --ship       # and replace data/controlnet_canny.safetensors
    python -m course.controlnet_train evaluate           # edge and prompt adherence of the shipped one

The base U-Net, CLIP and the autoencoder stay frozen; only the ControlNet learns, with the base model's own loss

    L = E_{z_0, t, c_t, c_f, ε} ‖ε − ε_θ(z_t, t, c_t, c_f)‖²            (§3.3; Min-SNR-weighted, as the base)

on renders and the condition computed from each (:mod:`course.conditions`): exact pairs, free. Half the captions
are dropped to "" (§3.3), so that the ControlNet learns to read the condition itself.

Training renders are moved off the captions' 3 × 3 grid by up to 6 pixels (:func:`course.conditions.shift_layouts`):
the caption says what and roughly where, only the condition says exactly where.

Along training, the edge adherence of the EMA weights is measured on validation layouts (the curve of §3.3's "sudden
convergence"); at the end, the table of :func:`course.control_eval.evaluate`, on the test layouts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from course.conditions import conditions, shift_layouts
from course.control_eval import evaluate
from course.controlnet import ControlledUNet, ControlNet
from course.ddpm import training_loss
from course.evaluation import TEST_SEED, VALIDATION_SEED
from course.recipes import CONTROLNET_RECIPE, ControlNetRecipe
from course.schedules import alphas_cumprod
from course.shipped import UNET_CHECKPOINT, betas, load_unet

RECIPE = CONTROLNET_RECIPE
def control_loss(unet, abar: torch.Tensor, snr_gamma: float | None):
    """``loss(net, batch)``: the base model's ε loss through the frozen U-Net steered by ``net`` (§3.3)."""
    def loss(net: ControlNet, batch) -> torch.Tensor:
        z0, context, mask, maps = batch
        cond = maps.float()[:, None].expand(-1, 3, -1, -1)
        controlled = ControlledUNet(unet, net, cond)
        return training_loss(lambda x, t, c: controlled(x, t, context, mask), z0, abar, snr_gamma=snr_gamma)

    return loss


def train_shipped(recipe: ControlNetRecipe = RECIPE, run_dir: Path | None = None, ship: bool = False, force: bool = False,
                  allow_recipe_change: bool = False) -> dict:
    """Train ``recipe``'s ControlNet in ``run_dir`` (default runs/<model>) against the frozen shipped U-Net; the edge
    adherence is measured every ``eval_every`` steps on held-out validation layouts (the curve of §3.3's "sudden
    convergence"), the final table once, on the test layouts."""
    from course import ldm
    from course import distributed
    from course import train as training
    from course.shipped import trained_with as components

    run_dir = Path(run_dir or Path("runs") / recipe.model)
    if ship:
        training.check_shippable(recipe, force)
    with training.run_lock(run_dir):
        start = time.perf_counter()
        scenes, images = ldm.pool(recipe.pool, recipe.seed)
        images = shift_layouts(images, recipe.max_shift, recipe.seed)  # off the captions' grid: only the condition says where
        maps = conditions(images, recipe.kind, recipe.seed)[:, 0].bool()  # (N, H, W): one channel kept, 8× less memory
        latents = ldm.encode_latents(images)
        del images
        if distributed.is_main():
            print(f"pool of {recipe.pool} scenes rendered, encoded and their {recipe.kind} maps drawn in {time.perf_counter() - start:.0f} s", flush=True)
        unet = load_unet().requires_grad_(False).eval()
        net = training.build(lambda: ControlNet.from_unet(unet), recipe.seed)
        get_batch = ldm.batch_getter(scenes, latents, recipe.batch_size, recipe.seed, p_uncond=recipe.p_uncond, extra=maps)
        loss = control_loss(unet, alphas_cumprod(betas()), recipe.snr_gamma)
        config = recipe.train_config()
        curve_path = run_dir / "curve.json"
        curve = json.loads(curve_path.read_text()) if curve_path.exists() else []
        every = recipe.eval_every or recipe.steps
        for stop in list(range(every, recipe.steps, every)) + [recipe.steps]:
            result = training.train(net, loss, get_batch, config, run_dir=run_dir, desc=f"ControlNet ({recipe.kind})", stop_at=stop,
                                    recipe=recipe.training_dict(), allow_recipe_change=allow_recipe_change)
            if not distributed.is_main() or any(point["step"] == stop for point in curve):
                continue
            quick = evaluate(result.ema, recipe.kind, recipe.curve_prompts, recipe.curve_sampling_steps, recipe.guidance, VALIDATION_SEED,
                             shift=recipe.eval_shift, baseline=False)
            curve.append({"step": stop, "training_minutes": round(result.history.wall_time / 60, 2), "f1": quick["with_control"]["f1"]["mean"],
                          "chamfer": quick["with_control"]["chamfer"]["mean"], "prompt_all_correct": quick["prompt_with_control"]["all_correct"]})
            ldm._write_atomically(curve_path, json.dumps(curve, indent=1))
            print(f"step {stop}: {curve[-1]}", flush=True)
        if not distributed.is_main():
            return {}  # torchrun's other processes only train: rank 0 measures, exports and ships
        metrics = {"off_grid": evaluate(result.ema, recipe.kind, recipe.eval_prompts, recipe.eval_sampling_steps, recipe.guidance, TEST_SEED,
                                        shift=recipe.eval_shift),
                   "grid": evaluate(result.ema, recipe.kind, recipe.eval_prompts, recipe.eval_sampling_steps, recipe.guidance, TEST_SEED)}
        metrics["adherence_curve"] = curve
        metrics["total_wall_time_s"] = round(time.perf_counter() - start, 1)
        c = result.ema.control_config
        config_out = {"kind": recipe.kind, "conditioning_channels": c.conditioning_channels, "hint_channels": list(c.hint_channels)}
        path = training.export_run(run_dir, recipe, result.ema, config=config_out, history=result.history, metrics=metrics,
                                   command=recipe.command("--ship") if ship else recipe.command(), extra={"trained_with": {**components(), UNET_CHECKPOINT: _sha(UNET_CHECKPOINT)}})
        manifest = training.finish(run_dir, recipe, path, ship, force)
    return manifest


def _sha(name: str) -> str:
    from course import checkpoints
    from course.paths import data_dir

    return checkpoints.read_manifest(data_dir() / name).get("sha256", "")


def main(argv: list[str] | None = None) -> int:
    from course import distributed
    from course import train as training

    parser = argparse.ArgumentParser(prog="python -m course.controlnet_train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help=f"train into runs/{RECIPE.model}/ (with --ship: and replace data/{RECIPE.checkpoint})")
    training.add_recipe_arguments(t, RECIPE)
    t.add_argument("--kind", default=RECIPE.kind, help="the condition: canny (shipped), scribble or mask (runs/controlnet_<kind>/)")
    training.add_ship_command(sub, RECIPE)
    e = sub.add_parser("evaluate", help="edge and prompt adherence of the shipped ControlNet on held-out prompts and layouts")
    e.add_argument("--n", type=int, default=RECIPE.eval_prompts)
    e.add_argument("--steps", type=int, default=RECIPE.eval_sampling_steps)
    e.add_argument("--scale", type=float, default=1.0)
    e.add_argument("--shift", type=int, default=RECIPE.eval_shift, help=f"objects moved off the grid by up to … px (default {RECIPE.eval_shift}; 0: on the grid)")
    e.add_argument("--prompt-seed", type=int, default=TEST_SEED, help=f"{TEST_SEED}: the test layouts; {VALIDATION_SEED}: validation")
    args = parser.parse_args(argv)
    with training.user_errors():
        if args.command == "train":
            recipe = training.recipe_from_args(RECIPE, args)
            if args.kind != recipe.kind:
                recipe = recipe.replace(kind=args.kind, model=f"controlnet_{args.kind}", checkpoint=f"controlnet_{args.kind}.safetensors")
                if args.run_dir == Path("runs") / RECIPE.model:
                    args.run_dir = Path("runs") / recipe.model
            metrics = train_shipped(recipe, args.run_dir, args.ship, args.force, args.allow_recipe_change).get("metrics", {})
        elif args.command == "ship":
            training.ship(args.run_dir, RECIPE, args.force)
            return 0
        else:
            metrics = evaluate(None, RECIPE.kind, args.n, args.steps, RECIPE.guidance, args.prompt_seed, args.scale, args.shift)
    if not distributed.is_main():
        return 0  # torchrun's other processes: rank 0 reports
    for k, v in metrics.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
