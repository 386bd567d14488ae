"""Data-parallel training (course.distributed): two CPU processes launched by torchrun (gloo) train as one process on
the global batch, resume exactly where an uninterrupted two-process run ends, and refuse a batch they cannot split.

The two-process runs are one torchrun launch of this file as a script, shared by the tests below (a failed launch
fails them, its output in the message); a paused run is resumed with a new model and optimizer from its run folder.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from course import checkpoints, distributed
from course.train import TrainConfig, TrainingError, train, user_errors

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 8
CONFIG = TrainConfig(steps=12, lr=1e-2, checkpoint_every=4, log_every=2, seed=7)
STOP = 6  # the paused runs stop here, then are resumed from their run folder
ATOL = 1e-6  # two processes vs one on the global batch: the same sums in another order (measured: ~1e-8, see test)


def problem(noisy: bool = False, batch: int = GLOBAL_BATCH):
    """A tiny regression: the batch a function of the step; ``noisy``: the loss draws noise from the global generator."""
    torch.manual_seed(123)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    w = torch.tensor([[1.0], [-2.0], [0.5]])

    def get_batch(step):
        g = torch.Generator().manual_seed(step)
        x = torch.randn(batch, 3, generator=g)
        return x, x @ w

    def loss_fn(m, b):
        x, y = b
        noise = 0.01 * torch.randn_like(y) if noisy else 0.0  # each process draws its own (seeded seed + rank)
        return (m(x) - y - noise).square().mean()

    return model, get_batch, loss_fn


def _outcome(result) -> dict:
    return {"model": {k: v.clone() for k, v in result.model.state_dict().items()},
            "ema": {k: v.clone() for k, v in result.ema.state_dict().items()},
            "losses": result.history.losses, "samples_seen": result.history.samples_seen}


def _worker(out: Path) -> None:
    """One process of the torchrun launch: every run, its outcome saved as out/rank<r>.pt."""
    torch.set_num_threads(1)
    results, seen = {}, set()
    for name, noisy in (("exact", False), ("noisy", True)):
        model, get_batch, loss_fn = problem(noisy)
        counted = lambda m, b, loss_fn=loss_fn: seen.add(len(b[0])) or loss_fn(m, b)  # noqa: E731
        results[name] = _outcome(train(model, counted, get_batch, CONFIG, run_dir=out / f"{name}_straight", progress=False))
        model, get_batch, loss_fn = problem(noisy)
        train(model, loss_fn, get_batch, CONFIG, run_dir=out / f"{name}_paused", progress=False, stop_at=STOP)
        model, get_batch, loss_fn = problem(noisy)  # as a new launch would: a new model and optimizer, the state from the run folder
        results[f"{name}_resumed"] = _outcome(train(model, loss_fn, get_batch, CONFIG, run_dir=out / f"{name}_paused", progress=False))
    model, get_batch, loss_fn = problem(batch=7)
    try:
        train(model, loss_fn, get_batch, CONFIG, progress=False)
    except TrainingError as err:
        results["error"] = {"message": str(err), "on_every_rank": getattr(err, "on_every_rank", False)}
    results["world"], results["seen"] = distributed.world_size(), seen
    torch.save(results, out / f"rank{distributed.rank()}.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__, str(out)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return out, [torch.load(out / f"rank{rank}.pt") for rank in (0, 1)], time.perf_counter() - start


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


# ----------------------------------------------------------------------------- shard, errors


def test_shard_cuts_every_tensor_and_list_of_a_batch_into_contiguous_equal_pieces():
    x, y = torch.arange(8).view(8, 1), torch.arange(16).view(8, 2)
    batch = {"x": x, "pair": (y, [f"prompt {i}" for i in range(8)]), "scale": 0.5}
    parts = [distributed.shard(batch, r, 4) for r in range(4)]
    assert torch.equal(parts[1]["x"], x[2:4]) and torch.equal(parts[3]["pair"][0], y[6:8])
    assert parts[2]["pair"][1] == ["prompt 4", "prompt 5"] and parts[2]["scale"] == 0.5
    assert torch.equal(torch.cat([p["x"] for p in parts]), x)
    assert torch.equal(distributed.shard(x, 0, 1), x)
    with pytest.raises(ValueError, match=r"^the global batch of 7 examples cannot be split evenly over 2 processes: choose a batch size divisible by 2"):
        distributed.shard(torch.zeros(7, 3), 0, 2)
    with pytest.raises(ValueError, match=r"batch size 8 as its first dimension.*\(4, 2\)"):
        distributed.shard((x, torch.zeros(4, 2)), 0, 2)


def test_an_error_every_process_raises_is_printed_by_rank_0_only(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(SystemExit) as stopped:
        with user_errors():
            raise distributed.shared(TrainingError("the same on every rank"))
    assert stopped.value.code == 1
    with pytest.raises(SystemExit, match="^error: only here$"):  # an error of this process alone: said
        with user_errors():
            raise TrainingError("only here")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit, match="^error: the same on every rank$"):
        with user_errors():
            raise distributed.shared(TrainingError("the same on every rank"))


def test_one_process_is_not_distributed():
    assert distributed.world_size() == 1 and distributed.is_main() and not distributed.launched()
    assert distributed.run_on_main(lambda: 42) == 42


# ----------------------------------------------------------------------------- two processes (torchrun, gloo)


def test_two_processes_train_as_one_process_on_the_global_batch(runs):
    out, results, seconds = runs
    model, get_batch, loss_fn = problem()
    one = _outcome(train(model, loss_fn, get_batch, CONFIG, progress=False))
    two = results[0]["exact"]
    assert results[0]["world"] == results[1]["world"] == 2
    assert results[0]["seen"] == results[1]["seen"] == {GLOBAL_BATCH // 2}  # each loss saw its half of the batch
    difference = max(_max_difference(one["model"], two["model"]), _max_difference(one["ema"], two["ema"]))
    print(f"max |one process − two processes| over weights and EMA: {difference:.2e}; torchrun launch {seconds:.1f} s")
    assert difference <= ATOL
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-6)  # the logged loss is the global batch's
    assert two["samples_seen"] == one["samples_seen"] == CONFIG.steps * GLOBAL_BATCH
    tensors, _ = checkpoints.load(out / "exact_straight" / "state.safetensors")  # what rank 0 saved is what it holds
    assert _max_difference({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, two["model"]) == 0


def test_every_process_holds_the_same_weights(runs):
    _, results, _ = runs
    for name in ("exact", "noisy", "exact_resumed", "noisy_resumed"):
        a, b = results[0][name], results[1][name]
        assert _max_difference(a["model"], b["model"]) == 0 and _max_difference(a["ema"], b["ema"]) == 0, name
        assert a["losses"] == b["losses"], name


def test_a_two_process_run_paused_then_resumed_ends_where_an_uninterrupted_one_does(runs):
    out, results, _ = runs
    for name in ("exact", "noisy"):  # noisy: every process's generator is saved and restored
        straight, resumed = results[0][name], results[0][f"{name}_resumed"]
        assert _max_difference(straight["model"], resumed["model"]) == 0, name
        assert _max_difference(straight["ema"], resumed["ema"]) == 0, name
        assert resumed["losses"] == straight["losses"], name
    tensors, manifest = checkpoints.load(out / "noisy_paused" / "state.safetensors")
    assert manifest["step"] == CONFIG.steps and manifest["processes"] == 2
    assert not torch.equal(tensors["rng.cpu"], tensors["rng.cpu.1"])  # seeded seed + rank: the shards drew different noise


def test_a_global_batch_the_processes_cannot_split_is_refused_in_one_line_on_every_process(runs):
    _, results, _ = runs
    for rank in (0, 1):
        error = results[rank]["error"]
        assert error["message"] == ("the global batch of 7 examples cannot be split evenly over 2 processes: "
                                    "choose a batch size divisible by 2 (--batch-size), or another number of processes")
        assert error["on_every_rank"]  # printed by rank 0 only


if __name__ == "__main__":  # a torchrun process: python -m torch.distributed.run --nproc_per_node 2 tests/test_distributed.py OUT
    _worker(Path(sys.argv[1]))
