"""LoRA, low-rank adaptation (Hu et al. 2022, eq. 3; lesson 11): a frozen linear layer W plus a trained update of rank r,

    h = W x + (α / r) · B A x          A (r, d_in) random (Kaiming-uniform, as peft), B (d_out, r) at zero

so the adapted model starts exactly as the base one, and only r·(d_in + d_out) numbers per layer are trained. Put on
the U-Net's attention projections (``to_q``, ``to_k``, ``to_v``, ``to_out.0`` of every self- and cross-attention,
the paper's and diffusers' choice). Merging writes W + (α/r)·BA into the base layer (no cost at inference);
unmerging puts back the saved W, bit for bit.

The file is the one diffusers reads: ``unet.<layer>.lora_A.weight`` and ``…lora_B.weight`` (peft's names) with r and α
in the safetensors metadata (``lora_adapter_metadata``, as ``save_lora_weights`` writes it); stock diffusers'
``pipe.load_lora_weights(file)`` then gives our images (tests/test_concept.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from course.yours import pick

TARGETS: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")  # in every attention block of the U-Net
METADATA_KEY = "lora_adapter_metadata"  # diffusers' key in the safetensors header
WORD_KEY = "course_new_word"  # the new word's row, when the LoRA was trained for one (a header entry diffusers ignores)
CHECKPOINT = "concept_lora.safetensors"


class LoRAError(ValueError):
    """A bad rank, or a LoRA file that does not fit this model (the message names the tensor, expected vs found shape)."""


def check_rank(rank) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise LoRAError(f"the LoRA rank must be a positive integer, got {rank!r}")
    return rank


class LoRALinear(nn.Module):
    """``base`` (frozen) + (α/r)·B A: the low-rank update of Hu et al. 2022, eq. 3."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None):
        super().__init__()
        check_rank(rank)
        if rank > min(base.in_features, base.out_features):
            raise LoRAError(f"rank {rank} is above the layer's own rank bound min({base.in_features}, {base.out_features})")
        self.base = base.requires_grad_(False)
        self.rank, self.alpha = rank, float(alpha if alpha is not None else rank)
        self.scale = self.alpha / rank
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # as peft
        nn.init.zeros_(self.lora_B.weight)  # ΔW = 0: the model starts unchanged
        self._saved: torch.Tensor | None = None  # W before merging

    @property
    def merged(self) -> bool:
        return self._saved is not None

    def delta(self) -> torch.Tensor:
        """ΔW = (α/r)·B A, (d_out, d_in)."""
        return self.scale * self.lora_B.weight @ self.lora_A.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base(x)  # ΔW is inside W
        yours = pick("lora_forward")  # the learner's, once lesson 11's exercise passed (course.yours.use)
        if yours is not None:
            bias = self.base.bias if self.base.bias is not None else self.base.weight.new_zeros(self.base.out_features)
            return yours(x, self.base.weight, bias, self.lora_A.weight, self.lora_B.weight, self.scale)
        return self.base(x) + self.scale * self.lora_B(self.lora_A(x))  # W x + b + (α/r)·B A x

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self._saved = self.base.weight.detach().clone()
            self.base.weight += self.delta()

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight.copy_(self._saved)
            self._saved = None


def _targets(model: nn.Module, targets: tuple[str, ...]) -> list[str]:
    """Names of the attention projections to adapt: ``…attn1.to_q`` etc. (the U-Net's :class:`course.unet.Attention` blocks)."""
    from course.unet import Attention

    names = []
    for prefix, module in model.named_modules():
        if isinstance(module, Attention):
            names += [f"{prefix}.{t}" for t in targets]
    return names


def add_lora(model: nn.Module, rank: int, alpha: float | None = None, targets: tuple[str, ...] = TARGETS) -> list[str]:
    """Replace the attention projections of ``model`` (a U-Net) by :class:`LoRALinear` in place; every other weight frozen.
    Returns the adapted layers' names."""
    check_rank(rank)
    model.requires_grad_(False)
    names = _targets(model, targets)
    if not names:
        raise LoRAError("no attention layer to adapt in this model")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        base = parent.get_submodule(child)
        if isinstance(base, LoRALinear):
            raise LoRAError(f"{name} already has a LoRA: remove it first (remove_lora)")
        lora = LoRALinear(base, rank, alpha).to(base.weight.device)
        if isinstance(parent, nn.ModuleList):
            parent[int(child)] = lora
        else:
            setattr(parent, child, lora)
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge(model: nn.Module) -> None:
    for layer in lora_layers(model).values():
        layer.merge()


