"""Samplers: solvers over a timestep grid (slides: « Types de Schedulers »), in k-diffusion's shape.

Three roles, kept apart (:mod:`course.noise_schedule`, :mod:`course.adapter`, this module):

    schedule   ᾱ_t, α_t, σ_t, λ_t, σ̃_t = σ_t/α_t and t ↔ σ̃           NoiseSchedule
    grid       the instants t_0 > … > t_S = 0 a solver visits         course.grids
    adapter    the network's ε / x_0 / v prediction → (x̂_0, ε̂)       Denoiser
    solver     one function ``solver(model, x, grid, schedule, …)``    here

Every solver takes the network (or a :class:`~course.adapter.Denoiser`), the starting noise x in the
"variance preserving" units of the training (x_T ~ N(0, I)), the grid and the schedule, and returns x
at t = 0. ``callback(t, x_next, x0_hat)`` sees every step (t the instant stepped from). Guidance and
conditioning wrap the model (a closure): solvers know nothing of them. ``project(t_next, x) -> x``, if given,
replaces the state after every step, in the same units (inpainting's blend, :mod:`course.inpaint`). Timesteps follow
:mod:`course.schedules` (t ∈ 1…T for the model, ᾱ_0 = 1 at the clean end); diffusers numbers the
same steps τ = t − 1, and its "final alpha" (``set_alpha_to_one=True``) is our ᾱ_0 = 1.

    ddim             Song et al. 2021, eq. 12 (η = 0: deterministic; η = 1: DDPM-like)        1 evaluation a step
    ddpm             Ho et al. 2020, eq. 6–7 and Algorithm 2, on any sub-grid                  1
    pndm             Liu et al. 2022, eq. 12 (PLMS, Stable Diffusion's warm-up)                 1 (+1 at the start)
    euler_ancestral  Karras et al. 2022, Alg. 2 with ancestral noise (k-diffusion)              1
    heun             Karras et al. 2022, Algorithm 1 (deterministic, second order)              2 (1 at the last step)
    dpmpp_2m         Lu et al. 2022, DPM-Solver++(2M), Algorithm 2                              1
    dpmpp_3m         Lu et al. 2022, DPM-Solver++ multistep of order 3 (§3.3, diffusers' form)  1
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from course.adapter import Denoiser, Model, Prediction, as_denoiser, timestep_batch
from course.grids import SPACINGS, check_grid, dpm_spaced, dpm_timesteps, make_grid, spaced, timesteps  # noqa: F401 (re-exported)
from course.noise_schedule import NoiseSchedule
from course.yours import pick

Callback = Callable[[float, torch.Tensor, torch.Tensor], None]
Project = Callable[[float, torch.Tensor], torch.Tensor]


def _t(value: torch.Tensor) -> int | float:
    """A grid instant as a Python number: an int at integer steps (what callbacks and tables print)."""
    v = float(value)
    return int(v) if v == int(v) else v


def _setup(model, x, grid, schedule, prediction, clip_x0=None) -> tuple[Denoiser, torch.Tensor]:
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a course.noise_schedule.NoiseSchedule, got {type(schedule).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor (the starting noise), got {getattr(x, 'dtype', type(x).__name__)}")
    return as_denoiser(model, schedule, prediction, clip_x0), check_grid(grid, schedule.T)


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


# ----------------------------------------------------------------------------- DDIM


def ddim_step(
    x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor, alphas_cumprod: torch.Tensor,
    eta: float = 0.0, z: torch.Tensor | None = None, clip_x0: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x_{t_prev} = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z, σ = η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev)
    (Song et al. 2021, eq. 12 and 16), at integer t. Returns (x_{t_prev}, x̂_0)."""
    abar_t, abar_prev = float(alphas_cumprod[t]), float(alphas_cumprod[t_prev])
    x0_hat = (x_t - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        eps = (x_t - math.sqrt(abar_t) * x0_hat) / math.sqrt(1 - abar_t)
    return _ddim_update(x_t, x0_hat, eps, abar_t, abar_prev, eta, z), x0_hat


def ddim_update(x_t: torch.Tensor, eps: torch.Tensor, abar_t, abar_prev) -> torch.Tensor:
    """x_{t'} = √ᾱ_{t'}·x̂_0 + √(1 − ᾱ_{t'})·ε̂, x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t: the deterministic DDIM step from
    the two ᾱ (Song et al. 2021, eq. 12, η = 0), what lesson 06's exercise writes and lesson 07's loop calls."""
    abar_t, abar_prev = float(abar_t), float(abar_prev)
    x0_hat = (x_t - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
    return _ddim_update(x_t, x0_hat, eps, abar_t, abar_prev, 0.0, None)


def _ddim_update(x_t, x0_hat, eps, abar_t: float, abar_prev: float, eta: float, z) -> torch.Tensor:
    sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))
    x_prev = math.sqrt(abar_prev) * x0_hat + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
    if eta > 0:
        if z is None:
            raise ValueError("eta > 0 needs noise z")
        x_prev = x_prev + sigma * z
    return x_prev


