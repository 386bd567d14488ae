"""One small training loop for every lesson: AdamW, EMA of weights, gradient clipping, mixed precision
on GPU, a progress bar with the loss, periodic sample grids, and save/resume as safetensors.

The data come from ``get_batch(step)``, a function of the step number: after an interruption,
training resumes at the saved step with the same batches and the same random state, so an
interrupted run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from course import checkpoints
from course.profiles import current_profile


@dataclass
class TrainConfig:
    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 0  # linear learning-rate warm-up, in steps
    decay: str = "none"  # "none" or "cosine" (to 0 at step decay_steps)
    decay_steps: int | None = None  # length of the cosine; None: steps. Longer than steps: the cosine is stopped before it reaches 0
    ema_decay: float | None = 0.999  # None: no EMA
    grad_clip: float | None = 1.0  # max gradient norm; None: no clipping
    mixed_precision: bool = True  # used on CUDA only (bf16 where supported, else fp16 with loss scaling)
    log_every: int = 25
    sample_every: int | None = None
    checkpoint_every: int | None = 500
    seed: int = 0

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"steps must be ≥ 0, got {self.steps}")
        if self.decay not in ("none", "cosine"):
            raise ValueError(f"unknown decay {self.decay!r}: choose 'none' or 'cosine'")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")
        if self.decay_steps is not None and self.decay_steps < self.steps:
            raise ValueError(f"decay_steps ({self.decay_steps}) must be ≥ steps ({self.steps}): the cosine would turn back up")


@dataclass
class History:
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    wall_time: float = 0.0  # seconds of training, summed over resumed sessions
    samples_seen: int = 0


@dataclass
class TrainResult:
    model: nn.Module
    ema: nn.Module  # the EMA weights (the model itself when EMA is off)
    history: History


def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """θ_ema ← decay·θ_ema + (1 − decay)·θ, buffers copied (Polyak averaging)."""
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then constant or cosine decay."""
    factor = min(1.0, (step + 1) / config.warmup) if config.warmup > 0 else 1.0
    if config.decay == "cosine":
        factor *= 0.5 * (1 + math.cos(math.pi * step / max(config.decay_steps or config.steps, 1)))
    return factor


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, dict):
        return _batch_size(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    return 0


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


# ----------------------------------------------------------------------------- resume state


def _state_tensors(model, ema, optimizer) -> dict[str, torch.Tensor]:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not model:  # without EMA the "EMA" is the model itself: saving it twice would share memory
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    for i, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"opt.{i}.{name}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    return tensors


def _load_state(tensors, model, ema, optimizer) -> None:
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not model:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    opt_state = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = value
    opt_state["state"] = state
    optimizer.load_state_dict(opt_state)
    torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def _save_state(run_dir: Path, model, ema, optimizer, step: int, history: History, config: TrainConfig) -> None:
    checkpoints.save(
        run_dir / "state.safetensors",
        _state_tensors(model, ema, optimizer),
        {
            "kind": "resume state",
            "step": step,
            "history": asdict(history),
            "train_config": asdict(config),
            "command": checkpoints.command_line(),
            "hardware": checkpoints.hardware(),
            "profile": current_profile().name,
        },
    )


# ----------------------------------------------------------------------------- the loop


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    get_batch: Callable[[int], Any],
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    sample_fn: Callable[[nn.Module, int], torch.Tensor] | None = None,
    on_log: Callable[[History], None] | None = None,
    device: str | torch.device | None = None,
    desc: str = "training",
    progress: bool = True,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``model`` for ``config.steps`` steps of ``loss_fn(model, get_batch(step))``.

    With ``run_dir``, a resume state is saved every ``checkpoint_every`` steps and at the end, and a
    run found there is continued from its last step. ``sample_fn(ema_model, step)`` returns images in
    [−1, 1] saved as a grid every ``sample_every`` steps. ``on_log(history)`` is called every
    ``log_every`` steps (e.g. to redraw a live loss curve). ``stop_at`` pauses after that many steps
    (the schedule still runs to ``config.steps``); calling again with the same ``run_dir`` continues.
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    ema = copy.deepcopy(model).requires_grad_(False) if config.ema_decay is not None else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history, start = History(), 0

    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None and (run_dir / "state.safetensors").exists():
        tensors, manifest = checkpoints.load(run_dir / "state.safetensors")
        if manifest.get("train_config", {}).get("seed") != config.seed:
            raise checkpoints.CheckpointError(f"{run_dir} holds a run with another seed; use another run_dir")
        _load_state(tensors, model, ema, optimizer)
        start, history = manifest["step"], History(**manifest["history"])
    else:
        torch.manual_seed(config.seed)

    use_amp = config.mixed_precision and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    end = config.steps if stop_at is None else min(stop_at, config.steps)
    bar = tqdm(total=config.steps, initial=start, desc=desc, disable=not progress or start >= end, leave=True)
    smoothed = history.losses[-1] if history.losses else None
    tick = time.perf_counter()
    model.train()
    for step in range(start, end):
        batch = _to(get_batch(step), device)
        for group in optimizer.param_groups:
            group["lr"] = config.lr * lr_factor(step, config)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}: lower the learning rate or check the data")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if config.ema_decay is not None:
            # early on, average over the steps seen so far (bias-free start, as in timm's ModelEmaV2 warm-up)
            ema_update(ema, model, min(config.ema_decay, (1 + step) / (10 + step)))
        history.samples_seen += _batch_size(batch)
        value = loss.item()
        smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
        bar.update(1)
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            history.steps.append(done)
            history.losses.append(smoothed)
            bar.set_postfix(loss=f"{smoothed:.4f}")
            if on_log is not None:
                on_log(history)
        if sample_fn is not None and config.sample_every and (done % config.sample_every == 0 or done == config.steps):
            _save_samples(sample_fn, ema, done, run_dir)
        if run_dir is not None and config.checkpoint_every and done % config.checkpoint_every == 0 and done < end:
            history.wall_time += time.perf_counter() - tick
            tick = time.perf_counter()
            _save_state(run_dir, model, ema, optimizer, done, history, config)
    bar.close()
    history.wall_time += time.perf_counter() - tick
    model.eval()
    ema.eval()
    if run_dir is not None and end > start:
        _save_state(run_dir, model, ema, optimizer, end, history, config)
    return TrainResult(model, ema, history)


