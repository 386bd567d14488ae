"""A ControlNet training variant against the shipped recipe, judged on the off-grid test table (lesson 08, issue 16).

    python benchmarks/controlnet_variants.py --p-uncond 0.1      # ≈ 16 min on 2 cores; runs/ only, data/ untouched

Trains ``CONTROLNET_RECIPE`` with one field changed into ``runs/controlnet_<variant>/`` (never shipped), then measures
edge and prompt adherence on and off the grid exactly as ``python -m course.control_eval record`` does (256 held-out prompts),
and appends one line to benchmarks/results/controlnet_variants.jsonl.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from course.controlnet_train import train_shipped
from course.recipes import CONTROLNET_RECIPE

OUT = Path(__file__).resolve().parent / "results" / "controlnet_variants.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p-uncond", type=float, default=None, help="share of captions dropped (recipe: 0.5)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (recipe: 5e-4)")
    args = parser.parse_args()
    change = {k: v for k, v in (("p_uncond", args.p_uncond), ("lr", args.lr)) if v is not None}
    if not change:
        parser.error("give at least one change (--p-uncond or --lr)")
    name = "_".join(f"{k}{v:g}" for k, v in change.items())
    recipe = CONTROLNET_RECIPE.replace(model=f"controlnet_{name}", checkpoint=f"controlnet_{name}.safetensors", eval_every=None, **change)
    start = time.perf_counter()
    manifest = train_shipped(recipe, Path("runs") / recipe.model)  # its metrics hold the test tables, as control_eval record measures them
    from course import checkpoints

    table = manifest["metrics"]["off_grid"]
    line = {"variant": name, "change": change, "steps": recipe.steps, "training_minutes": round(manifest["wall_time_s"] / 60, 1),
            "threads": torch.get_num_threads(), "hardware": checkpoints.hardware(), "wall_minutes": round((time.perf_counter() - start) / 60, 1),
            "off_grid": {k: table[k] for k in ("with_control", "prompt_with_control", "prompt_without_control", "ceiling_autoencoder")},
            "grid_prompt_with_control": manifest["metrics"]["grid"]["prompt_with_control"]}
    with OUT.open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
