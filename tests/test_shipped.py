"""Every shipped checkpoint has a manifest whose checksum matches and which says how it was made."""

import json

import pytest

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
