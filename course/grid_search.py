"""Optimised timestep grids, in the spirit of "Align Your Steps" (Sabour et al. 2024): for a given model
and solver, place S instants where they cut the solver's error most.

Sabour et al. minimise an upper bound on the divergence between the discretised and the true reverse
process; we minimise the quantity itself, the distance between the solver's endpoints on the grid and
a reference solution of the same ODE from the same starting noise (many steps, or closed form), on a
calibration set that the grid is then judged away from. The grid is parametrised by S positive weights
(a softmax): the first S − 1 cumulative sums place instants 2 … S in λ between λ_T and λ_1 (the first
instant stays at t = T, where x_T ~ N(0, I) was drawn), and the last weight is the unused tail, so the
search may end the grid before t = 1. Nelder–Mead searches the weights, starting from uniform λ.

    python -m course.grid_search    # writes data/grids.json (toy mixture and shipped U-Net grids), a few minutes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

import numpy as np
import torch

from course.noise_schedule import NoiseSchedule
from course.paths import data_dir

GRIDS_FILE = "grids.json"


def grid_from_weights(u: np.ndarray, schedule: NoiseSchedule) -> torch.Tensor:
    """S weights → the grid [T, t_2, …, t_S, 0]: instants at cumulative softmax fractions of [λ_T, λ_1]."""
    steps = len(u)
    w = np.exp(u - u.max())
    frac = np.cumsum(w / w.sum())[: steps - 1]
    lam_T, lam_1 = float(schedule.lambda_(schedule.T)), float(schedule.lambda_(1))
    lams = np.concatenate([[lam_T], lam_T + (lam_1 - lam_T) * frac])
    ts = schedule.t_from_lambda(torch.tensor(lams, dtype=torch.float64)).clamp(1, schedule.T)
    return torch.cat([ts, torch.zeros(1, dtype=torch.float64)])


def optimise_grid(run: Callable[[torch.Tensor], torch.Tensor], reference: torch.Tensor, schedule: NoiseSchedule, steps: int,
                  iterations: int = 2000) -> tuple[torch.Tensor, dict]:
    """The grid of S = ``steps`` instants that minimises mean ‖run(grid) − reference‖ per sample.

    ``run(grid)``: the solver and model on the calibration noise, returning its endpoints (B, …).
    Returns the grid and a record (error of the uniform-λ start and of the result, evaluations of ``run``)."""
    if steps < 2:
        raise ValueError(f"steps must be ≥ 2 to optimise a grid, got {steps}")

    def loss(u: np.ndarray) -> float:
        grid = grid_from_weights(u, schedule)
        if bool((grid[1:-1] >= grid[:-2]).any()):  # two instants merged: not a grid
            return float("inf")
        x = run(grid)
        return (x - reference).flatten(1).norm(dim=1).mean().item()

    from scipy.optimize import minimize

    u0 = np.zeros(steps)
    u0[-1] = -8.0  # (almost) no tail: uniform λ from λ_T to λ_1
    start = loss(u0)
    result = minimize(loss, u0, method="Nelder-Mead", options={"maxiter": iterations, "xatol": 1e-3, "fatol": 1e-7})
    grid = grid_from_weights(result.x, schedule)
    return grid, {"uniform_log_snr_error": start, "optimised_error": float(result.fun), "evaluations": int(result.nfev)}


def mixture_flow(mixture, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int = 2000) -> torch.Tensor:
    """The probability-flow ODE of a Gaussian mixture from t = T (x_T) to the clean end, beyond the schedule's t = 1:
    the mixture's exact ε on a dense table whose λ runs from λ_T to 15 (σ̃ = 3·10⁻⁷), solved by DPM-Solver++ 3M
    with ``steps`` uniform-λ steps (2,000 and 4,000 steps agree to 6·10⁻⁷ on lesson 06's ring)."""
    from course.samplers import sample

    lams = torch.linspace(15.0, float(schedule.lambda_(schedule.T)), 20_001, dtype=torch.float64)
    dense = NoiseSchedule(torch.cat([torch.ones(1, dtype=torch.float64), torch.sigmoid(2 * lams)]))  # ᾱ = 1/(1 + e^{−2λ})
    return sample("dpmpp_3m", mixture.eps(dense), x_T, dense, steps, grid="log_snr")


def calibration_mixture():
    """The mixture grids are tuned on: eight Gaussians at random places (seed 11), s = 0.1; not lesson 06's ring."""
    from course.toy2d import GaussianMixture

    g = torch.Generator().manual_seed(11)
    return GaussianMixture(torch.rand(8, 2, generator=g) * 1.8 - 0.9, s=0.1)


def toy_grid(steps: int = 10, sampler: str = "dpmpp_3m", points: int = 2000, iterations: int = 2000) -> tuple[torch.Tensor, dict]:
    """A grid for the scaled-linear schedule tuned on :func:`calibration_mixture` with its exact ε."""
    from course.samplers import SOLVERS
    from course.schedules import get_betas

    schedule = NoiseSchedule.from_betas(get_betas("scaled_linear", 1000))
    mixture = calibration_mixture()
    x_T = torch.randn(points, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    reference = mixture_flow(mixture, x_T, schedule)
    eps = mixture.eps(schedule)
    return optimise_grid(lambda grid: SOLVERS[sampler](eps, x_T, grid, schedule), reference, schedule, steps, iterations)


def load_grid(key: str, sampler: str, steps: int) -> torch.Tensor:
    """A grid written by ``python -m course.grid_search`` (data/grids.json), e.g. ("ldm_unet", "dpmpp_3m", 10)."""
    path = data_dir() / GRIDS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: make it with python -m course.grid_search")
    grids = json.loads(path.read_text())["grids"]
    entry = grids.get(key, {}).get(sampler, {}).get(str(steps))
    if entry is None:
        have = [f"{k}/{s}/{n}" for k, by in grids.items() for s, by_n in by.items() for n in by_n]
        raise ValueError(f"no optimised grid for {key}/{sampler}/{steps} steps in {path.name}: it has {', '.join(have)}")
    return torch.tensor(entry["grid"], dtype=torch.float64)


def unet_grid(steps: int = 10, sampler: str = "dpmpp_3m", prompts: int = 16, reference_steps: int = 200, iterations: int = 250) -> tuple[torch.Tensor, dict]:
    """A grid for the shipped latent U-Net at the shipped guidance, tuned on validation prompts (never the test ones):
    the reference is the same solver with ``reference_steps`` uniform-λ steps from the same noise."""
    from course.evaluation import VALIDATION_SEED, heldout_prompts
    from course.guidance import guided
    from course.samplers import SOLVERS, sample
    from course.shipped import GUIDANCE, betas, latent_shape, load_clip, load_unet, text_states

    schedule = NoiseSchedule.from_betas(betas())
    _, texts = heldout_prompts(prompts, VALIDATION_SEED)
    clip, unet = load_clip(), load_unet()
    context, mask = text_states(texts, clip)
    null, null_mask = text_states([""], clip)
    eps = guided(unet, context, mask, null, null_mask, GUIDANCE)
    x_T = torch.randn((prompts, *latent_shape()), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        reference = sample(sampler, eps, x_T, schedule, reference_steps, grid="log_snr")
        return optimise_grid(lambda grid: SOLVERS[sampler](eps, x_T, grid, schedule), reference, schedule, steps, iterations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.grid_search", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10])
    parser.add_argument("--only", choices=("toy_mixture", "ldm_unet"), help="tune one family only (the file keeps the others)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = data_dir() / GRIDS_FILE
    out: dict = json.loads(path.read_text()) if path.exists() else {"grids": {}, "commands": {}}
    makers = {"toy_mixture": toy_grid, "ldm_unet": unet_grid}
    for key in [args.only] if args.only else list(makers):
        for steps in args.steps:
            start = time.perf_counter()
            grid, record = makers[key](steps)
            record["seconds"] = round(time.perf_counter() - start, 1)
            record["calibration"] = (calibration_mixture if key == "toy_mixture" else unet_grid).__doc__.split("\n")[0]
            out["grids"].setdefault(key, {}).setdefault("dpmpp_3m", {})[str(steps)] = {"grid": [round(float(t), 6) for t in grid], **record}
            out["commands"][key] = f"python -m course.grid_search --only {key} --steps {' '.join(map(str, args.steps))}"
            path.write_text(json.dumps(out, indent=1) + "\n")  # after each grid: an interrupted search keeps what it found
            print(f"{key}, DPM-Solver++ 3M, {steps} steps: {record}; grid {[round(float(t), 2) for t in grid]}", flush=True)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
