"""Every shipped checkpoint has a manifest whose checksum matches and which says how it was made."""

import json
import sys

import pytest
import torch

from course.checkpoints import sha256
from course.paths import data_dir

CHECKPOINTS = sorted(data_dir().glob("*.safetensors"))


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.name)
def test_manifest_is_complete_and_checksum_matches(path):
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["sha256"] == sha256(path), f"{path.name} does not match its manifest: retrain it with its command"
    assert manifest["command"].startswith("python -m course.")
    for key in ("hardware", "wall_time_s", "profile", "config", "metrics"):
        assert key in manifest, key


def test_data_readme_lists_every_checkpoint():
    readme = (data_dir() / "README.md").read_text()
    for path in CHECKPOINTS:
        assert path.name in readme, f"data/README.md does not describe {path.name}"


def test_default_guidance_is_the_one_the_shipped_latent_model_chose():
    from course import ldm

    manifest = json.loads((data_dir() / ldm.CHECKPOINT).with_suffix(".json").read_text())
    assert manifest["metrics"]["guidance"] == ldm.GUIDANCE, "set course.ldm.GUIDANCE to the w chosen on validation by the shipped run"


# ----------------------------------------------------------------------------- the training commands leave data/ alone


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A copy of data/ as COURSE_DATA_DIR: what the training commands may write to, and what they must not."""
    import shutil

    from course import shipped

    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy)
    monkeypatch.setenv("COURSE_DATA_DIR", str(copy))
    for loader in (shipped.load_autoencoder, shipped.load_clip, shipped.load_unet):
        loader.cache_clear()
    yield copy
    for loader in (shipped.load_autoencoder, shipped.load_clip, shipped.load_unet):
        loader.cache_clear()


def _checksums(folder):
    return {p.name: sha256(p) for p in sorted(folder.glob("*.safetensors"))}


def test_a_zero_step_run_is_one_line_and_replaces_nothing(data_copy, tmp_path, capsys):
    from course import ae_train

    before = _checksums(data_copy)
    with pytest.raises(SystemExit, match=r"^error: autoencoder recipe: steps must be ≥ 1, got 0"):
        ae_train.main(["train", "--steps", "0", "--run-dir", str(tmp_path / "run")])
    assert _checksums(data_copy) == before


def test_training_writes_to_the_run_folder_and_ships_only_when_asked(data_copy, tmp_path, capsys):
    from course import ae_train, shipped
    from course.checkpoints import CheckpointError, read_manifest
    from course.recipes import AE_RECIPE

    before = _checksums(data_copy)
    tiny = AE_RECIPE.replace(steps=2, pool=32, batch_size=4, eval_images=8, scaling_images=32)
    run = tmp_path / "run"
    torch.manual_seed(123)  # whatever the global state, the weights are the seed's
    manifest = ae_train.train_shipped(tiny, run)
    assert _checksums(data_copy) == before, "a run without --ship replaced a shipped file"
    assert f"exported {run / 'autoencoder.safetensors'}; data/autoencoder.safetensors is unchanged" in capsys.readouterr().out
    assert manifest["recipe"] == tiny.as_dict() and manifest["command"] == tiny.command()

    torch.manual_seed(456)
    again = ae_train.train_shipped(tiny, tmp_path / "run2")
    assert again["sha256"] == manifest["sha256"], "the autoencoder's initial weights depend on the global RNG: seed before building it"

    with pytest.raises(SystemExit, match=r"^error: 2 steps is too short to replace data/autoencoder.safetensors .* add --force"):
        ae_train.main(["ship", "--run-dir", str(run)])
    assert _checksums(data_copy) == before
    ae_train.main(["ship", "--run-dir", str(run), "--force"])
    out = capsys.readouterr().out
    assert read_manifest(data_copy / "autoencoder.safetensors")["sha256"] == manifest["sha256"]
    assert "note: data/ldm_unet.safetensors was trained with another autoencoder" in out

    # the shipped U-Net was trained with the previous autoencoder: refused, in one sentence that says what to do
    with pytest.raises(CheckpointError, match=r"data/ldm_unet.safetensors was trained with another autoencoder \(sha .*python -m course.ldm train --ship.*git checkout data/autoencoder.safetensors"):
        shipped.load_unet()


def test_the_shipped_unet_records_the_autoencoder_and_clip_it_was_trained_with():
    from course import shipped

    manifest = json.loads((data_dir() / shipped.UNET_CHECKPOINT).with_suffix(".json").read_text())
    assert manifest["trained_with"] == shipped.trained_with()
    assert shipped.unet_mismatch() is None


TRAINING_COMMANDS = ["course.ae_train", "course.clip_train", "course.ldm", "course.shapes_ddpm", "course.eval", "course.controlnet_train",
                     "course.concept_train"]


@pytest.mark.parametrize("module", TRAINING_COMMANDS)
def test_every_training_command_reports_user_errors_in_one_line(module, data_copy, tmp_path):
    import importlib

    main = importlib.import_module(module).main
    before = _checksums(data_copy)
    with pytest.raises(SystemExit, match=r"^error: \w+ recipe: steps must be ≥ 1, got 0 \(nothing would be trained\)$"):
        main(["train", "--steps", "0", "--run-dir", str(tmp_path / "run")])
    with pytest.raises(SystemExit, match=r"^error: \w+ recipe: learning rate must be > 0"):
        main(["train", "--lr", "-1", "--run-dir", str(tmp_path / "run")])
    with pytest.raises(SystemExit, match=rf"^error: .*run/\w+.safetensors not found: train it first \(python -m {module} train"):
        main(["ship", "--run-dir", str(tmp_path / "run")])
    with pytest.raises(SystemExit, match=r"too short to replace data/.*add --force"):
        main(["train", "--steps", "1", "--ship", "--run-dir", str(tmp_path / "run")])
    assert _checksums(data_copy) == before


def _hold(run_dir, ready, release):
    from course.train import run_lock

    with run_lock(run_dir):
        ready.set()
        release.wait(20)


@pytest.mark.skipif(sys.platform == "win32", reason="run folders are locked with fcntl")
def test_a_locked_run_folder_is_one_line(tmp_path):
    import multiprocessing

    from course import ae_train

    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, ready, release), daemon=True)
    holder.start()
    assert ready.wait(20)
    try:
        with pytest.raises(SystemExit, match=rf"^error: {tmp_path} is in use by process {holder.pid} .*another --run-dir$"):
            ae_train.main(["train", "--steps", "2", "--pool", "16", "--run-dir", str(tmp_path)])
    finally:
        release.set()
        holder.join()


def test_the_evaluator_command_trains_into_its_run_folder_and_resumes_exactly(data_copy, tmp_path):
    from safetensors.torch import load_file

    from course import eval as evaluator
    from course import train as training
    from course.recipes import EVALUATOR_RECIPE

    before = _checksums(data_copy)
    tiny = EVALUATOR_RECIPE.replace(steps=4, pool=512, batch_size=64, eval_images=16, checkpoint_every=2)  # every label in every batch
    straight = evaluator.train_evaluator(tiny, tmp_path / "straight")
    real_train = training.train
    training.train = lambda *args, **kwargs: real_train(*args, **{**kwargs, "stop_at": 2})  # stopped after step 2's checkpoint…
    try:
        evaluator.train_evaluator(tiny, tmp_path / "resumed")
    finally:
        training.train = real_train
    resumed = evaluator.train_evaluator(tiny, tmp_path / "resumed")  # …then the same command again
    assert _checksums(data_copy) == before
    a, b = (load_file(str(tmp_path / run / "evaluator.safetensors")) for run in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed evaluator run did not draw the batches of an uninterrupted one"
    assert straight["command"] == tiny.command() and resumed["samples_seen"] == straight["samples_seen"]
