"""Stable Diffusion's autoencoder topology (course.autoencoder, diffusers' AutoencoderKL) at the shipped recipe.

    python benchmarks/ae_sd_topology.py --lr 3e-4     # ≈ 20 min on 2 cores; trains into runs/ae_sd_topology_lr3e-04/, data/ untouched
    python benchmarks/ae_sd_topology.py --smoke       # a few steps: the script runs

course.ae_train.train_shipped with only the model swapped: the same pool, crops, losses, steps, EMA and the same
legibility measure (the evaluator on reconstructions of 2,000 fresh renders per split). The manifest goes to
benchmarks/results/ae_sd_topology_lr<lr>.json. Do not `ship` the run: data/ must keep a course.autoencoder
model until the switch (issue 15).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--channels", type=int, nargs="+", default=None, help="block_out_channels (default: course.autoencoder's)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    parser.add_argument("--groups", type=int, default=None, help="GroupNorm groups (default: course.autoencoder's)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()

    from course import ae_train
    from course.recipes import AE_RECIPE
    from course.autoencoder import AEConfig, Autoencoder

    config = AEConfig(**{k: v for k, v in (("channels", tuple(args.channels or ())), ("groups", args.groups)) if v})
    ae_train.make_model = lambda: Autoencoder(config)
    recipe = AE_RECIPE.replace(**{k: v for k, v in (("lr", args.lr), ("steps", args.steps)) if v is not None})
    name = f"ae_sd_topology_lr{recipe.lr:.0e}" + ("_" + "-".join(map(str, config.channels)) if args.channels else "")
    name += f"_g{config.groups}_{recipe.steps}"
    if args.smoke:
        recipe = recipe.replace(steps=3, pool=64, eval_images=16, scaling_images=64, warmup=1, checkpoint_every=3)
        name += "_smoke"
    manifest = ae_train.train_shipped(recipe, run_dir=ROOT / "runs" / name, ship=False)
    if not args.smoke:
        out = ROOT / "benchmarks" / "results" / f"{name}.json"
        out.write_text(json.dumps(manifest, indent=1) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
