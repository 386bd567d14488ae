"""Issue 20's training experiments: what each change of the base model's training buys on the GenEval-style benchmark.

    python benchmarks/composition_probes.py --variant control --steps 2000
    python benchmarks/composition_probes.py --variant mix40 --steps 2000

Each variant is the shipped U-Net recipe (``course.recipes.LDM_RECIPE``, scaled to ``--steps``: warm-up and
decay in proportion) with one change, trained on the shipped autoencoder and CLIP into ``runs/probes/<variant>``
(resumable), then judged by ``course.geneval`` on its prompts (held-out pairs; ``--n`` per set and language;
the shipped w and 50 DDIM steps). Short runs compare variants with each other, not with the shipped
6,000-step model: ``control`` is the baseline at the same length. One JSON line per run goes to
``benchmarks/results/composition_probes.jsonl``: what it measured, with its training minutes.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from course import geneval, ldm
from course import train as training
from course.evaluation import generate
from course.recipes import LDM_RECIPE
from course.schedules import alphas_cumprod

VARIANTS: dict[str, dict] = {
    "control": {},  # the shipped mix: single 0.7, count 0.15, pair 0.15
    "mix40": {"kind_weights": {"single": 0.4, "count": 0.3, "pair": 0.3}},
    "mix25": {"kind_weights": {"single": 0.25, "count": 0.35, "pair": 0.4}},
    # the U-Net's cross-attention sees only <bos>, the words and <eos>, not the padding (which carries the whole
    # prompt and takes ~60 % of the shipped model's attention): do words then bind to places? (not SD's layout:
    # the stock diffusers pipeline passes no mask, so such a model would not export as is)
    "mask40": {"kind_weights": {"single": 0.4, "count": 0.3, "pair": 0.3}, "mask_padding": True},
    # the CLIP trained with hard negatives (benchmarks/clip_hard_negatives.py) and prompts padded with <eos>, as
    # Stable Diffusion v1's tokenizer pads: the padding states are then copies of the trained <eos> summary, and
    # they bind (swap distance at the padding 15-31 % instead of 1-2 %, benchmarks/results/eos_padding.json)
    "negclip_eos": {"clip": "runs/probes/clip_negatives", "eos_padding": True},
    "eos": {"eos_padding": True},  # the same padding with the shipped CLIP (swap distance 2 %): what the padding alone buys
}
RESULTS = Path(__file__).parent / "results" / "composition_probes.jsonl"


def padding_mask(prompts: list[str]) -> torch.Tensor:
    """(B, 32) True on <bos>, the words and <eos>; False on the padding."""
    from course.tokenizer import encode

    return encode(prompts, allow_empty=True)[1].bool()


def text_with_mask(prompts: list[str]):
    from course.shipped import text_states

    states, _ = text_states(prompts)
    return states, padding_mask(prompts)


def generate_masked(prompts: list[str], unet, seed: int) -> torch.Tensor:
    """The evaluation's generation (DDIM 50 steps, shipped w, seed), with the padding hidden from cross-attention."""
    from course.pipeline import generate_latents
    from course.shipped import GUIDANCE, load_autoencoder, load_clip

    autoencoder, factor = load_autoencoder()
    z0 = generate_latents(unet, load_clip(), prompts, "ddim", 50, GUIDANCE, torch.Generator().manual_seed(seed), encode_text=text_with_mask, eta=0.0)
    with torch.no_grad():
        return autoencoder.decode(z0 / factor).clamp(-1, 1)


def load_probe_clip(run_dir: str | None):
    """The shipped CLIP, or the weights a probe run left in ``run_dir`` (its ``state.safetensors``)."""
    from course import checkpoints
    from course.clip_train import make_model
    from course.shipped import load_clip

    if run_dir is None:
        return load_clip()
    tensors, _ = checkpoints.load(Path(run_dir) / "state.safetensors")
    clip = make_model()
    clip.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return clip.eval().requires_grad_(False)


def generate_with(prompts: list[str], unet, seed: int, clip, eos_padding: bool) -> torch.Tensor:
    """The evaluation's generation (DDIM 50 steps, shipped w, seed) with another text encoder or padding."""
    from course.pipeline import generate_latents
    from course.shipped import GUIDANCE, load_autoencoder, text_states

    autoencoder, factor = load_autoencoder()
    z0 = generate_latents(unet, clip, prompts, "ddim", 50, GUIDANCE, torch.Generator().manual_seed(seed),
                          encode_text=lambda p: text_states(p, clip, eos_padding), eta=0.0)
    with torch.no_grad():
        return autoencoder.decode(z0 / factor).clamp(-1, 1)


def train_variant(name: str, steps: int, run_dir: Path) -> tuple[torch.nn.Module, float]:
    """Train one variant (resuming ``run_dir``); return its EMA U-Net and the training minutes."""
    change = VARIANTS[name]
    clip = load_probe_clip(change.get("clip")) if "clip" in change else None
    recipe = LDM_RECIPE.scaled(steps)
    scenes, images = ldm.pool(recipe.pool, recipe.seed, change.get("kind_weights"))
    latents = ldm.encode_latents(images)
    del images
    model = training.build(ldm.make_model, recipe.seed)
    get_batch = ldm.batch_getter(scenes, latents, recipe.batch_size, recipe.seed, p_uncond=recipe.p_uncond, mask_padding=change.get("mask_padding", False),
                                  clip=clip, eos_padding=change.get("eos_padding", False))
    result = training.train(model, ldm.loss_fn(alphas_cumprod(ldm.betas()), recipe.snr_gamma), get_batch, recipe.train_config(),
                            run_dir=run_dir, desc=f"probe {name}", recipe={**recipe.training_dict(), "variant": name, **{k: str(v) for k, v in change.items()}})
    return result.ema.eval(), result.history.wall_time / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--n", type=int, default=64, help="benchmark prompts per (set, language)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    start = time.perf_counter()
    unet, minutes = train_variant(args.variant, args.steps, Path("runs") / "probes" / f"{args.variant}_{args.steps}")
    if VARIANTS[args.variant].get("mask_padding"):
        result = geneval.run(lambda prompts, seed: generate_masked(prompts, unet, seed), n=args.n)
    elif "clip" in VARIANTS[args.variant] or VARIANTS[args.variant].get("eos_padding"):
        clip, eos = load_probe_clip(VARIANTS[args.variant].get("clip")), VARIANTS[args.variant].get("eos_padding", False)
        result = geneval.run(lambda prompts, seed: generate_with(prompts, unet, seed, clip, eos), n=args.n)
    else:
        result = geneval.run(lambda prompts, seed: generate(prompts, unet, seed=seed), n=args.n)
    print(geneval.format_table(result))
    line = {"variant": args.variant, "change": {k: v for k, v in VARIANTS[args.variant].items()}, "steps": args.steps,
            "training_minutes": round(minutes, 1), "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
            "wall_minutes": round((time.perf_counter() - start) / 60, 1), **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