@torch.no_grad()
def ddim(model: Model | Denoiser, x: torch.Tensor, grid: torch.Tensor, schedule: NoiseSchedule, eta: float = 0.0,
         generator: torch.Generator | None = None, prediction: Prediction = "epsilon", clip_x0: float | None = None,
         callback: Callback | None = None, project: Project | None = None) -> torch.Tensor:
    """DDIM from grid[0] down to 0, one evaluation a step (Song et al. 2021, eq. 12); η = 0 is deterministic."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like), got {eta}")
    denoise, grid = _setup(model, x, grid, schedule, prediction, clip_x0)
    for t, s in zip(grid[:-1], grid[1:]):
        x0_hat, eps = denoise(x, t)
        z = _noise(x, generator) if eta > 0 else None
        yours = pick("ddim_step") if eta == 0 else None  # the learner's step (course.yours.use), η = 0 only
        if yours is not None:
            abar_t, abar_s = (torch.tensor(float(schedule.abar(u)), dtype=x.dtype, device=x.device) for u in (t, s))
            x = yours(x, eps, abar_t, abar_s)
        else:
            x = _ddim_update(x, x0_hat, eps, float(schedule.abar(t)), float(schedule.abar(s)), eta, z)
        if project is not None:
            x = project(_t(s), x)
        if callback is not None:
            callback(_t(t), x, x0_hat)
    return x


# ----------------------------------------------------------------------------- DDPM (ancestral) on any grid

VARIANCES: tuple[str, ...] = ("beta_tilde", "beta")


@torch.no_grad()
def ddpm(model: Model | Denoiser, x: torch.Tensor, grid: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None,
         variance: str = "beta_tilde", prediction: Prediction = "epsilon", clip_x0: float | None = None,
         callback: Callback | None = None, project: Project | None = None) -> torch.Tensor:
    """Ancestral DDPM from t to the next instant s: the posterior q(x_s | x_t, x̂_0) with β' = 1 − ᾱ_t/ᾱ_s (Ho et al. 2020,
    eq. 6–7, as diffusers' DDPMScheduler); on the full grid T, …, 1, 0 it is Algorithm 2. ``variance``: "beta_tilde"
    (β̃' = (1 − ᾱ_s)/(1 − ᾱ_t)·β', the posterior's) or "beta" (β', Ho et al.'s other choice, §3.2)."""
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}: choose one of {', '.join(VARIANCES)}")
    denoise, grid = _setup(model, x, grid, schedule, prediction, clip_x0)
    for t, s in zip(grid[:-1], grid[1:]):
        x0_hat, _ = denoise(x, t)
        a_t, a_s = float(schedule.abar(t)), float(schedule.abar(s))
        beta = 1 - a_t / a_s
        x = (math.sqrt(a_s) * beta / (1 - a_t)) * x0_hat + (math.sqrt(1 - beta) * (1 - a_s) / (1 - a_t)) * x
        if s > 0:
            var = (1 - a_s) / (1 - a_t) * beta if variance == "beta_tilde" else beta
            x = x + math.sqrt(max(var, 1e-20)) * _noise(x, generator)
        if project is not None:
            x = project(_t(s), x)
        if callback is not None:
            callback(_t(t), x, x0_hat)
    return x


