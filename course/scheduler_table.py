"""The slides' scheduler table, rebuilt from measurement on the course's text-to-image model (lesson 06).

    python -m course.scheduler_table            # writes data/scheduler_table.json

For every sampler and number of steps: prompt adherence and FID-like (lesson 02's evaluator) on
held-out prompts, time per image on this machine, and "determinism": whether the same starting noise
x_T always gives the same image when the per-step noise changes (ODE samplers: yes; ancestral: no).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from course.checkpoints import hardware
from course.data import render_scenes
from course.eval import adherence, fid_like, scene_attributes
from course.evaluation import ATTRIBUTES, heldout_prompts
from course.paths import data_dir
from course.pipeline import generate_latents
from course.shipped import GUIDANCE, IMAGE_SIZE, load_autoencoder, load_clip, load_unet

OUTPUT = "scheduler_table.json"
STEPS = (10, 20, 50, 100, 1000)


@torch.no_grad()
def generate_with(name: str, prompts: list[str], steps: int, guidance: float = GUIDANCE, seed: int = 0, noise_seed: int = 1) -> torch.Tensor:
    """Images for prompts with sampler ``name``: x_T from ``seed``, per-step noise from ``noise_seed``."""
    ae, factor = load_autoencoder()
    z0 = generate_latents(load_unet(), load_clip(), prompts, name, steps, guidance, torch.Generator().manual_seed(seed),
                          noise_generator=torch.Generator().manual_seed(noise_seed))
    return ae.decode(z0 / factor).clamp(-1, 1)


CLASSIC = ("ddpm", "ddim", "pndm", "euler_a", "dpmpp")  # the slides' table: Heun and 3M are raced at equal evaluations instead (benchmarks/sampler_race*.py)


def measure(n: int = 64, steps_list=STEPS, samplers=CLASSIC, guidance: float = GUIDANCE) -> dict:
    scenes, prompts = heldout_prompts(n)
    real = render_scenes(scenes, IMAGE_SIZE, seed=0)
    asked = [scene_attributes(s, include=ATTRIBUTES) for s in scenes]
    rows = []
    for steps in steps_list:
        m = n if steps <= 100 else max(8, n // 4)  # 1000-step rows cost 10× more: fewer prompts, stated in the row
        for name in samplers:
            start = time.perf_counter()
            images = generate_with(name, prompts[:m], steps, guidance)
            seconds = (time.perf_counter() - start) / m
            again = generate_with(name, prompts[:4], steps, guidance, noise_seed=2)
            score = adherence(images, asked[:m])
            rows.append({
                "sampler": name, "steps": steps, "n_prompts": m, "all_correct": score["all_correct"], "per_attribute": score["per_attribute"],
                "fid_like": round(fid_like(images, real[:m]), 1), "seconds_per_image": round(seconds, 3),
                "same_x_T_same_image": bool((again - images[:4]).abs().max() < 1e-4),
            })
            print(rows[-1], flush=True)
    return {"rows": rows, "n_prompts": n, "guidance": guidance, "hardware": hardware(), "guidance_pairing": guidance_pairing(n),
            "fid_like_real_vs_real": round(fid_like(render_scenes(scenes, IMAGE_SIZE, seed=1), real), 1),
            "command": "python -m course.scheduler_table --n " + str(n)}


def guidance_pairing(n: int = 64, steps: int = 10, scales=(1.0, 2.0, 3.0), samplers=("ddim", "pndm")) -> list[dict]:
    """Adherence of few-step samplers across guidance scales: does a multistep method (PNDM) survive guidance?"""
    scenes, prompts = heldout_prompts(n)
    asked = [scene_attributes(s, include=ATTRIBUTES) for s in scenes]
    rows = []
    for w in scales:
        for name in samplers:
            score = adherence(generate_with(name, prompts, steps, w), asked)
            rows.append({"sampler": name, "steps": steps, "guidance": w, "n_prompts": n, "all_correct": score["all_correct"],
                         "shape": score["per_attribute"]["shape"]})
            print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.scheduler_table", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="held-out prompts per row")
    args = parser.parse_args(argv)
    result = measure(args.n)
    (data_dir() / OUTPUT).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