def _save_samples(sample_fn, ema: nn.Module, step: int, run_dir: Path | None) -> None:
    was_training = ema.training
    ema.eval()
    with torch.no_grad():
        images = sample_fn(ema, step)
    ema.train(was_training)
    if run_dir is not None:
        from torchvision.utils import save_image

        nrow = max(1, int(math.sqrt(images.shape[0])))
        save_image((images.float().cpu() + 1) / 2, run_dir / f"samples_{step:06d}.png", nrow=nrow)


def export(
    path: str | Path,
    model: nn.Module,
    *,
    config: dict[str, Any],
    history: History,
    metrics: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Ship weights (usually the EMA model) to ``path`` with a manifest: sha256, command, hardware, time, profile."""
    return checkpoints.save(
        path,
        model.state_dict(),
        {
            "kind": "weights",
            "config": config,
            "command": command or checkpoints.command_line(),
            "hardware": checkpoints.hardware(),
            "wall_time_s": round(history.wall_time, 1),
            "samples_seen": history.samples_seen,
            "final_loss": history.losses[-1] if history.losses else None,
            "profile": current_profile().name,
            "torch": torch.__version__,
            "metrics": metrics or {},
        },
    )


def load_history(run_dir: str | Path) -> History:
    """The history saved in a run directory's resume state."""
    manifest = json.loads((Path(run_dir) / "state.json").read_text())
    return History(**manifest["history"])
