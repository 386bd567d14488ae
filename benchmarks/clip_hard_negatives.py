"""Does CLIP stop being a bag of words when its training asks for binding? NegCLIP's hard negatives on our world.

    python benchmarks/clip_hard_negatives.py            # → runs/probes/clip_negatives/, benchmarks/results/clip_hard_negatives.json

Random in-batch negatives almost never differ from a caption by the binding alone, so the contrastive loss
never asks the text encoder which colour goes with which shape (Yuksekgonul et al. 2023, §4: CLIP behaves
like a bag of words; NegCLIP adds hard negatives). Here every two-object image of a batch also gets, as
extra text negatives, the caption of the same phrasing with its colours swapped (when they differ) and with
its relation flipped ("A above B" → "A below B"); the image→text softmax runs over the batch's captions and
these negatives, the text→image one as before. Same recipe as the shipped CLIP (``CLIP_RECIPE``), same pool.
Measured afterwards: ``benchmarks/text_binding.py``'s swap distances with this CLIP, and its retrieval.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from course import train as training
from course.captions import caption_variants
from course.clip_train import evaluate, make_model, pool
from course.recipes import CLIP_RECIPE
from course.scenes import Obj, Scene
from course.tokenizer import encode

sys.path.insert(0, str(Path(__file__).parent))
import text_binding  # noqa: E402

OUT = Path(__file__).parent / "results" / "clip_hard_negatives.json"
INVERSE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}


def negatives(scene: Scene) -> list[Scene]:
    """Scenes whose captions contradict ``scene`` by binding only: colours swapped, relation flipped (pairs only)."""
    if scene.kind != "pair":
        return []
    a, b = scene.objects
    out = [Scene("pair", scene.background, (Obj(a.shape, a.colour, a.size, b.cell), Obj(b.shape, b.colour, b.size, a.cell)), INVERSE[scene.relation])]
    if a.colour != b.colour:
        out.append(Scene("pair", scene.background, (Obj(a.shape, b.colour, a.size, a.cell), Obj(b.shape, a.colour, b.size, b.cell)), scene.relation))
    return out


def batch_getter(scenes, images, batch_size: int, seed: int = 0):
    def get_batch(step: int):
        g = torch.Generator().manual_seed(seed * 7919 + step)
        idx = torch.randint(len(scenes), (batch_size,), generator=g)
        rng = np.random.default_rng((seed, step))
        texts, hard = [], []
        for i in idx.tolist():
            lang = "en" if rng.integers(2) else "fr"
            variants = caption_variants(scenes[i], lang)
            k = int(rng.integers(len(variants)))
            texts.append(variants[k])
            for neg in negatives(scenes[i]):
                hard.append(caption_variants(neg, lang)[k])  # the same phrasing, contradicted
        ids, mask = encode(texts + hard, pad_to_longest=True)
        return images[idx].float() / 127.5 - 1, ids, mask, len(texts)

    return get_batch


def loss(model, batch) -> torch.Tensor:
    images, ids, mask, n = batch
    scale = model.logit_scale.clamp(max=np.log(100)).exp()
    logits = scale * model.encode_image(images) @ model.encode_text_embeds(ids, mask).T  # (B, B + hard)
    target = torch.arange(n)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :n].T, target)) / 2


def main() -> None:
    recipe = CLIP_RECIPE
    run_dir = Path("runs") / "probes" / "clip_negatives"
    start = time.perf_counter()
    scenes, images = pool(recipe.pool, recipe.seed)
    model = training.build(make_model, recipe.seed)
    result = training.train(model, loss, batch_getter(scenes, images, recipe.batch_size, recipe.seed), recipe.train_config(), run_dir=run_dir,
                            desc="CLIP + hard negatives", recipe={**recipe.training_dict(), "hard_negatives": "colour swap, relation flip"})
    clip = result.model.eval()
    retrieval = evaluate(clip, recipe.eval_images)
    binding = text_binding.measure(clip)
    line = {"recipe": "CLIP_RECIPE + hard negatives (colour swap, relation flip)", "training_minutes": round(result.history.wall_time / 60, 1),
            "wall_minutes": round((time.perf_counter() - start) / 60, 1), "threads": torch.get_num_threads(), "retrieval": retrieval, "text_binding": binding,
            "shipped_clip": {"text_binding": text_binding.measure(None)}}
    OUT.write_text(json.dumps(line, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(line, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
