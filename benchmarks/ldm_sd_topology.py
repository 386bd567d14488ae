"""What Stable Diffusion's U-Net topology and text layout cost or gain in adherence, at the shipped recipe and budget.

    python benchmarks/ldm_sd_topology.py        # ≈ 80 min on 2 cores; trains into runs/ldm_sd_topology/, data/ untouched
    python benchmarks/ldm_sd_topology.py --smoke  # a few steps (≈ 30 s): the script runs

Do not `ship` the run: data/ldm_unet.safetensors must stay a course.unet model until the switch (issue 15).

The shipped latent U-Net (course.unet: one ResBlock per level each way, masked cross-attention over the
prompt's real tokens, the <eos> state added to the time embedding) against the same recipe
(course.recipes.LDM_RECIPE: 4,400 steps, batch 128, the same pool, seed, schedule, guidance candidates and
evaluation) run on ``course.sd_unet`` — diffusers' UNet2DConditionModel topology, widths (48, 96, 128) whose
step costs what the shipped (64, 128, 128) does — with Stable Diffusion's text layout: every prompt at the
tokenizer's full length, no mask, the padding's states seen, and diffusers' attention-pooled summary
(addition_embed_type="text") instead of the <eos> state. The autoencoder and CLIP are the shipped ones.

Training, the adherence curve (128 validation prompts every 1,000 steps), the choice of w (512 validation
prompts) and the test (512 held-out prompts, 50 DDIM steps) are course.ldm.train_shipped's own; only the
model and the text states are swapped. The result is the run's manifest, runs/ldm_sd_topology/ldm.json,
written to benchmarks/results/ldm_sd_topology.json.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "ldm_sd_topology"
OUTPUT = ROOT / "benchmarks" / "results" / "ldm_sd_topology.json"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few steps on a tiny pool, into runs/ldm_sd_topology_smoke (checks the script runs)")
    args = parser.parse_args()
    from course import export, ldm, pipeline
    from course.recipes import LDM_RECIPE
    from course.sd_unet import UNet, UNetConfig
    from course.shipped import load_clip

    config = UNetConfig(in_channels=4, out_channels=4, channels=(48, 96, 128), attention=(True, True, True), heads=4, context_dim=128, pooled=True,
                        layers_per_block=1, pooled_heads=4)

    def sd_text_states(prompts, clip=None):
        return export.text_states((clip or load_clip()).text, prompts)

    ldm.make_model = lambda: UNet(config)  # what train_shipped builds
    ldm.text_states = sd_text_states  # the training batches' text states (cached per caption)
    pipeline.text_states = sd_text_states  # every generation of the evaluation
    if args.smoke:
        recipe = LDM_RECIPE.replace(steps=3, pool=64, eval_every=None, curve_prompts=4, curve_sampling_steps=2, guidance_candidates=(3.0,),
                                    sweep_prompts=4, eval_prompts=4, eval_sampling_steps=2, warmup=1, checkpoint_every=3)
        manifest = ldm.train_shipped(recipe, run_dir=RUN.with_name(RUN.name + "_smoke"), ship=False)
        print(json.dumps(manifest["metrics"]["per_attribute"]))
        return
    manifest = ldm.train_shipped(LDM_RECIPE, run_dir=RUN, ship=False)
    OUTPUT.write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({k: manifest["metrics"][k] for k in ("per_attribute", "all_correct", "guidance") if k in manifest["metrics"]}, indent=1))
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
