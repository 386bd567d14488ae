"""The layers a maintainer sees: generating an image never imports a training module, and diffusion maths
never imports a model or the data."""

import json
import subprocess
import sys

# course.recipes is plain data (no torch), read by the profiles: not a training module
TRAINING = {"course.train", "course.ae_train", "course.clip_train", "course.ldm", "course.shapes_ddpm"}
MODELS_AND_DATA = {"course.unet", "course.clip", "course.autoencoder", "course.shipped", "course.data", "course.render", "course.eval"}


def loaded_after(code: str) -> set[str]:
    """The course modules loaded by a fresh interpreter after running ``code``."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('course'))))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1", **__import__("os").environ})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_generating_an_image_imports_no_training_module():
    loaded = loaded_after(
        "from course.pipeline import TextToImagePipeline\n"
        "TextToImagePipeline(device='cpu')('un cercle rouge en haut à gauche', num_inference_steps=2)"
    )
    assert "course.pipeline" in loaded and "course.samplers" in loaded
    assert not loaded & TRAINING, f"the generate path imported training modules: {sorted(loaded & TRAINING)}"


def test_the_diffusion_maths_stands_alone():
    loaded = loaded_after("import course.samplers, course.grids, course.adapter, course.noise_schedule, course.guidance, course.forward, course.ddpm")
    assert not loaded & (TRAINING | MODELS_AND_DATA), sorted(loaded & (TRAINING | MODELS_AND_DATA))
