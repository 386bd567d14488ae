"""Instruction editing, InstructPix2Pix (Brooks et al. 2023; slides: the "Give him a cowboy hat" series, lesson 09).

    c_I = E(x) the input image's latent (the encoder's mean, unscaled, as diffusers' pipeline takes it)
    ε_θ(z_t, t, c_I, c_T) = U-Net(concat[z_t, c_I], t, c_T)      8 input channels: the 4 new ones start at zero (§3.2)
    ε̃ = ε(∅, ∅) + s_I·[ε(c_I, ∅) − ε(∅, ∅)] + s_T·[ε(c_I, c_T) − ε(c_I, ∅)]                       (§3.3, eq. 3)

∅ is the empty prompt for the text and a zero latent for the image (diffusers' ``StableDiffusionInstructPix2PixPipeline``).
Training drops the text, the image or both (5 % each, §3.3) so that the three ε can be asked of one network.

The captions' tokenizer has no verbs: the instructions' words (:data:`course.instructions.NEW_WORDS`) get the ids after
the shipped vocabulary's and new rows of the frozen CLIP text encoder's token table, learned with the U-Net. Exported,
the table is simply longer (:func:`export_instruct`), and stock diffusers reads it.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import replace

import torch
from torch import nn

from course.instructions import NEW_WORDS
from course.tokenizer import EOS_ID, MAX_LENGTH, PAD_ID, UNK_ID, backend
from course.unet import UNet

CHECKPOINT = "instruct_pix2pix.safetensors"
IMAGE_GUIDANCE, TEXT_GUIDANCE = 1.5, 3.0  # (s_I, s_T) of the training curve; generation uses default_scales()


def default_scales() -> tuple[float, float]:
    """(s_T, s_I) chosen on validation triplets by ``python -m course.instruct_eval record`` (data/instruct_eval.json), or
    the training curve's when nothing was recorded."""
    from course.paths import data_dir

    path = data_dir() / "instruct_eval.json"
    if not path.exists():
        return TEXT_GUIDANCE, IMAGE_GUIDANCE
    chosen = json.loads(path.read_text())["chosen"]
    return float(chosen["s_T"]), float(chosen["s_I"])


@functools.lru_cache(maxsize=1)
def instruction_tokenizer():
    """The shipped tokenizer (``tokenizers.Tokenizer``) with :data:`NEW_WORDS` appended: ids of known words unchanged."""
    from tokenizers import Tokenizer

    spec = json.loads(backend().to_str())
    vocab = spec["model"]["vocab"]
    for word in NEW_WORDS:
        if word in vocab:
            raise ValueError(f"new word {word!r} is already in the vocabulary")
        vocab[word] = len(vocab)
    return Tokenizer.from_str(json.dumps(spec))


def vocab_size() -> int:
    return instruction_tokenizer().get_vocab_size(with_added_tokens=False)


def encode(prompts: list[str]) -> torch.Tensor:
    """Token ids (B, 32) of instructions ("" is ∅): <bos> words… <eos> <pad>…, as :func:`course.tokenizer.encode`."""
    out = torch.full((len(prompts), MAX_LENGTH), PAD_ID, dtype=torch.long)
    for row, encoding in enumerate(instruction_tokenizer().encode_batch(prompts)):
        seq = encoding.ids
        seq = seq[: MAX_LENGTH - 1] + [EOS_ID] if len(seq) > MAX_LENGTH else seq
        out[row, : len(seq)] = torch.tensor(seq)
    return out


def unknown_words(prompt: str) -> list[str]:
    """The words of an instruction that neither the captions nor the instructions taught (read as <unk>)."""
    tok = instruction_tokenizer()
    pieces = tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(prompt))
    return [word for word, _ in pieces if tok.token_to_id(word) in (None, UNK_ID)]


def widen_conv_in(unet: UNet, extra: int = 4) -> UNet:
    """A copy of ``unet`` taking ``extra`` more input channels, their weights at zero: it starts as ``unet`` (§3.2)."""
    wide = UNet(replace(unet.config, in_channels=unet.config.in_channels + extra))
    state = {k: v.clone() for k, v in unet.state_dict().items()}
    w = state["conv_in.weight"]
    state["conv_in.weight"] = torch.cat([w, w.new_zeros(w.shape[0], extra, *w.shape[2:])], dim=1)
    wide.load_state_dict(state)
    return wide


class InstructPix2Pix(nn.Module):
    """The editing model: the widened U-Net, the frozen text encoder, and the new words' embedding rows (trained)."""

    def __init__(self, unet: UNet, text: nn.Module, new_words: torch.Tensor | None = None):
        super().__init__()
        self.unet, self.text = unet, text.requires_grad_(False)
        table = text.embeddings.token_embedding.weight
        if new_words is None:  # each new word starts as a random draw around the known words' embeddings
            new_words = table.mean(0) + table.std(0) * torch.randn(len(NEW_WORDS), table.shape[1])
        self.new_words = nn.Parameter(new_words.clone())

    @classmethod
    def from_base(cls, unet: UNet, text: nn.Module) -> "InstructPix2Pix":
        import copy

        return cls(widen_conv_in(unet), copy.deepcopy(text))

    def token_weight(self) -> torch.Tensor:
        """The token table (V + K, D): the shipped words' rows, then the new words'."""
        return torch.cat([self.text.embeddings.token_embedding.weight, self.new_words])

    def text_states(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, 32, D) of instructions and an all-True mask (Stable Diffusion's layout)."""
        device = self.new_words.device
        ids = encode(prompts).to(device)
        hidden, _, _ = self.text(ids, token_weight=self.token_weight())
        return hidden, torch.ones(ids.shape, dtype=torch.bool, device=device)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None, c_image: torch.Tensor) -> torch.Tensor:
        return self.unet(torch.cat([z_t, c_image], dim=1), t, context, mask)  # (B, 4 + 4, h, w) in, ε (B, 4, h, w) out

    def merged_text_encoder(self) -> nn.Module:
        """A plain text encoder whose vocabulary includes the new words (what the diffusers export holds)."""
        from course.clip import TextEncoder

        text = TextEncoder(replace(self.text.config, vocab_size=self.token_weight().shape[0]))
        state = dict(self.text.state_dict())
        state["embeddings.token_embedding.weight"] = self.token_weight().detach().clone()
        text.load_state_dict(state)
        return text.eval()


