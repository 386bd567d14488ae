"""A mini Stable Diffusion of the course's modules as a standard diffusers folder, and back (slides: « Stable
Diffusion », the pipeline; Rombach et al. 2022). No diffusers or transformers import: the files are written here.

    python -m course export-diffusers OUT/        the shipped models: model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/
    export(OUT, unet, ae, scaling_factor, clip.text, tokenizer_dir, image_size)     any model of the course's modules

``StableDiffusionPipeline.from_pretrained(OUT, local_files_only=True)`` — stock, no custom code — then gives
the images the course's own generation path gives (``python -m course generate``, ``course.pipeline.generate_latents`` with
:func:`text_states`, Stable Diffusion's text layout) for the same prompt, seed, sampler, steps and guidance
(tests/test_export.py). ``load_folder(OUT)`` reads such a folder (or Stable Diffusion v1.5's own) back into
the course's from-scratch modules (:mod:`course.unet`, :mod:`course.autoencoder`).

Schedulers: the exported one is DPM-Solver++ (2M), the course's default sampler. The course's other samplers
have their diffusers config in :func:`scheduler_config`; set it on a built pipeline
(``pipe.scheduler = DDIMScheduler.from_config(config)``): passed to the pipeline's constructor instead, a
DDIM config's ``steps_offset`` is rewritten to 1 and every timestep moves by one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from course.autoencoder import AEConfig, Autoencoder
from course.clip import ClipConfig, TextEncoder
from course.shipped import encoder_states as text_states  # noqa: F401 (Stable Diffusion's text layout)
from course.diffusers_format import (
    DIFFUSERS_VERSION,
    FormatError,
    ae_from_diffusers,
    ae_to_diffusers,
    check_weights,
    clip_text_from_transformers,
    clip_text_state_from_transformers,
    clip_text_state_to_transformers,
    clip_text_to_transformers,
    controlnet_to_diffusers,
    unet_from_diffusers,
    unet_to_diffusers,
)
from course.unet import UNet, UNetConfig

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHTS = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "text_encoder": "model"}


def scheduler_config(sampler: str, T: int = 1000, schedule: str = "scaled_linear") -> dict[str, Any]:
    """The diffusers scheduler config that visits the course sampler's timesteps and computes its update."""
    if schedule != "scaled_linear":
        raise ValueError(f"only the scaled_linear schedule is exported, got {schedule!r}")
    common = {"_diffusers_version": DIFFUSERS_VERSION, "num_train_timesteps": T, "beta_start": 0.00085, "beta_end": 0.012,
              "beta_schedule": "scaled_linear", "trained_betas": None, "prediction_type": "epsilon"}
    if sampler == "dpmpp":  # course.samplers.dpmpp_2m on dpm_spaced(T, S, "linspace")
        return {"_class_name": "DPMSolverMultistepScheduler", **common, "algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint",
                "lower_order_final": True, "euler_at_final": False, "use_karras_sigmas": False, "use_lu_lambdas": False, "final_sigmas_type": "zero",
                "timestep_spacing": "linspace", "steps_offset": 1, "thresholding": False, "lambda_min_clipped": float("-inf"), "variance_type": None}
    if sampler == "ddim":  # course.samplers.ddim on spaced(T, S, "leading"): t = 1 + k⌊T/S⌋, diffusers' k⌊T/S⌋ + steps_offset 0
        return {"_class_name": "DDIMScheduler", **common, "clip_sample": False, "set_alpha_to_one": True, "steps_offset": 0,
                "timestep_spacing": "leading", "thresholding": False, "rescale_betas_zero_snr": False}
    raise ValueError(f"no diffusers scheduler config for sampler {sampler!r}: choose dpmpp or ddim")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _save(folder: Path, name: str, tensors: dict[str, torch.Tensor]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(folder / f"{name}.safetensors"), metadata={"format": "pt"})


def check_destination(out: Path, force: bool) -> None:
    """Refuse (one sentence) to write into an existing non-empty folder unless ``force``."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty: choose another folder or pass --force to replace it")


def export(out: str | Path, unet: UNet, ae: Autoencoder, scaling_factor: float, text: TextEncoder, tokenizer_dir: str | Path,
           image_size: int, force: bool = False) -> Path:
    """Write ``unet``, ``ae``, the CLIP ``text`` encoder and the tokenizer as a StableDiffusionPipeline folder."""
    from course.tokenizer import BOS_ID, EOS_ID, PAD_ID

    out = Path(out)
    check_destination(out, force)
    latent = image_size // ae.config.factor
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    _write_json(tmp / "model_index.json", {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": DIFFUSERS_VERSION,
        "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", "DPMSolverMultistepScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "PreTrainedTokenizerFast"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    })
    _write_json(tmp / "unet" / "config.json", unet_to_diffusers(unet.config, latent))
    _save(tmp / "unet", WEIGHTS["unet"], unet.state_dict())
    _write_json(tmp / "vae" / "config.json", ae_to_diffusers(ae.config, scaling_factor, image_size))
    _save(tmp / "vae", WEIGHTS["vae"], ae.state_dict())
    _write_json(tmp / "text_encoder" / "config.json", clip_text_to_transformers(text.config, PAD_ID, BOS_ID, EOS_ID))
    _save(tmp / "text_encoder", WEIGHTS["text_encoder"], clip_text_state_to_transformers(text.state_dict()))
    (tmp / "tokenizer").mkdir()
    for f in Path(tokenizer_dir).iterdir():
        shutil.copy2(f, tmp / "tokenizer" / f.name)
    config = json.loads((tmp / "tokenizer" / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    _write_json(tmp / "tokenizer" / "tokenizer_config.json", config)
    _write_json(tmp / "scheduler" / "scheduler_config.json", scheduler_config("dpmpp"))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def export_controlnet(out: str | Path, net) -> Path:
    """A course :class:`~course.controlnet.ControlNet` as a diffusers ``ControlNetModel`` folder (config.json + weights):
    ``ControlNetModel.from_pretrained(out)`` then ``StableDiffusionControlNetPipeline`` give the course's images."""
    out = Path(out)
    _write_json(out / "config.json", controlnet_to_diffusers(net.control_config))
    _save(out, "diffusion_pytorch_model", net.state_dict())
    return out


