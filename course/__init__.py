"""`course`: the helper package of « La Théorie de la Diffusion Stable », built from scratch.

Each concept lives in its own small module, imported explicitly by the notebooks. The modules form
layers; each imports only from the layers below it (``tests/test_layers.py`` checks the two rules
that matter: generating an image imports no training module, and the diffusion maths imports no model):

    course tooling   build, lessons, checks.* (with their hints), hints, plotting, widgets, playground, env, __main__ (the CLI)
    evaluation       eval (the judge), evaluation (held-out prompts), scheduler_table, grid_search
    training         train (the loop, resumable), ae_train, clip_train, ldm, shapes_ddpm
                     (one command each: runs/ → --ship → data/)
    pipeline         pipeline (prompt → image: the one generation path); export (the shipped models as a stock
                     diffusers folder, and back); stable_diffusion (real SD v1.5 weights in the course's modules)
    models           tokenizer, clip, attention, unet, autoencoder (diffusers' topology and names), denoisers;
                     diffusers_format (configs and weight names, both ways); shipped (loads data/, verified)
    diffusion maths  schedules, noise_schedule (α σ λ σ̃), grids, adapter (ε / x₀ / v), samplers, guidance,
                     forward, ddpm
    data             scenes, render, captions, data, toy2d
    foundations      paths, recipes (one frozen recipe per shipped model, plain data), profiles (which scale
                     the recipes), checkpoints, tensors, embeddings, images, language (the edition's language),
                     yours (the learner's checked functions, run where the course runs its own)

The package stays flat (``course.samplers``, not ``course.diffusion.samplers``): lessons and learners
import by short names, and the layering is enforced by tests rather than by folders. Importing
``course`` itself is cheap: no torch import here.
"""

from course.profiles import Profile, current_profile

__version__ = "0.1.0"

__all__ = ["Profile", "current_profile", "__version__"]
