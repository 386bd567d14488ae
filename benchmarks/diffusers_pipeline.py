"""The shipped mini-SD, exported, in diffusers' stock StableDiffusionPipeline: same images? time per image?

    python benchmarks/diffusers_pipeline.py            # writes benchmarks/results/diffusers_pipeline.json (≈ 2 min)

Both pipelines run in this one process, on the same machine, with the same thread count (``--threads``), on
held-out test prompts (French and English), the same seeds, sampler (DPM-Solver++ 2M, and DDIM), steps (25)
and guidance (the shipped w). Reported: the largest |difference| of the images in [−1, 1] over all prompts,
and the median time per image (batch of one, and a batch of 16 prompts), after one warm-up call each.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "results" / "diffusers_pipeline.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=8, help="held-out prompts compared one by one")
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from course import export
    from course.evaluation import TEST_SEED, heldout_prompts
    from course.pipeline import TextToImagePipeline
    from course.shipped import GUIDANCE

    _, prompts = heldout_prompts(args.prompts, TEST_SEED)
    ours = TextToImagePipeline(device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = export.export_shipped(Path(tmp) / "mini-sd")
        theirs = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)
        theirs.set_progress_bar_config(disable=True)
        dpm = theirs.scheduler
        ddim = DDIMScheduler.from_config(export.scheduler_config("ddim"))

        def run_theirs(batch, seed):
            return 2 * theirs(batch, num_inference_steps=args.steps, guidance_scale=GUIDANCE, generator=torch.Generator().manual_seed(seed),
                              output_type="pt").images - 1

        def run_ours(batch, seed, sampler):
            return ours(batch, num_inference_steps=args.steps, guidance_scale=GUIDANCE, generator=seed, sampler=sampler).tensors

        result = {"threads": args.threads, "steps": args.steps, "guidance": GUIDANCE, "machine": f"{platform.processor() or platform.machine()}, "
                  f"{torch.get_num_threads()} torch thread(s), no GPU" if not torch.cuda.is_available() else "cuda", "samplers": {}}
        for sampler, scheduler in (("dpmpp", dpm), ("ddim", ddim)):
            theirs.scheduler = scheduler
            diffs, t_ours, t_theirs = [], [], []
            run_ours([prompts[0]], 0, sampler), run_theirs([prompts[0]], 0)  # warm-up
            for i, prompt in enumerate(prompts):
                s = time.perf_counter()
                a = run_ours(prompt, i, sampler)
                t_ours.append(time.perf_counter() - s)
                s = time.perf_counter()
                b = run_theirs(prompt, i)
                t_theirs.append(time.perf_counter() - s)
                diffs.append((a - b).abs().max().item())
            batch = (prompts * 2)[:16]
            s = time.perf_counter()
            run_ours(batch, 99, sampler)
            b_ours = (time.perf_counter() - s) / len(batch)
            s = time.perf_counter()
            run_theirs(batch, 99)
            b_theirs = (time.perf_counter() - s) / len(batch)
            result["samplers"][sampler] = {
                "max_abs_difference": max(diffs), "prompts": len(prompts),
                "seconds_per_image_batch1": {"course": round(statistics.median(t_ours), 3), "diffusers": round(statistics.median(t_theirs), 3)},
                "seconds_per_image_batch16": {"course": round(b_ours, 3), "diffusers": round(b_theirs, 3)},
            }
            print(sampler, json.dumps(result["samplers"][sampler]), flush=True)
    OUTPUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
