"""The sampler race on the shipped text-to-image model: course samplers and the best diffusers settings of
the Gaussian-mixture race (benchmarks/sampler_race.py), at 10 network evaluations, on held-out test prompts.

    python benchmarks/sampler_race_ldm.py            # 256 test prompts, writes data/sampler_race_ldm.json

Two measures per setting, same x_T for all: (1) the solver's error, ‖z_0 − z_0,ref‖ in latent space per
image against DPM-Solver++ 3M with 200 uniform-λ steps from the same noise (the model's own ODE; every
setting stops at t = 1 like the reference); (2) prompt adherence of the decoded images (all asked
attributes right, lesson 05's evaluator), with its standard error. diffusers' schedulers run their own
loop around the same guided U-Net (w = the shipped guidance). The optimised grid was tuned on
validation prompts (course.grid_search), never on these.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sampler_race import run_diffusers, steps_for_budget  # noqa: E402
from course.adapter import Denoiser  # noqa: E402
from course.checkpoints import hardware  # noqa: E402
from course.paths import data_dir  # noqa: E402
from course.evaluation import ATTRIBUTES, TEST_SEED, heldout_prompts  # noqa: E402
from course.guidance import guided  # noqa: E402
from course.noise_schedule import NoiseSchedule  # noqa: E402
from course.samplers import SOLVERS, grid_for, sample  # noqa: E402
from course.shipped import GUIDANCE, betas, latent_shape, load_autoencoder, load_clip, load_unet, text_states  # noqa: E402

RESULTS = data_dir() / "sampler_race_ldm.json"  # lesson 06 reads it

COURSE = [("ddim", "leading"), ("pndm", "leading"), ("dpmpp", "linspace"), ("dpmpp", "log_snr"), ("dpmpp_3m", "log_snr"),
          ("dpmpp_3m", "karras"), ("heun", "karras"), ("dpmpp_3m", "optimised")]
DIFFUSERS = [
    ("DPMSolverMultistep dpmsolver++ 3 · lu_lambdas · final sigma_min", "DPMSolverMultistepScheduler",
     {"algorithm_type": "dpmsolver++", "solver_order": 3, "use_lu_lambdas": True, "final_sigmas_type": "sigma_min"}),
    ("DPMSolverMultistep dpmsolver++ 3 · lu_lambdas", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 3, "use_lu_lambdas": True}),
    ("DPMSolverMultistep dpmsolver++ 2 · karras", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    ("DPMSolverMultistep dpmsolver++ 2 · default", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    ("UniPC bh2 2 · karras", "UniPCMultistepScheduler", {"solver_order": 2, "solver_type": "bh2", "use_karras_sigmas": True}),
    ("UniPC bh2 3 · default", "UniPCMultistepScheduler", {"solver_order": 3, "solver_type": "bh2"}),
    ("DDIM · leading", "DDIMScheduler", {"timestep_spacing": "leading", "set_alpha_to_one": True, "clip_sample": False}),  # as SD's config
    ("Heun · karras", "HeunDiscreteScheduler", {"use_karras_sigmas": True}),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--budget", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    from course.eval import adherence, scene_attributes

    schedule = NoiseSchedule.from_betas(betas())
    scenes, prompts = heldout_prompts(args.n, TEST_SEED)
    asked = [scene_attributes(s, include=ATTRIBUTES) for s in scenes]
    clip, unet = load_clip(), load_unet()
    ae, factor = load_autoencoder()
    context, mask = text_states(prompts, clip)
    null, null_mask = text_states([""], clip)
    eps = guided(unet, context, mask, null, null_mask, GUIDANCE)
    x_T = torch.randn((args.n, *latent_shape()), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = sample("dpmpp_3m", eps, x_T, schedule, 200, grid="log_snr")

        def judge(z0):
            images = ae.decode(z0 / factor).clamp(-1, 1)
            score = adherence(images, asked)
            p = score["all_correct"]
            return {"latent_error": (z0 - reference).flatten(1).norm(dim=1).mean().item(), "all_correct": p,
                    "stderr": math.sqrt(p * (1 - p) / args.n), "per_attribute": score["per_attribute"]}

        rows = [{"who": "reference", "setting": "course dpmpp_3m · log_snr, 200 steps", "evaluations": 200, **judge(reference)}]
        for name, grid in COURSE:
            steps = max(s for s in range(1, args.budget + 1) if {"pndm": s + 1, "heun": 2 * s - 1}.get(name, s) <= args.budget)
            counted = Denoiser(eps, schedule)
            z0 = SOLVERS[name](counted, x_T, grid_for(name, schedule, steps, grid), schedule)
            rows.append({"who": "course", "setting": f"course {name} · {grid}", "steps": steps, "evaluations": counted.calls, **judge(z0)})
            print(rows[-1]["setting"], rows[-1]["evaluations"], f"{rows[-1]['latent_error']:.4f}", rows[-1]["all_correct"], flush=True)
        for label, cls_name, config in DIFFUSERS:
            model = lambda x, t: eps(x.float(), t)  # noqa: E731
            steps = steps_for_budget(lambda s: run_diffusers(cls_name, config, lambda x, t: torch.zeros_like(x), x_T[:1].double(), s, 3)[1], args.budget)  # counts calls
            z0, calls = run_diffusers(cls_name, config, model, x_T.double(), steps, 3)
            rows.append({"who": "diffusers", "setting": label, "steps": steps, "evaluations": calls, **judge(z0.float())})
            print(rows[-1]["setting"], rows[-1]["evaluations"], f"{rows[-1]['latent_error']:.4f}", rows[-1]["all_correct"], flush=True)

    print(f"\n## shipped U-Net, {args.n} held-out test prompts, w = {GUIDANCE}, {args.budget} evaluations ({hardware()})")
    print("| setting | evaluations | latent error vs 200-step ODE | all asked attributes right |")
    print("|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["latent_error"]):
        print(f"| {r['setting']} | {r['evaluations']} | {r['latent_error']:.4f} | {100 * r['all_correct']:.1f} ± {100 * r['stderr']:.1f} % |")
    RESULTS.write_text(json.dumps({"n": args.n, "budget": args.budget, "guidance": GUIDANCE, "hardware": hardware(), "threads": args.threads,
                                   "wall_time_s": round(time.perf_counter() - start, 1), "rows": rows}, indent=1) + "\n")
    print(f"wrote {RESULTS} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