# ----------------------------------------------------------------------------- PNDM


def pndm_transfer(x: torch.Tensor, t, t_prev, eps: torch.Tensor, alphas_cumprod: torch.Tensor | NoiseSchedule) -> torch.Tensor:
    """The pseudo-numerical transfer φ(x_t, ε, t → t') of Liu et al. 2022, eq. 9 (the same map as deterministic DDIM)."""
    if isinstance(alphas_cumprod, NoiseSchedule):
        a_t, a_prev = float(alphas_cumprod.abar(t)), float(alphas_cumprod.abar(t_prev))
    else:
        a_t, a_prev = float(alphas_cumprod[t]), float(alphas_cumprod[t_prev])
    denom = a_t * math.sqrt(1 - a_prev) + math.sqrt(a_t * (1 - a_t) * a_prev)
    return math.sqrt(a_prev / a_t) * x - ((a_prev - a_t) / denom) * eps


@torch.no_grad()
def pndm(model: Model | Denoiser, x: torch.Tensor, grid: torch.Tensor, schedule: NoiseSchedule, prediction: Prediction = "epsilon",
         callback: Callback | None = None, project: Project | None = None) -> torch.Tensor:
    """PLMS, the pseudo linear multistep method of PNDM (Liu et al. 2022, eq. 12), S + 1 evaluations.

    Warm-up: a linear multistep method needs past ε. We follow Stable Diffusion's PNDM setting
    (diffusers ``skip_prk_steps=True``): the first step is a second-order step (ε at t and at the
    provisional next instant, averaged), instead of the paper's three Runge-Kutta steps (12 evaluations),
    which cost more than they bring at 20–50 steps. Then ε' combines the last 2, 3, then 4 ε with the
    Adams–Bashforth weights (3, −1)/2, (23, −16, 5)/12, (55, −59, 37, −9)/24 (which assume equal steps).
    """
    denoise, grid = _setup(model, x, grid, schedule, prediction)
    history: list[torch.Tensor] = []
    for i, (t, s) in enumerate(zip(grid[:-1], grid[1:])):
        _, eps = denoise(x, t)
        if i == 0:  # warm-up: try the step, look again, average
            x_try = pndm_transfer(x, t, s, eps, schedule)
            eps_try = denoise.raw(x_try, s) if s == 0 else denoise(x_try, s)[1]
            history.append(eps)
            eps_prime = (eps + eps_try) / 2
        else:
            history = (history + [eps])[-4:]
            e = history[::-1]  # e[0] is the newest
            if len(e) == 2:
                eps_prime = (3 * e[0] - e[1]) / 2
            elif len(e) == 3:
                eps_prime = (23 * e[0] - 16 * e[1] + 5 * e[2]) / 12
            else:
                eps_prime = (55 * e[0] - 59 * e[1] + 37 * e[2] - 9 * e[3]) / 24
        x_next = pndm_transfer(x, t, s, eps_prime, schedule)
        if project is not None:
            x_next = project(_t(s), x_next)
        if callback is not None:
            a = float(schedule.abar(t))
            callback(_t(t), x_next, (x - math.sqrt(1 - a) * eps_prime) / math.sqrt(a))
        x = x_next
    return x


# ----------------------------------------------------------------------------- σ̃ view (Karras et al. 2022)


