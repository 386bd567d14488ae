"""Teaching the shipped model a new word from 8 examples (lesson 11): textual inversion, LoRA, or full fine-tuning.

    python -m course.concept_train train --method ti                 # → runs/concept_ti/ (data/ untouched)
    python -m course.concept_train train --method lora --rank 4      # → runs/concept_lora/
    python -m course.concept_train train --method ti --ship          # and replace data/concept_ti.safetensors
    python -m course.concept_train compare                           # the trade-off table (TI, LoRA r = 1/4/16, full) → data/concept_eval.json

The loss is the base model's ε-loss on the examples (:mod:`course.concept`), their captions with the new word,
in both languages (Gal et al. 2023, eq. 2):

    L = E ‖ε − ε_θ(z_t, t, c(y))‖²        z_0 = an example's latent, y = one of its captions, « <lune> » in it

What moves: ``ti`` the new word's row v only (:mod:`course.textual_inversion`); ``lora`` the low-rank updates of
the U-Net's attention (:mod:`course.lora`), the new word a fixed random row; ``full`` every weight of the U-Net.
``p_prior`` of each batch are ordinary scenes with their captions (DreamBooth's prior preservation, Ruiz et al.
2023): what the model knew is rehearsed while it learns the new word (it cannot help textual inversion, whose row
no ordinary caption uses).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from course.concept import EXAMPLES, TOKEN, example_images, example_scenes, prompt_variants
from course.ddpm import training_loss
from course.recipes import CONCEPT_LORA_RECIPE, CONCEPT_TI_RECIPE, ConceptRecipe
from course.schedules import alphas_cumprod
from course.textual_inversion import TextualInversion

RECIPES = {"ti": CONCEPT_TI_RECIPE, "lora": CONCEPT_LORA_RECIPE}


class ConceptModel(nn.Module):
    """The U-Net and the text encoder that knows the new word: ε_θ(z_t, t, c(y)) with y a prompt (str)."""

    def __init__(self, unet: nn.Module, words: TextualInversion):
        super().__init__()
        self.unet, self.words = unet, words

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.words.text_states(prompts)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        context, mask = self.words.text_states(prompts)
        return self.unet(z_t, t, context, mask)


def random_row(table: torch.Tensor, seed: int) -> torch.Tensor:
    """A new word's row drawn around the table's (its mean and spread per dimension): a word that means nothing yet."""
    g = torch.Generator().manual_seed(seed)
    return table.mean(0) + table.std(0) * torch.randn(table.shape[1], generator=g)


def build(recipe: ConceptRecipe, unet: nn.Module | None = None, text: nn.Module | None = None) -> ConceptModel:
    """The model to train: copies of the shipped U-Net and text encoder, with only the method's weights trainable."""
    import copy

    from course import lora
    from course.shipped import load_clip, load_unet

    unet = copy.deepcopy(unet if unet is not None else load_unet()).requires_grad_(False)
    text = copy.deepcopy(text if text is not None else load_clip().text).requires_grad_(False)
    table = text.embeddings.token_embedding.weight
    init = recipe.init_word if recipe.method == "ti" else random_row(table, recipe.seed)
    words = TextualInversion(text, TOKEN, init)
    if recipe.method == "lora":
        torch.manual_seed(recipe.seed)  # A's random start
        lora.add_lora(unet, recipe.rank, recipe.alpha)
    elif recipe.method == "full":
        unet.requires_grad_(True)
    words.vector.requires_grad_(recipe.method == "ti" or recipe.train_word)
    return ConceptModel(unet, words)


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def example_latents() -> torch.Tensor:
    """The 8 examples' latents, scaled (8, 4, 8, 8): the autoencoder's mean, × its scaling factor."""
    from course.shipped import load_autoencoder

    ae, factor = load_autoencoder()
    return ae.encode(example_images())[0] * factor


def prior_pool(n: int, seed: int) -> tuple[list, torch.Tensor]:
    """n ordinary training scenes (the base model's mix) and their scaled latents, for prior preservation."""
    from course import ldm

    scenes, images = ldm.pool(n, seed + 1000)
    return scenes, ldm.encode_latents(images)


