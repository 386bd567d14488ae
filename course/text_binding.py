"""Do the text states the U-Net reads say which colour goes with which shape? The bag-of-words test.

CLIP's contrastive loss (Radford et al. 2021, eq. of the slides « Architecture CLIP ») only asks a caption
to be closer to its own image than to the batch's others; random negatives almost never differ by the
binding alone, so a text encoder may pass while encoding a caption as a bag of words (Yuksekgonul et al.
2023, §3). The test: encode a two-object prompt and the same prompt with the colours exchanged ("a red
circle and a blue square" → "a blue circle and a red square"), and compare the states at the words
(<bos> … <eos>) and at the padding after <eos> (where most of the U-Net's cross-attention goes) by the
relative squared distance Σ‖s − s'‖² / Σ‖s‖². A different prompt of the same set gives the scale.
"""

from __future__ import annotations

import torch

from course.captions import noun_phrase
from course.paraphrases import conjunction
from course.scenes import Obj

VALIDATION_SEED = 780  # the benchmark's validation prompts (course.geneval uses 779 for its held-out ones)


def relative_distance(s: torch.Tensor, s_other: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Σ‖s − s'‖² / Σ‖s‖² over the positions where ``where`` (B, L) is 1; states (B, L, D). A scalar tensor."""
    where = where.to(s.dtype)
    return ((s - s_other).square().sum(-1) * where).sum() / (s.square().sum(-1) * where).sum()


def swapped_prompt(task) -> str:
    """A two-object benchmark task's prompt with its objects' colours exchanged (same words, other binding)."""
    a, b = task.scene.objects
    a2, b2 = Obj(a.shape, b.colour, a.size, a.cell), Obj(b.shape, a.colour, b.size, b.cell)
    if task.set == "binding":
        return conjunction(a2, b2, task.lang)
    if task.set != "pair":
        raise ValueError(f"only two-object tasks (sets pair, binding) have colours to swap, got set {task.set!r}")
    pa, pb = noun_phrase(a, task.lang, with_size=False), noun_phrase(b, task.lang, with_size=False)
    return task.prompt.replace(pa, "\0").replace(pb, noun_phrase(b2, task.lang, with_size=False)).replace("\0", noun_phrase(a2, task.lang, with_size=False))


def swap_tasks(n: int = 64, kind: str = "binding", seed: int = VALIDATION_SEED) -> list:
    """The benchmark's two-object tasks (``n`` per language) whose two objects differ in colour."""
    from course import geneval

    return [t for t in geneval.tasks(n, seed=seed, sets=(kind,)) if t.scene.objects[0].colour != t.scene.objects[1].colour]


def measure(clip=None, n: int = 64, eos_padding: bool = False) -> list[dict]:
    """Swap and other-prompt distances, at the words and at the padding, for ``clip`` (default: the shipped one)."""
    from course.shipped import text_states
    from course.tokenizer import encode

    rows = []
    for kind in ("binding", "pair"):
        tasks = swap_tasks(n, kind)
        prompts, swaps = [t.prompt for t in tasks], [swapped_prompt(t) for t in tasks]
        states, _ = text_states(prompts, clip, eos_padding)
        swapped, _ = text_states(swaps, clip, eos_padding)
        other = states.roll(1, 0)
        words = encode(prompts)[1]
        padding = 1 - words

        def pct(x, y, where):
            return round(float(relative_distance(x, y, where)), 4)

        rows.append({"set": kind, "prompts": len(prompts), "example": [prompts[0], swaps[0]],
                     "swap": {"words": pct(states, swapped, words), "padding": pct(states, swapped, padding)},
                     "other_prompt": {"words": pct(states, other, words), "padding": pct(states, other, padding)}})
    return rows
