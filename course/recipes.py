"""One recipe per shipped model: every hyper-parameter of its training run, in one frozen dataclass.

    AE_RECIPE  CLIP_RECIPE  LDM_RECIPE  SHAPES_DDPM_RECIPE  EVALUATOR_RECIPE  SCENE_READER_RECIPE   (RECIPES: by model name)

Each is read, never restated, by
- its training command: the argparse defaults are the recipe's fields, a flag overrides one field
  explicitly, and the manifest records the recipe that ran (``recipe.as_dict()``);
- the lessons' training cells and the profiles, which scale it (``AE_RECIPE.scaled(steps=100)`` keeps
  the warm-up, checkpoint and evaluation intervals in proportion);
- the benchmarks, which derive their variants with ``dataclasses.replace``.

The recipes live together, beside no training code: this module imports neither torch nor the
training modules, so a profile, a lesson or a benchmark reads every number from one short file. The
architecture (``course.shipped.UNET``…) is not a recipe field: inference needs it, and the manifest's
``config`` records it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


class RecipeError(ValueError):
    """A recipe (or a command-line override of one) has a value no training can use."""


GuidanceRule = Literal["highest all-right, ties to the smaller w"]
MEASURE = {"measure": True}  # a field that sets what is measured (or how often), not the weights a run learns


def measured(default: Any) -> Any:
    return field(default=default, metadata=MEASURE)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Hyper-parameters of one model's training run (the fields every model shares)."""

    model: str  # name of the run: runs/<model>/ holds its resume state and its exported weights
    module: str  # the training command is `python -m <module> train`
    checkpoint: str  # the shipped file, in data/
    steps: int  # optimiser steps
    batch_size: int
    lr: float  # peak learning rate (AdamW)
    pool: int | None = None  # images rendered once and drawn from (None: fresh renders at every step)
    seed: int = 0  # initial weights (seeded before the model is built), batches, noise
    weight_decay: float = 0.0
    warmup: int = 0  # linear warm-up, in steps
    decay: Literal["none", "cosine"] = "cosine"
    decay_stretch: float = 1.0  # the cosine is laid over decay_stretch × steps (> 1: stopped before it reaches 0)
    ema_decay: float | None = 0.999  # None: no EMA
    grad_clip: float | None = 1.0
    checkpoint_every: int | None = measured(500)  # resume state saved every … steps
    eval_every: int | None = measured(None)  # pause to measure along training every … steps (None: only at the end)

    def __post_init__(self):
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise RecipeError(f"{self.model} recipe: {message}")

        need(isinstance(self.steps, int) and self.steps >= 1, f"steps must be ≥ 1, got {self.steps!r} (nothing would be trained)")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1, f"batch size must be ≥ 1, got {self.batch_size!r}")
        need(self.lr > 0, f"learning rate must be > 0, got {self.lr!r}")
        need(self.pool is None or self.pool >= 1, f"pool must be ≥ 1 image, got {self.pool!r}")
        need(self.weight_decay >= 0, f"weight decay must be ≥ 0, got {self.weight_decay!r}")
        need(self.warmup >= 0, f"warm-up must be ≥ 0 steps, got {self.warmup!r}")
        need(self.decay in ("none", "cosine"), f"unknown decay {self.decay!r}: choose 'none' or 'cosine'")
        need(self.decay_stretch >= 1, f"decay stretch must be ≥ 1 (the cosine would turn back up), got {self.decay_stretch!r}")
        need(self.ema_decay is None or 0 < self.ema_decay < 1, f"EMA decay must be in (0, 1) or None, got {self.ema_decay!r}")
        need(self.grad_clip is None or self.grad_clip > 0, f"gradient clipping must be > 0 or None, got {self.grad_clip!r}")
        for name in ("checkpoint_every", "eval_every"):
            value = getattr(self, name)
            need(value is None or value >= 1, f"{name.replace('_', ' ')} must be ≥ 1 step or None, got {value!r}")

    @property
    def decay_steps(self) -> int | None:
        """Length of the cosine (None: ``steps``)."""
        return round(self.decay_stretch * self.steps) if self.decay_stretch != 1 else None

    @property
    def min_ship_steps(self) -> int:
        """Fewer steps than this (a tenth of the recipe's) cannot replace a shipped model without --force."""
        return max(1, RECIPES[self.model].steps // 10) if self.model in RECIPES else 1

    def replace(self, **changes: Any) -> "Recipe":
        """This recipe with some fields changed (``dataclasses.replace``; the new values are validated)."""
        return dataclasses.replace(self, **changes)

    def scaled(self, steps: int | None = None, *, factor: float | None = None) -> "Recipe":
        """The same recipe over ``steps`` (or ``factor`` × its steps): warm-up, checkpoint and evaluation
        intervals keep their proportion. ``scaled()`` (no argument) is the recipe itself."""
        if steps is not None and factor is not None:
            raise RecipeError("give steps or factor, not both")
        if factor is not None:
            steps = max(1, round(self.steps * factor))
        if steps is None or steps == self.steps:
            return self
        ratio = steps / self.steps

        def every(value: int | None) -> int | None:
            return None if value is None else max(1, round(value * ratio))

        return self.replace(steps=steps, warmup=round(self.warmup * ratio), checkpoint_every=every(self.checkpoint_every), eval_every=every(self.eval_every))

    def train_config(self, **overrides: Any):
        """The :class:`course.train.TrainConfig` of this recipe (``overrides``: log_every, sample_every…)."""
        from course.train import TrainConfig

        fields = dict(steps=self.steps, lr=self.lr, weight_decay=self.weight_decay, warmup=self.warmup, decay=self.decay, decay_steps=self.decay_steps,
                      ema_decay=self.ema_decay, grad_clip=self.grad_clip, checkpoint_every=self.checkpoint_every, seed=self.seed)
        return TrainConfig(**{**fields, **overrides})

    def training_dict(self) -> dict[str, Any]:
        """The fields that set the weights a run learns (not what is measured, nor how often): what resuming must keep."""
        return {k: v for k, v in self.as_dict().items() if not type(self).__dataclass_fields__[k].metadata.get("measure")}

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (tuples as lists): what a manifest records."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def command(self, *extra: str) -> str:
        """The command line that trains this recipe (the flags that can override a field)."""
        pool = f" --pool {self.pool}" if self.pool is not None and self.model != "evaluator" else ""
        n_train = f" --n-train {self.pool}" if self.model == "evaluator" else ""
        lr = f" --lr {self.lr:g}" if self.model in RECIPES and self.lr != RECIPES[self.model].lr else ""
        line = f"python -m {self.module} train{n_train} --steps {self.steps} --batch-size {self.batch_size}{pool}{lr} --seed {self.seed}"
        return " ".join([line, *extra])


@dataclass(frozen=True, kw_only=True)
class AERecipe(Recipe):
    kl_weight: float = 1e-5  # KL(q(z|x) ‖ N(0, I)) weight: a nudge, not a VAE prior
    edge_weight: float = 1.0  # weight of the image-gradient term of the reconstruction loss
    object_weight: float = 10.0  # extra weight of object pixels in the reconstruction loss
    crop: int = 32  # training windows (pixels) cut from the 64×64 renders, on the 8-pixel latent grid
    eval_images: int = measured(2000)  # fresh renders per split for the legibility measure
    scaling_images: int = 4000  # pool images whose latents set the scaling factor


@dataclass(frozen=True, kw_only=True)
class ClipRecipe(Recipe):
    eval_images: int = measured(100)  # scenes per retrieval measure (split × language)


@dataclass(frozen=True, kw_only=True)
class LDMRecipe(Recipe):
    snr_gamma: float | None = 5.0  # Min-SNR-γ loss weighting (Hang et al. 2023); None: the plain ε loss
    p_uncond: float = 0.1  # captions dropped to "" (∅) so that classifier-free guidance works
    curve_guidance: float = measured(3.0)  # w of the quick evaluations along training (the chosen w is only known at the end)
    curve_prompts: int = measured(128)  # validation prompts per point of the adherence curve
    curve_sampling_steps: int = measured(20)  # DDIM steps per point of the curve
    guidance_candidates: tuple[float, ...] = measured((2.0, 2.5, 3.0, 4.0))  # w compared on validation prompts at the end
    guidance_rule: GuidanceRule = measured("highest all-right, ties to the smaller w")
    sweep_prompts: int = measured(512)  # validation prompts per candidate w (256 could not separate 2 from 3)
    eval_prompts: int = measured(512)  # held-out test prompts, measured once, at the chosen w
    eval_sampling_steps: int = measured(50)

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.p_uncond < 1:
            raise RecipeError(f"{self.model} recipe: p_uncond must be in [0, 1), got {self.p_uncond!r}")
        if not self.guidance_candidates or min(self.guidance_candidates) < 0:
            raise RecipeError(f"{self.model} recipe: guidance candidates must be ≥ 0 and at least one, got {self.guidance_candidates!r}")
        if self.guidance_rule not in ("highest all-right, ties to the smaller w",):
            raise RecipeError(f"{self.model} recipe: unknown guidance rule {self.guidance_rule!r}")

    def choose_guidance(self, sweep: list[dict]) -> float:
        """The w the rule picks from a sweep ``[{"guidance": w, "all_correct": …}, …]``."""
        return max(sweep, key=lambda point: (point["all_correct"], -point["guidance"]))["guidance"]


@dataclass(frozen=True, kw_only=True)
class ShapesDDPMRecipe(Recipe):
    p_uncond: float = 0.1  # conditions dropped (−1) so that the same network predicts ε without one
    eval_samples: int = measured(128)


@dataclass(frozen=True, kw_only=True)
class EvaluatorRecipe(Recipe):
    eval_images: int = measured(4000)  # fresh renders per (size, split) for the accuracy table


@dataclass(frozen=True, kw_only=True)
class SceneReaderRecipe(Recipe):
    eval_images: int = measured(4000)  # fresh random layouts for the accuracy table


CONTROL_KINDS = ("canny", "scribble", "mask")  # course.conditions.KINDS (not imported: scikit-image is not for every command)


@dataclass(frozen=True, kw_only=True)
class ControlNetRecipe(Recipe):
    kind: str = "canny"  # the condition (course.conditions.KINDS)
    max_shift: int = 6  # training renders moved off the captions' grid by up to this many pixels (course.conditions.shift_layouts)
    snr_gamma: float | None = 5.0  # Min-SNR-γ, as the base model was trained
    p_uncond: float = 0.5  # captions dropped to "": Zhang et al. 2023, §3.3 ("we randomly replace 50 % text prompts with empty strings")
    guidance: float = measured(2.5)  # w of every evaluation (the base model's shipped w)
    curve_prompts: int = measured(64)  # held-out layouts per point of the edge-adherence curve
    curve_sampling_steps: int = measured(20)
    eval_prompts: int = measured(256)  # held-out prompts and layouts of the final table
    eval_sampling_steps: int = measured(25)
    eval_shift: int = measured(6)  # the off-grid test layouts: objects moved by up to this many pixels

    def __post_init__(self):
        super().__post_init__()
        if self.kind not in CONTROL_KINDS:
            raise RecipeError(f"{self.model} recipe: unknown control kind {self.kind!r}: choose one of {', '.join(CONTROL_KINDS)}")
        if not 0 <= self.p_uncond < 1:
            raise RecipeError(f"{self.model} recipe: p_uncond must be in [0, 1), got {self.p_uncond!r}")


@dataclass(frozen=True, kw_only=True)
class InstructRecipe(Recipe):
    p_drop_text: float = 0.05  # instructions dropped to "" (Brooks et al. 2023, §3.3: 5 % text, 5 % image, 5 % both)
    p_drop_image: float = 0.05  # input latents replaced by zeros
    p_drop_both: float = 0.05
    snr_gamma: float | None = 5.0  # Min-SNR-γ, as the base model was trained
    text_guidance: float = measured(3.0)  # s_T of the curve and of the final table
    image_guidance: float = measured(1.5)  # s_I
    curve_edits: int = measured(96)  # validation triplets per point of the edit-success curve (all kinds mixed)
    curve_sampling_steps: int = measured(20)
    eval_per_kind: int = measured(64)  # held-out test triplets per edit kind in the final table
    eval_sampling_steps: int = measured(25)

    def __post_init__(self):
        super().__post_init__()
        total = self.p_drop_text + self.p_drop_image + self.p_drop_both
        if min(self.p_drop_text, self.p_drop_image, self.p_drop_both) < 0 or total >= 1:
            raise RecipeError(f"{self.model} recipe: the dropout shares must be ≥ 0 and sum to less than 1, got {total:g}")


CONCEPT_METHODS = ("ti", "lora", "full")  # textual inversion, LoRA, full fine-tuning of the U-Net (lesson 11)


@dataclass(frozen=True, kw_only=True)
class ConceptRecipe(Recipe):
    method: str = "ti"
    rank: int | None = None  # LoRA's r (method "lora" only)
    alpha: float | None = None  # LoRA's α (None: α = r, a scale of 1)
    init_word: str = "circle"  # textual inversion starts the new row from this word's (Gal et al. 2023, §4)
    train_word: bool = False  # LoRA or full fine-tuning: train the new word's row too (else it stays a fixed random row)
    p_prior: float = 0.0  # share of each batch drawn from ordinary scenes (DreamBooth's prior preservation; Ruiz et al. 2023, eq. 2)
    prior_pool: int = 2000  # ordinary training scenes rendered for it
    snr_gamma: float | None = 5.0  # Min-SNR-γ, as the base model was trained
    guidance: float = measured(2.5)  # w of the tables
    eval_prompts: int = measured(128)  # held-out prompts with the new word, in the final table
    eval_sampling_steps: int = measured(25)
    preservation_prompts: int = measured(256)  # ordinary held-out prompts, before vs after

    def __post_init__(self):
        super().__post_init__()
        if self.method not in CONCEPT_METHODS:
            raise RecipeError(f"{self.model} recipe: unknown method {self.method!r}: choose one of {', '.join(CONCEPT_METHODS)}")
        if self.method == "lora" and (isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1):
            raise RecipeError(f"{self.model} recipe: the LoRA rank must be a positive integer, got {self.rank!r}")
        if not 0 <= self.p_prior < 1:
            raise RecipeError(f"{self.model} recipe: p_prior must be in [0, 1), got {self.p_prior!r}")

    def command(self, *extra: str) -> str:
        rank = f" --rank {self.rank}" if self.method == "lora" else ""
        return super().command(*extra).replace(" train ", f" train --method {self.method}{rank} ", 1)


AE_RECIPE = AERecipe(
    # 6,000 steps (≈ 25 min on 2 cores): Stable Diffusion's topology costs 0.25 s a step where the earlier, course-specific
    # autoencoder's cost 0.16 s; its U-Net is cheaper in turn, so that the two still train in < 90 min.
    model="autoencoder", module="course.ae_train", checkpoint="autoencoder.safetensors",
    steps=6000, batch_size=64, pool=30_000, lr=1e-3, warmup=200, decay="cosine", ema_decay=0.999, checkpoint_every=500,
)
CLIP_RECIPE = ClipRecipe(
    model="clip", module="course.clip_train", checkpoint="clip.safetensors",
    steps=1500, batch_size=128, pool=40_000, lr=1e-3, weight_decay=0.05, warmup=100, decay="cosine", ema_decay=None, checkpoint_every=250,
)
LDM_RECIPE = LDMRecipe(
    # 6,000 steps: ≈ 57 min on 2 cores (0.57 s a step for Stable Diffusion's topology at widths 48, 96, 128), so that with the
    # autoencoder (≈ 25 min) and the pool (3 min) training takes < 90 min.
    # lr 1e-3: +5 to +8 points of shape over 5e-4 at equal steps, 2e-3 less (benchmarks/ldm_recipes.py).
    # decay_stretch 1.25: the cosine is stopped at 80 % (lr ends at 10 % of its peak, not 0): +3 to +7 shape points at 2,000 steps
    # (benchmarks/results/ldm_recipes_h100_sweep3.json, r2500 and pooled2500).
    model="ldm", module="course.ldm", checkpoint="ldm_unet.safetensors",
    steps=6000, batch_size=128, pool=60_000, lr=1e-3, warmup=300, decay="cosine", decay_stretch=1.25, ema_decay=0.999,
    checkpoint_every=250, eval_every=1000,
)
SHAPES_DDPM_RECIPE = ShapesDDPMRecipe(
    model="shapes_ddpm", module="course.shapes_ddpm", checkpoint="shapes_ddpm.safetensors",
    steps=5000, batch_size=64, lr=1e-3, warmup=200, decay="cosine", ema_decay=0.999, checkpoint_every=250,
)
EVALUATOR_RECIPE = EvaluatorRecipe(
    model="evaluator", module="course.eval", checkpoint="evaluator.safetensors",
    steps=4000, batch_size=128, pool=80_000, lr=2e-3, weight_decay=1e-4, warmup=100, decay="cosine", ema_decay=0.998, checkpoint_every=500,
)
SCENE_READER_RECIPE = SceneReaderRecipe(
    model="scene_reader", module="course.scene_reader", checkpoint="scene_reader.safetensors",
    steps=3000, batch_size=128, pool=60_000, lr=2e-3, weight_decay=1e-4, warmup=100, decay="cosine", ema_decay=0.998, checkpoint_every=500,
)
CONTROLNET_RECIPE = ControlNetRecipe(
    model="controlnet_canny", module="course.controlnet_train", checkpoint="controlnet_canny.safetensors",
    steps=2000, batch_size=64, pool=30_000, lr=5e-4, warmup=100, decay="cosine", ema_decay=0.999, checkpoint_every=250, eval_every=250,
)
INSTRUCT_RECIPE = InstructRecipe(
    model="instruct_pix2pix", module="course.instruct_train", checkpoint="instruct_pix2pix.safetensors",
    steps=10_000, batch_size=64, pool=30_000, lr=6e-4, warmup=200, decay="cosine", ema_decay=0.999, checkpoint_every=500, eval_every=1000,
)
CONCEPT_TI_RECIPE = ConceptRecipe(
    model="concept_ti", module="course.concept_train", checkpoint="concept_ti.safetensors", method="ti",
    steps=1500, batch_size=16, lr=5e-3, warmup=50, decay="cosine", ema_decay=None, checkpoint_every=250,
)
CONCEPT_LORA_RECIPE = ConceptRecipe(
    model="concept_lora", module="course.concept_train", checkpoint="concept_lora.safetensors", method="lora", rank=4,
    steps=1500, batch_size=16, lr=5e-3, warmup=50, decay="cosine", ema_decay=None, checkpoint_every=250, p_prior=0.5,
)
RECIPES: dict[str, Recipe] = {r.model: r for r in (AE_RECIPE, CLIP_RECIPE, LDM_RECIPE, SHAPES_DDPM_RECIPE, EVALUATOR_RECIPE, SCENE_READER_RECIPE,
                                                   CONTROLNET_RECIPE, INSTRUCT_RECIPE, CONCEPT_TI_RECIPE, CONCEPT_LORA_RECIPE)}
