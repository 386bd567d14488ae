"""Measuring instruction edits (lesson 09): was the asked change made, and was everything else kept?

    edit success   the scene reader (:mod:`course.scene_reader`) reads the asked change on the output: the new colour,
                   shape or size in the object's cell, the object in its new cell and not in the old, the added object,
                   the removed object's cell empty
    preservation   every other fact of the scene is read unchanged: the edited object's other attributes, every other
                   object, the empty cells (reader-exact, as GenEval reads a scene with a detector)
    pixels         PSNR to the input outside the pixels the edit changes (where the input and the ideal edit differ,
                   widened by 2 px)

Truth is exact: the input and the asked edit are renders of known layouts (:mod:`course.instructions`). Held-out test
triplets edit objects whose shape + colour pair no training triplet contains. Inference only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from course.evaluation import TEST_SEED
from course.instructions import EDITS, Edit, render_edit, sample_edit

SCALES_I = (1.0, 1.25, 1.5, 2.0, 3.0)


def test_edits(per_kind: int, seed: int = TEST_SEED, split: str = "heldout", kinds=EDITS) -> list[Edit]:
    """``per_kind`` triplets of each edit kind, drawn from ``seed`` (TEST_SEED for the quoted numbers)."""
    rng = np.random.default_rng((seed, 23))
    return [sample_edit(rng, split, kind) for kind in kinds for _ in range(per_kind)]


def render_edits(edits: list[Edit]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and ideal edits as (N, 3, 64, 64) in [−1, 1]."""
    from course.images import from_uint8

    pairs = [render_edit(e) for e in edits]
    return torch.stack([from_uint8(a) for a, _ in pairs]), torch.stack([from_uint8(b) for _, b in pairs])


def _facts(objects) -> dict:
    return {o.cell: (o.shape, o.colour, o.size) for o in objects}


def judge(edit: Edit, read) -> tuple[bool, bool]:
    """(edit success, preservation) of one output read as ``read`` (a tuple of objects)."""
    got, want, before = _facts(read), _facts(edit.target.objects), _facts(edit.source.objects)
    changed = {c for c in set(want) | set(before) if want.get(c) != before.get(c)}  # the cells the edit touches
    if edit.kind == "colour":
        (cell,) = changed
        success = cell in got and got[cell][1] == want[cell][1]
        kept = cell in got and (got[cell][0], got[cell][2]) == (want[cell][0], want[cell][2])
    elif edit.kind == "shape":
        (cell,) = changed
        success = cell in got and got[cell][0] == want[cell][0]
        kept = cell in got and (got[cell][1], got[cell][2]) == (want[cell][1], want[cell][2])
    elif edit.kind == "resize":
        (cell,) = changed
        success = cell in got and got[cell][2] == want[cell][2]
        kept = cell in got and got[cell][:2] == want[cell][:2]
    elif edit.kind == "move":
        old = next(c for c in changed if c in before)
        new = next(c for c in changed if c in want)
        success = new in got and got[new][:2] == want[new][:2] and old not in got
        kept = new in got and got[new][2] == want[new][2]
    elif edit.kind == "add":
        (cell,) = changed
        success = cell in got and got[cell][:2] == want[cell][:2]
        kept = True
    else:  # remove
        (cell,) = changed
        success = cell not in got
        kept = True
    others = {divmod(i, 3) for i in range(9)} - changed
    kept = kept and all(got.get(c) == want.get(c) for c in others)
    return bool(success), bool(kept)


def untouched(inputs: torch.Tensor, ideals: torch.Tensor, widen: int = 2) -> torch.Tensor:
    """(N, 1, H, W): 1 where the edit leaves the input as it is (input and ideal edit agree, ``widen`` px away from any change)."""
    changed = ((inputs - ideals).abs().amax(1, keepdim=True) > 2 / 255).float()
    return 1 - F.max_pool2d(changed, 2 * widen + 1, stride=1, padding=widen)


