"""Short autoencoder probes: which GroupNorm grouping lets Stable Diffusion's autoencoder topology learn a flat colour?

    python benchmarks/ae_probes.py 600 g8 g4 g2 wide_g8     # ≈ 3 min per variant on 2 cores

Each variant of course.autoencoder trains ``steps`` steps with the shipped loss and 32×32 crops (course.ae_train's
loss and batches, 8,000 training renders, lr 1e-3, 100 warm-up steps, cosine to 0, no EMA), then the evaluator
reads 600 fresh renders' reconstructions. One line of JSON per variant goes to stdout and to
benchmarks/results/ae_probes.jsonl. Measured (2-core AMD EPYC, 2 threads, 600 steps): with 8 or 4 groups the
background is read right on 65.3 % of reconstructions (every image comes out the same beige), PSNR 17.3-17.6 dB;
with 2 groups 100 %, PSNR 22.4 dB — what the course's earlier autoencoder (space-to-depth, 3 levels, no longer in
the code) reached in 600 steps (100 %, 22.8 dB).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

VARIANTS = {
    "g8": dict(groups=8),
    "g4": dict(groups=4),
    "g2": dict(groups=2),
    "wide_g8": dict(channels=(32, 32, 64, 128), groups=8),
}
OUT = Path(__file__).resolve().parent / "results" / "ae_probes.jsonl"


def main(steps: int, names: list[str]) -> None:
    from course import ae_train
    from course import train as training
    from course.autoencoder import AEConfig, Autoencoder
    from course.data import ShapesDataset, render_tensors

    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}: choose among {', '.join(VARIANTS)}")
    images, _ = render_tensors(ShapesDataset(8000, size=64, split="train", seed=0))
    for name in names:
        torch.manual_seed(0)
        model = Autoencoder(AEConfig(**VARIANTS[name]))
        config = training.TrainConfig(steps=steps, lr=1e-3, warmup=100, decay="cosine", ema_decay=None)
        start = time.perf_counter()
        result = training.train(model, ae_train.ae_loss, ae_train.batch_getter(images, 64, 32, 0), config, progress=False)
        seconds = time.perf_counter() - start
        legibility = ae_train.legibility(result.model.eval(), 600)["all"]
        row = {"name": name, "config": VARIANTS[name], "steps": steps, "s_per_step": round(seconds / steps, 3),
               "threads": torch.get_num_threads(), "psnr": legibility["psnr_db"], "acc": legibility["accuracy_on_reconstructions"]}
        print(json.dumps(row), flush=True)
        with OUT.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.splitlines()[2].strip())
    main(int(sys.argv[1]), sys.argv[2:])
