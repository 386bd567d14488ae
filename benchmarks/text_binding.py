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

from course.text_binding import measure

OUT = Path(__file__).parent / "results" / "text_binding.json"


def main() -> None:
    torch.set_num_threads(1)
    rows = measure()
    for row in rows:
        print(row)
    OUT.write_text(json.dumps({"model": "data/clip.safetensors", "rows": rows}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
