"""The gpu profile's budget on a Colab T4, COMPUTED (not measured: no GPU was lent), for the trainings it runs.

For each training the gpu profile runs from scratch (lesson 02: the pixel DDPM; 03: CLIP; 05: the autoencoder,
then the latent U-Net; 11: the textual inversion), one step at the recipe's batch is run here on the CPU and
counted: its forward + backward FLOPs (``torch.utils.flop_counter.FlopCounterMode``), the operators it dispatches
(each one a CUDA kernel launch on the GPU), the bytes autograd saves for the backward pass, and — measured on this
2-core CPU, which is what a Colab runtime has beside its T4 — the time ``get_batch`` takes per step and the time to
prepare the pool. Then, per step on the GPU:

    GPU time = max(FLOPs / (65 TFLOP/s × u), operators × launch)      u = 30 % … 10 %, launch = 10 µs … 20 µs

(65 TFLOP/s: the T4's fp16 tensor-core peak; models this small are bound by kernel launches, not by FLOPs),
and the lesson's training time = pool + steps × (GPU time + get_batch), the course's loop doing them one after
the other (``loss.item()`` waits for the GPU each step). Peak GPU memory ≈ the trained parameters × 16 bytes
(fp32 weight, gradient, AdamW's two moments) + 4 more with an EMA + frozen parameters × 4 + the saved activations
in fp32 (mixed precision keeps about half) + a CUDA context of 0.3 GB. The optimiser's own kernels are not counted.

    python benchmarks/t4_budget.py            # prints the rows and writes benchmarks/results/t4_budget.json
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T4_FP16_PEAK = 65e12  # FLOP/s, NVIDIA T4 datasheet (tensor cores, fp16)
UTILISATION = (0.30, 0.10)  # assumed: optimistic, pessimistic
LAUNCH = (10e-6, 20e-6)  # seconds per kernel launch in eager PyTorch, assumed: optimistic, pessimistic
CUDA_CONTEXT = 0.3e9  # bytes


class _CountOps(TorchDispatchMode):
    """Counts the operators dispatched (on a GPU, each is a kernel launch)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def counted_step(model: torch.nn.Module, loss_fn, batch) -> tuple[float, int, int]:
    """FLOPs of one forward + backward of ``loss_fn(model, batch)``, the operators it dispatches, the bytes saved for backward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        try:
            key = t.untyped_storage().data_ptr()
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except RuntimeError:  # a tensor without storage (e.g. a wrapper): count its elements
            seen[id(t)] = t.numel() * t.element_size()
        return t

    counter = FlopCounterMode(display=False)
    with counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(model, batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    ops = _CountOps()
    with ops:
        loss_fn(model, batch).backward()
    return float(counter.get_total_flops()), ops.count, sum(seen.values())


def trainings() -> list[dict]:
    """Each training of the gpu profile: lesson, name, recipe, and a function that returns (model, loss_fn, batch)."""
    from course import ae_train, clip_train, concept_train, ldm, shapes_ddpm
    from course.recipes import AE_RECIPE, CLIP_RECIPE, CONCEPT_TI_RECIPE, LDM_RECIPE, SHAPES_DDPM_RECIPE
    from course.schedules import alphas_cumprod
    from course.shipped import betas, make_unet

    abar = alphas_cumprod(betas())

    def timed(make_pool, n: int, full: int):
        """``make_pool(n)`` and the seconds a pool of ``full`` would take (linear in its size), measured here."""
        tick = time.perf_counter()
        made = make_pool(n)
        return made, (time.perf_counter() - tick) * full / n

    def pixel():  # renders its images on the fly in get_batch: no pool
        torch.manual_seed(0)
        return shapes_ddpm.make_model(), shapes_ddpm.loss_fn(abar), shapes_ddpm.batch_getter(SHAPES_DDPM_RECIPE.batch_size), 0.0

    def clip():
        torch.manual_seed(0)
        (scenes, images), seconds = timed(lambda n: clip_train.pool(n, seed=0), 1000, CLIP_RECIPE.pool)
        return clip_train.make_model(), clip_train.clip_loss, clip_train.batch_getter(scenes, images, CLIP_RECIPE.batch_size), seconds

    def autoencoder():
        from course.data import ShapesDataset, render_tensors

        torch.manual_seed(0)
        (images, _), seconds = timed(lambda n: render_tensors(ShapesDataset(n, size=64, split="train", seed=0)), 1000, AE_RECIPE.pool)
        return ae_train.make_model(), ae_train.ae_loss, ae_train.batch_getter(images, AE_RECIPE.batch_size), seconds

    def latent():  # the pool, rendered then encoded by the autoencoder (on the GPU there: its time is not counted)
        torch.manual_seed(0)
        (scenes, images), seconds = timed(lambda n: ldm.pool(n, seed=0), 1000, LDM_RECIPE.pool)
        latents = ldm.encode_latents(images)
        return make_unet(), ldm.loss_fn(abar), ldm.batch_getter(scenes, latents, LDM_RECIPE.batch_size), seconds

    def word():
        torch.manual_seed(0)
        model = concept_train.build(CONCEPT_TI_RECIPE)
        get = concept_train.batch_getter(CONCEPT_TI_RECIPE, concept_train.example_latents(), None)
        return model, concept_train.concept_loss(abar, CONCEPT_TI_RECIPE.snr_gamma), get, 0.0

    return [
        {"lesson": "02", "training": "pixel DDPM (shapes_ddpm)", "recipe": SHAPES_DDPM_RECIPE, "make": pixel},
        {"lesson": "03", "training": "CLIP (clip_train)", "recipe": CLIP_RECIPE, "make": clip},
        {"lesson": "05", "training": "autoencoder (ae_train)", "recipe": AE_RECIPE, "make": autoencoder},
        {"lesson": "05", "training": "latent U-Net (ldm)", "recipe": LDM_RECIPE, "make": latent},
        {"lesson": "11", "training": "textual inversion (concept_train --method ti)", "recipe": CONCEPT_TI_RECIPE, "make": word},
    ]


def budget(entry: dict) -> dict:
    """The computed T4 time range and peak memory of one training."""
    model, loss_fn, get_batch, pool_seconds = entry["make"]()
    recipe = entry["recipe"]
    get_batch(0)  # the first call fills caches (text states): time the steady state
    tick = time.perf_counter()
    batches = [get_batch(step) for step in range(1, 6)]
    batch_seconds = (time.perf_counter() - tick) / len(batches)
    model.train()
    flops, ops, saved = counted_step(model, loss_fn, batches[0])
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    per_trained = 16 + (4 if recipe.ema_decay is not None else 0)  # fp32 weight, grad, AdamW's m and v (+ EMA)
    memory = trained * per_trained + frozen * 4 + saved + CUDA_CONTEXT
    gpu = [max(flops / (T4_FP16_PEAK * u), ops * launch) for u, launch in zip(UTILISATION, LAUNCH)]
    minutes = [(pool_seconds + recipe.steps * (g + batch_seconds)) / 60 for g in gpu]
    return {
        "lesson": entry["lesson"], "training": entry["training"], "steps": recipe.steps, "batch": recipe.batch_size,
        "gflop_per_step": round(flops / 1e9, 2), "operators_per_step": ops,
        "gpu_ms_per_step": [round(1e3 * g, 1) for g in gpu], "get_batch_ms_per_step": round(1e3 * batch_seconds, 1),
        "pool_minutes": round(pool_seconds / 60, 1), "minutes": [round(m, 1) for m in minutes],
        "trained_params": trained, "frozen_params": frozen, "activations_gb_fp32": round(saved / 1e9, 3),
        "peak_memory_gb": round(memory / 1e9, 2),
    }


def main() -> int:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    start = time.perf_counter()
    rows = []
    for entry in trainings():
        rows.append(budget(entry))
        print(json.dumps(rows[-1]), flush=True)
    by_lesson: dict[str, dict] = {}
    for row in rows:
        lesson = by_lesson.setdefault(row["lesson"], {"minutes": [0.0, 0.0], "peak_memory_gb": 0.0, "trainings": []})
        lesson["minutes"][0] += row["minutes"][0]
        lesson["minutes"][1] += row["minutes"][1]
        lesson["peak_memory_gb"] = max(lesson["peak_memory_gb"], row["peak_memory_gb"])
        lesson["trainings"].append(row["training"])
    result = {
        "what": "COMPUTED, not measured on a GPU (see the docstring): per step max(FLOPs / (65 TFLOP/s x 30..10 %), operators x 10..20 us) "
                "+ get_batch measured on a 2-core CPU, + the pool measured; memory = fp32 params/grads/AdamW/EMA + saved activations + 0.3 GB",
        "cpu": os.environ.get("T4_BUDGET_CPU", "2-core AMD EPYC"),
        "trainings": rows,
        "lessons": {k: {**v, "minutes": [round(m, 1) for m in v["minutes"]]} for k, v in by_lesson.items()},
        "seconds": round(time.perf_counter() - start, 1),
    }
    out = Path(__file__).resolve().parent / "results" / "t4_budget.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
