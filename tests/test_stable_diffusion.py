"""Real Stable Diffusion v1.5 folders in the course's own code (course.stable_diffusion), proven offline.

A StableDiffusionPipeline folder is written by diffusers itself (``save_pretrained``) from tiny RANDOM models with
SD v1.5's exact topology and config keys (U-Net: 4 levels, 2 layers per block, CrossAttnDownBlock2D × 3 +
DownBlock2D, attention_head_dim 8; VAE: 4 levels, 2 layers; a quick-GELU CLIPTextModel; a real CLIPTokenizer
read from vocab.json and merges.txt; SD's PNDMScheduler config) but small widths. The course loads it, its
networks give diffusers' outputs, and its generation gives the stock pipeline's images with DPM-Solver++.
These tests must fail, not skip, when diffusers or transformers is missing: both are dev dependencies.
"""

from __future__ import annotations

import json
import socket

import pytest
import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from course import stable_diffusion as sd15
from course.export import scheduler_config
from course.schedules import scaled_linear_betas
from tests.test_diffusers_parity import randomise

TOLERANCE = 1e-5  # networks, fp32
IMAGE_TOLERANCE = 1e-3  # images in [−1, 1], fp32
SIZE = 64  # image side: 8×8 latents, the smallest side a 4-level U-Net takes

# SD v1.5's own config files (unet/, vae/, text_encoder/, scheduler/), same keys, small widths where marked
UNET = {"_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [32, 64, 64, 64],  # SD: 320 640 1280 1280
        "center_input_sample": False, "cross_attention_dim": 32, "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],  # SD: 768
        "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
        "norm_eps": 1e-05, "norm_num_groups": 8, "out_channels": 4, "sample_size": SIZE // 8,  # SD: 32 groups, 64
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3}
VAE = {"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [8, 16, 16, 16], "down_block_types": ["DownEncoderBlock2D"] * 4,  # SD: 128 256 512 512
       "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 4, "out_channels": 3, "sample_size": SIZE,  # SD: 32, 512
       "up_block_types": ["UpDecoderBlock2D"] * 4}
TEXT = {"architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu",
        "hidden_size": 32, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 64, "layer_norm_eps": 1e-05,  # SD: 768, 3072
        "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 1,  # SD: 12, 12
        "projection_dim": 32}  # SD: 768; vocab_size: the tiny tokenizer's
SCHEDULER = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
             "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None, "clip_sample": False}
SPECIAL = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
MERGES = ["c a", "ca t</w>", "o n</w>", "t h", "th e</w>", "r o", "ro c", "roc k</w>", "c h", "ch a", "cha t</w>"]
PROMPTS = ["A white tabby cat close-up on a desk", "Un chat blanc tigré en gros plan sur un bureau"]


