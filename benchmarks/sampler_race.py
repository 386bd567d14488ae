"""Every course sampler against every diffusers scheduler setting, at equal network evaluations, on a
Gaussian mixture whose exact ε is known (no learning error: what remains is the sampler's own error).

    python benchmarks/sampler_race.py                  # 10 and 20 evaluations, writes data/sampler_race.json
    python benchmarks/sampler_race.py --points 4000    # quicker

Setting: Stable Diffusion's scaled-linear schedule (T = 1000), the data a ring of six Gaussians
(lesson 06's), x_T fixed. Each sampler runs with the largest number of steps whose evaluations fit
the budget (counted by wrapping the model, not computed: Heun costs two per step, PNDM one extra).

Error ("distribution error"): sliced Wasserstein distance between the sampler's points and the exact
probability-flow ODE's points from the same x_T, solved past the schedule's t = 1 floor down to
σ̃ ≈ 3·10⁻⁷ (``course.grid_search.mixture_flow``; the script checks 1,000 against 2,000 steps). Every
sampler of a discrete schedule stops at t = 1 (σ̃ ≈ 0.03 here), so what that floor costs is printed
too: it is part of every sampler's error, course's and diffusers' alike. The ODE carries
N(0, I) exactly onto the data, so this compares the sampler's output law with the true one through
common random numbers: no sampling floor for deterministic samplers. Stochastic samplers (DDPM,
Euler a, SDE variants) are not coupled to the ODE, so theirs includes the floor printed (two
independent draws of the truth). Also reported: the sliced distance to an independent draw of the
truth, and the mean transport error ‖x − x_ODE‖.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course.adapter import Denoiser  # noqa: E402
from course.checkpoints import hardware  # noqa: E402
from course.paths import data_dir  # noqa: E402
from course.grid_search import load_grid, mixture_flow, toy_grid  # noqa: E402
from course.grids import GRIDS  # noqa: E402
from course.noise_schedule import NoiseSchedule  # noqa: E402
from course.samplers import SOLVERS, STOCHASTIC, evaluations, grid_for, sample  # noqa: E402
from course.schedules import get_betas  # noqa: E402
from course.toy2d import GaussianMixture, sliced_wasserstein  # noqa: E402

RESULTS = data_dir() / "sampler_race.json"  # lesson 06 reads it


def course_settings():
    """(label, sampler, grid) for every course sampler on every grid."""
    for name in SOLVERS:
        for grid in GRIDS:
            yield f"course {name} · {grid}", name, grid


def diffusers_settings():
    """(label, class name, config, stochastic) for every diffusers scheduler setting that applies to an ε model on a
    discrete VP schedule."""
    spacings = ("leading", "trailing", "linspace")
    for sp in spacings:
        # clip_sample=False as in Stable Diffusion's config (diffusers' default clamps x̂_0 to [−1, 1], wrong for latents)
        yield f"DDIM · {sp}", "DDIMScheduler", {"timestep_spacing": sp, "set_alpha_to_one": True, "clip_sample": False}, False
        yield f"DDIM · {sp} · alpha_to_one=False", "DDIMScheduler", {"timestep_spacing": sp, "set_alpha_to_one": False, "clip_sample": False}, False
        yield f"DDPM · {sp}", "DDPMScheduler", {"timestep_spacing": sp, "clip_sample": False, "variance_type": "fixed_small"}, True
        yield f"PNDM (PLMS) · {sp}", "PNDMScheduler", {"timestep_spacing": sp, "skip_prk_steps": True, "set_alpha_to_one": True}, False
        yield f"PNDM (PRK+PLMS) · {sp}", "PNDMScheduler", {"timestep_spacing": sp, "skip_prk_steps": False}, False
        yield f"EulerAncestral · {sp}", "EulerAncestralDiscreteScheduler", {"timestep_spacing": sp}, True
        yield f"KDPM2Ancestral · {sp}", "KDPM2AncestralDiscreteScheduler", {"timestep_spacing": sp}, True
        for sig in ("default", "karras", "exponential", "beta"):
            extra = {} if sig == "default" else {f"use_{sig}_sigmas": True}
            yield f"Euler · {sp} · {sig}", "EulerDiscreteScheduler", {"timestep_spacing": sp, **extra}, False
            yield f"Heun · {sp} · {sig}", "HeunDiscreteScheduler", {"timestep_spacing": sp, **extra}, False
            yield f"KDPM2 · {sp} · {sig}", "KDPM2DiscreteScheduler", {"timestep_spacing": sp, **extra}, False
            yield f"LMS · {sp} · {sig}", "LMSDiscreteScheduler", {"timestep_spacing": sp, **extra}, False
        for order in (2, 3):
            for algo in ("dpmsolver++", "dpmsolver"):
                for sig in ("default", "karras", "lu_lambdas", "exponential", "beta"):
                    extra = {} if sig == "default" else {f"use_{sig}" if sig == "lu_lambdas" else f"use_{sig}_sigmas": True}
                    for final in ("zero", "sigma_min"):
                        yield (f"DPMSolverMultistep {algo} {order} · {sp} · {sig} · final {final}", "DPMSolverMultistepScheduler",
                               {"timestep_spacing": sp, "algorithm_type": algo, "solver_order": order, "final_sigmas_type": final, **extra}, False)
                    yield (f"DPMSolverMultistep {algo} {order} · {sp} · {sig} · euler_at_final", "DPMSolverMultistepScheduler",
                           {"timestep_spacing": sp, "algorithm_type": algo, "solver_order": order, "euler_at_final": True, **extra}, False)
            yield (f"DPMSolverMultistep sde-dpmsolver++ {order} · {sp}", "DPMSolverMultistepScheduler",
                   {"timestep_spacing": sp, "algorithm_type": "sde-dpmsolver++", "solver_order": order}, True)
            for sig in ("default", "karras"):
                extra = {} if sig == "default" else {"use_karras_sigmas": True}
                yield (f"DPMSolverSinglestep {order} · {sp} · {sig}", "DPMSolverSinglestepScheduler",
                       {"timestep_spacing": sp, "solver_order": order, **extra}, False)
                yield f"DEIS {order} · {sp} · {sig}", "DEISMultistepScheduler", {"timestep_spacing": sp, "solver_order": order, **extra}, False
                for variant in ("bh1", "bh2"):
                    yield (f"UniPC {variant} {order} · {sp} · {sig}", "UniPCMultistepScheduler",
                           {"timestep_spacing": sp, "solver_order": order, "solver_type": variant, **extra}, False)
                    yield (f"UniPC {variant} {order} · {sp} · {sig} · final sigma_min", "UniPCMultistepScheduler",
                           {"timestep_spacing": sp, "solver_order": order, "solver_type": variant, "final_sigmas_type": "sigma_min", **extra}, False)
        for order in (1, 2, 3):
            yield f"SASolver predictor {order} · {sp}", "SASolverScheduler", {"timestep_spacing": sp, "predictor_order": order, "corrector_order": order, "tau_func": lambda t: 0}, False


def run_diffusers(cls_name: str, config: dict, eps_model, x_T: torch.Tensor, steps: int, seed: int):
    """diffusers' own loop; returns (x_0, evaluations)."""
    import diffusers

    scheduler = getattr(diffusers, cls_name)(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                             prediction_type="epsilon", **config)
    scheduler.set_timesteps(steps)
    x = x_T.float() * scheduler.init_noise_sigma
    g = torch.Generator().manual_seed(seed)
    calls = 0
    for tau in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, tau)
        t = torch.full((x.shape[0],), float(tau) + 1, dtype=torch.float64)  # diffusers' τ is our t − 1
        eps = eps_model(model_input.double(), t).float()
        calls += 1
        kwargs = {"generator": g} if "generator" in scheduler.step.__code__.co_varnames else {}
        x = scheduler.step(eps, tau, x, **kwargs).prev_sample
    return x.double(), calls


