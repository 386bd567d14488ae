"""Training and judging the autoencoder of latent diffusion (lesson 05).

    python -m course.ae_train train      # ships data/autoencoder.safetensors
    python -m course.ae_train evaluate   # PSNR and evaluator accuracy on reconstructions

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

from course.autoencoder import Autoencoder, kl_divergence, psnr, reconstruction_loss
from course.data import ShapesDataset, render_tensors
from course.paths import data_dir
from course.shipped import AUTOENCODER as CHECKPOINT
from course.shipped import IMAGE_SIZE, load_autoencoder  # noqa: F401 (the loader lives with the models)
from course.shipped import ae_config_dict as config_dict

KL_WEIGHT = 1e-5
EDGE_WEIGHT = 1.0
OBJECT_WEIGHT = 10.0  # extra weight of object pixels in the reconstruction loss


def to_signed(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1


def batch_getter(images: torch.Tensor, batch_size: int, crop: int = 32, seed: int = 0):
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


def legibility(model: Autoencoder, n: int = 2000, seed: int = 4242) -> dict:
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


def train_shipped(steps: int = 4000, batch_size: int = 64, n_pool: int = 30_000, seed: int = 0, run_dir: Path | None = None) -> dict:
    from course.train import TrainConfig, train

    start = time.perf_counter()
    images, _ = render_tensors(ShapesDataset(n_pool, size=IMAGE_SIZE, split="train", seed=seed))
    print(f"rendered {n_pool} images in {time.perf_counter() - start:.0f} s", flush=True)
    model = Autoencoder()
    config = TrainConfig(steps=steps, lr=1e-3, warmup=200, decay="cosine", ema_decay=0.999, checkpoint_every=500, seed=seed)
    result = train(model, ae_loss, batch_getter(images, batch_size, seed=seed), config, run_dir=run_dir, desc="autoencoder")
    ema = result.ema
    metrics = {"legibility": legibility(ema), "scaling_factor": scaling_factor(ema, to_signed(images[:4000]))}
    metrics["total_wall_time_s"] = round(time.perf_counter() - start, 1)
    manifest = train_export(ema, result.history, metrics, steps, batch_size, n_pool, seed)
    load_autoencoder.cache_clear()
    return manifest


def train_export(model, history, metrics, steps, batch_size, n_pool, seed):
    from course.train import export

    return export(
        data_dir() / CHECKPOINT,
        model,
        config=config_dict(model.config),
        history=history,
        metrics=metrics,
        command=f"python -m course.ae_train train --steps {steps} --batch-size {batch_size} --pool {n_pool} --seed {seed}",
    )


def report(metrics: dict) -> None:
    for split, m in metrics["legibility"].items():
        worst = min(m["accuracy_on_reconstructions"].items(), key=lambda kv: kv[1])
        print(f"{split:>8}: PSNR {m['psnr_db']} dB; evaluator on reconstructions — worst attribute {worst[0]} {worst[1]:.2%}")
        print("          " + "  ".join(f"{k} {v:.2%}" for k, v in m["accuracy_on_reconstructions"].items()))
    print(f"scaling factor {metrics['scaling_factor']:.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.ae_train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train and ship data/autoencoder.safetensors")
    t.add_argument("--steps", type=int, default=4000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--pool", type=int, default=30_000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--run-dir", type=Path, default=Path("runs/autoencoder"))
    sub.add_parser("evaluate", help="legibility of the shipped autoencoder")
    args = parser.parse_args(argv)
    if args.command == "train":
        metrics = train_shipped(args.steps, args.batch_size, args.pool, args.seed, args.run_dir)["metrics"]
    else:
        model, factor = load_autoencoder()
        metrics = {"legibility": legibility(model), "scaling_factor": factor}
    report(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
