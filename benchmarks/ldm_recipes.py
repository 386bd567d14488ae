"""Compare training recipes of the latent U-Net (lesson 05) at equal data, on validation prompts.

    python benchmarks/ldm_recipes.py --variant base --device cuda --out runs/recipes/base.json
    python benchmarks/ldm_recipes.py --variant nosnr --pool-file runs/pool.safetensors ...

Each variant changes one or two knobs of ``course.ldm``'s recipe (loss weighting, learning rate,
batch size, width, training length). The model is trained on the same latent pool as the shipped
one, then judged by the lesson-02 evaluator on held-out *validation* prompts (never the test
prompts), 50 DDIM steps, at two guidance scales, with the shape accuracy per asked shape, since
shape is where the recipe is weakest. ``--deadline-min`` stops training early (the step reached is
reported) so that a sweep fits a fixed slot of machine time. Used on a GPU to choose what the
2-core default recipe should be; what it prints is what it measured.
"""

from __future__ import annotations

import argparse
import collections
import copy
import dataclasses
import json
import multiprocessing
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from course import ldm
from course.ae_train import load_autoencoder, to_signed
from course.data import render_scenes
from course.eval import adherence, fid_like, predict, scene_attributes
from course.recipes import LDM_RECIPE, LDMRecipe
from course.scenes import SHAPES
from course.schedules import alphas_cumprod
from course.train import train
from course.unet import UNet, UNetConfig

VARIANTS = {
    # name: overrides of (steps, batch, lr, snr_gamma, channels)
    "base": {},
    "nosnr": {"snr_gamma": None},
    "lr1e-3": {"lr": 1e-3},
    "nosnr_lr1e-3": {"snr_gamma": None, "lr": 1e-3},
    "lr2e-3": {"lr": 2e-3},
    "b64x8000": {"batch": 64, "steps": 8000},
    "wide": {"channels": (96, 192, 192)},
    "long12000": {"steps": 12_000},
    # sweep 3: around lr 1e-3, on a 2,000-step schedule (2,500 for the "+25 % steps" pair)
    "r2000": {"lr": 1e-3, "steps": 2000},
    "r2500": {"lr": 1e-3, "steps": 2500},
    "pooled2000": {"lr": 1e-3, "steps": 2000, "pooled": True},
    "pooled2500": {"lr": 1e-3, "steps": 2500, "pooled": True},
    "heads8": {"lr": 1e-3, "steps": 2000, "heads": 8},
    "puncond0.2": {"lr": 1e-3, "steps": 2000, "p_uncond": 0.2},
    "wide80": {"lr": 1e-3, "steps": 2000, "channels": (80, 160, 160)},
    "pooled_heads8": {"lr": 1e-3, "steps": 2000, "pooled": True, "heads": 8},
    "noattn0": {"lr": 1e-3, "steps": 2000, "attention": (False, True, True)},
}
CHUNK = 2000
# The recipe and architecture the sweeps started from, derived from the shipped ones (course.recipes.LDM_RECIPE,
# course.shipped.UNET) by naming what differed, so that the variants above keep their meaning when the shipped
# recipe changes; "shipped" below is the current one. The widths are the sweeps' (64, 128, 128); the topology is
# today's (Stable Diffusion's, since issue 15): the result files of the sweeps were measured on the course's earlier
# U-Net (one ResBlock per level each way, masked prompts, the <eos> state as summary), so a rerun measures the same
# knobs on another network.
START_RECIPE = dataclasses.replace(LDM_RECIPE, steps=4000, lr=5e-4, decay_stretch=1.0, checkpoint_every=None)
START_UNET = dataclasses.replace(ldm.UNET, channels=(64, 128, 128), pooled=False)
RECIPE_KNOBS = {"steps": "steps", "batch": "batch_size", "lr": "lr", "snr_gamma": "snr_gamma", "p_uncond": "p_uncond", "decay_stretch": "decay_stretch"}
UNET_KNOBS = ("channels", "attention", "heads", "pooled")
VARIANTS["shipped"] = {**{knob: getattr(LDM_RECIPE, f) for knob, f in RECIPE_KNOBS.items()}, **{k: getattr(ldm.UNET, k) for k in UNET_KNOBS}}


def variant(name: str, steps: int | None = None) -> tuple[LDMRecipe, UNetConfig]:
    """The recipe and U-Net of a variant: the starting ones with the variant's knobs (and ``steps``) replaced."""
    overrides = VARIANTS[name]
    recipe = dataclasses.replace(START_RECIPE, **{RECIPE_KNOBS[k]: v for k, v in overrides.items() if k in RECIPE_KNOBS}, checkpoint_every=None)
    if steps:
        recipe = dataclasses.replace(recipe, steps=steps)
    unet = dataclasses.replace(START_UNET, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if k in UNET_KNOBS})
    return recipe, unet
VARIANTS["pooled2000_stopped"] = {"lr": 1e-3, "steps": 2000, "pooled": True, "decay_stretch": 1.25}  # the cosine of pooled2500, run to its stop


def _render_chunk(job: tuple[int, int, int]) -> torch.Tensor:
    n, seed, chunk = job
    from course.render import render

    scenes = ldm.pool_scenes(n, seed)[chunk * CHUNK : (chunk + 1) * CHUNK]
    rng = np.random.default_rng((seed, 5, chunk))
    return torch.from_numpy(np.stack([render(s, 64, rng).transpose(2, 0, 1) for s in scenes]))