def steps_for_budget(count_evaluations, budget: int) -> int | None:
    """The largest number of steps whose evaluations fit the budget."""
    best = None
    for steps in range(1, budget + 1):
        if count_evaluations(steps) <= budget:
            best = steps
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()

    betas = get_betas("scaled_linear", 1000)
    schedule = NoiseSchedule.from_betas(betas)
    mixture = GaussianMixture.ring(k=6, radius=0.8, s=0.08)
    eps = mixture.eps(schedule)
    x_T = torch.randn(args.points, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = mixture_flow(mixture, x_T, schedule, 2000)
    ode_error = (mixture_flow(mixture, x_T, schedule, 1000) - exact).norm(dim=1).mean().item()
    floor_t1 = sliced_wasserstein(sample("dpmpp_3m", eps, x_T, schedule, 2000, grid="log_snr"), exact, n_projections=128)
    truth = mixture.sample(args.points, torch.Generator().manual_seed(0))
    floor = sliced_wasserstein(mixture.sample(args.points, torch.Generator().manual_seed(1)), truth, n_projections=128)

    def score(x):
        return {"sw_to_ode": sliced_wasserstein(x, exact, n_projections=128), "sw_to_truth": sliced_wasserstein(x, truth, n_projections=128),
                "transport": (x - exact).norm(dim=1).mean().item()}

    rows = []
    for budget in args.budgets:
        for label, name, grid in course_settings():
            steps = steps_for_budget(lambda s: evaluations(name, s), budget)
            counted = Denoiser(eps, schedule)
            x = sample(name, counted, x_T, schedule, steps, generator=torch.Generator().manual_seed(3), grid=grid)
            rows.append({"budget": budget, "who": "course", "setting": label, "steps": steps, "evaluations": counted.calls,
                         "stochastic": name in STOCHASTIC, **score(x)})
        try:  # the grid tuned on another mixture (course.grid_search.calibration_mixture), never on this one
            grid = load_grid("toy_mixture", "dpmpp_3m", budget)
        except (FileNotFoundError, ValueError):
            grid, _ = toy_grid(budget)
        counted = Denoiser(eps, schedule)
        x = SOLVERS["dpmpp_3m"](counted, x_T, grid, schedule)
        rows.append({"budget": budget, "who": "course", "setting": "course dpmpp_3m · optimised (calibration mixture)", "steps": budget,
                     "evaluations": counted.calls, "stochastic": False, **score(x)})
        for label, cls_name, config, stochastic in diffusers_settings():
            try:
                probe = {}

                def count(s):
                    if s not in probe:
                        probe[s] = run_diffusers(cls_name, config, eps, x_T[:2], s, 3)[1]
                    return probe[s]

                steps = steps_for_budget(count, budget)
                if steps is None:
                    continue
                x, calls = run_diffusers(cls_name, config, eps, x_T, steps, 3)
            except Exception as error:  # a combination diffusers refuses: reported, not fatal
                rows.append({"budget": budget, "who": "diffusers", "setting": label, "error": f"{type(error).__name__}: {str(error)[:120]}"})
                continue
            if not bool(torch.isfinite(x).all()):
                rows.append({"budget": budget, "who": "diffusers", "setting": label, "steps": steps, "evaluations": calls, "error": "non-finite output"})
                continue
            rows.append({"budget": budget, "who": "diffusers", "setting": label, "steps": steps, "evaluations": calls, "stochastic": stochastic, **score(x)})

    print(f"exact ODE reference: the mixture's flow to σ̃ ≈ 3e-7 (1,000 and 2,000 steps differ by {ode_error:.1e} on average)")
    print(f"what stopping at t = 1 costs (2,000 steps to t = 1, then x̂_0): SW to the exact ODE {floor_t1:.4f}")
    print(f"floor (two independent draws of the truth, sliced Wasserstein): {floor:.4f}; {args.points} points, {hardware()}")
    summary = {}
    for budget in args.budgets:
        ok = sorted((r for r in rows if r["budget"] == budget and "error" not in r), key=lambda r: r["sw_to_ode"])
        print(f"\n## {budget} evaluations: the 12 best settings, then the best of each side")
        print(f"| setting | steps | evaluations | SW to the exact ODE | SW to the truth | transport |")
        print("|---|---|---|---|---|---|")
        for r in ok[:12]:
            print(f"| {r['setting']} | {r['steps']} | {r['evaluations']} | {r['sw_to_ode']:.4f} | {r['sw_to_truth']:.4f} | {r['transport']:.4f} |")
        best = {who: min((r for r in ok if r["who"] == who), key=lambda r: r["sw_to_ode"]) for who in ("course", "diffusers")}
        for who, r in best.items():
            print(f"best {who:>9}: {r['setting']} ({r['evaluations']} evaluations): SW to the ODE {r['sw_to_ode']:.4f}")
        ratio = best["course"]["sw_to_ode"] / best["diffusers"]["sw_to_ode"]
        print(f"course / diffusers = {ratio:.2f} (target at 10 evaluations: ≤ 0.5)")
        failed = sum(1 for r in rows if r["budget"] == budget and "error" in r)
        print(f"{len(ok)} settings ran ({sum(r['who'] == 'diffusers' for r in ok)} diffusers), {failed} refused by diffusers")
        summary[str(budget)] = {"best": best, "ratio": ratio}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"points": args.points, "floor": floor, "floor_t1": floor_t1, "reference_self_error": ode_error, "threads": args.threads,
                                   "hardware": hardware(), "wall_time_s": round(time.perf_counter() - start, 1),
                                   "summary": summary, "rows": rows}, indent=1, default=str) + "\n")
    print(f"\nwrote {RESULTS} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