def batch_getter(recipe: ConceptRecipe, latents: torch.Tensor, prior: tuple[list, torch.Tensor] | None):
    """``get_batch(step)``: (z_0 (B, 4, 8, 8), prompts): examples with a random caption each (English or French),
    and, for ``p_prior`` of the batch, ordinary scenes with theirs."""
    from course.captions import caption_variants

    scenes = example_scenes()
    n_prior = round(recipe.batch_size * recipe.p_prior) if prior is not None else 0

    def get_batch(step: int):
        g = torch.Generator().manual_seed(recipe.seed * 65_537 + step)
        rng = np.random.default_rng((recipe.seed, step, 17))
        idx = torch.randint(len(scenes), (recipe.batch_size - n_prior,), generator=g)
        texts = []
        for i in idx.tolist():
            variants = prompt_variants(scenes[i], "en" if rng.integers(2) else "fr")
            texts.append(variants[rng.integers(len(variants))])
        z0 = latents[idx]
        if n_prior:
            pidx = torch.randint(len(prior[0]), (n_prior,), generator=g)
            for i in pidx.tolist():
                variants = caption_variants(prior[0][i], "en" if rng.integers(2) else "fr")
                texts.append(variants[rng.integers(len(variants))])
            z0 = torch.cat([z0, prior[1][pidx]])
        return z0, texts

    return get_batch


def concept_loss(abar: torch.Tensor, snr_gamma: float | None):
    def loss(model: ConceptModel, batch) -> torch.Tensor:
        z0, texts = batch
        context, mask = model.encode_text(texts)
        return training_loss(lambda x, t, c: model.unet(x, t, context, mask), z0, abar, snr_gamma=snr_gamma)

    return loss


def file_tensors(model: ConceptModel, method: str) -> tuple[dict[str, torch.Tensor], dict[str, str] | None]:
    """What the method's file holds (and its safetensors header): the new word's row (diffusers' textual-inversion file),
    the LoRA (diffusers' LoRA file, the word's row in its header), or the whole U-Net (the word's row in its header)."""
    from course import lora
    from course.textual_inversion import embedding_tensors

    if method == "ti":
        return embedding_tensors(model.words.token, model.words.vector), None
    word = lora.word_header(model.words.token, model.words.vector)  # the word's row travels in the header
    if method == "lora":
        return lora.lora_tensors(model.unet), {**lora.lora_metadata(model.unet), **word}
    return {f"unet.{k}": v for k, v in model.unet.state_dict().items()}, word


def train_concept(recipe: ConceptRecipe, run_dir: Path | None = None, ship: bool = False, force: bool = False,
                  allow_recipe_change: bool = False, evaluate_it: bool = True) -> dict:
    """Train ``recipe`` in ``run_dir`` (default runs/<model>); the held-out table at the end (``evaluate_it``)."""
    from course import distributed
    from course import train as training
    from course.shipped import betas

    run_dir = Path(run_dir or Path("runs") / recipe.model)
    if ship:
        if recipe.method == "full":
            raise training.TrainingError("full fine-tuning is measured, not shipped (a whole U-Net per word): train it without --ship")
        training.check_shippable(recipe, force)
    with training.run_lock(run_dir):
        start = time.perf_counter()
        latents = example_latents()
        prior = prior_pool(recipe.prior_pool, recipe.seed) if recipe.p_prior > 0 else None
        model = build(recipe)
        if distributed.is_main():
            print(f"{recipe.method}: {trainable(model):,} trained numbers; {len(EXAMPLES)} examples"
                  + (f", {recipe.prior_pool} ordinary scenes for {recipe.p_prior:.0%} of each batch" if prior else ""), flush=True)
        result = training.train(model, concept_loss(alphas_cumprod(betas()), recipe.snr_gamma), batch_getter(recipe, latents, prior),
                                recipe.train_config(), run_dir=run_dir, desc=recipe.model, recipe=recipe.training_dict(),
                                allow_recipe_change=allow_recipe_change)
        if not distributed.is_main():
            return {}  # torchrun's other processes only train: rank 0 measures, exports and ships
        trained = result.ema.eval()
        metrics = {"training_minutes": round(result.history.wall_time / 60, 2), "trained_numbers": trainable(result.model)}
        if evaluate_it:
            from course.concept_eval import evaluate_model

            metrics.update(evaluate_model(trained, recipe))
        metrics["total_wall_time_s"] = round(time.perf_counter() - start, 1)
        tensors, header = file_tensors(trained, recipe.method)
        config = {"method": recipe.method, "token": TOKEN, "rank": recipe.rank, "alpha": recipe.alpha, "init_word": recipe.init_word}
        path = training.export_run(run_dir, recipe, trained, config=config, history=result.history, metrics=metrics,
                                   command=recipe.command("--ship") if ship else recipe.command(), tensors=tensors, header=header,
                                   extra={"trained_with": _trained_with()})
        manifest = training.finish(run_dir, recipe, path, ship, force)
    return manifest


