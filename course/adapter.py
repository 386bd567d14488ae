"""The model adapter: whatever a network predicts (ε, x_0 or v), a solver receives x̂_0 and ε̂
(the three roles kept apart: schedule, adapter, solver — Lu et al. 2022, §3; Salimans & Ho 2022, §4).

With x_t = α_t·x_0 + σ_t·ε (:mod:`course.noise_schedule`), each prediction gives the other two:

    "epsilon"       ε̂ = f(x_t, t)                 x̂_0 = (x_t − σ_t·ε̂)/α_t          (Ho et al. 2020)
    "sample"        x̂_0 = f(x_t, t)               ε̂ = (x_t − α_t·x̂_0)/σ_t
    "v_prediction"  v̂ = f(x_t, t), v = α_t·ε − σ_t·x_0:  x̂_0 = α_t·x_t − σ_t·v̂,  ε̂ = σ_t·x_t + α_t·v̂
                    (Salimans & Ho 2022, eq. 9; Stable Diffusion 2's 768 model)

The names are diffusers' ``prediction_type`` values. The adapter also checks what the network
returns (one value per input value, finite) and counts its evaluations, which is the honest unit of
a sampler's cost (Heun costs two per step).
"""

from __future__ import annotations

from typing import Callable, Literal

import torch

from course.noise_schedule import NoiseSchedule

PREDICTIONS: tuple[str, ...] = ("epsilon", "sample", "v_prediction")
Prediction = Literal["epsilon", "sample", "v_prediction"]
Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def timestep_batch(t: float, x: torch.Tensor) -> torch.Tensor:
    """t repeated once per sample (B,): a long tensor at integer t (what a network trained on steps takes),
    float64 between steps."""
    t = float(t)
    if t == round(t):
        return torch.full((x.shape[0],), int(round(t)), dtype=torch.long, device=x.device)
    return torch.full((x.shape[0],), t, dtype=torch.float64, device=x.device)


class Denoiser:
    """``denoiser(x_t, t) -> (x̂_0, ε̂)`` for a network ``model(x_t, t_batch)`` that predicts ``prediction``."""

    def __init__(self, model: Model, schedule: NoiseSchedule, prediction: Prediction = "epsilon", clip_x0: float | None = None):
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}: choose one of {', '.join(PREDICTIONS)}")
        if clip_x0 is not None and not clip_x0 > 0:
            raise ValueError(f"clip_x0 must be > 0 (x̂_0 is clamped to [−clip_x0, clip_x0]) or None, got {clip_x0}")
        self.model, self.schedule, self.prediction, self.clip_x0 = model, schedule, prediction, clip_x0
        self.calls = 0  # network evaluations so far

    def raw(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """The network's output at (x_t, t), checked."""
        out = self.model(x, timestep_batch(t, x))
        self.calls += 1
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the model returned {shape} for an input of shape {tuple(x.shape)} at t = {t:g}: "
                             "it must predict one value per input value (a batch or channel mix-up?)")
        if not bool(torch.isfinite(out).all()):
            raise FloatingPointError(f"the model returned NaN or inf at t = {t:g}: check its weights and inputs "
                                     "(a guidance scale too large, or a model trained with another schedule?)")
        return out

    def __call__(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.raw(x, t)
        a, s = self.schedule.alpha(t).item(), self.schedule.sigma(t).item()  # float64 coefficients, then x's dtype
        if self.prediction == "epsilon":
            eps = out
            x0 = (x - s * eps) / a
        elif self.prediction == "sample":
            x0 = out
            eps = (x - a * x0) / s
        else:
            x0, eps = a * x - s * out, s * x + a * out
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            eps = (x - a * x0) / s
        return x0, eps


def as_denoiser(model: Model | Denoiser, schedule: NoiseSchedule, prediction: Prediction = "epsilon", clip_x0: float | None = None) -> Denoiser:
    """``model`` wrapped in a :class:`Denoiser` (or returned as is if it already is one)."""
    if isinstance(model, Denoiser):
        return model
    return Denoiser(model, schedule, prediction, clip_x0)
