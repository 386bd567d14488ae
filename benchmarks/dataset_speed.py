"""Measure how fast the shapes dataset draws items on one CPU core (issue target: ≥ 2,000 images/s at 32×32).

    python benchmarks/dataset_speed.py

Each item is a full ``ShapesDataset.__getitem__``: scene sampling, rendering, caption, tensor conversion,
batched by a DataLoader in the main process (num_workers=0).
"""

import platform
import time

import torch
from torch.utils.data import DataLoader

from course.checkpoints import hardware
from course.data import ShapesDataset


def measure(size: int, n: int = 6000, repeats: int = 3) -> float:
    best = 0.0
    for r in range(repeats):
        loader = DataLoader(ShapesDataset(n, size=size, seed=r), batch_size=250, num_workers=0)
        start = time.perf_counter()
        count = sum(len(batch["caption"]) for batch in loader)
        best = max(best, count / (time.perf_counter() - start))
    return best


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(f"{hardware()}, Python {platform.python_version()}, torch {torch.__version__}, 1 thread")
    for size in (32, 64):
        print(f"{size}×{size}: {measure(size):,.0f} images/s (best of 3 runs of 6,000 items)")
