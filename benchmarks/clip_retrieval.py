"""Measure the shipped CLIP against issue 4's targets: retrieval top-1 ≥ 90 %, training ≤ 10 min on 2 CPU cores.

    python benchmarks/clip_retrieval.py

Retrieval: 100 fresh single-object scenes per split and language, each with its canonical caption;
text→image top-1 counts a hit when the retrieved image has every attribute the caption states. The
training time is read from the checkpoint's manifest (written by ``python -m course.clip_train train``).
"""

import time

from course import clip_train
from course.checkpoints import read_manifest
from course.paths import data_dir

if __name__ == "__main__":
    manifest = read_manifest(data_dir() / clip_train.CHECKPOINT)
    model = clip_train.load_clip()
    start = time.perf_counter()
    worst = 1.0
    for split in ("train", "heldout"):
        for lang in ("en", "fr"):
            r = clip_train.retrieval(model, n=100, split=split, lang=lang)
            worst = min(worst, r["text_to_image_top1"])
            label = "seen pairs  " if split == "train" else "unseen pairs"
            print(f"{label} [{lang}] text→image top-1 {r['text_to_image_top1']:.0%}, image→text top-1 {r['image_to_text_top1']:.0%}")
    print(f"retrieval measured in {time.perf_counter() - start:.1f} s; worst text→image top-1 {worst:.0%} (target ≥ 90%)")
    total = manifest["metrics"].get("total_wall_time_s", manifest["wall_time_s"])
    print(f"training: `{manifest['command']}` took {total / 60:.1f} min in all ({manifest['wall_time_s'] / 60:.1f} min of "
          f"optimisation steps) on {manifest['hardware']} (target ≤ 10 min on 2 CPU cores)")