def unmerge(model: nn.Module) -> None:
    for layer in lora_layers(model).values():
        layer.unmerge()


def remove_lora(model: nn.Module) -> nn.Module:
    """Put the base layers back (unmerged first): the model is the base model again."""
    for name, layer in lora_layers(model).items():
        layer.unmerge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        if isinstance(parent, nn.ModuleList):
            parent[int(child)] = layer.base
        else:
            setattr(parent, child, layer.base)
    return model


def base_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under the base model's names (``….to_q.base.weight`` → ``….to_q.weight``), LoRA left out."""
    out = {}
    for key, value in model.state_dict().items():
        if ".lora_A." in key or ".lora_B." in key:
            continue
        out[key.replace(".base.", ".")] = value
    return out


def lora_tensors(model: nn.Module, prefix: str = "unet") -> dict[str, torch.Tensor]:
    """The file's tensors, under diffusers' (peft's) names: ``unet.<layer>.lora_A.weight`` (r, d_in), ``…lora_B.weight`` (d_out, r)."""
    layers = lora_layers(model)
    if not layers:
        raise LoRAError("this model has no LoRA layer to save")
    out = {}
    for name, layer in layers.items():
        out[f"{prefix}.{name}.lora_A.weight"] = layer.lora_A.weight.detach().cpu().contiguous()
        out[f"{prefix}.{name}.lora_B.weight"] = layer.lora_B.weight.detach().cpu().contiguous()
    return out


def lora_metadata(model: nn.Module, prefix: str = "unet") -> dict[str, str]:
    """The safetensors header diffusers reads r and α from (peft's ``LoraConfig`` fields, prefixed by the component)."""
    layers = list(lora_layers(model).values())
    ranks, alphas = {l.rank for l in layers}, {l.alpha for l in layers}
    if len(ranks) != 1 or len(alphas) != 1:
        raise LoRAError("every layer must share one rank and one α to be saved in diffusers' format")
    config = {"r": ranks.pop(), "lora_alpha": alphas.pop(), "target_modules": list(TARGETS), "lora_dropout": 0.0, "bias": "none",
              "init_lora_weights": True, "use_dora": False}
    return {METADATA_KEY: json.dumps({f"{prefix}.{k}": v for k, v in config.items()}, indent=2, sort_keys=True)}


def word_header(token: str, vector: torch.Tensor) -> dict[str, str]:
    """The new word's row in the header (exact: float32 values are exact in JSON's float64)."""
    return {WORD_KEY: json.dumps({"token": token, "vector": vector.detach().reshape(-1).cpu().tolist()})}


def read_lora_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, {"r", "lora_alpha", …, and "word": (token, v (1, D)) if the file has one}) of a LoRA file in diffusers'
    format, the ``unet.`` prefix removed."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if METADATA_KEY not in header:
        raise LoRAError(f"{path}: no {METADATA_KEY} in the file's header: not a LoRA saved with its rank and α")
    config = {k.split(".", 1)[1]: v for k, v in json.loads(header[METADATA_KEY]).items() if k.startswith("unet.")}
    if WORD_KEY in header:
        word = json.loads(header[WORD_KEY])
        config["word"] = (word["token"], torch.tensor(word["vector"], dtype=torch.float32).reshape(1, -1))
    return {k.removeprefix("unet."): v for k, v in tensors.items()}, config


def load_lora(model: nn.Module, tensors: dict[str, torch.Tensor], config: dict) -> nn.Module:
    """Add LoRA layers of the file's rank and α to ``model`` and fill them; a tensor that does not fit names itself."""
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    expected_layers = set(_targets(model, TARGETS))
    found_layers = {k.rsplit(".lora_", 1)[0] for k in tensors}
    missing, unexpected = sorted(expected_layers - found_layers), sorted(found_layers - expected_layers)
    if unexpected:
        raise LoRAError(f"the LoRA adapts {unexpected[0]}, which this model does not have ({len(unexpected)} such layer(s)): it was made for another architecture")
    if missing:
        raise LoRAError(f"the LoRA has no update for {missing[0]} ({len(missing)} layer(s) missing): it was made for another architecture")
    add_lora(model, rank, alpha)
    for name, layer in lora_layers(model).items():
        for part in ("lora_A", "lora_B"):
            key, target = f"{name}.{part}.weight", getattr(layer, part).weight
            found = tensors[key]
            if found.shape != target.shape:
                raise LoRAError(f"{key}: expected shape {tuple(target.shape)}, found {tuple(found.shape)}: the LoRA was made for another architecture or rank")
            with torch.no_grad():
                target.copy_(found)
    return model
