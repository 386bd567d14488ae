"""Measuring edits (lesson 09): how far img2img follows the new prompt and how much of the input it keeps, against the
strength; what inpainting repaints inside the mask and changes outside it.

    edit_pairs      held-out single-object scenes (shape + colour pairs never trained on) and, for each, the same cell, size
                    and background with another held-out shape and colour: the input render and the edit's prompt
    strength_sweep  img2img at each strength: the evaluator reads the asked object (all four attributes right, and shape +
                    colour alone) and the layout (position + size); faithfulness: PSNR to the input on the background
                    (pixels neither object covers) and on the whole image
    inpaint_eval    the object's grid cell masked (a little wider), the edit's prompt: adherence inside the mask, and the
                    largest pixel change outside it, without and with the paste-back (in 0–255 levels), against plain
                    text-to-image generation of the same prompts

Truth is exact: every input and every asked edit is a render of a known scene. Inference only.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from course.captions import caption
from course.evaluation import TEST_SEED
from course.scenes import HELD_OUT, Obj, Scene, sample_scene
from course.shipped import GUIDANCE, IMAGE_SIZE

STRENGTHS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
ATTRIBUTES = ("shape", "colour", "size", "position")
RECORD_FILE = "edit_eval.json"  # in data/: the recorded sweeps the lesson quotes


def edit_pairs(n: int, seed: int = TEST_SEED) -> tuple[list[Scene], list[Scene], list[str]]:
    """n (input scene, edited scene, edit prompt): the edited object takes another held-out (shape, colour) pair, differing
    in both, in the same cell, size and background; prompts alternate English and French."""
    rng = np.random.default_rng((seed, 9))
    pairs = sorted(HELD_OUT)
    sources, targets, prompts = [], [], []
    for i in range(n):
        source = sample_scene(rng, "heldout", ("single",))
        obj = source.objects[0]
        choices = [(s, c) for s, c in pairs if s != obj.shape and c != obj.colour]
        shape, colour = choices[rng.integers(len(choices))]
        target = Scene("single", source.background, (Obj(shape, colour, obj.size, obj.cell),))
        sources.append(source)
        targets.append(target)
        prompts.append(caption(target, "en" if i % 2 == 0 else "fr"))
    return sources, targets, prompts


def cell_masks(scenes: list[Scene], margin: int = 3, size: int = IMAGE_SIZE) -> torch.Tensor:
    """(B, 1, size, size): 1 on the grid cell of each scene's object, widened by ``margin`` pixels."""
    masks = torch.zeros(len(scenes), 1, size, size)
    for i, scene in enumerate(scenes):
        row, col = scene.objects[0].cell
        top, left = round(row * size / 3), round(col * size / 3)
        bottom, right = round((row + 1) * size / 3), round((col + 1) * size / 3)
        masks[i, :, max(0, top - margin): bottom + margin, max(0, left - margin): right + margin] = 1
    return masks


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
    """PSNR in dB per image of images in [−1, 1] (peak-to-peak 2), over the pixels where ``where`` (B, 1, H, W) is 1."""
    err = (a - b) ** 2
    if where is None:
        mse = err.flatten(1).mean(1)
    else:
        w = where.expand_as(err)
        mse = (err * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1)
    return 10 * torch.log10(4 / mse.clamp_min(1e-10))


def rate(hits: list[bool]) -> dict:
    """A proportion with its 95 % Wilson interval."""
    n, k = len(hits), sum(hits)
    p, z = k / n, 1.96
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"rate": round(p, 4), "ci95": [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)], "n": n}


def judged(images: torch.Tensor, targets: list[Scene]) -> dict:
    """What the evaluator reads on the images, against the edited scenes: every attribute, shape + colour, layout."""
    from course.eval import predict, scene_attributes
    from course.data import LABELS

    predicted = predict(images)
    rows = {"all": [], "shape_colour": [], "layout": []}
    for i, scene in enumerate(targets):
        wanted = scene_attributes(scene, include=ATTRIBUTES)
        ok = {name: LABELS[name][predicted[name][i].item()] == value for name, value in wanted.items()}
        rows["all"].append(all(ok.values()))
        rows["shape_colour"].append(ok["shape"] and ok["colour"])
        rows["layout"].append(ok["position"] and ok["size"])
    return {name: rate(hits) for name, hits in rows.items()}