def _trained_with() -> dict[str, str]:
    from course import checkpoints
    from course.paths import data_dir
    from course.shipped import CLIP_CHECKPOINT, UNET_CHECKPOINT

    return {name: checkpoints.read_manifest(data_dir() / name).get("sha256", "") for name in (UNET_CHECKPOINT, CLIP_CHECKPOINT)}


def recipe_for(method: str, rank: int | None = None) -> ConceptRecipe:
    """The shipped recipe of ``method``; LoRA at another rank, or full fine-tuning (LoRA's recipe over the whole U-Net,
    at a fiftieth of its learning rate), are variants measured by ``compare``."""
    if method == "ti":
        return CONCEPT_TI_RECIPE
    if method == "lora":
        base = CONCEPT_LORA_RECIPE
        return base if rank in (None, base.rank) else base.replace(model=f"concept_lora_r{rank}", rank=rank)
    if method == "full":
        return CONCEPT_LORA_RECIPE.replace(model="concept_full", checkpoint="concept_full.safetensors", method="full", rank=None,
                                           lr=CONCEPT_LORA_RECIPE.lr / 50)
    from course.recipes import CONCEPT_METHODS, RecipeError

    raise RecipeError(f"unknown method {method!r}: choose one of {', '.join(CONCEPT_METHODS)}")


COMPARED = (("ti", None), ("lora", 1), ("lora", 4), ("lora", 16), ("full", None))


def compare(out: Path | None = None, runs: Path = Path("runs")) -> dict:
    """Train (or resume) every compared method in runs/, measure each on the same held-out prompts, write the table."""
    from course import distributed
    from course.paths import data_dir

    rows = []
    for method, rank in COMPARED:
        recipe = recipe_for(method, rank)
        manifest = train_concept(recipe, runs / recipe.model)
        if not distributed.is_main():
            continue
        path = runs / recipe.model / recipe.checkpoint
        rows.append({"method": method, "rank": rank, "file_bytes": path.stat().st_size, **manifest["metrics"]})
        print(json.dumps(rows[-1]), flush=True)
    if not distributed.is_main():
        return {}
    from course.concept_eval import base_preservation

    table = {"command": "python -m course.concept_train compare", "hardware": _hardware(), "rows": rows, "base": base_preservation(CONCEPT_TI_RECIPE)}
    out = out or data_dir() / "concept_eval.json"
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {out}")
    return table


def _hardware() -> str:
    from course import checkpoints

    return checkpoints.hardware()


def main(argv: list[str] | None = None) -> int:
    from course import distributed
    from course import train as training

    parser = argparse.ArgumentParser(prog="python -m course.concept_train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one method into runs/<model>/ (with --ship: and replace its data/ file)")
    t.add_argument("--method", choices=("ti", "lora", "full"), default="ti", help="ti: the new word's row; lora: low-rank updates; full: the whole U-Net")
    t.add_argument("--rank", type=int, default=None, help=f"LoRA's rank (recipe: {CONCEPT_LORA_RECIPE.rank})")
    training.add_recipe_arguments(t, CONCEPT_TI_RECIPE)
    t.set_defaults(steps=None, batch_size=None, lr=None, seed=None, run_dir=None)
    s = sub.add_parser("ship", help="replace data/concept_<method>.safetensors with the file a run folder exported")
    s.add_argument("--method", choices=("ti", "lora"), default=None, help="default: the method whose file the run folder holds")
    s.add_argument("--run-dir", type=Path, default=None)
    s.add_argument("--force", action="store_true")
    c = sub.add_parser("compare", help="train and measure TI, LoRA r = 1/4/16 and full fine-tuning; write data/concept_eval.json")
    c.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    with training.user_errors():
        if args.command == "train":
            if args.rank is not None and args.method != "lora":
                raise training.TrainingError(f"--rank is LoRA's: the method {args.method!r} has none")
            if args.rank is not None and args.rank < 1:
                raise training.TrainingError(f"the LoRA rank must be a positive integer, got {args.rank}")
            recipe = recipe_for(args.method, args.rank)
            overrides = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "seed") if getattr(args, k) is not None}
            recipe = recipe.replace(**overrides)
            metrics = train_concept(recipe, args.run_dir, args.ship, args.force, args.allow_recipe_change).get("metrics", {})
        elif args.command == "ship":
            method = args.method
            if method is None:
                method = "lora" if args.run_dir is not None and (args.run_dir / CONCEPT_LORA_RECIPE.checkpoint).exists() else "ti"
            recipe = recipe_for(method)
            training.ship(args.run_dir or Path("runs") / recipe.model, recipe, args.force)
            return 0
        else:
            compare(args.out)
            return 0
    if not distributed.is_main():
        return 0  # torchrun's other processes: rank 0 reports
    for k, v in metrics.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