def make_pool_file(path: Path, n: int = 60_000, seed: int = 0, workers: int = 1) -> None:
    """Render (in parallel) and encode the scenes of ``ldm.pool(n, seed)``: the same scenes, drawn with
    other random jitter than the shipped run's pool, so only as an equal starting point for all variants."""
    with multiprocessing.Pool(workers) as p:
        images = torch.cat(p.map(_render_chunk, [(n, seed, c) for c in range(-(-n // CHUNK))]))
    path.parent.mkdir(parents=True, exist_ok=True)
    ae, factor = load_autoencoder()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ae = copy.deepcopy(ae).to(device)
    with torch.no_grad():
        latents = torch.cat([ae.encode(to_signed(chunk.to(device)))[0].cpu() * factor for chunk in images.split(1000)])
    save_file({"latents": latents.contiguous(), "meta": torch.tensor([n, seed])}, str(path))


def shape_breakdown(unet: UNet, n: int, guidance: float, device: str) -> dict:
    """Adherence on n validation prompts, plus shape accuracy per asked shape and the top confusions."""
    scenes, prompts = ldm.heldout_prompts(n, ldm.VALIDATION_SEED)
    # the same images as ldm.evaluate(unet, n, 50, guidance, prompt_seed=VALIDATION_SEED) draws (batches of 128)
    images = torch.cat([ldm.generate(prompts[i : i + 128], unet, 50, guidance, i, device=device) for i in range(0, n, 128)])
    result = adherence(images, [scene_attributes(s, include=("shape", "colour", "size", "position")) for s in scenes])
    result["fid_like"] = round(fid_like(images, render_scenes(scenes, 64, seed=0)), 2)
    guessed = predict(images)["shape"].tolist()
    right, asked, confusions = collections.Counter(), collections.Counter(), collections.Counter()
    for scene, g in zip(scenes, guessed):
        shape = scene.objects[0].shape
        asked[shape] += 1
        right[shape] += SHAPES[g] == shape
        if SHAPES[g] != shape:
            confusions[f"{shape}->{SHAPES[g]}"] += 1
    return {
        "guidance": guidance, "per_attribute": result["per_attribute"], "all_correct": result["all_correct"], "fid_like": result["fid_like"],
        "shape_by_asked": {s: f"{right[s]}/{asked[s]}" for s in SHAPES}, "confusions": dict(confusions.most_common(6)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS))
    parser.add_argument("--pool-file", type=Path, default=Path("runs/pool.safetensors"))
    parser.add_argument("--make-pool", action="store_true", help="render and encode the pool into --pool-file, then stop")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering the pool")
    parser.add_argument("--pool-size", type=int, default=60_000, help="scenes in the pool (the shipped run: 60,000)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=256, help="validation prompts")
    parser.add_argument("--steps", type=int, help="override the variant's training steps (quick checks)")
    parser.add_argument("--deadline-min", type=float, default=1e9, help="stop training after about this many minutes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and of the batches")
    parser.add_argument("--scales", type=float, nargs="+", default=[2.0, 3.0], help="guidance scales to evaluate")
    parser.add_argument("--out", type=Path, default=Path("runs/recipes/result.json"))
    args = parser.parse_args()
    if args.make_pool:
        make_pool_file(args.pool_file, args.pool_size, workers=args.workers)
        return
    if args.variant is None:
        parser.error("--variant is required unless --make-pool")
    recipe, unet_config = variant(args.variant, args.steps)
    cfg = {**{knob: getattr(recipe, f) for knob, f in RECIPE_KNOBS.items()}, **{k: getattr(unet_config, k) for k in UNET_KNOBS}}
    if not args.pool_file.exists():
        print(f"{args.pool_file} not found: rendering and encoding the pool first ({args.workers} worker(s))", flush=True)
        make_pool_file(args.pool_file, args.pool_size, workers=args.workers)
    pool = load_file(str(args.pool_file))
    n_pool, pool_seed = pool["meta"].tolist()
    scenes, latents = ldm.pool_scenes(n_pool, pool_seed), pool["latents"]
    clip = ldm.load_clip().to(args.device)
    recipe = dataclasses.replace(recipe, seed=args.seed)
    torch.manual_seed(recipe.seed)
    model = UNet(unet_config).to(args.device)
    abar = alphas_cumprod(ldm.betas())
    config = recipe.train_config()
    get_batch = ldm.batch_getter(scenes, latents.to(args.device), recipe.batch_size, recipe.seed, clip=clip, p_uncond=recipe.p_uncond)
    run_dir = Path("runs/recipes") / f"{args.variant}_s{args.seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, never a resumed stale one
    start, reached = time.perf_counter(), 0
    for stop in range(500, recipe.steps + 500, 500):
        stop = min(stop, recipe.steps)
        result = train(model, ldm.loss_fn(abar, recipe.snr_gamma), get_batch, config, run_dir=run_dir, device=args.device,
                       desc=args.variant, progress=False, stop_at=stop)
        reached = stop
        elapsed = (time.perf_counter() - start) / 60
        print(f"{args.variant}: step {stop} after {elapsed:.1f} min", flush=True)
        if stop < recipe.steps and elapsed * (stop + 500) / stop > args.deadline_min:
            print(f"{args.variant}: deadline, stopping at step {stop} of {recipe.steps}", flush=True)
            break
    train_minutes = (time.perf_counter() - start) / 60
    ema = result.ema.eval()
    out = {"variant": args.variant, "seed": args.seed, "config": {**cfg, "channels": list(cfg["channels"]), "attention": list(cfg["attention"])},
           "recipe": recipe.as_dict(), "steps_reached": reached,
           "train_minutes": round(train_minutes, 2), "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
           "params": sum(p.numel() for p in ema.parameters()), "evaluations": [shape_breakdown(ema, args.n, w, args.device) for w in args.scales]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
