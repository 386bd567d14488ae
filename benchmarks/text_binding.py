"""Do the text states the U-Net reads say which colour goes with which shape?

    python benchmarks/text_binding.py       # → benchmarks/results/text_binding.json

For the benchmark's two-object prompts (validation seed 780, 64 per set and language, pairs of different
colours), the prompt with its colours swapped ("a red circle and a blue square" → "a blue circle and a red
square") is encoded by the shipped CLIP, and compared with the original, separately at the positions of
the words (<bos> … <eos>) and at the padding after <eos> (where most of the U-Net's cross-attention goes,
benchmarks/word_attention.py): relative squared distance Σ‖s − s'‖² / Σ‖s‖². As a scale, the same for a
different prompt of the set. A small swap distance at the padding means the summary there is close to a
bag of words: it hardly says which colour belongs to which shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from course import geneval
from course.captions import noun_phrase
from course.paraphrases import conjunction
from course.scenes import Obj
from course.shipped import text_states
from course.tokenizer import encode

OUT = Path(__file__).parent / "results" / "text_binding.json"


def swapped_prompt(task: geneval.Task) -> str:
    """The task's prompt with the two objects' colours exchanged (same words, other binding)."""
    a, b = task.scene.objects
    a2, b2 = Obj(a.shape, b.colour, a.size, a.cell), Obj(b.shape, a.colour, b.size, b.cell)
    if task.set == "binding":
        return conjunction(a2, b2, task.lang)
    pa, pb = noun_phrase(a, task.lang, with_size=False), noun_phrase(b, task.lang, with_size=False)
    return task.prompt.replace(pa, "\0").replace(pb, noun_phrase(b2, task.lang, with_size=False)).replace("\0", noun_phrase(a2, task.lang, with_size=False))


def relative(x: torch.Tensor, y: torch.Tensor, where: torch.Tensor) -> float:
    return float(((x - y).square().sum(-1) * where).sum() / (x.square().sum(-1) * where).sum())


def measure(clip=None) -> list[dict]:
    """Swap and other-prompt distances, at the words and at the padding, for ``clip`` (default: the shipped one)."""
    rows = []
    for kind in ("binding", "pair"):
        tasks = [t for t in geneval.tasks(64, seed=780, sets=(kind,)) if t.scene.objects[0].colour != t.scene.objects[1].colour]
        prompts, swaps = [t.prompt for t in tasks], [swapped_prompt(t) for t in tasks]
        assert all(p != s for p, s in zip(prompts, swaps))
        states, _ = text_states(prompts, clip)
        swapped, _ = text_states(swaps, clip)
        other = states.roll(1, 0)
        mask = encode(prompts)[1].float()
        words, padding = mask, 1 - mask
        rows.append({"set": kind, "prompts": len(prompts), "example": [prompts[0], swaps[0]],
                     "swap": {"words": round(relative(states, swapped, words), 4), "padding": round(relative(states, swapped, padding), 4)},
                     "other_prompt": {"words": round(relative(states, other, words), 4), "padding": round(relative(states, other, padding), 4)}})
    return rows


def main() -> None:
    torch.set_num_threads(1)
    rows = measure()
    for row in rows:
        print(row)
    OUT.write_text(json.dumps({"model": "data/clip.safetensors", "rows": rows}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
