"""CLIP from scratch (Radford et al. 2021): a text transformer and an image encoder trained contrastively.

Slides: « Architecture CLIP : le pont entre texte et image ». The text encoder has exactly the
architecture of transformers' ``CLIPTextModelWithProjection`` (token + position embeddings,
pre-LayerNorm blocks with causal self-attention and a quick-GELU MLP, final LayerNorm, the hidden
state at <eos> as pooled output, a bias-free projection), with the same parameter names, so its
weights load into that class and give the same embeddings (:func:`to_transformers`).

Symbols → names: the batch's image embeddings I and text embeddings T (unit vectors) → ``image_embeds``,
``text_embeds``; the temperature τ → ``logit_scale = log(1/τ)``, clamped to log 100 as in CLIP.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course.attention import MultiHeadAttention, causal_mask
from course.tokenizer import EOS_ID, MAX_LENGTH

MAX_LOGIT_SCALE = math.log(100.0)


@dataclass(frozen=True)
class ClipConfig:
    vocab_size: int
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 512
    max_positions: int = MAX_LENGTH
    projection_dim: int = 128
    image_size: int = 64
    image_width: int = 32
    layer_norm_eps: float = 1e-5


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """x·σ(1.702x), the GELU approximation of the original CLIP."""
    return x * torch.sigmoid(1.702 * x)


class TextEmbeddings(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embedding = nn.Embedding(c.max_positions, c.hidden_size)

    def forward(self, input_ids: torch.Tensor, token_weight: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        tokens = self.token_embedding(input_ids) if token_weight is None else F.embedding(input_ids, token_weight)  # another table: new words
        return tokens + self.position_embedding(positions)[None]  # (B, L, D)


class MLP(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c.hidden_size, c.intermediate_size), nn.Linear(c.intermediate_size, c.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(quick_gelu(self.fc1(x)))


class EncoderLayer(nn.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x)): a pre-LayerNorm transformer block."""

    def __init__(self, c: ClipConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.self_attn = MultiHeadAttention(c.hidden_size, c.heads)
        self.layer_norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = MLP(c)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x), mask=mask)
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(c) for _ in range(c.layers))


class TextEncoder(nn.Module):
    """Prompt tokens → per-token states (B, L, D), the pooled state at <eos> (B, D) and its projection (B, P)."""

    def __init__(self, c: ClipConfig):
        super().__init__()
        self.config = c
        self.eos_token_id = EOS_ID  # the token whose state is the pooled output (real CLIP's <|endoftext|> is 49407)
        self.embeddings = TextEmbeddings(c)
        self.encoder = Encoder(c)
        self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.text_projection = nn.Linear(c.hidden_size, c.projection_dim, bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, token_weight: torch.Tensor | None = None):
        """``token_weight``: a token embedding table (V', D) used instead of the module's own (e.g. with new words' rows)."""
        B, L = input_ids.shape
        if L > self.config.max_positions:
            raise ValueError(f"at most {self.config.max_positions} tokens, got {L}")
        mask = causal_mask(L, input_ids.device)[None, None]  # (1, 1, L, L)
        if attention_mask is not None:
            mask = mask & attention_mask.bool()[:, None, None, :]  # padded keys are never attended to
        x = self.embeddings(input_ids, token_weight)
        for layer in self.encoder.layers:
            x = layer(x, mask)
        hidden = self.final_layer_norm(x)  # (B, L, D)
        eos = (input_ids == self.eos_token_id).int().argmax(dim=1)  # first <eos> of each prompt
        pooled = hidden[torch.arange(B, device=hidden.device), eos]  # (B, D)
        return hidden, pooled, self.text_projection(pooled)


class ImageEncoder(nn.Module):
    """A small CNN: (B, 3, 64, 64) in [−1, 1] → an embedding (B, P).

    The stem is a 4×4 convolution of stride 2 (64 → 32 at once, every pixel still seen), which keeps
    a training step on a CPU short; three more stride-2 blocks bring the side to 4. BatchNorm, not
    GroupNorm: with GroupNorm every image embedding collapsed onto one direction within 20 steps and the
    loss sat at ln B (measured), while BatchNorm let the contrastive loss fall from the first steps.
    """

    def __init__(self, c: ClipConfig):
        super().__init__()
        w = c.image_width
        self.image_size = c.image_size

        def down(c_in, c_out):  # halves the side
            return [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.SiLU()]

        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, stride=2, padding=1), nn.SiLU(),  # 64 → 32
            *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 4 * w),  # 32 → 4
            nn.Flatten(),
        )
        side = c.image_size // 16
        self.proj = nn.Sequential(nn.Linear(4 * w * side * side, 256), nn.SiLU(), nn.Linear(256, c.projection_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.proj(self.net(images))


class CLIP(nn.Module):
    def __init__(self, c: ClipConfig):
        super().__init__()
        self.config = c
        self.text = TextEncoder(c)
        self.image = ImageEncoder(c)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature 0.07

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(images), dim=-1)

    def encode_text_embeds(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return F.normalize(self.text(input_ids, attention_mask)[2], dim=-1)

    def forward(self, images, input_ids, attention_mask=None) -> torch.Tensor:
        """The similarity logits (B_images, B_texts) = exp(logit_scale)·I·Tᵀ."""
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        return scale * self.encode_image(images) @ self.encode_text_embeds(input_ids, attention_mask).T


def contrastive_loss(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy over the similarity matrix: row i's positive is column i (Radford et al. 2021, Fig. 3)."""
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"logits must be a square (B, B) matrix, got {tuple(logits.shape)}")
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


# ----------------------------------------------------------------------------- transformers parity


def transformers_config(c: ClipConfig):
    """The ``transformers.CLIPTextConfig`` describing the same text encoder."""
    from transformers import CLIPTextConfig

    from course.tokenizer import BOS_ID, PAD_ID

    return CLIPTextConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.layers,
        num_attention_heads=c.heads,
        max_position_embeddings=c.max_positions,
        projection_dim=c.projection_dim,
        hidden_act="quick_gelu",
        layer_norm_eps=c.layer_norm_eps,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
    )


def to_transformers(text: TextEncoder):
    """A ``transformers.CLIPTextModelWithProjection`` holding this text encoder's weights."""
    from transformers import CLIPTextModelWithProjection

    model = CLIPTextModelWithProjection(transformers_config(text.config))
    state = {(k if k.startswith("text_projection") else f"text_model.{k}"): v for k, v in text.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"weights do not map onto transformers' CLIP: missing {missing}, unexpected {unexpected}")
    return model.eval()


def config_dict(c: ClipConfig) -> dict:
    return asdict(c)