def dual_guidance(eps_both: torch.Tensor, eps_image: torch.Tensor, eps_none: torch.Tensor, s_T: float, s_I: float) -> torch.Tensor:
    """ε̃ = ε(∅, ∅) + s_I·[ε(c_I, ∅) − ε(∅, ∅)] + s_T·[ε(c_I, c_T) − ε(c_I, ∅)] (Brooks et al. 2023, eq. 3)."""
    return eps_none + s_I * (eps_image - eps_none) + s_T * (eps_both - eps_image)


def check_scales(s_T: float, s_I: float) -> None:
    for name, value in (("guidance (s_T)", s_T), ("image guidance (s_I)", s_I)):
        if not math.isfinite(value) or not 0 <= value <= 50:
            raise ValueError(f"the {name} must be a number in [0, 50] (1: no guidance), got {value}")


def dual_guided(model: InstructPix2Pix, context: torch.Tensor, null: torch.Tensor, c_image: torch.Tensor, s_T: float, s_I: float):
    """A sampler-ready ``(z_t, t) -> ε̃``: one batched pass computes ε(c_I, c_T), ε(c_I, ∅) and ε(∅, ∅) (diffusers' order)."""
    check_scales(s_T, s_I)
    B = context.shape[0]
    contexts = torch.cat([context, null.expand(B, -1, -1), null.expand(B, -1, -1)])
    images = torch.cat([c_image, c_image, torch.zeros_like(c_image)])
    from course.yours import pick

    def eps(z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = model(torch.cat([z_t] * 3), torch.cat([t] * 3), contexts, None, images)
        both, image, none = out.chunk(3)
        return (pick("dual_guidance") or dual_guidance)(both, image, none, s_T, s_I)  # the learner's, after course.yours.use

    return eps


@torch.no_grad()
def edit_latents(model: InstructPix2Pix, c_image: torch.Tensor, prompts: list[str], s_T: float = TEXT_GUIDANCE, s_I: float = IMAGE_GUIDANCE,
                 sampler: str = "dpmpp", steps: int = 25, generator: torch.Generator | int | None = None, callback=None) -> torch.Tensor:
    """z'_0 (B, 4, h, w) for the edit ``prompts`` of the images whose latents are ``c_image`` (unscaled means), from z_T ~ N(0, I)."""
    from course.pipeline import as_generator
    from course.samplers import sample
    from course.shipped import betas

    generator = as_generator(generator)
    device = next(model.parameters()).device
    z_T = torch.randn(c_image.shape, generator=generator, device=generator.device).to(device)
    context, _ = model.text_states(prompts)
    null, _ = model.text_states([""])
    eps = dual_guided(model, context, null, c_image.to(device), s_T, s_I)
    return sample(sampler, eps, z_T, betas(), steps, generator=generator, callback=callback)


def load_instruct(path=None) -> InstructPix2Pix:
    """The shipped editing model (data/instruct_pix2pix.safetensors), checksum verified, refused beside another U-Net or CLIP."""
    from course import checkpoints
    from course.paths import data_dir
    from course.shipped import CLIP_CHECKPOINT, UNET_CHECKPOINT, load_clip, make_unet

    from pathlib import Path

    path = Path(path) if path is not None else data_dir() / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the editing model is not shipped; train it with python -m course.instruct_train train --ship (lesson 09)")
    tensors, manifest = checkpoints.load(path)
    for name in (UNET_CHECKPOINT, CLIP_CHECKPOINT):
        expected = checkpoints.read_manifest(data_dir() / name)["sha256"]
        if manifest.get("trained_with", {}).get(name, expected) != expected:
            raise checkpoints.CheckpointError(f"{path.name} was trained beside another data/{name}: retrain it (python -m course.instruct_train train --ship)")
    import copy

    text = copy.deepcopy(load_clip().text)  # a copy: the shipped CLIP stays as it is
    model = InstructPix2Pix(widen_conv_in(make_unet()), text, torch.zeros(len(NEW_WORDS), text.config.hidden_size))
    model.load_state_dict(tensors)
    return model.eval()


def save_tokenizer(folder):
    """The instruction tokenizer as a transformers folder (tokenizer.json + config), for the diffusers export."""
    from pathlib import Path

    from course.tokenizer import wrap

    folder = Path(folder)
    wrap(instruction_tokenizer()).save_pretrained(str(folder))
    return folder


def export_instruct(out, model: InstructPix2Pix, ae: nn.Module, scaling_factor: float, image_size: int, force: bool = False):
    """The editing model as a diffusers folder: ``StableDiffusionInstructPix2PixPipeline.from_pretrained(out)`` (stock, offline)
    gives the course's edits. The U-Net takes 8 channels; the text encoder's table and the tokenizer hold the new words."""
    import tempfile

    from course.export import export

    with tempfile.TemporaryDirectory() as tmp:
        return export(out, model.unet, ae, scaling_factor, model.merged_text_encoder(), save_tokenizer(tmp), image_size, force)