def strip_meta(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def byte_characters() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes, in CLIP's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in bs]
    return [chr(b) for b in bs] + [chr(256 + i) for i in range(len(extra))]


def write_tokenizer(folder) -> None:
    """A tiny CLIP BPE tokenizer in SD v1.5's files: the 512 byte tokens, a few merges, the two special tokens."""
    chars = byte_characters()
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in MERGES] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        f.unlink()
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(SPECIAL))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
                                                               "errors": "replace", "add_prefix_space": False, **SPECIAL}))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The tiny SD v1.5 written by diffusers: an fp32 folder, and an fp16-variant folder (fp16 files only, as downloaded)."""
    root = tmp_path_factory.mktemp("sd15")
    write_tokenizer(root / "vocab")
    tokenizer = CLIPTokenizer.from_pretrained(root / "vocab")
    unet = randomise(UNet2DConditionModel(**strip_meta(UNET)), seed=1)
    vae = randomise(AutoencoderKL(**strip_meta(VAE)), seed=2)
    text = randomise(CLIPTextModel(CLIPTextConfig(**{**TEXT, "vocab_size": len(tokenizer)})), seed=3)
    with torch.no_grad():  # random weights with the size of trained ones: ε̂ and images of order 1
        unet.conv_out.weight.mul_(0.1)
        vae.decoder.conv_out.weight.mul_(0.3)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=PNDMScheduler.from_config(SCHEDULER),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(root / "fp32", safe_serialization=True)
    pipe.to(torch.float16).save_pretrained(root / "fp16", safe_serialization=True, variant="fp16")
    for name in ("fp32", "fp16"):
        write_tokenizer(root / name / "tokenizer")  # SD v1.5's tokenizer files (vocab.json, merges.txt), not tokenizer.json
    return {"fp32": root / "fp32", "fp16": root / "fp16"}


@pytest.fixture(scope="module")
def ours(folders):
    return sd15.load(folders["fp32"], "cpu", torch.float32)


@pytest.fixture(scope="module")
def theirs(folders):
    pipe = StableDiffusionPipeline.from_pretrained(folders["fp32"], local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stock_images(pipe, prompts, steps, w, seed, negative_prompt=None):
    """The stock pipeline's images in [−1, 1] with DPM-Solver++ configured as the course's sampler."""
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(scheduler_config("dpmpp"))
    out = pipe(prompts, num_inference_steps=steps, guidance_scale=w, negative_prompt=negative_prompt, height=SIZE, width=SIZE,
               generator=torch.Generator().manual_seed(seed), output_type="pt").images
    return 2 * out - 1


def test_the_folder_has_sd15_files_and_loads_sized_from_its_configs(folders, ours):
    names = {p.relative_to(folders["fp16"]).as_posix() for p in folders["fp16"].rglob("*") if p.is_file()}
    assert {"unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.fp16.safetensors",
            "tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json"} <= names
    assert not any(n.endswith(("diffusion_pytorch_model.safetensors", "/model.safetensors")) for n in names)
    c = ours.unet.config
    assert c.channels == (32, 64, 64, 64) and c.attention == (True, True, True, False) and c.heads == 8 and c.layers_per_block == 2
    assert ours.vae.config.channels == (8, 16, 16, 16) and ours.vae.config.layers_per_block == 2 and ours.vae.config.factor == 8
    assert ours.scaling_factor == 0.18215 and torch.equal(ours.betas, scaled_linear_betas(1000, 0.00085, 0.012))
    assert type(ours.tokenizer).__name__ == "CLIPTokenizer" and ours.tokenizer.model_max_length == 77
    assert ours.text_encoder.eos_token_id == ours.tokenizer.eos_token_id == len(ours.tokenizer) - 1


def test_the_networks_equal_diffusers_and_transformers(ours, theirs):
    g = torch.Generator().manual_seed(4)
    ids = sd15.token_ids(ours.tokenizer, PROMPTS + [""])
    reference = theirs.tokenizer(PROMPTS + [""], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    assert torch.equal(ids, reference) and ids.shape == (3, 77)
    with torch.no_grad():
        states, mask = sd15.encode_text(ours, PROMPTS + [""])
        assert bool(mask.all()) and (states - theirs.text_encoder(ids)[0]).abs().max().item() <= TOLERANCE
        x = torch.randn(3, 4, 8, 8, generator=g)
        t = torch.tensor([1, 500, 1000])  # the slides' t; diffusers' timestep is t − 1
        eps = ours.unet(x, t, states)
        assert eps.abs().max() > 0.1 and (eps - theirs.unet(x, t - 1, encoder_hidden_states=states).sample).abs().max().item() <= TOLERANCE
        assert (eps - ours.unet(x, t, states.roll(1, dims=0))).abs().max() > 1e-3  # the prompt changes ε̂
        images = torch.rand(2, 3, SIZE, SIZE, generator=g) * 2 - 1
        mean, _ = ours.vae.encode(images)
        assert (mean - theirs.vae.encode(images).latent_dist.mean).abs().max().item() <= TOLERANCE
        decoded = ours.vae.decode(mean)
        assert decoded.std() > 0.05 and (decoded - theirs.vae.decode(mean).sample).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("prompts, negative", [(PROMPTS, None), ("Corgi on a rock", "the cat")])  # diffusers: prompt, negative of one type
def test_generate_equals_the_stock_pipeline_with_dpm_solver(ours, theirs, prompts, negative):
    steps, w, seed = 8, 7.5, 3
    a = sd15.generate(ours, prompts, "dpmpp", steps, w, seed, SIZE, SIZE, negative)
    b = stock_images(theirs, prompts, steps, w, seed, negative)
    assert a.shape == b.shape == (1 if isinstance(prompts, str) else len(prompts), 3, SIZE, SIZE) and a.dtype == torch.float32
    assert a.std() > 0.05 and (a.abs() < 0.99).float().mean() > 0.5  # an image, neither flat nor saturated
    assert (a - b).abs().max().item() <= IMAGE_TOLERANCE


@pytest.mark.filterwarnings("ignore:`torch_dtype` is deprecated")  # its replacement, dtype, is recent
def test_the_fp16_variant_folder_equals_the_stock_pipeline_on_it(folders):
    """SD v1.5 as downloaded: fp16 files only. Read into float32 modules, the same images as diffusers from the same files."""
    ours = sd15.load(folders["fp16"], "cpu", torch.float32)
    pipe = StableDiffusionPipeline.from_pretrained(folders["fp16"], variant="fp16", torch_dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    a = sd15.generate(ours, PROMPTS[:1], "dpmpp", 6, 7.5, 5, SIZE, SIZE)
    assert (a - stock_images(pipe, PROMPTS[:1], 6, 7.5, 5)).abs().max().item() <= IMAGE_TOLERANCE


def test_half_precision_runs_the_networks_in_fp16_and_the_sampler_in_fp32(folders, ours):
    half = sd15.load(folders["fp16"], "cpu", torch.float16)
    assert half.unet.unet.conv_in.weight.dtype == half.vae.post_quant_conv.weight.dtype == torch.float16
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([10, 900])
    states, _ = sd15.encode_text(half, PROMPTS)
    assert states.dtype == torch.float16
    eps = half.unet(x, t, states)
    assert eps.dtype == torch.float32  # what the sampler sees
    assert (eps - ours.unet(x, t, states.float())).abs().max().item() <= 5e-3  # observed 3e-4
    a = sd15.generate(half, PROMPTS[:1], "dpmpp", 6, 7.5, 5, SIZE, SIZE)
    b = sd15.generate(ours, PROMPTS[:1], "dpmpp", 6, 7.5, 5, SIZE, SIZE)
    assert a.dtype == torch.float32 and torch.isfinite(a).all() and (a - b).abs().max().item() <= 2e-2  # observed 1.4e-3


def test_image_sides_the_u_net_cannot_take_are_one_sentence(ours):
    with pytest.raises(ValueError, match=r"multiples of 64 .* got 96×64"):
        sd15.generate(ours, "Corgi on a rock", height=96, width=64)


def test_download_offline_fails_in_one_sentence(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no network attempt, and nothing in this empty cache
    with pytest.raises(ConnectionError, match=r"^could not download stable-diffusion-v1-5/stable-diffusion-v1-5 from huggingface\.co .*local copy$"):
        sd15.download(cache_dir=tmp_path)
    assert sd15.cached(cache_dir=tmp_path) is None


def test_unavailable_says_why_in_one_sentence(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    reason = sd15.unavailable()
    assert reason.startswith("no CUDA GPU on this machine") and "\n" not in reason


def test_reachable_is_quick_and_true_only_for_an_open_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert sd15.reachable("127.0.0.1", port, timeout=1.0)
    assert not sd15.reachable("127.0.0.1", port, timeout=1.0)  # closed now
