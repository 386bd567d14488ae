"""Padding with <eos>, as Stable Diffusion v1's tokenizer does: do the padding states then bind colours to shapes?

    python benchmarks/eos_padding.py      # → benchmarks/results/eos_padding.json

The course pads prompts with a <pad> token that CLIP's loss never trains: the states there read the prompt
through causal attention but are never asked to say anything, and they are a bag of words (swap distance
1-2 %, benchmarks/text_binding.py). Stable Diffusion v1's tokenizer pads with <|endoftext|>, so each padding
state is an <eos> state at a later position — and <eos> is the state CLIP's loss does train. Measured here
for the shipped CLIP and for the CLIP trained with hard negatives (benchmarks/clip_hard_negatives.py, whose
loss asks <eos> to tell a caption from its colour swap), with either padding; no retraining.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from course.text_binding import measure

sys.path.insert(0, str(Path(__file__).parent))
from composition_probes import load_probe_clip  # noqa: E402

OUT = Path(__file__).parent / "results" / "eos_padding.json"


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for name, run_dir in (("shipped CLIP", None), ("CLIP + hard negatives", "runs/probes/clip_negatives")):
        if run_dir and not (Path(run_dir) / "state.safetensors").exists():
            print(f"skipped {name}: run python benchmarks/clip_hard_negatives.py first ({run_dir} is missing)")
            continue
        clip = load_probe_clip(run_dir)
        for padding in ("<pad>", "<eos>"):
            rows.append({"clip": name, "padding": padding, "rows": measure(clip, eos_padding=padding == "<eos>")})
            print(json.dumps(rows[-1], ensure_ascii=False))
    OUT.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
