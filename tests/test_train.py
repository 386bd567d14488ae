"""The training loop: it learns, resumes exactly where it stopped, and ships checksummed weights."""

import json
import multiprocessing
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from course import checkpoints
from course.train import RecipeChanged, RunLocked, TrainConfig, build, ema_update, export, lr_factor, run_lock, train


def regression_problem():
    torch.manual_seed(123)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    w = torch.tensor([[1.0], [-2.0], [0.5]])

    def get_batch(step):
        g = torch.Generator().manual_seed(step)
        x = torch.randn(32, 3, generator=g)
        return x, x @ w

    def loss_fn(m, batch):
        x, y = batch
        noise = 0.01 * torch.randn_like(y)  # uses the global RNG: resuming must restore it
        return (m(x) - y - noise).square().mean()

    return model, get_batch, loss_fn


def test_loss_falls():
    model, get_batch, loss_fn = regression_problem()
    result = train(model, loss_fn, get_batch, TrainConfig(steps=200, lr=1e-2, log_every=10), progress=False)
    assert result.history.losses[-1] < 0.2 * result.history.losses[0]
    assert result.history.samples_seen == 200 * 32


def test_interrupted_training_resumes_exactly(tmp_path):
    config = TrainConfig(steps=30, lr=1e-2, checkpoint_every=10, log_every=5, seed=7)
    model, get_batch, loss_fn = regression_problem()
    straight = train(model, loss_fn, get_batch, config, progress=False)

    model, get_batch, loss_fn = regression_problem()
    def killed_at_23(step):
        if step == 23:
            raise KeyboardInterrupt  # the process stops here: the last resume state is step 20's
        return get_batch(step)

    with pytest.raises(KeyboardInterrupt):
        train(model, loss_fn, killed_at_23, config, run_dir=tmp_path, progress=False)
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 20
    model, get_batch, loss_fn = regression_problem()  # a fresh process: new model, same run directory
    resumed = train(model, loss_fn, get_batch, config, run_dir=tmp_path, progress=False)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(straight.ema.parameters(), resumed.ema.parameters()):
        assert torch.equal(a, b)
    assert resumed.history.losses == straight.history.losses


def test_resume_without_ema_is_exact(tmp_path):
    """With EMA off the EMA is the model itself; its state is saved once (safetensors refuses shared tensors)."""
    config = TrainConfig(steps=12, lr=1e-2, checkpoint_every=4, log_every=4, ema_decay=None, seed=5)
    model, get_batch, loss_fn = regression_problem()
    straight = train(model, loss_fn, get_batch, config, progress=False)
    model, get_batch, loss_fn = regression_problem()
    train(model, loss_fn, get_batch, config, run_dir=tmp_path, progress=False, stop_at=8)
    model, get_batch, loss_fn = regression_problem()
    resumed = train(model, loss_fn, get_batch, config, run_dir=tmp_path, progress=False)
    assert resumed.ema is resumed.model
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_pausing_with_stop_at_then_continuing_is_exact(tmp_path):
    config = TrainConfig(steps=24, lr=1e-2, checkpoint_every=None, log_every=4, decay="cosine", seed=3)
    model, get_batch, loss_fn = regression_problem()
    straight = train(model, loss_fn, get_batch, config, progress=False)
    model, get_batch, loss_fn = regression_problem()
    for stop in (8, 16, 24):
        paused = train(model, loss_fn, get_batch, config, run_dir=tmp_path, progress=False, stop_at=stop)
    for a, b in zip(straight.ema.parameters(), paused.ema.parameters()):
        assert torch.equal(a, b)


