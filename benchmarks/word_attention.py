"""Where the shipped U-Net's cross-attention goes: <bos>, the prompt's words, <eos>, or the padding after it.

    python benchmarks/word_attention.py          # → benchmarks/results/word_attention.json

Attend-and-Excite assumes that a subject's word has a map that peaks where the subject is drawn. This
measures, on the benchmark's two-object prompts (validation seed, 64 per language), at three noise levels
and from random z_t, the share of attention per kind of token at the latent's full resolution (8 × 8), and
how peaked the shape nouns' maps are: their peak weight against the flat 1/32.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from course import geneval
from course.attention_maps import recording, subject_positions, token_maps, tokens
from course.shipped import load_unet, text_states

OUT = Path(__file__).parent / "results" / "word_attention.json"


def main() -> None:
    torch.set_num_threads(1)
    unet = load_unet()
    prompts = [t.prompt for t in geneval.tasks(64, seed=780, sets=("pair",))]
    context, mask = text_states(prompts)
    rows = []
    for t in (900, 500, 100):
        g = torch.Generator().manual_seed(t)
        with recording(unet) as layers, torch.no_grad():
            unet(torch.randn(len(prompts), 4, 8, 8, generator=g), torch.full((len(prompts),), t), context, mask)
            maps = token_maps(layers)  # (B, 32, 8, 8)
        share = {"bos": 0.0, "words": 0.0, "nouns": 0.0, "eos": 0.0, "padding": 0.0}
        peaks = []
        for b, p in enumerate(prompts):
            n = len(tokens(p))
            mass = maps[b].mean((1, 2))  # each pixel's weights sum to 1: mass sums to 1 over the 32 tokens
            nouns = subject_positions(p)
            share["bos"] += mass[0].item()
            share["words"] += mass[1 : n - 1].sum().item()
            share["nouns"] += mass[nouns].sum().item()
            share["eos"] += mass[n - 1].item()
            share["padding"] += mass[n:].sum().item()
            peaks += [maps[b, i].max().item() for i in nouns]
        rows.append({"t": t, "share": {k: round(v / len(prompts), 4) for k, v in share.items()},
                     "noun_peak_mean": round(sum(peaks) / len(peaks), 4), "noun_peak_max": round(max(peaks), 4), "uniform": round(1 / 32, 4)})
        print(rows[-1])
    OUT.write_text(json.dumps({"prompts": "geneval pair set, seed 780, 64 per language", "model": "data/ldm_unet.safetensors", "rows": rows}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