def sigmas_from(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """σ̃_t = √((1 − ᾱ_t)/ᾱ_t): x_t/√ᾱ_t = x_0 + σ̃_t·ε, the "variance exploding" view of the same process (Karras et al. 2022, §2)."""
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


def _ve(schedule: NoiseSchedule, grid: torch.Tensor) -> list[float]:
    return [float(s) for s in schedule.sigma_ve(grid)]


@torch.no_grad()
def euler_ancestral(model: Model | Denoiser, x: torch.Tensor, grid: torch.Tensor, schedule: NoiseSchedule,
                    generator: torch.Generator | None = None, prediction: Prediction = "epsilon",
                    callback: Callback | None = None, project: Project | None = None) -> torch.Tensor:
    """Euler ancestral ("Euler a"): an Euler step of the probability-flow ODE down to σ̃_down, then fresh noise
    σ̃_up, with σ̃_up² + σ̃_down² = σ̃_next² (Karras et al. 2022, Alg. 2 with ancestral noise; k-diffusion
    ``sample_euler_ancestral``). Works on y = x/α = x_0 + σ̃·ε; the network still sees x = y/√(σ̃² + 1)."""
    denoise, grid = _setup(model, x, grid, schedule, prediction)
    sig = _ve(schedule, grid)
    y = x * math.sqrt(sig[0] ** 2 + 1)  # x_T/α_T, exactly
    for i, t in enumerate(grid[:-1]):
        s, s_next = sig[i], sig[i + 1]
        x0_hat, eps = denoise(y / math.sqrt(s**2 + 1), t)
        s_up = math.sqrt(s_next**2 * (s**2 - s_next**2) / s**2)
        s_down = math.sqrt(s_next**2 - s_up**2)
        y = y + eps * (s_down - s)  # dy/dσ̃ = (y − x̂_0)/σ̃ = ε
        y = y + s_up * _noise(y, generator)
        if project is not None:  # the blend is in the network's units, x = y/√(σ̃² + 1)
            y = project(_t(grid[i + 1]), y / math.sqrt(s_next**2 + 1)) * math.sqrt(s_next**2 + 1)
        if callback is not None:
            callback(_t(t), y / math.sqrt(s_next**2 + 1), x0_hat)
    return y


@torch.no_grad()
def heun(model: Model | Denoiser, x: torch.Tensor, grid: torch.Tensor, schedule: NoiseSchedule, prediction: Prediction = "epsilon",
         callback: Callback | None = None, project: Project | None = None) -> torch.Tensor:
    """Heun's second-order method on the probability-flow ODE dy/dσ̃ = ε̂(y, σ̃) (Karras et al. 2022, Algorithm 1,
    deterministic, S_churn = 0): an Euler step, then the slope at its end, and the step redone with the mean
    slope; the last step (to σ̃ = 0, where the slope is undefined) is Euler. 2S − 1 evaluations."""
    denoise, grid = _setup(model, x, grid, schedule, prediction)
    sig = _ve(schedule, grid)
    y = x * math.sqrt(sig[0] ** 2 + 1)
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        s, s_next = sig[i], sig[i + 1]
        x0_hat, d = denoise(y / math.sqrt(s**2 + 1), t)
        y_euler = y + (s_next - s) * d
        if s_next > 0:
            _, d_next = denoise(y_euler / math.sqrt(s_next**2 + 1), t_next)
            y = y + (s_next - s) * (d + d_next) / 2
        else:
            y = y_euler
        if project is not None:
            y = project(_t(t_next), y / math.sqrt(s_next**2 + 1)) * math.sqrt(s_next**2 + 1)
        if callback is not None:
            callback(_t(t), y / math.sqrt(s_next**2 + 1), x0_hat)
    return y


# ----------------------------------------------------------------------------- DPM-Solver++ (multistep)


@torch.no_grad()
def dpmpp_multistep(model: Model | Denoiser, x: torch.Tensor, grid: torch.Tensor, schedule: NoiseSchedule, order: int = 2,
                    prediction: Prediction = "epsilon", lower_order_final: bool = True,
                    callback: Callback | None = None, project: Project | None = None) -> torch.Tensor:
    """DPM-Solver++ of order 1, 2 or 3 in λ = log(α/σ), on x̂_0 predictions (Lu et al. 2022, Algorithm 2 and §3.3,
    in diffusers' form): x_s = (σ_s/σ_t)·x_t − α_s(e^{−h} − 1)·D, h = λ_s − λ_t, with D built from the last
    1, 2 or 3 x̂_0. The order ramps up over the first steps; the last step (to σ = 0, h = ∞) is first order,
    and with ``lower_order_final`` and fewer than 15 steps the one before it is at most second order."""
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    denoise, grid = _setup(model, x, grid, schedule, prediction)
    alphas = [float(a) for a in schedule.alpha(grid)]
    sigmas = [float(s) for s in schedule.sigma(grid)]
    lambdas = [math.log(a) - math.log(s) if s > 0 else math.inf for a, s in zip(alphas, sigmas)]
    S = len(grid) - 1
    x0s: list[torch.Tensor] = []  # x̂_0 at the instants visited, newest last
    for i, t in enumerate(grid[:-1]):
        x0_hat, _ = denoise(x, t)
        x0s = (x0s + [x0_hat])[-3:]
        last = i == S - 1
        second_last = i == S - 2 and lower_order_final and S < 15
        k = 1 if (order == 1 or i < 1 or last) else 2 if (order == 2 or i < 2 or second_last) else 3
        h = lambdas[i + 1] - lambdas[i]
        phi = math.expm1(-h)  # e^{−h} − 1 (−1 when h = ∞)
        a_next, ratio = alphas[i + 1], sigmas[i + 1] / sigmas[i]
        m0 = x0s[-1]
        if k == 1:
            x = ratio * x - a_next * phi * m0  # DDIM in disguise
        elif k == 2:
            r0 = (lambdas[i] - lambdas[i - 1]) / h
            d1 = (m0 - x0s[-2]) / r0
            x = ratio * x - a_next * phi * m0 - 0.5 * a_next * phi * d1
        else:
            r0, r1 = (lambdas[i] - lambdas[i - 1]) / h, (lambdas[i - 1] - lambdas[i - 2]) / h
            d1_0, d1_1 = (m0 - x0s[-2]) / r0, (x0s[-2] - x0s[-3]) / r1
            d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            x = ratio * x - a_next * phi * m0 + a_next * (phi / h + 1) * d1 - a_next * ((phi + h) / h**2 - 0.5) * d2
        if project is not None:
            x = project(_t(grid[i + 1]), x)
        if callback is not None:
            callback(_t(t), x, x0_hat)
    return x


def dpmpp_2m(model, x, grid, schedule, prediction: Prediction = "epsilon", callback: Callback | None = None, lower_order_final: bool = True,
             project: Project | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2, "midpoint" form as in diffusers)."""
    return dpmpp_multistep(model, x, grid, schedule, 2, prediction, lower_order_final, callback, project)


def dpmpp_3m(model, x, grid, schedule, prediction: Prediction = "epsilon", callback: Callback | None = None, lower_order_final: bool = True,
             project: Project | None = None) -> torch.Tensor:
    """DPM-Solver++ multistep of order 3 (Lu et al. 2022, §3.3; diffusers ``solver_order=3``)."""
    return dpmpp_multistep(model, x, grid, schedule, 3, prediction, lower_order_final, callback, project)


# ----------------------------------------------------------------------------- one entry point

SOLVERS: dict[str, Callable] = {
    "ddpm": ddpm,
    "ddim": ddim,
    "pndm": pndm,
    "euler_a": euler_ancestral,
    "dpmpp": dpmpp_2m,
    "heun": heun,
    "dpmpp_3m": dpmpp_3m,
}
SAMPLERS = SOLVERS  # the name the lessons and the CLI use
STOCHASTIC = {"ddpm", "euler_a"}  # draw fresh noise at each step (ddim too when eta > 0)
DPM_FAMILY = {"dpmpp", "dpmpp_3m"}  # their spaced grids are laid as diffusers' DPMSolverMultistepScheduler lays them
DEFAULT_GRID = {"ddpm": "leading", "ddim": "leading", "pndm": "leading", "euler_a": "leading", "dpmpp": "linspace",
                "heun": "karras", "dpmpp_3m": "karras"}


def evaluations(name: str, steps: int) -> int:
    """Network evaluations of ``steps`` steps of sampler ``name`` (what a comparison must hold equal)."""
    if name not in SOLVERS:
        raise ValueError(f"unknown sampler {name!r}: choose one of {', '.join(SOLVERS)}")
    return {"pndm": steps + 1, "heun": 2 * steps - 1}.get(name, steps)


def grid_for(name: str, schedule: NoiseSchedule, steps: int, grid: str | None = None, **kwargs) -> torch.Tensor:
    """The grid sampler ``name`` runs with ``steps`` steps: ``grid`` (a name of :data:`course.grids.GRIDS`)
    or the sampler's default (diffusers' spacing for the five classic samplers, Karras for Heun and 3M);
    "optimised": the grid tuned for the shipped latent U-Net by ``python -m course.grid_search`` (data/grids.json)."""
    grid = grid or DEFAULT_GRID.get(name, "leading")
    if grid == "optimised":
        from course.grid_search import load_grid

        return load_grid("ldm_unet", name, steps)
    if grid in SPACINGS:
        return dpm_spaced(schedule.T, steps, grid) if name in DPM_FAMILY else spaced(schedule.T, steps, grid)
    return make_grid(grid, schedule, steps, **kwargs)


def sample(name: str, model: Model | Denoiser, x_T: torch.Tensor, betas: torch.Tensor | NoiseSchedule, steps: int,
           generator: torch.Generator | None = None, grid: str | torch.Tensor | None = None, spacing: str | None = None,
           **kwargs) -> torch.Tensor:
    """Run the sampler called ``name`` (one of :data:`SAMPLERS`, or a solver function) for ``steps`` steps from x_T.

    ``betas``: the training schedule (β_t, or a NoiseSchedule); ``grid``: a grid name or tensor (default: the
    sampler's own, see :func:`grid_for`); ``spacing`` is the older name for a spaced grid."""
    schedule = betas if isinstance(betas, NoiseSchedule) else NoiseSchedule.from_betas(betas)
    if callable(name):  # a solver written by hand, solver(model, x_T, grid, schedule) (lesson 06): DDIM's grid by default
        grid = grid if isinstance(grid, torch.Tensor) else grid_for("ddim", schedule, steps, grid or spacing)
        return name(lambda x, t: model(x, timestep_batch(t, x)), x_T, grid, schedule)
    if name not in SOLVERS:
        raise ValueError(f"unknown sampler {name!r}: choose one of {', '.join(SOLVERS)}")
    if grid is None or isinstance(grid, str):
        grid = grid_for(name, schedule, steps, grid or spacing)
    if name in STOCHASTIC or (name == "ddim" and kwargs.get("eta", 0) > 0):
        kwargs["generator"] = generator
    return SOLVERS[name](model, x_T, grid, schedule, **kwargs)


# ----------------------------------------------------------------------------- the earlier signatures
# (model, x_T, betas, steps, spacing): kept for the lessons' cells; each builds the grid and calls the solver.


def ddim_sample(model, x_T, betas, steps: int = 50, eta: float = 0.0, spacing: str = "leading", generator=None, clip_x0=None, callback=None):
    """DDIM from x_T down to x_0 in ``steps`` evaluations on a spaced grid (Song et al. 2021)."""
    return sample("ddim", model, x_T, betas, steps, generator, spacing=spacing, eta=eta, clip_x0=clip_x0, callback=callback)


def ddpm_strided(model, x_T, betas, steps: int = 1000, spacing: str = "leading", generator=None, clip_x0=None, callback=None):
    """Ancestral DDPM on a spaced sub-grid (Ho et al. 2020, eq. 6–7, as diffusers' DDPMScheduler)."""
    return sample("ddpm", model, x_T, betas, steps, generator, spacing=spacing, clip_x0=clip_x0, callback=callback)


def pndm_sample(model, x_T, betas, steps: int = 50, spacing: str = "leading", callback=None):
    """PLMS on a spaced grid (Liu et al. 2022)."""
    return sample("pndm", model, x_T, betas, steps, spacing=spacing, callback=callback)


def euler_ancestral_sample(model, x_T, betas, steps: int = 30, spacing: str = "leading", generator=None, callback=None):
    """Euler a on a spaced grid (Karras et al. 2022; k-diffusion)."""
    return sample("euler_a", model, x_T, betas, steps, generator, spacing=spacing, callback=callback)


def dpmpp_2m_sample(model, x_T, betas, steps: int = 20, spacing: str = "linspace", callback=None):
    """DPM-Solver++(2M) on diffusers' DPM grid (Lu et al. 2022)."""
    return sample("dpmpp", model, x_T, betas, steps, spacing=spacing, callback=callback)
