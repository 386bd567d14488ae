"""The training loop: it learns, resumes exactly where it stopped, and ships checksummed weights."""

import json

import pytest
import torch
from torch import nn

from course import checkpoints
from course.train import TrainConfig, ema_update, export, lr_factor, train


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
    train(model, loss_fn, get_batch, TrainConfig(**{**config.__dict__, "steps": 20}), run_dir=tmp_path, progress=False)
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


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    config = TrainConfig(steps=1, lr=1.0, grad_clip=1e-3, ema_decay=None)
    train(model, lambda m, x: (m(x) - 1e6).square().mean(), lambda s: torch.ones(4, 1), config, progress=False)
    assert model.weight.abs().item() <= 1.0 + 1e-6  # Adam's first step is ±lr whatever the gradient; no NaN, no blow-up


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
