"""Profile choice: COURSE_PROFILE wins, then CUDA → gpu, CI → smoke, else cpu."""

import pytest
import torch

from course.profiles import PROFILE_NAMES, PROFILES, current_profile, get_profile, profile_reason


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return monkeypatch


def test_detection_order(clean_env):
    assert current_profile().name == "cpu"
    clean_env.setenv("CI", "true")
    assert current_profile().name == "smoke"
    clean_env.setenv("CI", "false")
    assert current_profile().name == "cpu"
    clean_env.setattr(torch.cuda, "is_available", lambda: True)
    clean_env.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake GPU")
    clean_env.setenv("CI", "1")
    assert current_profile().name == "gpu"
    assert "Fake GPU" in profile_reason()
    clean_env.setenv("COURSE_PROFILE", "smoke")
    assert current_profile().name == "smoke"
    assert "forced" in profile_reason()


def test_unknown_profile_lists_the_choices(clean_env):
    clean_env.setenv("COURSE_PROFILE", "tiny")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        current_profile()
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        get_profile("huge")


def test_profiles_grow_from_smoke_to_gpu():
    assert tuple(PROFILES) == PROFILE_NAMES
    for field in ("n_samples", "toy_steps", "toy_points", "image_steps", "image_samples", "clip_steps", "clip_eval_images", "ae_steps", "ldm_steps", "latent_samples", "sample_steps"):
        sizes = [getattr(PROFILES[name], field) for name in PROFILE_NAMES]
        assert sizes == sorted(sizes), field