def test_ema_and_schedules():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    before = a.weight.detach().clone()
    ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * before + 0.1 * b.weight)
    config = TrainConfig(steps=100, warmup=10, decay="cosine")
    assert lr_factor(0, config) == pytest.approx(0.1)
    assert lr_factor(50, config) == pytest.approx(0.5)
    stopped = TrainConfig(steps=80, warmup=10, decay="cosine", decay_steps=100)  # the same cosine, stopped at 80 %
    assert [lr_factor(s, stopped) for s in (0, 50, 79)] == [pytest.approx(lr_factor(s, config)) for s in (0, 50, 79)]
    assert lr_factor(79, stopped) > 0.09  # never decays to 0
    with pytest.raises(ValueError, match="decay_steps"):
        TrainConfig(steps=100, decay="cosine", decay_steps=50)
    with pytest.raises(ValueError, match="'none' or 'cosine'"):
        TrainConfig(steps=1, decay="linear")
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(steps=1, ema_decay=1.5)


def test_non_finite_loss_stops_with_a_clear_error():
    model = nn.Linear(1, 1)
    with pytest.raises(FloatingPointError, match="step 0"):
        train(model, lambda m, x: m(x).sum() * float("nan"), lambda s: torch.ones(2, 1), TrainConfig(steps=3), progress=False)


def test_export_writes_a_verifiable_manifest(tmp_path):
    model, get_batch, loss_fn = regression_problem()
    result = train(model, loss_fn, get_batch, TrainConfig(steps=5), progress=False)
    manifest = export(tmp_path / "m.safetensors", result.ema, config={"width": 16}, history=result.history, command="python demo.py")
    for key in ("sha256", "command", "hardware", "wall_time_s", "profile", "config"):
        assert key in manifest
    tensors, loaded = checkpoints.load(tmp_path / "m.safetensors", config={"width": 16})
    assert set(tensors) == set(result.ema.state_dict())
    with pytest.raises(checkpoints.CheckpointError, match="width: checkpoint 16 vs model 32"):
        checkpoints.load(tmp_path / "m.safetensors", config={"width": 32})
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(checkpoints.CheckpointError, match="sha256 mismatch"):
        checkpoints.load(tmp_path / "m.safetensors")


def test_periodic_sample_grids_are_saved(tmp_path):
    model, get_batch, loss_fn = regression_problem()
    seen = []

    def sample_fn(ema, step):
        seen.append(step)
        return torch.zeros(4, 3, 8, 8)

    config = TrainConfig(steps=6, sample_every=3, checkpoint_every=None)
    train(model, loss_fn, get_batch, config, run_dir=tmp_path, sample_fn=sample_fn, progress=False)
    assert seen == [3, 6]
    assert sorted(p.name for p in tmp_path.glob("samples_*.png")) == ["samples_000003.png", "samples_000006.png"]


def test_resuming_with_another_recipe_is_refused_with_what_changed(tmp_path):
    config = TrainConfig(steps=12, lr=1e-2, checkpoint_every=4, seed=5)
    model, get_batch, loss_fn = regression_problem()
    train(model, loss_fn, get_batch, config, run_dir=tmp_path, progress=False, stop_at=8, recipe={"batch_size": 32})
    before = (tmp_path / "state.json").read_text()
    changed = TrainConfig(**{**config.__dict__, "lr": 2e-2, "steps": 24, "log_every": 3})  # log_every is not the recipe
    with pytest.raises(RecipeChanged, match=r"started with another recipe \(batch_size 32 → 64, steps 12 → 24, lr 0.01 → 0.02\).*--allow-recipe-change"):
        train(model, loss_fn, get_batch, changed, run_dir=tmp_path, progress=False, recipe={"batch_size": 64})
    assert (tmp_path / "state.json").read_text() == before  # the run's history is untouched
    train(model, loss_fn, get_batch, config, run_dir=tmp_path, progress=False, stop_at=10, recipe={"batch_size": 32})  # same recipe: fine
    result = train(model, loss_fn, get_batch, changed, run_dir=tmp_path, progress=False, recipe={"batch_size": 64}, allow_recipe_change=True)
    assert result.history.recipe_changes == [{"step": 10, "changes": {"batch_size": [32, 64], "steps": [12, 24], "lr": [0.01, 0.02]}}]
    manifest = export(tmp_path / "m.safetensors", result.ema, config={}, history=result.history)
    assert manifest["recipe_changes"] == result.history.recipe_changes  # the shipped manifest says so too


