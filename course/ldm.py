"""Text-to-image latent diffusion on the shapes (lesson 05): our mini Stable Diffusion.

    python -m course.ldm train          # trains into runs/ldm/ on the shipped autoencoder and CLIP (data/ untouched)
    python -m course.ldm ship           # then replaces data/ldm_unet.safetensors with it
    python -m course.ldm train --ship   # both at once
    python -m course.ldm evaluate       # prompt adherence on held-out combinations, FID-like
    torchrun --standalone --nproc_per_node 8 -m course.ldm train   # data-parallel on 8 GPUs (course.distributed)

The recipe (steps, learning rate, Min-SNR, caption dropout, guidance candidates…) is
``course.recipes.LDM_RECIPE``; a flag overrides one field.

Pipeline: prompt → frozen CLIP text encoder (lesson 03) → token states (B, L, 128) and padding mask →
U-Net (lesson 04) denoising 8×8×4 latents, with the prompt erased 10 % of the time (the empty prompt
"" is ∅) so that classifier-free guidance works → autoencoder decoder (this lesson) → 64×64 image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course.ae_train import to_signed
from course.captions import caption_variants
from course.ddpm import training_loss
from course.paths import data_dir
from course.recipes import LDM_RECIPE as RECIPE
from course.recipes import LDMRecipe
from course.scenes import Scene, sample_scene
from course.schedules import alphas_cumprod
from course.shipped import GUIDANCE, IMAGE_SIZE, SCHEDULE, T, UNET, betas, load_autoencoder, load_clip, load_unet, text_states  # noqa: F401
from course.shipped import UNET_CHECKPOINT as CHECKPOINT
from course.shipped import make_unet as make_model
from course.unet import UNet, config_dict
from course import evaluation as _evaluation
# evaluation (held-out prompts, generation as the manifest's numbers were drawn, adherence) lives in
# course.evaluation; re-exported here so that lessons and benchmarks keep writing ldm.generate(…)
from course.evaluation import TEST_SEED, VALIDATION_SEED, evaluate, generate, generate_latents, heldout_prompts  # noqa: F401

KIND_WEIGHTS = {"single": 0.7, "count": 0.15, "pair": 0.15}
# defaults of the functions below, read from the one recipe (course.recipes.LDM_RECIPE, where each value is explained)
P_UNCOND = RECIPE.p_uncond
SWEEP_SCALES = RECIPE.guidance_candidates
SNR_GAMMA = RECIPE.snr_gamma


def sample_kind(rng: np.random.Generator, kind_weights: dict[str, float] | None = None) -> str:
    """A scene kind drawn with ``kind_weights`` (default :data:`KIND_WEIGHTS`: the shipped model's mix)."""
    kinds, weights = zip(*(kind_weights or KIND_WEIGHTS).items())
    return kinds[rng.choice(len(kinds), p=np.array(weights) / sum(weights))]


def _pool_scenes(n: int, rng: np.random.Generator, kind_weights: dict[str, float] | None = None) -> list[Scene]:
    return [sample_scene(rng, "train", (sample_kind(rng, kind_weights),)) for _ in range(n)]


def pool_scenes(n: int, seed: int = 0, kind_weights: dict[str, float] | None = None) -> list[Scene]:
    """The scenes of :func:`pool` without rendering them (same n, seed and mix → the same scenes)."""
    return _pool_scenes(n, np.random.default_rng((seed, 5)), kind_weights)


def pool(n: int, seed: int = 0, kind_weights: dict[str, float] | None = None) -> tuple[list[Scene], torch.Tensor]:
    """n training scenes (mostly single objects, or the mix ``kind_weights``) and their 64×64 renders (uint8)."""
    rng = np.random.default_rng((seed, 5))
    scenes = _pool_scenes(n, rng, kind_weights)
    images = torch.empty(n, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    from course.render import render

    for i, scene in enumerate(scenes):
        images[i] = torch.from_numpy(np.ascontiguousarray(render(scene, IMAGE_SIZE, rng).transpose(2, 0, 1)))
    return scenes, images


@torch.no_grad()
def encode_latents(images_uint8: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Scaled latents z·scaling_factor (N, 4, 8, 8) of uint8 images, with the mean of q(z|x)."""
    ae, factor = load_autoencoder()
    return torch.cat([ae.encode(to_signed(chunk))[0] * factor for chunk in images_uint8.split(batch_size)])


class TextStateCache:
    """Frozen CLIP states per caption, computed once: the same captions come back all through training
    (≈ 80 % of a 4,000-step run's captions were seen before), and CLIP is frozen, so its states never change.

    ``cache(prompts)`` returns what ``text_states(prompts)`` returns: every prompt at the tokenizer's full length.
    """

    def __init__(self, clip=None, mask_padding: bool = False, eos_padding: bool = False):
        self.clip, self.mask_padding, self.eos_padding = clip, mask_padding, eos_padding
        self.states: dict[str, torch.Tensor] = {}

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = list(dict.fromkeys(p for p in prompts if p not in self.states))
        if missing:
            hidden, _ = text_states(missing, self.clip, self.eos_padding)
            for p, h in zip(missing, hidden.cpu()):
                self.states[p] = h.clone()
        context = torch.stack([self.states[p] for p in prompts])  # (B, L, D)
        if self.mask_padding:  # an experiment (benchmarks/composition_probes.py): cross-attention sees <bos>, words, <eos> only
            from course.tokenizer import encode

            return context, encode(prompts, allow_empty=True)[1].bool()
        return context, torch.ones(context.shape[:2], dtype=torch.bool)


def batch_getter(scenes: list[Scene], latents: torch.Tensor, batch_size: int, seed: int = 0, clip=None, p_uncond: float | None = None,
                 mask_padding: bool = False, eos_padding: bool = False, extra: torch.Tensor | None = None):
    """``get_batch(step)``: latents (B, 4, 8, 8), text states and mask of captions ("" for the dropped ones).

    ``clip``: the text encoder to use (default: the shipped one, on the CPU); its states are cached per caption.
    ``p_uncond``: the share of captions dropped (default: the recipe's). ``mask_padding``: the mask hides the padding
    (an experiment; the shipped model, as Stable Diffusion, sees every position). ``eos_padding``: prompts padded
    with <eos>, as Stable Diffusion v1's tokenizer does (an experiment). ``extra``: one more tensor per scene (a ControlNet's
    condition maps), whose rows for the batch come fourth.
    """
    states = TextStateCache(clip, mask_padding, eos_padding)
    p_uncond = P_UNCOND if p_uncond is None else p_uncond

    def get_batch(step: int):
        g = torch.Generator().manual_seed(seed * 65_537 + step)
        idx = torch.randint(len(scenes), (batch_size,), generator=g)
        rng = np.random.default_rng((seed, step, 9))
        texts = []
        for i in idx.tolist():
            if rng.random() < p_uncond:
                texts.append("")
            else:
                variants = caption_variants(scenes[i], "en" if rng.integers(2) else "fr")
                texts.append(variants[rng.integers(len(variants))])
        context, mask = states(texts)
        return (latents[idx], context, mask) if extra is None else (latents[idx], context, mask, extra[idx])

    return get_batch


def loss_fn(abar: torch.Tensor, snr_gamma: float | None = SNR_GAMMA):
    def loss(model: UNet, batch) -> torch.Tensor:
        z0, context, mask = batch
        return training_loss(lambda x, t, c: model(x, t, context, mask), z0, abar, snr_gamma=snr_gamma)

    return loss


def guidance_sweep(unet: UNet, scales=SWEEP_SCALES, n: int = 512, steps: int = 50) -> list[dict]:
    """Adherence against the guidance scale on validation prompts (:func:`course.evaluation.guidance_sweep`)."""
    return _evaluation.guidance_sweep(unet, scales, n, steps)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_components() -> None:
    """Refuse (one sentence) to train a U-Net when the autoencoder or CLIP it needs is not in data/."""
    from course.shipped import AUTOENCODER, CLIP_CHECKPOINT
    from course.train import TrainingError

    for name, module in ((AUTOENCODER, "course.ae_train"), (CLIP_CHECKPOINT, "course.clip_train")):
        if not (data_dir() / name).exists():
            raise TrainingError(
                f"data/{name} is missing: the U-Net learns on the shipped autoencoder's latents and CLIP's text states; "
                f"train it first (python -m {module} train --ship) or restore it (git checkout data/{name})"
            )


def train_shipped(recipe: LDMRecipe = RECIPE, run_dir: Path | None = None, ship: bool = False, force: bool = False, allow_recipe_change: bool = False) -> dict:
    """Train ``recipe`` in ``run_dir`` (default runs/ldm) on the shipped autoencoder and CLIP, export the EMA weights
    there, and replace data/ldm_unet.safetensors only if ``ship``.

    Training pauses every ``recipe.eval_every`` steps to measure adherence (``curve_prompts`` validation prompts,
    ``curve_sampling_steps`` DDIM steps, w = ``curve_guidance``): the curve of adherence against training minutes goes
    into the manifest. Then w is chosen among ``guidance_candidates`` on ``sweep_prompts`` validation prompts (the
    recipe's rule), and the test prompts are evaluated once, at that w. The manifest records the sha256 of the
    autoencoder and CLIP trained with (``trained_with``): the U-Net is only valid beside them.

    It trains on the GPU when there is one (under torchrun, each process on its own: :mod:`course.distributed`), and
    evaluates on the CPU; under torchrun rank 0 alone measures, exports and ships (the others return ``{}``).
    """
    from course import distributed, shipped
    from course import train as training

    run_dir = Path(run_dir or Path("runs") / recipe.model)
    if ship:
        training.check_shippable(recipe, force)
    check_components()
    with training.run_lock(run_dir):
        start = time.perf_counter()
        trained_with = shipped.trained_with()
        scenes, images = pool(recipe.pool, recipe.seed)
        latents = encode_latents(images)
        del images
        if distributed.is_main():
            print(f"pool of {recipe.pool} scenes rendered and encoded in {time.perf_counter() - start:.0f} s", flush=True)
        model = training.build(make_model, recipe.seed)
        abar = alphas_cumprod(betas())
        config = recipe.train_config()
        get_batch = batch_getter(scenes, latents, recipe.batch_size, recipe.seed, p_uncond=recipe.p_uncond)
        curve_path = run_dir / "curve.json"
        curve = json.loads(curve_path.read_text()) if curve_path.exists() else []
        every = recipe.eval_every or recipe.steps
        for stop in list(range(every, recipe.steps, every)) + [recipe.steps]:
            result = training.train(model, loss_fn(abar, recipe.snr_gamma), get_batch, config, run_dir=run_dir, desc="latent U-Net", stop_at=stop,
                                    recipe=recipe.training_dict(), allow_recipe_change=allow_recipe_change, device=distributed.device())
            if not distributed.is_main() or any(point["step"] == stop for point in curve):
                continue
            quick = evaluate(result.ema, n=recipe.curve_prompts, steps=recipe.curve_sampling_steps, guidance=recipe.curve_guidance, batch=128,
                             prompt_seed=VALIDATION_SEED)
            curve.append({"step": stop, "training_minutes": round(result.history.wall_time / 60, 2), "samples_seen": result.history.samples_seen,
                          "guidance": recipe.curve_guidance, "per_attribute": quick["per_attribute"], "all_correct": quick["all_correct"]})
            _write_atomically(curve_path, json.dumps(curve, indent=1))
            print(f"step {stop}: {curve[-1]}", flush=True)
        if not distributed.is_main():
            return {}
        sweep = guidance_sweep(result.ema, recipe.guidance_candidates, recipe.sweep_prompts, recipe.eval_sampling_steps)
        best = recipe.choose_guidance(sweep)
        print(f"guidance sweep on validation prompts: {sweep}; chosen w = {best}", flush=True)
        metrics = evaluate(result.ema, n=recipe.eval_prompts, steps=recipe.eval_sampling_steps, guidance=best)
        metrics["guidance_sweep_validation"] = sweep
        metrics["adherence_curve"] = curve
        metrics["total_wall_time_s"] = round(time.perf_counter() - start, 1)
        path = training.export_run(run_dir, recipe, result.ema, config=config_dict(model.config), history=result.history, metrics=metrics,
                                   command=recipe.command("--ship") if ship else recipe.command(), extra={"trained_with": trained_with})
        manifest = training.finish(run_dir, recipe, path, ship, force)
    load_unet.cache_clear()
    return manifest


def main(argv: list[str] | None = None) -> int:
    from course import distributed
    from course import train as training

    parser = argparse.ArgumentParser(prog="python -m course.ldm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train into runs/ldm/ (with --ship: and replace data/ldm_unet.safetensors)")
    training.add_recipe_arguments(t, RECIPE)
    training.add_ship_command(sub, RECIPE)
    e = sub.add_parser("evaluate", help="adherence of the shipped model on held-out prompts")
    e.add_argument("--n", type=int, default=RECIPE.eval_prompts)
    e.add_argument("--steps", type=int, default=RECIPE.eval_sampling_steps)
    e.add_argument("--guidance", type=float, default=GUIDANCE)
    e.add_argument("--prompt-seed", type=int, default=TEST_SEED, help=f"{TEST_SEED}: the test prompts; {VALIDATION_SEED}: validation")
    args = parser.parse_args(argv)
    with training.user_errors():
        if args.command == "train":
            recipe = training.recipe_from_args(RECIPE, args)
            metrics = train_shipped(recipe, args.run_dir, args.ship, args.force, args.allow_recipe_change).get("metrics", {})
        elif args.command == "ship":
            training.ship(args.run_dir, RECIPE, args.force)
            return 0
        else:
            metrics = evaluate(n=args.n, steps=args.steps, guidance=args.guidance, prompt_seed=args.prompt_seed)
    if not distributed.is_main():
        return 0  # torchrun's other processes: rank 0 reports
    for k, v in metrics.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
