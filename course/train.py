"""One small training loop for every lesson: AdamW, EMA of weights, gradient clipping, mixed precision
on GPU, a progress bar with the loss, periodic sample grids, and save/resume as safetensors.

The data come from ``get_batch(step)``, a function of the step number: after an interruption,
training resumes at the saved step with the same batches and the same random state, so an
interrupted run ends exactly where an uninterrupted one would. A run folder is locked while a training
uses it, and a resumed run must have the recipe it was started with (or say so: ``allow_recipe_change``).

Launched by ``torchrun``, it trains data-parallel over the processes (:mod:`course.distributed`): each
computes the loss on its share of the batch, the gradients are averaged, and rank 0 alone writes the run folder.

The training commands share the rest here: the model built after seeding, the weights exported to
the run folder, shipped to ``data/`` only when asked (``--ship``, or the ``ship`` command afterwards),
and every error a user can cause reported in one line (:func:`user_errors`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from course import checkpoints, distributed
from course.language import tr
from course.paths import data_dir
from course.profiles import current_profile
from course.recipes import RECIPES, Recipe, RecipeError

try:
    import fcntl
except ImportError:  # Windows: run folders are not locked
    fcntl = None


class TrainingError(Exception):
    """A training run cannot start, continue or ship as asked; the message says how to fix it."""


class RunLocked(TrainingError):
    """Another live process trains in this run folder."""


class RecipeChanged(TrainingError):
    """A run folder holds a run started with another recipe."""


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
    recipe_changes: list[dict] = field(default_factory=list)  # {"step", "changes": {field: [before, after]}} allowed on resuming
    smoothed_loss: float | None = None  # the running loss average at the last step (so that a resumed curve is the uninterrupted one)  # {"step", "changes": {field: [before, after]}} allowed on resuming


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


def _rng_state() -> dict[str, torch.Tensor]:
    return {"cpu": torch.get_rng_state(), **({"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {})}


def _state_tensors(model, ema, optimizer, rngs: list[dict] | None = None) -> dict[str, torch.Tensor]:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not model:  # without EMA the "EMA" is the model itself: saving it twice would share memory
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    for i, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"opt.{i}.{name}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    # every process's generators (rngs, in rank order; one process: its own): rank 0's are rng.cpu, rank r's rng.cpu.r
    for r, rng in enumerate(rngs or [_rng_state()]):
        tensors.update({f"rng.{kind}" + (f".{r}" if r else ""): state for kind, state in rng.items()})
    return tensors


def _load_state(tensors, model, ema, optimizer, rank: int = 0) -> bool:
    """Load a resume state; False when it holds no generator for process ``rank`` (saved by fewer processes)."""
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
    suffix = f".{rank}" if rank else ""
    if "rng.cpu" + suffix not in tensors:
        return False
    torch.set_rng_state(tensors["rng.cpu" + suffix])
    if "rng.cuda" + suffix in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda" + suffix])
    return True


def _save_state(run_dir: Path, model, ema, optimizer, step: int, history: History, config: TrainConfig, recipe: dict | None = None,
                rngs: list[dict] | None = None) -> None:
    checkpoints.save(
        run_dir / "state.safetensors",
        _state_tensors(model, ema, optimizer, rngs),
        {
            "kind": "resume state",
            "step": step,
            "history": asdict(history),
            "train_config": asdict(config),
            "recipe": recipe,
            "command": checkpoints.command_line(),
            "hardware": checkpoints.hardware(),
            "profile": current_profile().name,
            **({"processes": len(rngs)} if rngs and len(rngs) > 1 else {}),
        },
    )


# ----------------------------------------------------------------------------- one training per run folder

_HELD_LOCKS: dict[Path, list] = {}  # run folder → [file descriptor, depth]: this process may nest its own lock


@contextlib.contextmanager
def run_lock(run_dir: str | Path):
    """Hold ``run_dir/lock`` (the holder's pid inside) while a training uses the folder.

    Refuses with :class:`RunLocked` when a live process holds it; a lock file left by a process that
    died (``kill -9``) is simply taken over, since the operating system releases the lock with the process.
    Under torchrun only rank 0 holds it; the other processes wait until it is taken, or raise the same refusal.
    """
    if distributed.world_size() == 1:
        with _lock(run_dir):
            yield
        return
    with contextlib.ExitStack() as held:
        distributed.run_on_main(lambda: held.enter_context(_lock(run_dir)))
        yield


@contextlib.contextmanager
def _lock(run_dir: str | Path):
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if key in _HELD_LOCKS:
        _HELD_LOCKS[key][1] += 1
        try:
            yield
        finally:
            _HELD_LOCKS[key][1] -= 1
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        try:
            holder = json.loads(path.read_text())
        except (OSError, ValueError):
            holder = {}
        pid = holder.get("pid", "?")
        raise RunLocked(
            f"{run_dir} is in use by process {pid} ({holder.get('command', 'a training')}, since {holder.get('since', '?')}): "
            f"two trainings in one run folder would overwrite each other's state; wait for it to end, stop it (kill {pid}), "
            "or give this run another --run-dir"
        ) from None
    os.ftruncate(fd, 0)
    since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    os.write(fd, json.dumps({"pid": os.getpid(), "command": checkpoints.command_line(), "since": since}).encode())
    _HELD_LOCKS[key] = [fd, 1]
    try:
        yield
    finally:
        _HELD_LOCKS[key][1] -= 1
        if _HELD_LOCKS[key][1] == 0:
            del _HELD_LOCKS[key]
            os.ftruncate(fd, 0)  # the file stays (removing it would let two processes lock two files); closing releases it
            os.close(fd)


# what only changes how often we look, not what is learnt: free to change on resuming
_NOT_RECIPE = ("log_every", "sample_every", "checkpoint_every", "eval_every")


def recipe_changes(saved: dict, config: TrainConfig, recipe: dict | None) -> dict[str, list]:
    """{field: [saved value, new value]} for every hyper-parameter a resumed run would change."""
    before = {**(saved.get("recipe") or {}), **saved.get("train_config", {})}
    now = {**(recipe or {}), **asdict(config)}
    return {k: [before[k], now[k]] for k in now if k in before and k not in _NOT_RECIPE and before[k] != now[k]}


def _describe(changes: dict[str, list]) -> str:
    return ", ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in changes.items())


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
    desc: str | None = None,
    progress: bool = True,
    stop_at: int | None = None,
    recipe: dict | None = None,
    allow_recipe_change: bool = False,
) -> TrainResult:
    """Train ``model`` for ``config.steps`` steps of ``loss_fn(model, get_batch(step))``.

    With ``run_dir``, a resume state is saved every ``checkpoint_every`` steps and at the end, and a
    run found there is continued from its last step. ``sample_fn(ema_model, step)`` returns images in
    [−1, 1] saved as a grid every ``sample_every`` steps. ``on_log(history)`` is called every
    ``log_every`` steps (e.g. to redraw a live loss curve). ``stop_at`` pauses after that many steps
    (the schedule still runs to ``config.steps``); calling again with the same ``run_dir`` continues.

    ``desc`` labels the progress bar (default "training", in the edition's language).

    ``recipe``: the caller's other hyper-parameters (batch size, pool…), saved with the resume state. A
    run resumed with another recipe or config raises :class:`RecipeChanged` (listing what changed) unless
    ``allow_recipe_change``, which records the change in ``history.recipe_changes``. The run folder is
    locked for the call (:func:`run_lock`).

    Launched by torchrun with N processes (:mod:`course.distributed`), each trains on its device (cuda:LOCAL_RANK,
    or the CPU) on its 1/N of every ``get_batch(step)``, whose batch size must be divisible by N, and DDP averages the
    gradients; ``history`` logs the global batch's loss. Rank 0 alone holds the lock, saves (with every process's
    random generator), draws sample grids, shows the progress bar and calls ``on_log``.
    """
    if run_dir is None:
        return _train(model, loss_fn, get_batch, config, None, sample_fn, on_log, device, desc, progress, stop_at, recipe, allow_recipe_change)
    with run_lock(run_dir):
        return _train(model, loss_fn, get_batch, config, Path(run_dir), sample_fn, on_log, device, desc, progress, stop_at, recipe, allow_recipe_change)


class _LossOf(nn.Module):
    """``loss_fn(model, batch)`` as a module's forward, for DDP to wrap: then every use of the model the loss makes
    (``model.unet(…)``, ``model.encode_text(…)``) has its gradients averaged, not only ``model(…)``."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor]):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


def _process_device(device) -> torch.device:
    """Under torchrun, this process's device (cuda:LOCAL_RANK, or the CPU); a device of another kind cannot take part."""
    here = distributed.init()
    if device is not None and torch.device(device).type != here.type:
        backend = "nccl" if here.type == "cuda" else "gloo"
        raise distributed.shared(TrainingError(f"under torchrun this process trains on {here}: device {device} cannot take part "
                                               f"in the {backend} process group (leave the device to torchrun)"))
    return here


def _train(model, loss_fn, get_batch, config, run_dir, sample_fn, on_log, device, desc, progress, stop_at, recipe, allow_recipe_change) -> TrainResult:
    from tqdm.auto import tqdm

    world, rank, home = distributed.world_size(), distributed.rank(), None
    if distributed.launched():
        if device is None:  # the model trains on this process's device and goes back where it was at the end
            home = next(model.parameters()).device
        device = _process_device(device)
    else:
        device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    ema = copy.deepcopy(model).requires_grad_(False) if config.ema_decay is not None else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history, start = History(), 0

    def saved_run():
        if run_dir is None or not (run_dir / "state.safetensors").exists():
            return None
        tensors, manifest = checkpoints.load(run_dir / "state.safetensors")
        changes = recipe_changes(manifest, config, recipe)
        if changes and not allow_recipe_change:
            raise RecipeChanged(
                f"{run_dir} holds a run (at step {manifest['step']}) started with another recipe ({_describe(changes)}): "
                "resume it with its own recipe, start afresh with another --run-dir, "
                "or pass --allow-recipe-change (allow_recipe_change=True) to continue with the new one, recorded in the run's history"
            )
        return tensors, manifest, changes

    saved = distributed.run_on_main(saved_run)  # rank 0 reads the resume state and every process loads it (no shared disk needed)
    if saved is not None:
        tensors, manifest, changes = saved
        if not _load_state(tensors, model, ema, optimizer, rank):
            torch.manual_seed(config.seed + rank)  # a run saved by fewer processes: this one's generator starts afresh
        start, history = manifest["step"], History(**manifest["history"])
        if changes:
            history.recipe_changes.append({"step": start, "changes": changes})
    else:
        torch.manual_seed(config.seed + rank)  # one seed per process: their shards draw independent noise

    def save(step):
        rngs = distributed.gather(_rng_state()) if world > 1 else None
        distributed.run_on_main(lambda: _save_state(run_dir, model, ema, optimizer, step, history, config, recipe, rngs))

    use_amp = config.mixed_precision and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    # several processes: DDP averages the gradients of the whole loss computation (the EMA, optimizer and saves use the model itself)
    parallel = None
    if world > 1:
        parallel = nn.parallel.DistributedDataParallel(_LossOf(model, loss_fn), device_ids=[device.index] if device.type == "cuda" else None)

    end = config.steps if stop_at is None else min(stop_at, config.steps)
    desc = desc if desc is not None else tr(en="training", fr="entraînement")
    bar = tqdm(total=config.steps, initial=start, desc=desc, disable=not progress or start >= end or rank != 0, leave=True)
    smoothed = history.smoothed_loss if history.smoothed_loss is not None else (history.losses[-1] if history.losses else None)
    tick = time.perf_counter()
    model.train()
    for step in range(start, end):
        batch = get_batch(step)
        size = _batch_size(batch)
        if world > 1:
            try:
                batch = distributed.shard(batch, rank, world)
            except ValueError as err:
                raise distributed.shared(TrainingError(str(err))) from None
        batch = _to(batch, device)
        for group in optimizer.param_groups:
            group["lr"] = config.lr * lr_factor(step, config)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            loss = loss_fn(model, batch) if parallel is None else parallel(batch)
        total = loss if world == 1 else distributed.mean(loss)  # the loss of the global batch (the mean of the shards')
        if not torch.isfinite(total):
            raise distributed.shared(FloatingPointError(tr(en=f"loss is {total.item()} at step {step}: lower the learning rate or check the data",
                                                           fr=f"la perte vaut {total.item()} au pas {step} : baissez le taux d'apprentissage ou vérifiez les données")))
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
        history.samples_seen += size
        value = total.item()
        smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
        history.smoothed_loss = smoothed
        bar.update(1)
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            history.steps.append(done)
            history.losses.append(smoothed)
            bar.set_postfix({tr(en="loss", fr="perte"): f"{smoothed:.4f}"})
            if on_log is not None and rank == 0:
                on_log(history)
        if sample_fn is not None and config.sample_every and (done % config.sample_every == 0 or done == config.steps) and rank == 0:
            _save_samples(sample_fn, ema, done, run_dir)
        if run_dir is not None and config.checkpoint_every and done % config.checkpoint_every == 0 and done < end:
            history.wall_time += time.perf_counter() - tick
            tick = time.perf_counter()
            save(done)
    bar.close()
    history.wall_time += time.perf_counter() - tick
    model.eval()
    ema.eval()
    if run_dir is not None and (end > start or history.recipe_changes and history.recipe_changes[-1]["step"] == start):
        save(end)
    if home is not None:
        del parallel  # its hooks on the parameters go with it
        model.to(home)
        ema.to(home)
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
    recipe: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
    header: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write weights (usually the EMA model) to ``path`` with a manifest: sha256, command, hardware, time, profile,
    the recipe that trained them and the history's recipe changes (``extra``: more manifest fields). ``tensors``: what
    to write instead of the whole ``model.state_dict()`` (e.g. only a LoRA's), ``header``: the safetensors metadata."""
    return checkpoints.save(
        path,
        model.state_dict() if tensors is None else tensors,
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
            **({"recipe": recipe} if recipe is not None else {}),
            **({"recipe_changes": history.recipe_changes} if history.recipe_changes else {}),
            **(extra or {}),
        },
        header,
    )


def load_history(run_dir: str | Path) -> History:
    """The history saved in a run directory's resume state."""
    manifest = checkpoints.read_manifest(Path(run_dir) / "state.safetensors")
    return History(**manifest["history"])


# ----------------------------------------------------------------------------- the training commands


def build(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``make()`` after seeding the global RNG: a model's initial weights are its seed's, in every process."""
    torch.manual_seed(seed)
    return make()


def check_shippable(recipe: Recipe, force: bool = False) -> None:
    """Refuse (:class:`TrainingError`) to let a run too short to mean anything replace a shipped model, unless ``force``."""
    if recipe.steps < recipe.min_ship_steps and not force:
        full = RECIPES[recipe.model].steps if recipe.model in RECIPES else recipe.steps
        raise TrainingError(
            f"{recipe.steps} steps is too short to replace data/{recipe.checkpoint} (its recipe trains {full}; shipping needs at least "
            f"{recipe.min_ship_steps}): train longer, or add --force to ship it anyway"
        )


def export_run(run_dir: str | Path, recipe: Recipe, model: nn.Module, *, config: dict, history: History, metrics: dict, command: str,
               extra: dict | None = None, tensors: dict | None = None, header: dict | None = None) -> Path:
    """Export the trained weights into the run folder (``run_dir/<checkpoint>``), never into ``data/``."""
    path = Path(run_dir) / recipe.checkpoint
    export(path, model, config=config, history=history, metrics=metrics, command=command, recipe=recipe.as_dict(), extra=extra,
           tensors=tensors, header=header)
    return path


def ship(run_dir: str | Path, recipe: Recipe, force: bool = False) -> dict[str, Any]:
    """Copy the run folder's exported model to ``data/`` (verified, atomic as a pair), refusing a too-short run unless ``force``."""
    source = Path(run_dir) / recipe.checkpoint
    if not source.exists():
        raise TrainingError(f"{source} not found: train it first (python -m {recipe.module} train --run-dir {run_dir})")
    manifest = checkpoints.read_manifest(source)
    trained = manifest.get("recipe") or {}
    check_shippable(recipe.replace(**{k: trained[k] for k in ("steps",) if k in trained}), force)
    if recipe.model == "ldm":
        from course.shipped import unet_mismatch

        mismatch = unet_mismatch(manifest, source)
        if mismatch:
            raise TrainingError(mismatch)
    shipped = checkpoints.copy(source, data_dir() / recipe.checkpoint, shipped_from=str(source))
    print(f"shipped {source} to {data_dir() / recipe.checkpoint} (sha256 {shipped['sha256'][:12]}…)", flush=True)
    from course.shipped import unet_mismatch  # a new autoencoder or CLIP leaves the shipped U-Net behind

    note = unet_mismatch() if recipe.model in ("autoencoder", "clip") else None
    if note:
        print(f"note: {note}", flush=True)
    return shipped


def finish(run_dir: str | Path, recipe: Recipe, path: Path, ship_it: bool, force: bool) -> dict[str, Any]:
    """After a training command: ship the exported model if asked, else say where it is and how to ship it."""
    if ship_it:
        return ship(run_dir, recipe, force)
    print(f"exported {path}; data/{recipe.checkpoint} is unchanged. To ship it: python -m {recipe.module} ship --run-dir {run_dir}", flush=True)
    return checkpoints.read_manifest(path)


def add_recipe_arguments(parser, recipe: Recipe) -> None:
    """``train`` flags whose defaults are the recipe's fields, and the run folder, ship and safety flags."""
    parser.add_argument("--steps", type=int, default=recipe.steps, help=f"optimiser steps (recipe: {recipe.steps})")
    parser.add_argument("--batch-size", type=int, default=recipe.batch_size, help=f"(recipe: {recipe.batch_size})")
    if recipe.pool is not None:
        flag = "--n-train" if recipe.model == "evaluator" else "--pool"
        parser.add_argument(flag, dest="pool", type=int, default=recipe.pool, help=f"images rendered for training (recipe: {recipe.pool})")
    parser.add_argument("--lr", type=float, default=recipe.lr, help=f"peak learning rate (recipe: {recipe.lr:g})")
    parser.add_argument("--seed", type=int, default=recipe.seed, help=f"(recipe: {recipe.seed})")
    add_run_arguments(parser, recipe)
    parser.add_argument("--allow-recipe-change", action="store_true", help="resume a run folder's run with changed hyper-parameters (recorded)")


def add_run_arguments(parser, recipe: Recipe, ship_flag: bool = True) -> None:
    """--run-dir, --force and (``ship_flag``) --ship: for ``train``, and (without --ship) for the ``ship`` command."""
    parser.add_argument("--run-dir", type=Path, default=Path("runs") / recipe.model,
                        help=f"resume state and exported model (default runs/{recipe.model}; an interrupted run continues)")
    if ship_flag:
        parser.add_argument("--ship", action="store_true", help=f"replace data/{recipe.checkpoint} with the trained model (default: leave data/ alone)")
    parser.add_argument("--force", action="store_true", help="ship even a run shorter than a tenth of the recipe's steps")


def add_ship_command(sub, recipe: Recipe) -> None:
    """The ``ship`` sub-command: copy a run folder's exported model to data/."""
    s = sub.add_parser("ship", help=f"replace data/{recipe.checkpoint} with the model a run folder exported (verified)")
    add_run_arguments(s, recipe, ship_flag=False)


def recipe_from_args(recipe: Recipe, args) -> Recipe:
    """The recipe with the command line's explicit overrides (validated: a :class:`RecipeError` says what is wrong)."""
    fields = ("steps", "batch_size", "pool", "lr", "seed")
    return recipe.replace(**{k: getattr(args, k) for k in fields if hasattr(args, k) and getattr(args, k) != getattr(recipe, k)})


USER_ERRORS = (TrainingError, RecipeError, checkpoints.CheckpointError, FloatingPointError, OSError)


@contextlib.contextmanager
def user_errors():
    """In a command's ``main()``: an error the user can fix ends the command with its one-line message, not a traceback.
    The profile is read first, so a bogus ``COURSE_PROFILE`` stops the command before it trains, not at its first save.
    Under torchrun, an error every process raises alike is printed by rank 0 only."""
    try:
        current_profile()
    except ValueError as err:
        sys.exit(f"error: {err}")
    try:
        yield
    except USER_ERRORS as err:
        if getattr(err, "on_every_rank", False) and not distributed.is_main():
            sys.exit(1)
        sys.exit(f"error: {err}")