def _hold_lock(run_dir, ready, release):
    with run_lock(run_dir):
        ready.set()
        release.wait(20)


@pytest.mark.skipif(sys.platform == "win32", reason="run folders are locked with fcntl")
def test_a_run_folder_used_by_a_live_process_is_refused(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(tmp_path, ready, release), daemon=True)
    holder.start()
    assert ready.wait(20)
    model, get_batch, loss_fn = regression_problem()
    try:
        with pytest.raises(RunLocked, match=rf"in use by process {holder.pid} .*another --run-dir"):
            train(model, loss_fn, get_batch, TrainConfig(steps=2), run_dir=tmp_path, progress=False)
    finally:
        release.set()
        holder.join()
    train(model, loss_fn, get_batch, TrainConfig(steps=2), run_dir=tmp_path, progress=False)  # released: free again


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "lock").write_text(json.dumps({"pid": dead.pid, "command": "python -m course.ldm train", "since": "yesterday"}))
    with run_lock(tmp_path):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
        with run_lock(tmp_path):  # the same process may nest its own lock (a command around train())
            pass
    model, get_batch, loss_fn = regression_problem()
    train(model, loss_fn, get_batch, TrainConfig(steps=2), run_dir=tmp_path, progress=False)


def test_models_are_built_after_seeding_so_their_initial_weights_are_the_seeds():
    from course.autoencoder import Autoencoder

    torch.manual_seed(1)
    a = build(Autoencoder, seed=0)
    torch.rand(10)  # another process, another global state
    b = build(Autoencoder, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def _train_until_killed(run_dir):
    model, get_batch, loss_fn = regression_problem()
    train(model, loss_fn, get_batch, TrainConfig(steps=150, lr=1e-2, checkpoint_every=1, log_every=5, seed=11), run_dir=run_dir, progress=False)


@pytest.mark.skipif(sys.platform != "linux", reason="forks a training and kills it with SIGKILL")
def test_a_training_killed_at_random_instants_resumes_to_the_uninterrupted_result(tmp_path):
    import random
    import signal
    import time

    config = TrainConfig(steps=150, lr=1e-2, checkpoint_every=1, log_every=5, seed=11)
    model, get_batch, loss_fn = regression_problem()
    straight = train(model, loss_fn, get_batch, config, progress=False)
    ctx, rng, reached = multiprocessing.get_context("fork"), random.Random(1), []
    def saved_step():
        try:
            return checkpoints.read_manifest(tmp_path / "state.safetensors")["step"] if (tmp_path / "state.json").exists() else 0
        except checkpoints.CheckpointError:  # caught between its two renames: read again
            return -1

    for _ in range(4):  # the same run folder, killed again and again (its lock left behind by a dead process each time)
        trainer = ctx.Process(target=_train_until_killed, args=(tmp_path,), daemon=True)
        trainer.start()
        # kill once the run has gone a random number of steps further (not after a fixed time: a busy machine is slow),
        # a random few milliseconds later, so the kill lands anywhere in a step or a save
        target, deadline = max(saved_step(), 0) + rng.randint(5, 30), time.monotonic() + 20
        while saved_step() < target and trainer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        assert trainer.is_alive(), f"the training ended before it was killed (exit code {trainer.exitcode})"
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.join()
        reached.append(saved_step())
    model, get_batch, loss_fn = regression_problem()
    resumed = train(model, loss_fn, get_batch, config, run_dir=tmp_path, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(straight.ema.parameters(), resumed.ema.parameters()))
    assert resumed.history.losses == straight.history.losses
    assert reached[-1] < config.steps, f"killed too late to test anything: {reached}"
