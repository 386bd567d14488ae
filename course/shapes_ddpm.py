"""Lesson 02's image model: a small conv ε-predictor for 32×32 single shapes on white, conditioned on (shape, colour).

Train the shipped checkpoint (``data/shapes_ddpm.safetensors``) with::

    python -m course.shapes_ddpm train

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
from course.scenes import COLOURS, HELD_OUT, POSITIONS, SHAPES, SIZES, single
from course.schedules import alphas_cumprod, linear_betas

CHECKPOINT = "shapes_ddpm.safetensors"
IMAGE_SIZE = 32
T = 1000
P_UNCOND = 0.1
BACKGROUNDS = ("white",)  # one background: the model's capacity goes to shapes, colours and positions
SHAPE_INDEX, COLOUR_INDEX = list(LABELS).index("shape"), list(LABELS).index("colour")


def make_model() -> ConvDenoiser:
    return ConvDenoiser(channels=3, width=32, emb_dim=128, conditional=True)


def batch_getter(batch_size: int, seed: int = 0):
    """``get_batch(step)``: images (B, 3, 32, 32) and conditions (B, 2), a pure function of the step."""
    dataset = ShapesDataset(10**9, size=IMAGE_SIZE, split="train", seed=seed, kinds=("single",), backgrounds=BACKGROUNDS)

    def get_batch(step: int):
        items = [dataset[step * batch_size + k] for k in range(batch_size)]
        images = torch.stack([item["image"] for item in items])
        cond = torch.tensor([[item["labels"]["shape"], item["labels"]["colour"]] for item in items])
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        cond[torch.rand(batch_size, generator=g) < P_UNCOND] = -1  # condition dropout
        return images, cond

    return get_batch


def loss_fn(alphas_cumprod_: torch.Tensor):
    return lambda model, batch: training_loss(model, batch[0], alphas_cumprod_.to(batch[0].device), cond=batch[1])


@functools.lru_cache(maxsize=1)
def load_model(path: str | None = None) -> ConvDenoiser:
    """The shipped model (EMA weights), checksum and config verified, in eval mode."""
    model = make_model()
    tensors, _ = checkpoints.load(Path(path) if path else data_dir() / CHECKPOINT, config=model.config)
    model.load_state_dict(tensors)
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


def train_shipped(steps: int, batch_size: int = 64, seed: int = 0, run_dir: Path | None = None, device: str | None = None) -> dict:
    from course.train import TrainConfig, export, train

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    model = make_model()
    abar = alphas_cumprod(linear_betas(T))
    config = TrainConfig(steps=steps, lr=1e-3, warmup=200, decay="cosine", ema_decay=0.999, checkpoint_every=250, seed=seed)
    result = train(model, loss_fn(abar), batch_getter(batch_size, seed), config, run_dir=run_dir, device=device, desc="shapes DDPM")
    metrics = evaluate(result.ema, n=128, seed=seed, device=device)
    metrics["total_wall_time_s"] = round(time.perf_counter() - start, 1)
    manifest = export(
        data_dir() / CHECKPOINT,
        result.ema.cpu(),
        config=result.ema.config,
        history=result.history,
        metrics=metrics,
        command=f"python -m course.shapes_ddpm train --steps {steps} --batch-size {batch_size} --seed {seed}",
    )
    load_model.cache_clear()
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.shapes_ddpm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train and ship data/shapes_ddpm.safetensors")
    t.add_argument("--steps", type=int, default=5000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--run-dir", type=Path, default=Path("runs/shapes_ddpm"), help="resume state (an interrupted run continues)")
    e = sub.add_parser("evaluate", help="adherence and FID-like of the shipped model")
    e.add_argument("--n", type=int, default=128)
    args = parser.parse_args(argv)
    if args.command == "train":
        manifest = train_shipped(args.steps, args.batch_size, args.seed, args.run_dir)
        metrics = manifest["metrics"]
    else:
        metrics = evaluate(load_model(), n=args.n)
    print({k: v for k, v in metrics.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