def export_shipped(out: str | Path, force: bool = False) -> Path:
    """The shipped models of data/ as a diffusers folder (``python -m course export-diffusers``)."""
    from course.paths import data_dir
    from course.shipped import IMAGE_SIZE, load_autoencoder, load_clip, load_unet
    from course.tokenizer import DIRNAME

    check_destination(Path(out), force)
    ae, scaling = load_autoencoder()
    return export(out, load_unet(), ae, scaling, load_clip().text, data_dir() / DIRNAME, IMAGE_SIZE, force)


# ----------------------------------------------------------------------------- reading a folder back


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise FormatError(f"{path} is missing: not a diffusers model folder")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FormatError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None


def _read_weights(folder: Path, name: str, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The tensors of ``folder/name.safetensors`` (or its fp16 variant, or a PyTorch ``.bin``)."""
    for candidate in (f"{name}.safetensors", f"{name}.fp16.safetensors"):
        if (folder / candidate).exists():
            tensors = load_file(str(folder / candidate))
            break
    else:
        binary = folder / ("pytorch_model.bin" if name == "model" else f"{name}.bin")
        if not binary.exists():
            raise FormatError(f"{folder} has no weights ({name}.safetensors, {name}.fp16.safetensors or {binary.name})")
        tensors = torch.load(binary, map_location="cpu", weights_only=True)
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v) for k, v in tensors.items()}


# the VAE attention's names in diffusers-format files written before diffusers 0.14
_OLD_VAE_ATTENTION = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def _renamed_vae(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in tensors.items():
        for old, new in _OLD_VAE_ATTENTION.items():
            k = k.replace(old, new)
        out[k] = v
    return out


@dataclass
class Folder:
    """The from-scratch modules holding a diffusers folder's weights, and what the folder says about them."""

    unet: UNet
    vae: Autoencoder
    scaling_factor: float
    text_encoder: TextEncoder
    tokenizer_dir: Path
    scheduler: dict[str, Any]
    image_size: int


def _load(module: torch.nn.Module, tensors: dict[str, torch.Tensor], what: str, optional: tuple[str, ...] = ()) -> torch.nn.Module:
    check_weights(module, tensors, what, optional)
    module.load_state_dict(tensors, strict=not optional)
    return module.eval()


def load_folder(path: str | Path, dtype: torch.dtype | None = None) -> Folder:
    """Read a StableDiffusionPipeline folder of this architecture into the course's modules.

    Works for the course's export and for Stable Diffusion v1.5's own folder (sized from its configs).
    A folder that is not a diffusers model, a config this architecture cannot run (the key named) or weights
    of another size (the tensor named, with both shapes) are a ``FormatError``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FormatError(f"{folder} is not a folder")
    index = _read_json(folder / "model_index.json")
    missing = [c for c in COMPONENTS if c not in index]
    if missing:
        raise FormatError(f"{folder}/model_index.json has no {missing[0]!r}: not a Stable Diffusion pipeline folder")
    unet = UNet(unet_from_diffusers(_read_json(folder / "unet" / "config.json")))
    _load(unet, _read_weights(folder / "unet", WEIGHTS["unet"], dtype), "unet")
    ae_config, scaling = ae_from_diffusers(_read_json(folder / "vae" / "config.json"))
    vae = _load(Autoencoder(ae_config), _renamed_vae(_read_weights(folder / "vae", WEIGHTS["vae"], dtype)), "vae")
    text_config = _read_json(folder / "text_encoder" / "config.json")
    fields = clip_text_from_transformers(text_config)
    text = TextEncoder(ClipConfig(**fields))
    text.eos_token_id = int(text_config.get("eos_token_id", 2))
    if text.eos_token_id == 2 and fields["vocab_size"] == 49408:
        text.eos_token_id = 49407  # CLIP's published config says 2; its tokenizer's <|endoftext|> is 49407
    tensors = clip_text_state_from_transformers(_read_weights(folder / "text_encoder", WEIGHTS["text_encoder"], dtype))
    _load(text, tensors, "text_encoder", optional=("text_projection",))  # CLIPTextModel has no projection
    unet_size = _read_json(folder / "unet" / "config.json").get("sample_size", 64)
    return Folder(unet.to(dtype) if dtype else unet, vae.to(dtype) if dtype else vae, scaling, text.to(dtype) if dtype else text,
                  folder / "tokenizer", _read_json(folder / "scheduler" / "scheduler_config.json"), unet_size * ae_config.factor)
