"""Run profiles: one switch sizes every notebook.

- ``smoke``: continuous integration; each notebook runs in seconds, numbers are rough.
- ``cpu``:   a laptop CPU; minutes per notebook, uses shipped checkpoints where training is too long.
- ``gpu``:   full size; trains from scratch (a Colab T4 is enough).

The profile is chosen automatically (a CUDA device → ``gpu``, a CI environment → ``smoke``,
otherwise ``cpu``) and can be forced with the environment variable ``COURSE_PROFILE``.
Every size a notebook uses (samples, steps, batch, image count) is a field of :class:`Profile`,
so this file is the one place to read or change them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from course.language import tr
from course.recipes import AE_RECIPE, CLIP_RECIPE, LDM_RECIPE, SHAPES_DDPM_RECIPE

ProfileName = Literal["smoke", "cpu", "gpu"]
PROFILE_NAMES: tuple[str, ...] = ("smoke", "cpu", "gpu")
ENV_VAR = "COURSE_PROFILE"


@dataclass(frozen=True)
class Profile:
    """The sizes one profile gives to every lesson."""

    name: ProfileName
    description: str  # English; description_fr is the French edition's
    description_fr: str
    # lesson 01: Monte-Carlo samples used to compare step-by-step and closed-form noising
    n_samples: int
    # lesson 01: number of t values in the static "noised cat" strip
    n_strip: int
    # every lesson: resolution of figures (lower in CI keeps notebooks small)
    figure_dpi: int
    # lesson 02: training steps of the 2-D toy denoiser, and points drawn to look at it
    toy_steps: int
    toy_points: int
    # lesson 02: the image denoiser — trained from scratch (gpu) or loaded from data/ then fine-tuned
    # for a short demo of image_steps steps (smoke, cpu); images sampled and judged
    train_image_model: bool
    image_steps: int
    image_samples: int
    # lesson 03: CLIP — trained from scratch (gpu) or loaded from data/ after a short demo of clip_steps
    # steps (smoke, cpu); images used for zero-shot and retrieval figures
    train_clip: bool
    clip_steps: int
    clip_eval_images: int
    # lessons 04–05: the latent text-to-image model — trained from scratch (gpu) or loaded from data/ after
    # short demos (smoke, cpu); images generated and judged in the notebook; DDIM steps when generating
    train_latent: bool
    ae_steps: int
    ldm_steps: int
    latent_samples: int
    sample_steps: int

    def describe(self) -> str:
        """The description in the edition's language (:func:`course.language.tr`)."""
        return tr(en=self.description, fr=self.description_fr)

    def sizes(self) -> dict[str, int | bool]:
        """Every size of the profile (all fields but its name and descriptions)."""
        return {k: v for k, v in vars(self).items() if k not in ("name", "description", "description_fr")}


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI: seconds per notebook, rough numbers",
        description_fr="CI : quelques secondes par carnet, chiffres approximatifs",
        n_samples=2_000,
        n_strip=6,
        figure_dpi=60,
        toy_steps=300,
        toy_points=1_000,
        train_image_model=False,
        image_steps=5,
        image_samples=8,
        train_clip=False,
        clip_steps=10,
        clip_eval_images=100,
        train_latent=False,
        ae_steps=5,
        ldm_steps=5,
        latent_samples=16,
        sample_steps=10,
    ),
    "cpu": Profile(
        name="cpu",
        description="laptop CPU: minutes per notebook, shipped checkpoints",
        description_fr="CPU d'ordinateur portable : quelques minutes par carnet, modèles livrés",
        n_samples=50_000,
        n_strip=8,
        figure_dpi=90,
        toy_steps=15_000,
        toy_points=4_000,
        train_image_model=False,
        image_steps=100,
        image_samples=32,
        train_clip=False,
        clip_steps=150,
        clip_eval_images=400,
        train_latent=False,
        ae_steps=100,
        ldm_steps=100,
        latent_samples=128,
        sample_steps=50,
    ),
    "gpu": Profile(
        name="gpu",
        description="GPU (Colab T4 or better): full size, trains from scratch",
        description_fr="GPU (Colab T4 ou mieux) : taille réelle, entraînements à partir de zéro",
        n_samples=200_000,
        n_strip=8,
        figure_dpi=90,
        toy_steps=20_000,
        toy_points=10_000,
        train_image_model=True,
        image_steps=SHAPES_DDPM_RECIPE.steps,  # the gpu profile trains the shipped recipes (course.recipes), never another length
        image_samples=256,
        train_clip=True,
        clip_steps=CLIP_RECIPE.steps,
        clip_eval_images=1_000,
        train_latent=True,
        ae_steps=AE_RECIPE.steps,
        ldm_steps=LDM_RECIPE.steps,
        latent_samples=512,
        sample_steps=50,
    ),
}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a ``ValueError`` lists the valid names otherwise."""
    key = name.strip().lower()
    if key not in PROFILES:
        choices = ", ".join(PROFILE_NAMES)
        raise ValueError(tr(
            en=f"unknown profile {name!r}: choose one of {choices} (set {ENV_VAR}=smoke|cpu|gpu or leave it unset for automatic choice)",
            fr=f"profil inconnu {name!r} : choisissez parmi {choices} (donnez à la variable {ENV_VAR} la valeur smoke, cpu ou gpu, "
            "ou ne la définissez pas pour un choix automatique)",
        ))
    return PROFILES[key]


def detect_profile() -> tuple[str, str]:
    """(profile name, reason) chosen from the environment, ignoring ``COURSE_PROFILE``."""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
            return "gpu", tr(en=f"CUDA device found ({gpu})", fr=f"GPU CUDA détecté ({gpu})")
    except ImportError:  # the environment check reports a missing torch separately
        pass
    if _truthy(os.environ.get("CI")):
        return "smoke", tr(en="CI environment variable is set", fr="la variable d'environnement CI est définie")
    return "cpu", tr(en="no CUDA device, not in CI", fr="pas de GPU CUDA, hors CI")


def current_profile() -> Profile:
    """The active profile: ``$COURSE_PROFILE`` if set, else detected (CUDA → gpu, CI → smoke, else cpu)."""
    forced = os.environ.get(ENV_VAR)
    if forced:
        return get_profile(forced)
    return PROFILES[detect_profile()[0]]


def profile_reason() -> str:
    """One line saying why the active profile was chosen."""
    forced = os.environ.get(ENV_VAR)
    if forced:
        return tr(en=f"forced by {ENV_VAR}={forced}", fr=f"imposé par {ENV_VAR}={forced}")
    return detect_profile()[1]
