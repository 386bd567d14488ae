"""Measuring a ControlNet (lesson 08): does the image follow the condition, does it still follow the prompt, and
which wins when they disagree.

    edge_f1, chamfer       Canny's edges of the generated image against the condition's: F1 with a 1.5-pixel tolerance
                           (BSDS-style) and the symmetric Chamfer distance, in pixels
    evaluate               held-out prompts (shape + colour pairs never trained on), fresh layouts on the captions' grid or
                           moved off it; with and without the ControlNet; the ceiling: the real render through the
                           autoencoder (what a perfect latent model could give back); prompt adherence by the evaluator
    scale_sweep            adherence to the condition and to the prompt against the conditioning scale
    conflict_sweep         a circle's edges with the prompt "a square" (and other pairs): which shape the image shows,
                           against the conditioning scale

Inference only: nothing here imports a training module.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy import ndimage

from course.conditions import canny, conditions, layout_mask, shift_layouts, unshift
from course.controlnet import ControlledUNet, ControlNet
from course.evaluation import TEST_SEED, generate_batched, heldout_prompts
from course.shipped import IMAGE_SIZE, load_autoencoder, load_controlnet, load_unet

TOLERANCE_PX = 1.5  # an edge pixel counts as matched within this distance of the other map's edges


def _distances(edges: np.ndarray) -> np.ndarray:
    return ndimage.distance_transform_edt(~edges)


def edge_f1(generated: np.ndarray, target: np.ndarray, tolerance: float = TOLERANCE_PX) -> float:
    """F1 of two edge maps (H, W) bool, each pixel matched within ``tolerance`` pixels of the other map (BSDS-style)."""
    if not target.any() and not generated.any():
        return 1.0
    if not target.any() or not generated.any():
        return 0.0
    precision = (_distances(target)[generated] <= tolerance).mean()
    recall = (_distances(generated)[target] <= tolerance).mean()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def chamfer(generated: np.ndarray, target: np.ndarray) -> float:
    """Symmetric Chamfer distance of two edge maps, in pixels: the mean distance from each edge pixel to the other map's
    nearest, averaged both ways (an empty map is as far as the image's side)."""
    if not target.any() or not generated.any():
        return 0.0 if not target.any() and not generated.any() else float(max(target.shape))
    return float((_distances(target)[generated].mean() + _distances(generated)[target].mean()) / 2)


def mask_iou(generated: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two silhouettes (H, W) bool."""
    union = (generated | target).sum()
    return 1.0 if union == 0 else float((generated & target).sum() / union)


def adherence_to(images: torch.Tensor, maps: torch.Tensor, kind: str) -> dict[str, list[float]]:
    """Per image, how well it follows its condition: edge F1 and Chamfer distance of Canny(image) against the condition's
    edges (canny: the map itself; scribble, mask: the silhouettes' Canny edges), and for masks the IoU of silhouettes."""
    scores: dict[str, list[float]] = {"f1": [], "chamfer": []} | ({"iou": []} if kind == "mask" else {})
    for image, target in zip(images, maps[:, 0].bool().numpy()):
        edges = canny(image)
        reference = target if kind == "canny" else canny(np.repeat(target[..., None], 3, -1).astype(np.uint8) * 255)
        scores["f1"].append(edge_f1(edges, reference))
        scores["chamfer"].append(chamfer(edges, reference))
        if kind == "mask":
            scores["iou"].append(mask_iou(layout_mask(image), target))
    return scores


def heldout_layouts(n: int, prompt_seed: int, kind: str, shift: int = 0, offsets: bool = False):
    """Held-out prompts (shape + colour pairs never trained on), a fresh render of each scene (moved off the grid by
    up to ``shift`` pixels) and its condition: (scenes, prompts, uint8 renders, conditions[, the (N, 2) shifts])."""
    from course.data import render_scenes

    scenes, prompts = heldout_prompts(n, prompt_seed)
    renders, moved = shift_layouts(_uint8(render_scenes(scenes, IMAGE_SIZE, seed=prompt_seed + 1)), shift, seed=prompt_seed, offsets=True)
    out = (scenes, prompts, renders, conditions(renders, kind, seed=prompt_seed))
    return (*out, moved) if offsets else out


def _uint8(images: torch.Tensor) -> torch.Tensor:
    return images if images.dtype == torch.uint8 else ((images.clamp(-1, 1) + 1) * 127.5).round().byte()


def mean_interval(values: list[float], high: float | None = None) -> dict:
    """Mean and a 95 % interval (normal approximation on the per-image scores), kept within [0, ``high``]."""
    a = np.asarray(values, dtype=np.float64)
    half = 1.96 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
    low, up = max(0.0, a.mean() - half), a.mean() + half if high is None else min(high, a.mean() + half)
    return {"mean": round(float(a.mean()), 4), "ci95": [round(float(low), 4), round(float(up), 4)], "n": len(a)}


def summary(scores: dict[str, list[float]]) -> dict:
    """Mean and interval of each score; F1 and IoU are at most 1, a Chamfer distance has no upper bound."""
    return {name: mean_interval(values, None if name == "chamfer" else 1.0) for name, values in scores.items()}


@torch.no_grad()
def evaluate(net: ControlNet | None = None, kind: str = "canny", n: int = 256, steps: int = 25, guidance: float = 2.5,
             prompt_seed: int = TEST_SEED, scale: float = 1.0, shift: int = 0, baseline: bool = True, device: str = "cpu") -> dict:
    """Adherence to the condition with and without the ControlNet, its ceiling (the real render through the
    autoencoder), prompt adherence (the evaluator: shape, colour, size, position) and time per image."""
    from course.eval import adherence, scene_attributes
    from course.evaluation import ATTRIBUTES

    net = net if net is not None else load_controlnet(kind)
    unet = load_unet()
    scenes, prompts, renders, maps, moved = heldout_layouts(n, prompt_seed, kind, shift, offsets=True)
    asked = [scene_attributes(s, include=ATTRIBUTES) for s in scenes]
    result: dict = {"kind": kind, "scale": scale, "shift": shift, "steps": steps, "guidance": guidance, "prompt_seed": prompt_seed,
                    "judge": "the evaluator, on each image moved back onto the captions' grid by its layout's shift (it was trained on the grid)"}
    start = time.perf_counter()
    images = torch.cat([generate_batched(prompts[i : i + 64], ControlledUNet(unet, net, maps[i : i + 64], scale), steps, guidance, seed=i, device=device)
                        for i in range(0, n, 64)])
    result["seconds_per_image"] = round((time.perf_counter() - start) / n, 4)
    result["with_control"] = summary(adherence_to(images, maps, kind))
    result["prompt_with_control"] = adherence(unshift(images, moved), asked)
    result["prompt_real_renders"] = adherence(unshift(renders.float() / 127.5 - 1, moved), asked)  # the judge on the layouts themselves
    result["prompt_with_control_not_moved_back"] = adherence(images, asked)  # what the judge says of the images as generated
    if baseline:
        start = time.perf_counter()
        plain = generate_batched(prompts, unet, steps, guidance, seed=0, batch=64, device=device)
        result["seconds_per_image_without"] = round((time.perf_counter() - start) / n, 4)
        result["without_control"] = summary(adherence_to(plain, maps, kind))
        result["prompt_without_control"] = adherence(plain, asked)
        ae, _ = load_autoencoder()
        signed = renders.float() / 127.5 - 1
        reconstructed = torch.cat([ae.decode(ae.encode(chunk)[0]).clamp(-1, 1) for chunk in signed.split(128)])
        result["ceiling_autoencoder"] = summary(adherence_to(reconstructed, maps, kind))
    return result


SCALES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
CONFLICTS = (("circle", "square"), ("square", "circle"), ("triangle", "heart"), ("star", "cross"))  # (the edges', the prompt's shape)


def _generate(net: ControlNet, prompts: list[str], maps: torch.Tensor, scale: float, steps: int, guidance: float, device: str) -> torch.Tensor:
    unet = load_unet()
    model = unet if scale == 0 else ControlledUNet(unet, net, maps, scale)
    return generate_batched(prompts, model, steps, guidance, seed=0, batch=len(prompts), device=device)


@torch.no_grad()
def scale_sweep(net: ControlNet | None = None, n: int = 64, scales=SCALES, steps: int = 25, guidance: float = 2.5, shift: int = 6,
                prompt_seed: int = TEST_SEED, device: str = "cpu") -> list[dict]:
    """Against the conditioning scale, on n held-out prompts: the edge F1 on layouts moved off the grid by up to ``shift``
    pixels, and prompt adherence (all attributes right) on the same prompts with layouts on the grid, where the judge
    reads every image as generated, whatever the scale."""
    from course.eval import adherence, scene_attributes
    from course.evaluation import ATTRIBUTES

    net = net if net is not None else load_controlnet("canny")
    _, prompts, _, off_grid = heldout_layouts(n, prompt_seed, "canny", shift)
    scenes, _, _, on_grid = heldout_layouts(n, prompt_seed, "canny", 0)
    asked = [scene_attributes(s, include=ATTRIBUTES) for s in scenes]
    rows = []
    for scale in scales:
        f1 = adherence_to(_generate(net, prompts, off_grid, scale, steps, guidance, device), off_grid, "canny")["f1"]
        prompt = adherence(_generate(net, prompts, on_grid, scale, steps, guidance, device), asked)["all_correct"]
        rows.append({"scale": scale, "f1_off_grid": mean_interval(f1, 1.0), "prompt_all_correct_grid": prompt, "n": n})
    return rows


def conflict_scenes(n: int, seed: int = 0, conflicts=CONFLICTS) -> tuple[list, list[str], list[str], torch.Tensor]:
    """n (edges' shape, prompt's shape) conflicts: a render's Canny map and the prompt of the other shape, same colour,
    size and cell. Returns (edge shapes, prompt shapes, prompts, maps)."""
    from course.captions import caption
    from course.render import render
    from course.scenes import COLOURS, POSITIONS, single

    rng = np.random.default_rng((seed, 17))
    edge_shapes, prompt_shapes, prompts, renders = [], [], [], []
    for i in range(n):
        edge, wanted = conflicts[i % len(conflicts)]
        colour, position = COLOURS[rng.integers(len(COLOURS))], POSITIONS[rng.integers(len(POSITIONS))]
        renders.append(torch.from_numpy(render(single(edge, colour, position, "large"), IMAGE_SIZE, rng).transpose(2, 0, 1).copy()))
        prompts.append(caption(single(wanted, colour, position, "large"), "en" if i % 2 == 0 else "fr"))
        edge_shapes.append(edge)
        prompt_shapes.append(wanted)
    return edge_shapes, prompt_shapes, prompts, conditions(torch.stack(renders), "canny", seed)


@torch.no_grad()
def conflict_sweep(net: ControlNet | None = None, n: int = 64, scales=SCALES, steps: int = 25, guidance: float = 2.5, seed: int = 0,
                   device: str = "cpu") -> list[dict]:
    """Which shape wins when the edges and the prompt disagree: the evaluator's shape, against the conditioning scale."""
    from course.eval import LABEL_NAMES, predict  # noqa: F401
    from course.data import LABELS

    net = net if net is not None else load_controlnet("canny")
    edge_shapes, prompt_shapes, prompts, maps = conflict_scenes(n, seed)
    rows = []
    for scale in scales:
        shapes = [LABELS["shape"][i] for i in predict(_generate(net, prompts, maps, scale, steps, guidance, device))["shape"].tolist()]
        edges = sum(s == e for s, e in zip(shapes, edge_shapes)) / n
        prompt = sum(s == p for s, p in zip(shapes, prompt_shapes)) / n
        rows.append({"scale": scale, "edges": round(edges, 4), "prompt": round(prompt, 4), "other": round(1 - edges - prompt, 4), "n": n})
    return rows


RECORD_FILE = "controlnet_eval.json"  # in data/: the recorded table and sweeps the lesson quotes


def main(argv: list[str] | None = None) -> int:
    """``python -m course.control_eval record``: the shipped ControlNet's table (on and off the grid) and its sweeps,
    written to data/controlnet_eval.json."""
    import argparse
    import json

    from course import checkpoints
    from course.paths import data_dir

    parser = argparse.ArgumentParser(prog="python -m course.control_eval", description=main.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help=f"measure and write data/{RECORD_FILE}")
    r.add_argument("--n", type=int, default=256, help="held-out layouts per row of the table (default 256)")
    r.add_argument("--sweep-n", type=int, default=128, help="layouts per scale in the sweeps (default 128)")
    r.add_argument("--steps", type=int, default=25)
    args = parser.parse_args(argv)
    if min(args.n, args.sweep_n) < 4:
        parser.error(f"--n and --sweep-n must be at least 4, got {args.n} and {args.sweep_n}")
    start = time.perf_counter()
    net = load_controlnet("canny")
    result = {
        "command": checkpoints.command_line(), "hardware": checkpoints.hardware(), "threads": torch.get_num_threads(), "steps": args.steps,
        "guidance": 2.5, "controlnet_sha256": checkpoints.read_manifest(data_dir() / "controlnet_canny.safetensors")["sha256"],
        "table": {"off_grid": evaluate(net, n=args.n, steps=args.steps, shift=6), "grid": evaluate(net, n=args.n, steps=args.steps, shift=0)},
        "scale_sweep": scale_sweep(net, n=args.sweep_n, steps=args.steps), "conflict_sweep": conflict_sweep(net, n=args.sweep_n, steps=args.steps),
    }
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    (data_dir() / RECORD_FILE).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
