"""The U-Net with self- and cross-attention (slides: « Architecture Détaillée », « U-Net avec Attention »,
« Downsamplers »), as in Stable Diffusion (Rombach et al. 2022, §3.3 and Appendix) at a small scale.

The topology and the parameter names are those of diffusers' ``UNet2DConditionModel``, so that the
weights map one to one (:mod:`course.diffusers_format`); every block is written here, in plain PyTorch.
The shipped latent U-Net is one (course.shipped.UNET), and real Stable Diffusion weights load into it too.

Shapes, with B the batch, C channels, H×W the (latent) image and L the prompt's tokens::

    x (B, C_in, H, W), t (B,) in [1, T], context (B, L, D_text)  →  ε̂ (B, C_out, H, W)

    conv_in                                   (B, C0, H, W)              — a skip
    down_blocks[i]: layers_per_block × (ResBlock [+ SpatialTransformer]), — a skip after each
                    then a downsampler (not at the last level)            — a skip after it
    mid_block: ResBlock, SpatialTransformer, ResBlock                   (B, C_last, H/2^(n−1), W/2^(n−1))
    up_blocks[i]: (layers_per_block + 1) × (concat a skip, ResBlock [+ SpatialTransformer]),
                  then an upsampler (not at the last level)
    conv_norm_out, SiLU, conv_out             (B, C_out, H, W)

Levels halve the resolution on the way down (the « downsamplers », an « entonnoir ») and double it on
the way up; what the way down produced is concatenated on the way up (skip connections). Attention blocks
let every pixel look at every other pixel (self-attention) and at every word of the prompt (cross-attention:
queries from the image, keys and values from CLIP's token states — all of them, padding included, as
Stable Diffusion does). With ``pooled=True`` an attention-pooled summary of the prompt is also added to the
time embedding (diffusers' ``addition_embed_type="text"``, from DeepFloyd IF; SDXL adds CLIP's pooled state,
Podell et al. 2023, §2.1).

Timesteps: the slides number the T steps 1 … T (Ho et al. 2020); diffusers numbers them 0 … T − 1. The
network reads t − 1, so the same weights run unchanged in diffusers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course.attention import attention_weights, merge_heads, split_heads
from course.yours import pick
from course.embeddings import timestep_embedding


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 4
    out_channels: int = 4
    channels: tuple[int, ...] = (64, 128, 192)  # one entry per level; level i works at H / 2^i (diffusers: block_out_channels)
    attention: tuple[bool, ...] = (False, True, True)  # attention blocks at each level (CrossAttnDownBlock2D or DownBlock2D)
    heads: int = 4  # attention heads at every level (diffusers, for SD v1: attention_head_dim)
    context_dim: int | None = 128  # width of the text states (diffusers: cross_attention_dim); None: no cross-attention
    groups: int = 8  # GroupNorm groups (diffusers: norm_num_groups)
    pooled: bool = False  # add an attention-pooled summary of the prompt to the time embedding (diffusers: addition_embed_type="text")
    layers_per_block: int = 1  # ResBlocks per level on the way down (one more on the way up)
    pooled_heads: int = 4  # heads of the pooled summary's attention (diffusers: addition_embed_type_num_heads)

    def __post_init__(self):
        if len(self.channels) != len(self.attention):
            raise ValueError(f"channels and attention need one entry per level, got {len(self.channels)} and {len(self.attention)}")
        for c in self.channels:
            if c % self.groups or c % self.heads:
                raise ValueError(f"channels ({c}) must be divisible by groups ({self.groups}) and heads ({self.heads})")
        if self.pooled and self.context_dim is None:
            raise ValueError("pooled=True needs text states (context_dim)")
        if self.pooled and self.context_dim % self.pooled_heads:
            raise ValueError(f"context_dim ({self.context_dim}) must be divisible by pooled_heads ({self.pooled_heads})")
        if self.layers_per_block < 1:
            raise ValueError(f"layers_per_block must be ≥ 1, got {self.layers_per_block}")


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv; add the time embedding; GroupNorm → SiLU → conv; add the input (Ho et al. 2020, App. B).

    diffusers' ``ResnetBlock2D``, with its parameter names. ``emb_activation``: apply SiLU to the embedding
    before its projection (the U-Net does; lesson 02's small net, whose embedding already comes out of an MLP,
    does not). ``eps``: the GroupNorms' ε (the U-Net's 1e-5, the autoencoder's 1e-6, as in Stable Diffusion).
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int | None, groups: int = 8, emb_activation: bool = True, eps: float = 1e-5):
        super().__init__()
        self.emb_activation = emb_activation
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in, eps=eps), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time_emb_proj = nn.Linear(emb_dim, c_out) if emb_dim is not None else None  # None: no time input (autoencoder)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out, eps=eps), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(emb) if self.emb_activation else emb)[:, :, None, None]  # the same shift at every pixel
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.conv_shortcut(x)


class Downsample(nn.Module):
    """Halve H and W with a stride-2 convolution (the slides' « downsamplers »; diffusers' ``Downsample2D``).

    ``padding=0``: pad one pixel on the right and bottom only, as Stable Diffusion's autoencoder does.
    """

    def __init__(self, channels: int, padding: int = 1):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)) if self.padding == 0 else x)


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour enlargement, then a convolution (diffusers' ``Upsample2D``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Attention(nn.Module):
    """Multi-head attention with bias-free q, k, v (diffusers' ``Attention`` in the U-Net): softmax(QKᵀ/√d)·V
    (Vaswani et al. 2017, eq. 1). Queries from ``x``; keys and values from ``context`` (cross-attention) or ``x``.

    ``record = True`` keeps the attention weights (B, heads, Lq, Lk) in ``.weights`` (the written-out form,
    lesson 04's maps); otherwise ``scaled_dot_product_attention`` computes the same without storing them.
    ``keep_graph = True`` keeps them attached to the autograd graph, for a loss on the maps (Attend-and-Excite).
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        context_dim = context_dim or dim
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        self.record = False
        self.keep_graph = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q, k, v = (split_heads(proj(y), self.heads) for proj, y in ((self.to_q, x), (self.to_k, context), (self.to_v, context)))  # (B, heads, L, d)
        if self.record:
            weights = attention_weights(q, k, mask)  # (B, heads, Lq, Lk)
            self.weights = weights if self.keep_graph else weights.detach()
            out = weights @ v
        elif pick("cross_attention") is not None:  # the learner's attention (course.yours.use), head by head
            out = _per_head(pick("cross_attention"), q, k, v, mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, Lq, d)
        return self.to_out[0](merge_heads(out))  # (B, Lq, dim)


def _per_head(fn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """A single-head ``fn(q (N, Lq, d), k, v (N, Lk, d), key_mask (N, Lk))`` run on every (image, head) pair."""
    B, h, Lq, d = q.shape
    Lk = k.shape[2]
    key_mask = torch.ones(B, Lk, dtype=torch.bool, device=q.device) if mask is None else mask.reshape(B, Lk)  # (B, 1, 1, Lk) → (B, Lk)
    key_mask = key_mask[:, None, :].expand(B, h, Lk).reshape(B * h, Lk)
    out = fn(q.reshape(B * h, Lq, d), k.reshape(B * h, Lk, d), v.reshape(B * h, Lk, d), key_mask)
    return out.reshape(B, h, Lq, d)


class GEGLU(nn.Module):
    """A gated GELU: x ↦ a ⊙ GELU(g) with [a, g] = W x + b (Shazeer 2020, eq. 6), Stable Diffusion's feed-forward."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, 2 * dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU to 4·dim, then back to dim (diffusers' ``FeedForward``; ``net[1]`` is its dropout slot)."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TransformerBlock(nn.Module):
    """Pre-LayerNorm self-attention, cross-attention to the prompt, feed-forward; each residual (``BasicTransformerBlock``)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(dim), Attention(dim, heads)
        self.attn2 = None
        if context_dim is not None:
            self.norm2, self.attn2 = nn.LayerNorm(dim), Attention(dim, heads, context_dim)
        self.norm3, self.ff = nn.LayerNorm(dim), FeedForward(dim)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = h + self.attn1(self.norm1(h))  # every pixel looks at every pixel
        if self.attn2 is not None and context is not None:
            h = h + self.attn2(self.norm2(h), context, mask)  # every pixel looks at every word
        return h + self.ff(self.norm3(h))


class SpatialTransformer(nn.Module):
    """The image (B, C, H, W) read as H·W tokens of width C through a transformer block, residual
    (Rombach et al. 2022's "SpatialTransformer"; diffusers' ``Transformer2DModel``)."""

    def __init__(self, channels: int, heads: int, context_dim: int | None, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(channels, heads, context_dim)])
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)  # (B, H·W, C)
        for block in self.transformer_blocks:
            h = block(h, context, mask)
        return x + self.proj_out(h.transpose(1, 2).reshape(B, C, H, W))


class DownBlock(nn.Module):
    """One level on the way down: ResBlocks (each followed by attention if ``attention``), then a downsampler.

    diffusers' ``CrossAttnDownBlock2D`` (with attention) or ``DownBlock2D``. Returns h and the skips it adds.
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, config: UNetConfig, attention: bool, downsample: bool):
        super().__init__()
        n = config.layers_per_block
        self.resnets = nn.ModuleList([ResBlock(c_in if i == 0 else c_out, c_out, emb_dim, config.groups) for i in range(n)])
        self.attentions = nn.ModuleList([SpatialTransformer(c_out, config.heads, config.context_dim, config.groups) for _ in range(n)]) if attention else None
        self.downsamplers = nn.ModuleList([Downsample(c_out)]) if downsample else None

    def forward(self, h, emb, context, mask) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for i, resnet in enumerate(self.resnets):
            h = resnet(h, emb)
            if self.attentions is not None:
                h = self.attentions[i](h, context, mask)
            skips.append(h)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            skips.append(h)
        return h, skips


class MidBlock(nn.Module):
    """ResBlock → attention → ResBlock at the lowest resolution (diffusers' ``UNetMidBlock2DCrossAttn``)."""

    def __init__(self, channels: int, emb_dim: int, config: UNetConfig):
        super().__init__()
        self.resnets = nn.ModuleList([ResBlock(channels, channels, emb_dim, config.groups) for _ in range(2)])
        self.attentions = nn.ModuleList([SpatialTransformer(channels, config.heads, config.context_dim, config.groups)])

    def forward(self, h, emb, context, mask) -> torch.Tensor:
        h = self.resnets[0](h, emb)
        return self.resnets[1](self.attentions[0](h, context, mask), emb)


class UpBlock(nn.Module):
    """One level on the way up: (layers_per_block + 1) × (concatenate a skip, ResBlock [, attention]), then an upsampler.

    diffusers' ``CrossAttnUpBlock2D`` or ``UpBlock2D``. ``c_skip``: channels of this level's last skip (the level above's).
    """

    def __init__(self, c_prev: int, c_out: int, c_skip: int, emb_dim: int, config: UNetConfig, attention: bool, upsample: bool):
        super().__init__()
        n = config.layers_per_block + 1
        c_in = [(c_prev if i == 0 else c_out) + (c_skip if i == n - 1 else c_out) for i in range(n)]
        self.resnets = nn.ModuleList([ResBlock(c_in[i], c_out, emb_dim, config.groups) for i in range(n)])
        self.attentions = nn.ModuleList([SpatialTransformer(c_out, config.heads, config.context_dim, config.groups) for _ in range(n)]) if attention else None
        self.upsamplers = nn.ModuleList([Upsample(c_out)]) if upsample else None

    def forward(self, h, skips: list[torch.Tensor], emb, context, mask) -> torch.Tensor:
        for i, resnet in enumerate(self.resnets):
            h = resnet(torch.cat([h, skips.pop()], dim=1), emb)  # the most recent skip first
            if self.attentions is not None:
                h = self.attentions[i](h, context, mask)
        return self.upsamplers[0](h) if self.upsamplers is not None else h


class AttentionPooling(nn.Module):
    """One query, the mean of the prompt's states plus a learned vector, attends to them all (DeepFloyd IF;
    diffusers' ``AttentionPooling``): (B, L, D) → (B, D)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.positional_embedding = nn.Parameter(torch.randn(1, dim) / dim**0.5)
        self.k_proj, self.q_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        query = x.mean(dim=1, keepdim=True) + self.positional_embedding  # (B, 1, D)
        x = torch.cat([query, x], dim=1)  # (B, 1 + L, D): the query also sees itself

        def split(y):
            return y.view(B, -1, self.heads, D // self.heads).transpose(1, 2)  # (B, heads, ·, d)

        q, k, v = split(self.q_proj(query)), split(self.k_proj(x)), split(self.v_proj(x))
        out = attention_weights(q, k) @ v  # (B, heads, 1, d)
        return out.transpose(1, 2).reshape(B, D)


class TextPooling(nn.Module):
    """LayerNorm → attention pooling → linear → LayerNorm: the prompt's summary added to the time embedding
    (diffusers' ``TextTimeEmbedding``, ``addition_embed_type="text"``)."""

    def __init__(self, context_dim: int, emb_dim: int, heads: int):
        super().__init__()
        self.norm1, self.pool = nn.LayerNorm(context_dim), AttentionPooling(context_dim, heads)
        self.proj, self.norm2 = nn.Linear(context_dim, emb_dim), nn.LayerNorm(emb_dim)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.proj(self.pool(self.norm1(context))))


class TimestepEmbedding(nn.Module):
    """Sinusoidal features of t → linear → SiLU → linear (Ho et al. 2020, App. B; diffusers' ``TimestepEmbedding``)."""

    def __init__(self, dim: int, emb_dim: int):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(dim, emb_dim), nn.Linear(emb_dim, emb_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(features)))


class UNet(nn.Module):
    """ε_θ(x_t, t, c): the denoiser of latent diffusion, conditioned on text states through cross-attention."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        ch, n = config.channels, len(config.channels)
        emb_dim = 4 * ch[0]
        self.time_dim = ch[0]
        self.time_embedding = TimestepEmbedding(ch[0], emb_dim)
        if config.pooled:
            self.add_embedding = TextPooling(config.context_dim, emb_dim, config.pooled_heads)
        self.conv_in = nn.Conv2d(config.in_channels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            DownBlock(ch[max(i - 1, 0)], ch[i], emb_dim, config, config.attention[i], downsample=i < n - 1) for i in range(n)
        )
        self.mid_block = MidBlock(ch[-1], emb_dim, config)
        self.up_blocks = nn.ModuleList(
            UpBlock(ch[min(i + 1, n - 1)], ch[i], ch[max(i - 1, 0)], emb_dim, config, config.attention[i], upsample=i > 0)
            for i in reversed(range(n))
        )
        self.conv_norm_out = nn.GroupNorm(config.groups, ch[0])
        self.conv_out = nn.Conv2d(ch[0], config.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start by predicting ε = 0
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None,
        down_residuals: list[torch.Tensor] | None = None, mid_residual: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``context_mask`` (B, L), optional: cross-attention ignores the positions where it is False (Stable
        Diffusion passes none: every position, padding included, is seen).

        ``down_residuals`` (one per skip) and ``mid_residual``: what a ControlNet adds to the skips and to the mid
        block's output (Zhang et al. 2023, Fig. 3; diffusers' ``down_block_additional_residuals``, :mod:`course.controlnet`).
        """
        mask, emb = embed(self, x, t, context, context_mask)
        h = self.conv_in(x)
        skips = [h]
        for block in self.down_blocks:
            h, new = block(h, emb, context, mask)
            skips += new
        h = self.mid_block(h, emb, context, mask)
        if down_residuals is not None:
            if len(down_residuals) != len(skips):
                raise ValueError(f"the U-Net has {len(skips)} skips, got {len(down_residuals)} residuals")
            skips = [s + r for s, r in zip(skips, down_residuals)]
        if mid_residual is not None:
            h = h + mid_residual
        for block in self.up_blocks:
            h = block(h, skips, emb, context, mask)
        return self.conv_out(F.silu(self.conv_norm_out(h)))

    def describe(self, x: torch.Tensor, t: torch.Tensor, context=None, context_mask=None) -> list[tuple[str, tuple[int, ...], int]]:
        """(block name, output shape, parameters) for every block, in the order data flows through them."""
        rows: list[tuple[str, tuple[int, ...], int]] = []
        hooks = []
        named = [("conv_in", self.conv_in)]
        named += [(f"down_blocks[{i}]", b) for i, b in enumerate(self.down_blocks)]
        named.append(("mid_block", self.mid_block))
        named += [(f"up_blocks[{i}]", b) for i, b in enumerate(self.up_blocks)]
        named.append(("conv_out", self.conv_out))
        for name, module in named:
            params = sum(p.numel() for p in module.parameters())
            def hook(m, i, o, name=name, params=params):
                rows.append((name, tuple((o[0] if isinstance(o, tuple) else o).shape), params))
            hooks.append(module.register_forward_hook(hook))
        try:
            with torch.no_grad():
                self(x, t, context, context_mask)
        finally:
            for h in hooks:
                h.remove()
        return rows


def embed(net: nn.Module, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None, context_mask: torch.Tensor | None):
    """The checks, the cross-attention mask (B, 1, 1, L) or None, and the embedding of t (+ the pooled prompt) that
    every block of ``net`` (a :class:`UNet` or a ControlNet, same config) receives."""
    config = net.config
    factor = 2 ** (len(config.channels) - 1)
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"image sides must be multiples of {factor} for {len(config.channels)} levels, got {tuple(x.shape[-2:])}")
    if context is not None and config.context_dim is not None and context.shape[-1] != config.context_dim:
        raise ValueError(f"context width must be {config.context_dim} (the text encoder's), got {context.shape[-1]}")
    mask = None if context_mask is None or bool(context_mask.all()) else context_mask.bool()[:, None, None, :]  # (B, 1, 1, L): keys only
    t = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
    features = timestep_embedding(t - 1, net.time_dim).to(net.conv_in.weight.dtype)  # diffusers' timestep is t − 1
    emb = net.time_embedding(features)  # (B, 4·C0)
    if config.pooled and context is not None:
        emb = emb + net.add_embedding(context)
    return mask, emb


def config_dict(config: UNetConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
