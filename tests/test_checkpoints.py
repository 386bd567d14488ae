"""Checkpoints never leave a state that does not load: atomic save, clear errors on damaged files."""

import json
import multiprocessing
import os
import random
import signal
import sys
import time

import numpy as np
import pytest
import torch

from course import checkpoints


def _save_forever(path: str) -> None:
    """Save checkpoint i (every value = i, manifest {"i": i}) in a loop until killed."""
    i = 0
    while True:
        values = torch.from_numpy(np.full(1_000_000, float(i), dtype=np.float32))
        checkpoints.save(path, {"x": values}, {"i": i})
        i += 1


@pytest.mark.skipif(sys.platform != "linux", reason="forks a saver and kills it with SIGKILL")
def test_a_save_killed_at_any_instant_leaves_a_checkpoint_that_loads(tmp_path):
    path = tmp_path / "state.safetensors"
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(0)
    start = time.monotonic()
    for trial in range(10):
        for leftover in tmp_path.iterdir():
            leftover.unlink()
        saver = ctx.Process(target=_save_forever, args=(str(path),), daemon=True)
        saver.start()
        while not path.with_suffix(".json").exists() and saver.is_alive():
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(saver.pid, signal.SIGKILL)
        saver.join()
        tensors, manifest = checkpoints.load(path)  # a CheckpointError here is the fault
        assert torch.all(tensors["x"] == manifest["i"]), f"trial {trial}: the weights are not those of the manifest"
    assert time.monotonic() - start < 20


def test_a_truncated_checkpoint_is_one_clear_error(tmp_path):
    path = tmp_path / "m.safetensors"
    checkpoints.save(path, {"x": torch.ones(100)}, {"kind": "weights"})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(checkpoints.CheckpointError, match="sha256 mismatch"):
        checkpoints.load(path)
    with pytest.raises(checkpoints.CheckpointError, match="m.safetensors is truncated or not a safetensors file"):
        checkpoints.load(path, verify=False)


def test_an_invalid_manifest_is_one_clear_error(tmp_path):
    path = tmp_path / "m.safetensors"
    checkpoints.save(path, {"x": torch.ones(3)}, {"kind": "weights"})
    path.with_suffix(".json").write_text('{"sha256": "ab')
    with pytest.raises(checkpoints.CheckpointError, match=r"m.json is not valid JSON \(line 1"):
        checkpoints.load(path)
    with pytest.raises(checkpoints.CheckpointError, match="m.json is not valid JSON"):
        checkpoints.read_manifest(path)


def test_a_save_killed_between_its_two_renames_is_read_whole_and_the_next_save_completes_it(tmp_path, monkeypatch):
    path = tmp_path / "state.safetensors"
    checkpoints.save(path, {"x": torch.zeros(4)}, {"i": 0})
    real_replace = os.replace

    def killed_after_the_weights(src, dst):
        real_replace(src, dst)
        if str(dst).endswith(".safetensors"):
            raise KeyboardInterrupt  # the process dies here: new weights, old manifest

    monkeypatch.setattr(os, "replace", killed_after_the_weights)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save(path, {"x": torch.ones(4)}, {"i": 1})
    monkeypatch.setattr(os, "replace", real_replace)
    assert json.loads(path.with_suffix(".json").read_text())["i"] == 0  # the pair on disk disagrees…
    tensors, manifest = checkpoints.load(path)  # …but reading takes the pending manifest, which describes the weights
    assert manifest["i"] == 1 and torch.equal(tensors["x"], torch.ones(4))
    assert json.loads(path.with_suffix(".json").read_text())["i"] == 0  # a reader writes nothing (a writer may be alive)
    checkpoints.save(path, {"x": torch.full((4,), 2.0)}, {"i": 2})
    assert json.loads(path.with_suffix(".json").read_text())["i"] == 2 and not (tmp_path / "state.json.tmp").exists()
    assert torch.equal(checkpoints.load(path)[0]["x"], torch.full((4,), 2.0))
