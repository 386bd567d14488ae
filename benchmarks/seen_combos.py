"""Are two-object scenes hard, or only held-out combinations in them? The benchmark's pair, binding and
counting prompts drawn on (shape, colour) pairs seen in training, against the held-out ones (the benchmark's).

    python benchmarks/seen_combos.py [--n 64]      # → benchmarks/results/seen_combos.json

The same model (the shipped one), sampler, guidance, seeds per batch and judge (course.scene_reader) as
``python -m course.geneval``; only the split the scenes are drawn from changes.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from course import geneval
from course.captions import LANGS, caption
from course.evaluation import generate
from course.paraphrases import conjunction
from course.scene_reader import read
from course.scenes import sample_scene


def split_tasks(split: str, n: int, seed: int) -> list[geneval.Task]:
    """n pair, binding and counting (2–3) prompts per language whose scenes come from ``split``."""
    out = []
    for lang in LANGS:
        rng = np.random.default_rng((seed, LANGS.index(lang)))
        for _ in range(n):
            pair = sample_scene(rng, split, ("pair",))
            out.append(geneval.Task("pair", pair, caption(pair, lang), lang))
            while True:
                b = sample_scene(rng, split, ("pair",))
                if b.objects[0].shape != b.objects[1].shape and b.objects[0].colour != b.objects[1].colour:
                    break
            out.append(geneval.Task("binding", b, conjunction(*b.objects, lang), lang))
            c = sample_scene(rng, split, ("count",))
            out.append(geneval.Task("counting", c, caption(c, lang), lang))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--seed", type=int, default=geneval.GENEVAL_SEED)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/seen_combos.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    result = {"n_per_set_and_language": args.n, "threads": 2, "machine": platform.machine(), "splits": {}}
    for split in ("train", "heldout"):
        task_list = split_tasks(split, args.n, args.seed)
        prompts, start = [t.prompt for t in task_list], time.perf_counter()
        images = torch.cat([generate(prompts[i : i + 64], seed=i).detach() for i in range(0, len(prompts), 64)])
        table = geneval.table(task_list, read(images))
        table["seconds"] = round(time.perf_counter() - start, 1)
        result["splits"][split] = table
        print(split, {c: row["both"]["rate"] for c, row in table["categories"].items()}, flush=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