def inputs(sources: list[Scene], targets: list[Scene], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The input renders (B, 3, 64, 64), the edited renders (the ideal edit, same jitter) and the background mask (B, 1, 64, 64)."""
    from course.autoencoder import foreground_mask
    from course.data import render_scenes

    x, ideal = render_scenes(sources, IMAGE_SIZE, seed), render_scenes(targets, IMAGE_SIZE, seed)
    background = (1 - torch.maximum(foreground_mask(x), foreground_mask(ideal))).clamp(0, 1)
    return x, ideal, background


@torch.no_grad()
def strength_sweep(pipe=None, n: int = 128, strengths=STRENGTHS, steps: int = 25, guidance: float = GUIDANCE, seed: int = 0,
                   batch: int = 64, prompt_seed: int = TEST_SEED) -> list[dict]:
    """img2img at each strength on n held-out edits: the evaluator's reading, and PSNR to the input (background, whole)."""
    from course.pipeline import TextToImagePipeline

    pipe = pipe or TextToImagePipeline("cpu")
    sources, targets, prompts = edit_pairs(n, prompt_seed)
    x, _, background = inputs(sources, targets, seed)
    rows = []
    for strength in strengths:
        out = torch.cat([pipe.img2img(x[i:i + batch], prompts[i:i + batch], strength, steps, guidance, generator=seed + i).tensors
                         for i in range(0, n, batch)])
        rows.append({"strength": strength, "steps_run": int(steps * strength), **judged(out, targets),
                     "psnr_background_db": round(float(psnr(out, x, background).mean()), 2), "psnr_db": round(float(psnr(out, x).mean()), 2)})
    return rows


@torch.no_grad()
def inpaint_eval(pipe=None, n: int = 128, steps: int = 25, guidance: float = GUIDANCE, seed: int = 0, batch: int = 64,
                 prompt_seed: int = TEST_SEED, margin: int = 3) -> dict:
    """Inpainting the object's cell with the edit's prompt: adherence, the largest change outside the mask (0–255 levels)
    without and with the paste-back, and plain generation of the same prompts (the baseline)."""
    from course.pipeline import TextToImagePipeline

    pipe = pipe or TextToImagePipeline("cpu")
    sources, targets, prompts = edit_pairs(n, prompt_seed)
    x, _, _ = inputs(sources, targets, seed)
    masks = cell_masks(sources, margin)
    raw, pasted, plain = [], [], []
    for i in range(0, n, batch):
        common = dict(num_inference_steps=steps, guidance_scale=guidance, generator=seed + i)
        raw.append(pipe.inpaint(x[i:i + batch], masks[i:i + batch], prompts[i:i + batch], paste=False, **common).tensors)
        pasted.append(pipe.inpaint(x[i:i + batch], masks[i:i + batch], prompts[i:i + batch], **common).tensors)
        plain.append(pipe(prompts[i:i + batch], **common).tensors)
    raw, pasted, plain = torch.cat(raw), torch.cat(pasted), torch.cat(plain)
    outside = (masks == 0).expand_as(x)

    def levels(images: torch.Tensor) -> torch.Tensor:  # what a saved PNG holds
        return ((images.clamp(-1, 1) + 1) * 127.5).round()

    change_raw = (levels(raw) - levels(x)).abs()[outside]
    change_pasted = (levels(pasted) - levels(x)).abs()[outside]
    return {"n": n, "mask": f"the object's grid cell widened by {margin} px", "inpaint": judged(pasted, targets),
            "inpaint_without_paste": judged(raw, targets), "text_to_image": judged(plain, targets),
            "outside_max_change_levels": {"without_paste": int(change_raw.max()), "with_paste": int(change_pasted.max())},
            "outside_mean_change_levels": {"without_paste": round(float(change_raw.mean()), 2), "with_paste": round(float(change_pasted.mean()), 2)}}


def main(argv: list[str] | None = None) -> int:
    """``python -m course.edit_eval record``: the img2img strength sweep and the inpainting table, written to data/edit_eval.json."""
    import argparse
    import json

    from course import checkpoints
    from course.paths import data_dir
    from course.pipeline import TextToImagePipeline

    parser = argparse.ArgumentParser(prog="python -m course.edit_eval", description=main.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help=f"measure and write data/{RECORD_FILE}")
    r.add_argument("--n", type=int, default=256, help="held-out edits per strength and for inpainting (default 256)")
    r.add_argument("--steps", type=int, default=25)
    args = parser.parse_args(argv)
    if args.n < 4:
        parser.error(f"--n must be at least 4, got {args.n}")
    start = time.perf_counter()
    pipe = TextToImagePipeline("cpu")
    result = {"command": checkpoints.command_line(), "hardware": checkpoints.hardware(), "threads": torch.get_num_threads(),
              "steps": args.steps, "sampler": "dpmpp", "guidance": GUIDANCE,
              "unet_sha256": checkpoints.read_manifest(data_dir() / "ldm_unet.safetensors")["sha256"],
              "strength_sweep": strength_sweep(pipe, args.n, steps=args.steps), "inpaint": inpaint_eval(pipe, args.n, steps=args.steps)}
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    (data_dir() / RECORD_FILE).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
