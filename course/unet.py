"""The U-Net with self- and cross-attention (slides: « Architecture Détaillée », « U-Net avec Attention »,
« Downsamplers »), as in Stable Diffusion (Rombach et al. 2022, §3.3 and Appendix) at a small scale.

Shapes, with B the batch, C channels, H×W the (latent) image and L the prompt's tokens::

    x (B, C_in, H, W), t (B,), context (B, L, D_text), context_mask (B, L)  →  ε̂ (B, C_out, H, W)

Levels halve the resolution on the way down (the « downsamplers », an « entonnoir ») and double it on
the way up; each level's output on the way down is concatenated on the way up (skip connections).
Attention blocks let every pixel look at every other pixel (self-attention) and at every word of the
prompt (cross-attention: queries from the image, keys and values from CLIP's token states; padding
tokens are masked out). With ``pooled=True`` the prompt's summary, the state of its last real token
(<eos>, CLIP's pooled output), is also added to the time embedding, as SDXL does (Podell et al. 2023, §2.1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course.attention import MultiHeadAttention
from course.embeddings import timestep_embedding


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 4
    out_channels: int = 4
    channels: tuple[int, ...] = (64, 128, 192)  # one entry per level; level i works at H / 2^i
    attention: tuple[bool, ...] = (False, True, True)  # attention blocks at each level
    heads: int = 4
    context_dim: int | None = 128  # width of the text states; None: no cross-attention
    groups: int = 8
    pooled: bool = False  # also add the prompt's pooled state (its last token, <eos>) to the time embedding, as SDXL does

    def __post_init__(self):
        if len(self.channels) != len(self.attention):
            raise ValueError(f"channels and attention need one entry per level, got {len(self.channels)} and {len(self.attention)}")
        for c in self.channels:
            if c % self.groups or c % self.heads:
                raise ValueError(f"channels ({c}) must be divisible by groups ({self.groups}) and heads ({self.heads})")


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv; add the time embedding; GroupNorm → SiLU → conv; add the input (Ho et al. 2020, App. B).

    ``emb_activation``: apply SiLU to the embedding before its projection (the U-Net does; lesson 02's
    small net, whose embedding already comes out of an MLP, does not).
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int | None, groups: int = 8, emb_activation: bool = True):
        super().__init__()
        self.emb_activation = emb_activation
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out) if emb_dim is not None else None  # None: no time input (autoencoder)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        if self.emb is not None:
            h = h + self.emb(F.silu(emb) if self.emb_activation else emb)[:, :, None, None]  # the same shift at every pixel
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class AttentionBlock(nn.Module):
    """Self-attention over pixels, cross-attention to the prompt, a feed-forward layer; all residual.

    The image (B, C, H, W) is read as H·W tokens of width C (Rombach et al. 2022, "SpatialTransformer").
    """

    def __init__(self, channels: int, heads: int, context_dim: int | None, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.norm1, self.self_attn = nn.LayerNorm(channels), MultiHeadAttention(channels, heads)
        self.cross_attn = None
        if context_dim is not None:
            self.norm2, self.cross_attn = nn.LayerNorm(channels), MultiHeadAttention(channels, heads, context_dim)
        self.norm3 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(nn.Linear(channels, 4 * channels), nn.GELU(), nn.Linear(4 * channels, channels))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)  # (B, H·W, C)
        h = h + self.self_attn(self.norm1(h))
        if self.cross_attn is not None and context is not None:
            mask = None if context_mask is None else context_mask.bool()[:, None, None, :]  # (B, 1, 1, L): keys only
            h = h + self.cross_attn(self.norm2(h), context, mask)
        h = h + self.ff(self.norm3(h))
        return x + self.proj_out(h.transpose(1, 2).reshape(B, C, H, W))


class Downsample(nn.Module):
    """Halve H and W with a stride-2 convolution (the slides' « downsamplers »)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour enlargement, then a convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution: a ResBlock and, optionally, an attention block."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, config: UNetConfig, attention: bool):
        super().__init__()
        self.res = ResBlock(c_in, c_out, emb_dim, config.groups)
        self.attn = AttentionBlock(c_out, config.heads, config.context_dim, config.groups) if attention else None

    def forward(self, x, emb, context, context_mask):
        x = self.res(x, emb)
        return self.attn(x, context, context_mask) if self.attn is not None else x


def pooled_state(context: torch.Tensor, context_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The state of each prompt's last real token (<eos>, CLIP's pooled output): (B, L, D) → (B, D)."""
    last = context_mask.long().sum(1) - 1 if context_mask is not None else torch.full((context.shape[0],), context.shape[1] - 1, device=context.device)
    return context[torch.arange(context.shape[0], device=context.device), last]


class UNet(nn.Module):
    """ε_θ(x_t, t, c): the denoiser of latent diffusion, conditioned on text states through cross-attention."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        ch = config.channels
        emb_dim = 4 * ch[0]
        self.time_dim = ch[0]
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if config.pooled:
            if config.context_dim is None:
                raise ValueError("pooled=True needs text states (context_dim)")
            self.pooled_proj = nn.Linear(config.context_dim, emb_dim)
        self.stem = nn.Conv2d(config.in_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c_prev = ch[0]
        for i, (c, attn) in enumerate(zip(ch, config.attention)):
            self.down.append(Level(c_prev, c, emb_dim, config, attn))
            self.downsample.append(Downsample(c) if i < len(ch) - 1 else nn.Identity())
            c_prev = c
        self.mid = Level(ch[-1], ch[-1], emb_dim, config, True)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(ch))):
            self.up.append(Level(c_prev + ch[i], ch[i], emb_dim, config, config.attention[i]))
            self.upsample.append(Upsample(ch[i]) if i > 0 else nn.Identity())
            c_prev = ch[i]
        self.out = nn.Sequential(nn.GroupNorm(config.groups, ch[0]), nn.SiLU(), nn.Conv2d(ch[0], config.out_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)  # start by predicting ε = 0
        nn.init.zeros_(self.out[-1].bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        factor = 2 ** (len(self.config.channels) - 1)
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"image sides must be multiples of {factor} for {len(self.config.channels)} levels, got {tuple(x.shape[-2:])}")
        if context is not None and self.config.context_dim is not None and context.shape[-1] != self.config.context_dim:
            raise ValueError(f"context width must be {self.config.context_dim} (the text encoder's), got {context.shape[-1]}")
        emb = self.time_mlp(timestep_embedding(t, self.time_dim))  # (B, 4·C0)
        if self.config.pooled and context is not None:
            emb = emb + self.pooled_proj(pooled_state(context, context_mask))
        h = self.stem(x)
        skips = []
        for level, down in zip(self.down, self.downsample):
            h = level(h, emb, context, context_mask)
            skips.append(h)
            h = down(h)
        h = self.mid(h, emb, context, context_mask)
        for level, up in zip(self.up, self.upsample):
            h = level(torch.cat([h, skips.pop()], dim=1), emb, context, context_mask)
            h = up(h)
        return self.out(h)

    def describe(self, x: torch.Tensor, t: torch.Tensor, context=None, context_mask=None) -> list[tuple[str, tuple[int, ...], int]]:
        """(block name, output shape, parameters) for every block, in the order data flows through them."""
        rows: list[tuple[str, tuple[int, ...], int]] = []
        hooks = []
        named = [("stem", self.stem)]
        for i, (level, down) in enumerate(zip(self.down, self.downsample)):
            named += [(f"down[{i}]", level), (f"downsample[{i}]", down)]
        named.append(("mid", self.mid))
        for i, (level, up) in enumerate(zip(self.up, self.upsample)):
            named += [(f"up[{i}]", level), (f"upsample[{i}]", up)]
        named.append(("out", self.out))
        for name, module in named:
            if isinstance(module, nn.Identity):
                continue
            params = sum(p.numel() for p in module.parameters())
            hooks.append(module.register_forward_hook(lambda m, i, o, name=name, params=params: rows.append((name, tuple(o.shape), params))))
        try:
            with torch.no_grad():
                self(x, t, context, context_mask)
        finally:
            for h in hooks:
                h.remove()
        return rows


def config_dict(config: UNetConfig) -> dict:
    d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
    if not d["pooled"]:
        del d["pooled"]  # checkpoints from before the option have no such key
    return d
