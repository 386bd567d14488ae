"""Samplers over a model callable ``model(x_t, t) -> ε̂`` (slides: « Types de Schedulers »).

Timestep convention (see :mod:`course.schedules`): t ∈ {1, …, T} for the model, ᾱ_0 = 1 for the
clean end. A sampler with S steps visits t_1 > t_2 > … > t_S ≥ 1 and ends at t = 0. diffusers names
the same steps τ = t − 1, and its "final alpha" (``set_alpha_to_one=True``) is our ᾱ_0 = 1.

Guidance and conditioning wrap the model (a closure); samplers know nothing of them.
"""

from __future__ import annotations

from typing import Callable

import torch

from course.ddpm import predict_x0
from course.schedules import alphas_cumprod as cumprod
from course.tensors import per_sample

SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")
Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def timesteps(T: int, steps: int, spacing: str = "leading") -> list[int]:
    """The S timesteps t (descending, in 1…T) a sampler visits, with diffusers' three spacings
    (Lin et al. 2024, Table 2): "leading" 1 + k·⌊T/S⌋, "trailing" T − k·T/S, "linspace" evenly from T to 1."""
    if not isinstance(steps, int) or steps < 1 or steps > T:
        raise ValueError(f"steps must be an integer in [1, {T}] (the training steps), got {steps!r}")
    if spacing == "leading":
        taus = [k * (T // steps) for k in range(steps)]
    elif spacing == "trailing":
        taus = [round(T - k * T / steps) - 1 for k in range(steps)]
    elif spacing == "linspace":
        taus = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().long().tolist()
    else:
        raise ValueError(f"unknown spacing {spacing!r}: choose one of {', '.join(SPACINGS)}")
    return sorted({tau + 1 for tau in taus}, reverse=True)


def ddim_step(
    x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor, alphas_cumprod: torch.Tensor,
    eta: float = 0.0, z: torch.Tensor | None = None, clip_x0: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x_{t_prev} = √ᾱ_prev·x̂_0 + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z, σ = η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev)
    (Song et al. 2021, eq. 12 and 16). Returns (x_{t_prev}, x̂_0)."""
    batch = torch.full((x_t.shape[0],), t, dtype=torch.long)
    x0_hat = predict_x0(x_t, batch, eps, alphas_cumprod)
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        abar_t = alphas_cumprod[t]
        eps = (x_t - per_sample(abar_t.sqrt().expand(x_t.shape[0]), x_t) * x0_hat) / per_sample((1 - abar_t).sqrt().expand(x_t.shape[0]), x_t)
    abar_t, abar_prev = alphas_cumprod[t], alphas_cumprod[t_prev]
    sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()
    b = x_t.shape[0]
    x_prev = per_sample(abar_prev.sqrt().expand(b), x_t) * x0_hat + per_sample((1 - abar_prev - sigma**2).clamp(min=0).sqrt().expand(b), x_t) * eps
    if eta > 0:
        if z is None:
            raise ValueError("eta > 0 needs noise z")
        x_prev = x_prev + per_sample(sigma.expand(b), x_t) * z
    return x_prev, x0_hat


@torch.no_grad()
def ddim_sample(
    model: Model,
    x_T: torch.Tensor,
    betas: torch.Tensor,
    steps: int = 50,
    eta: float = 0.0,
    spacing: str = "leading",
    generator: torch.Generator | None = None,
    clip_x0: float | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """DDIM from x_T down to x_0 in ``steps`` model calls (Song et al. 2021); η = 0 is deterministic."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like), got {eta}")
    abar = cumprod(betas)
    T = betas.numel() - 1
    x = x_T
    for t in timesteps(T, steps, spacing):
        # DDIM's stride: t_prev = t − ⌊T/S⌋, the next visited step for "leading" and "trailing"; with
        # "linspace" the grid is not uniform and, as in diffusers, the step still uses this stride
        t_prev = max(t - T // steps, 0)
        eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if eta > 0 else None
        x, x0_hat = ddim_step(x, t, t_prev, eps, abar, eta, z, clip_x0)
        if callback is not None:
            callback(t, x, x0_hat)
    return x


# ----------------------------------------------------------------------------- DDPM with any number of steps


@torch.no_grad()
def ddpm_strided(
    model: Model,
    x_T: torch.Tensor,
    betas: torch.Tensor,
    steps: int = 1000,
    spacing: str = "leading",
    generator: torch.Generator | None = None,
    clip_x0: float | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Ancestral DDPM on a subsequence t > t': the posterior q(x_t' | x_t, x̂_0) with β' = 1 − ᾱ_t/ᾱ_t' and
    variance β̃' (Ho et al. 2020, eq. 6–7, as diffusers' DDPMScheduler); with steps = T it is Algorithm 2."""
    abar = cumprod(betas)
    T = betas.numel() - 1
    ts = timesteps(T, steps, spacing)
    x = x_T
    b = x.shape[0]
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else 0
        eps = model(x, torch.full((b,), t, dtype=torch.long, device=x.device))
        x0_hat = predict_x0(x, torch.full((b,), t, dtype=torch.long), eps, abar)
        if clip_x0 is not None:
            x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        a_t, a_prev = abar[t], abar[t_prev]
        beta = 1 - a_t / a_prev
        coef_x0 = a_prev.sqrt() * beta / (1 - a_t)
        coef_xt = (1 - beta).sqrt() * (1 - a_prev) / (1 - a_t)
        x = per_sample(coef_x0.expand(b), x) * x0_hat + per_sample(coef_xt.expand(b), x) * x
        if t_prev > 0:
            variance = ((1 - a_prev) / (1 - a_t) * beta).clamp(min=1e-20)
            x = x + per_sample(variance.sqrt().expand(b), x) * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if callback is not None:
            callback(t, x, x0_hat)
    return x


# ----------------------------------------------------------------------------- PNDM


def pndm_transfer(x: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """The pseudo-numerical transfer φ(x_t, ε, t → t') of Liu et al. 2022, eq. 9 (the same map as deterministic DDIM)."""
    a_t, a_prev = alphas_cumprod[t], alphas_cumprod[t_prev]
    denom = a_t * (1 - a_prev).sqrt() + (a_t * (1 - a_t) * a_prev).sqrt()
    b = x.shape[0]
    return per_sample((a_prev / a_t).sqrt().expand(b), x) * x - per_sample(((a_prev - a_t) / denom).expand(b), x) * eps


@torch.no_grad()
def pndm_sample(
    model: Model,
    x_T: torch.Tensor,
    betas: torch.Tensor,
    steps: int = 50,
    spacing: str = "leading",
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """PLMS, the pseudo linear multistep method of PNDM (Liu et al. 2022, eq. 12), S + 1 model calls.

    Warm-up: a linear multistep method needs past ε. We follow Stable Diffusion's PNDM setting
    (diffusers ``skip_prk_steps=True``): the first step is a second-order step (ε at t and at the
    provisional t − δ, averaged), instead of the paper's three Runge-Kutta steps (12 model calls), which
    cost more than they bring at 20–50 steps. Then ε' combines the last 2, 3, then 4 ε with the
    Adams–Bashforth weights (3, −1)/2, (23, −16, 5)/12, (55, −59, 37, −9)/24. Each step goes from t to
    t − ⌊T/S⌋. (With "linspace" spacing diffusers' warm-up uses ε(x_{t_0}, t_1) as if taken at t_1 + δ;
    ours takes both ε where the step happens.)
    """
    abar = cumprod(betas)
    T = betas.numel() - 1
    delta = T // steps
    x = x_T
    b = x.shape[0]
    history: list[torch.Tensor] = []
    for i, t in enumerate(timesteps(T, steps, spacing)):
        t_prev = max(t - delta, 0)
        eps = model(x, torch.full((b,), t, dtype=torch.long, device=x.device))
        if i == 0:  # warm-up: try the step, look again, average
            x_try = pndm_transfer(x, t, t_prev, eps, abar)
            eps_try = model(x_try, torch.full((b,), t_prev, dtype=torch.long, device=x.device))
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
        x_next = pndm_transfer(x, t, t_prev, eps_prime, abar)
        if callback is not None:
            callback(t, x_next, predict_x0(x, torch.full((b,), t, dtype=torch.long), eps_prime, abar))
        x = x_next
    return x


# ----------------------------------------------------------------------------- σ parametrisation (Karras et al. 2022)


def sigmas_from(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """σ_t = √((1 − ᾱ_t)/ᾱ_t): x_t/√ᾱ_t = x_0 + σ_t·ε, the "variance exploding" view of the same process (Karras et al. 2022, §2)."""
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


@torch.no_grad()
def euler_ancestral_sample(
    model: Model,
    x_T: torch.Tensor,
    betas: torch.Tensor,
    steps: int = 30,
    spacing: str = "leading",
    generator: torch.Generator | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Euler ancestral ("Euler a"): an Euler step of the probability-flow ODE down to σ_down, then fresh
    noise σ_up, with σ_up² + σ_down² = σ_next² (Karras et al. 2022, Alg. 2 with ancestral noise; k-diffusion
    ``sample_euler_ancestral``). Works on y = x/√ᾱ = x_0 + σ·ε; the model still sees x = y/√(σ² + 1)."""
    abar = cumprod(betas)
    T = betas.numel() - 1
    ts = timesteps(T, steps, spacing)
    sig = sigmas_from(abar)
    sigmas = [sig[t] for t in ts] + [torch.zeros((), dtype=sig.dtype)]
    # start: diffusers scales unit noise by √(σ_max² + 1) with "leading" spacing (exactly x_T/√ᾱ_T) and by σ_max otherwise
    scale = (sigmas[0] ** 2 + 1).sqrt() if spacing == "leading" else sigmas[0]
    y = x_T * scale.to(x_T.dtype)
    b = y.shape[0]
    for i, t in enumerate(ts):
        s, s_next = sigmas[i], sigmas[i + 1]
        x_in = y / (s**2 + 1).sqrt().to(y.dtype)
        eps = model(x_in, torch.full((b,), t, dtype=torch.long, device=y.device))
        x0_hat = y - s.to(y.dtype) * eps
        s_up = (s_next**2 * (s**2 - s_next**2) / s**2).sqrt()
        s_down = (s_next**2 - s_up**2).sqrt()
        y = y + eps * (s_down - s).to(y.dtype)  # dy/dσ = (y − x̂_0)/σ = ε
        y = y + s_up.to(y.dtype) * torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        if callback is not None:
            callback(t, y / (s_next**2 + 1).sqrt().to(y.dtype), x0_hat)
    return y


# ----------------------------------------------------------------------------- DPM-Solver++


def dpm_timesteps(T: int, steps: int, spacing: str = "linspace") -> list[int]:
    """DPM-Solver's S timesteps as diffusers makes them: S + 1 points, the last (t = 0) dropped."""
    if not isinstance(steps, int) or steps < 1 or steps > T:
        raise ValueError(f"steps must be an integer in [1, {T}] (the training steps), got {steps!r}")
    if spacing == "linspace":
        taus = torch.linspace(0, T - 1, steps + 1, dtype=torch.float64).round().long().tolist()[1:]
    elif spacing == "leading":
        taus = [k * (T // (steps + 1)) for k in range(1, steps + 1)]
    elif spacing == "trailing":
        taus = [round(T - k * T / steps) - 1 for k in range(steps)]
    else:
        raise ValueError(f"unknown spacing {spacing!r}: choose one of {', '.join(SPACINGS)}")
    return sorted({tau + 1 for tau in taus}, reverse=True)


@torch.no_grad()
def dpmpp_2m_sample(
    model: Model,
    x_T: torch.Tensor,
    betas: torch.Tensor,
    steps: int = 20,
    spacing: str = "linspace",
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M): a second-order multistep solver of the diffusion ODE in λ = log(α/σ), using
    x̂_0 predictions (Lu et al. 2022, Algorithm 2, "midpoint" form as in diffusers); first-order at the
    first step and at the last one (down to σ = 0, where it returns x̂_0)."""
    abar = cumprod(betas)
    T = betas.numel() - 1
    ts = dpm_timesteps(T, steps, spacing)
    alphas = [abar[t].sqrt() for t in ts] + [torch.ones((), dtype=abar.dtype)]  # α_t = √ᾱ_t, 1 at the end
    sigmas = [(1 - abar[t]).sqrt() for t in ts] + [torch.zeros((), dtype=abar.dtype)]  # σ_t = √(1 − ᾱ_t)
    lambdas = [torch.log(a) - torch.log(s) for a, s in zip(alphas, sigmas)]  # log-SNR/2; +∞ at the end
    x = x_T
    b = x.shape[0]
    previous = None
    for i, t in enumerate(ts):
        eps = model(x, torch.full((b,), t, dtype=torch.long, device=x.device))
        x0_hat = (x - sigmas[i].to(x.dtype) * eps) / alphas[i].to(x.dtype)
        h = lambdas[i + 1] - lambdas[i]
        phi = torch.expm1(-h)  # e^{−h} − 1 (−1 when h = ∞)
        last = i == len(ts) - 1
        if previous is None or last:
            d = x0_hat  # first order: DDIM in disguise
        else:
            r = (lambdas[i] - lambdas[i - 1]) / h
            d = x0_hat + (x0_hat - previous) / (2 * r)  # D0 + ½·D1, D1 = (x̂_0 − x̂_0,prev)/r
        ratio = (sigmas[i + 1] / sigmas[i]).to(x.dtype)
        x = ratio * x - (alphas[i + 1] * phi).to(x.dtype) * d
        previous = x0_hat
        if callback is not None:
            callback(t, x, x0_hat)
    return x


# ----------------------------------------------------------------------------- one entry point

SAMPLERS: dict[str, Callable] = {
    "ddpm": ddpm_strided,
    "ddim": ddim_sample,
    "pndm": pndm_sample,
    "euler_a": euler_ancestral_sample,
    "dpmpp": dpmpp_2m_sample,
}
STOCHASTIC = {"ddpm", "euler_a"}  # draw fresh noise at each step (ddim too when eta > 0)


def sample(name: str, model: Model, x_T: torch.Tensor, betas: torch.Tensor, steps: int, generator: torch.Generator | None = None, **kwargs) -> torch.Tensor:
    """Run the sampler called ``name`` (one of :data:`SAMPLERS`) for ``steps`` steps from x_T."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}: choose one of {', '.join(SAMPLERS)}")
    T = betas.numel() - 1
    if not isinstance(steps, int) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in [1, {T}] (the training steps), got {steps!r}")
    if name in STOCHASTIC or (name == "ddim" and kwargs.get("eta", 0) > 0):
        kwargs["generator"] = generator
    return SAMPLERS[name](model, x_T, betas, steps=steps, **kwargs)