def psnr_where(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    err = ((a - b) ** 2 * where).flatten(1).sum(1) / (where.expand_as(a).flatten(1).sum(1)).clamp_min(1)
    return 10 * torch.log10(4 / err.clamp_min(1e-10))


@torch.no_grad()
def edit_images(model, edits: list[Edit], s_T: float, s_I: float, steps: int = 25, seed: int = 0, batch: int = 64, lang_of=None,
                inputs: torch.Tensor | None = None) -> torch.Tensor:
    """The model's outputs (N, 3, 64, 64) for the triplets' instructions (alternately English and French, first phrasing)."""
    from course.instruct import edit_latents
    from course.shipped import load_autoencoder

    ae, factor = load_autoencoder()
    inputs = inputs if inputs is not None else render_edits(edits)[0]
    prompts = [e.instruction(lang_of(i) if lang_of else ("en" if i % 2 == 0 else "fr")) for i, e in enumerate(edits)]
    out = []
    for i in range(0, len(edits), batch):
        c_image = ae.encode(inputs[i:i + batch])[0]  # the encoder's mean, unscaled: diffusers' InstructPix2Pix
        z = edit_latents(model, c_image, prompts[i:i + batch], s_T, s_I, steps=steps, generator=seed + i)
        out.append(ae.decode(z / factor).clamp(-1, 1))
    return torch.cat(out)


def rate(hits: list[bool]) -> float:
    return round(sum(hits) / max(1, len(hits)), 4)


@torch.no_grad()
def evaluate(model=None, per_kind: int = 64, steps: int = 25, s_T: float | None = None, s_I: float | None = None, seed: int = TEST_SEED,
             split: str = "heldout", ceiling: bool = False) -> dict:
    """Edit success, preservation, both, and PSNR outside the edit, per edit kind and overall, on held-out triplets."""
    from course.instruct import IMAGE_GUIDANCE, TEXT_GUIDANCE, load_instruct
    from course.scene_reader import read

    model = model if model is not None else load_instruct()
    s_T, s_I = TEXT_GUIDANCE if s_T is None else s_T, IMAGE_GUIDANCE if s_I is None else s_I
    edits = test_edits(per_kind, seed, split)
    inputs, ideals = render_edits(edits)
    outputs = edit_images(model, edits, s_T, s_I, steps, inputs=inputs)
    reads = read(outputs)
    psnr = psnr_where(outputs, inputs, untouched(inputs, ideals))
    ceiling_reads = read(autoencoded(ideals)) if ceiling else None
    rows: dict[str, dict] = {}
    for kind in EDITS + ("all",):
        idx = [i for i, e in enumerate(edits) if kind in ("all", e.kind)]
        judged = [judge(edits[i], reads[i]) for i in idx]
        rows[kind] = {"success": rate([s for s, _ in judged]), "preservation": rate([k for _, k in judged]),
                      "both": rate([s and k for s, k in judged]), "psnr_outside_db": round(float(psnr[idx].mean()), 2), "n": len(idx)}
        if ceiling:  # the ideal edit through the autoencoder: what a perfect latent model could give back
            best = [judge(edits[i], ceiling_reads[i]) for i in idx]
            rows[kind]["ceiling_both"] = rate([s and k for s, k in best])
    return {"s_T": s_T, "s_I": s_I, "steps": steps, "split": split, "per_kind": rows}


@torch.no_grad()
def autoencoded(images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Images through the shipped autoencoder (encoder's mean, decoder): the ceiling of any latent model."""
    from course.shipped import load_autoencoder

    ae, _ = load_autoencoder()
    return torch.cat([ae.decode(ae.encode(chunk)[0]).clamp(-1, 1) for chunk in images.split(batch)])


def image_guidance_sweep(model=None, per_kind: int = 32, scales=SCALES_I, s_T: float | None = None, steps: int = 20, seed: int = TEST_SEED) -> list[dict]:
    """Success and preservation against s_I at fixed s_T: the paper's two-axis plot (Brooks et al. 2023, Fig. 10), exact here."""
    from course.instruct import load_instruct

    model = model if model is not None else load_instruct()
    rows = []
    for s_I in scales:
        r = evaluate(model, per_kind, steps, s_T, s_I, seed)["per_kind"]["all"]
        rows.append({"s_I": s_I, **r})
    return rows


RECORD_FILE = "instruct_eval.json"  # in data/: the recorded tables the lesson quotes
GRID_T, GRID_I = (1.5, 3.0, 5.0, 7.5), (1.0, 1.25, 1.5, 2.0)


def main(argv: list[str] | None = None) -> int:
    """``python -m course.instruct_eval record``: (s_T, s_I) chosen on validation triplets, then the held-out table at that
    choice and the s_I sweep at its s_T, written to data/instruct_eval.json."""
    import argparse
    import json
    import time

    from course import checkpoints
    from course.evaluation import VALIDATION_SEED
    from course.instruct import CHECKPOINT, load_instruct
    from course.paths import data_dir

    parser = argparse.ArgumentParser(prog="python -m course.instruct_eval", description=main.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help=f"measure and write data/{RECORD_FILE}")
    r.add_argument("--per-kind", type=int, default=64, help="held-out triplets per edit kind in the table (default 64)")
    r.add_argument("--grid-per-kind", type=int, default=16, help="validation triplets per kind for each (s_T, s_I) of the grid (default 16)")
    r.add_argument("--sweep-per-kind", type=int, default=32, help="held-out triplets per kind for each s_I of the sweep (default 32)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model = load_instruct()
    grid = [{"s_T": s_T, "s_I": s_I, **evaluate(model, args.grid_per_kind, 20, s_T, s_I, VALIDATION_SEED)["per_kind"]["all"]}
            for s_T in GRID_T for s_I in GRID_I]
    best = max(grid, key=lambda row: (row["both"], -row["s_T"], -row["s_I"]))  # ties to the smaller scales
    result = {"command": checkpoints.command_line(), "hardware": checkpoints.hardware(), "threads": torch.get_num_threads(),
              "model_sha256": checkpoints.read_manifest(data_dir() / CHECKPOINT)["sha256"], "sampler": "dpmpp",
              "rule": "highest success-and-preservation on validation triplets, ties to the smaller scales",
              "validation_grid": grid, "chosen": {"s_T": best["s_T"], "s_I": best["s_I"]},
              "table": evaluate(model, args.per_kind, 25, best["s_T"], best["s_I"], TEST_SEED, ceiling=True),
              "image_guidance_sweep": image_guidance_sweep(model, args.sweep_per_kind, SCALES_I, best["s_T"], 20, TEST_SEED)}
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    (data_dir() / RECORD_FILE).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("chosen", "table", "wall_time_s")}, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
