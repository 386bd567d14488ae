"""The autoencoder of latent diffusion (slides: « Décodeur », espace latent; Rombach et al. 2022, §3.1),
built like Stable Diffusion's ``AutoencoderKL`` (diffusers), at a small size and with its parameter names.

The encoder turns a 64×64×3 image into a small 8×8×4 latent (a downsampling factor f = 8, as in
Stable Diffusion); the decoder turns a latent back into an image. As in Stable Diffusion the encoder
outputs a Gaussian q(z|x) = N(μ, σ²) and a small KL term pulls it towards N(0, I) ("KL-regularised"),
which keeps the latent space smooth. Diffusion then runs on latents scaled to unit variance by a
``scaling_factor`` computed from data, as Stable Diffusion's 0.18215 was.

Shapes, with levels of ``channels`` = (C0, C1, C2, C3)::

    x (B, 3, 64, 64) in [−1, 1]
      conv_in → (B, C0, 64, 64) → down_blocks: ResBlocks, a downsampler after every level but the last → (B, C3, 8, 8)
      mid_block: ResBlock, self-attention over the 64 latent pixels, ResBlock
      conv_norm_out, SiLU, conv_out → (B, 8, 8, 8) → quant_conv (1×1) → μ, log σ² (B, 4, 8, 8) each
    z = μ + σ·ε → post_quant_conv (1×1) → conv_in → mid_block → up_blocks (one more ResBlock per level, then
      an upsampler) → conv_norm_out, SiLU, conv_out → x̂ (B, 3, 64, 64)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course.unet import Downsample, ResBlock, Upsample

EPS = 1e-6  # the GroupNorms' ε in Stable Diffusion's autoencoder


@dataclass(frozen=True)
class AEConfig:
    channels: tuple[int, ...] = (16, 32, 64, 128)  # one level per resolution, 64 → 32 → 16 → 8 (diffusers: block_out_channels)
    layers_per_block: int = 1  # ResBlocks per level in the encoder (the decoder has one more)
    latent_channels: int = 4
    # GroupNorm groups (diffusers: norm_num_groups). 2, not 8: a GroupNorm removes each group's mean over the image, so
    # a flat background's colour survives only in how the channels of a group differ, and a group needs enough of them
    # (8 or 4 groups: background read right on 65 % of reconstructions after 600 steps, 2 groups: 100 %; benchmarks/ae_probes.py).
    groups: int = 2
    in_channels: int = 3

    def __post_init__(self):
        for c in self.channels:
            if c % self.groups:
                raise ValueError(f"autoencoder channels ({c}) must be divisible by groups ({self.groups})")

    @property
    def factor(self) -> int:
        """How many times smaller a latent's side is than the image's (8 for four levels, as in Stable Diffusion)."""
        return 2 ** (len(self.channels) - 1)


class MidAttention(nn.Module):
    """Single-head self-attention over the latent's pixels, residual (diffusers' ``Attention`` in ``UNetMidBlock2D``).

    GroupNorm, then q, k, v and an output projection, all with biases; softmax(q·kᵀ/√C)·v (Vaswani et al. 2017, eq. 1).
    """

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=EPS)
        self.to_q, self.to_k, self.to_v = (nn.Linear(channels, channels) for _ in range(3))
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.group_norm(x).flatten(2).transpose(1, 2)  # (B, H·W, C): one token per pixel
        q, k, v = (proj(h)[:, None] for proj in (self.to_q, self.to_k, self.to_v))  # (B, 1, H·W, C)
        h = F.scaled_dot_product_attention(q, k, v)[:, 0]  # (B, H·W, C)
        return x + self.to_out[0](h).transpose(1, 2).reshape(B, C, H, W)


class MidBlock(nn.Module):
    """ResBlock → self-attention → ResBlock at the lowest resolution (diffusers' ``UNetMidBlock2D``)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResBlock(channels, channels, None, groups, eps=EPS) for _ in range(2)])
        self.attentions = nn.ModuleList([MidAttention(channels, groups)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class EncoderBlock(nn.Module):
    """``layers`` ResBlocks, then (except at the last level) a downsampler (diffusers' ``DownEncoderBlock2D``)."""

    def __init__(self, c_in: int, c_out: int, layers: int, groups: int, downsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResBlock(c_in if i == 0 else c_out, c_out, None, groups, eps=EPS) for i in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample(c_out, padding=0)]) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        return self.downsamplers[0](x) if self.downsamplers is not None else x


class DecoderBlock(nn.Module):
    """``layers`` ResBlocks, then (except at the last level) an upsampler (diffusers' ``UpDecoderBlock2D``)."""

    def __init__(self, c_in: int, c_out: int, layers: int, groups: int, upsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResBlock(c_in if i == 0 else c_out, c_out, None, groups, eps=EPS) for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample(c_out)]) if upsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        return self.upsamplers[0](x) if self.upsamplers is not None else x


class Encoder(nn.Module):
    """Image (B, 3, H, W) → the Gaussian's parameters before ``quant_conv``, (B, 2·latent_channels, H/f, W/f)."""

    def __init__(self, c: AEConfig):
        super().__init__()
        ch = c.channels
        self.conv_in = nn.Conv2d(c.in_channels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            EncoderBlock(ch[max(i - 1, 0)], ch[i], c.layers_per_block, c.groups, downsample=i < len(ch) - 1) for i in range(len(ch))
        )
        self.mid_block = MidBlock(ch[-1], c.groups)
        self.conv_norm_out = nn.GroupNorm(c.groups, ch[-1], eps=EPS)
        self.conv_out = nn.Conv2d(ch[-1], 2 * c.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for block in self.down_blocks:
            h = block(h)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(h))))


class Decoder(nn.Module):
    """Latent (B, latent_channels, h, w) after ``post_quant_conv`` → image (B, 3, f·h, f·w): the slides' « Décodeur »."""

    def __init__(self, c: AEConfig):
        super().__init__()
        ch = c.channels[::-1]
        self.conv_in = nn.Conv2d(c.latent_channels, ch[0], 3, padding=1)
        self.mid_block = MidBlock(ch[0], c.groups)
        self.up_blocks = nn.ModuleList(
            DecoderBlock(ch[max(i - 1, 0)], ch[i], c.layers_per_block + 1, c.groups, upsample=i < len(ch) - 1) for i in range(len(ch))
        )
        self.conv_norm_out = nn.GroupNorm(c.groups, ch[-1], eps=EPS)
        self.conv_out = nn.Conv2d(ch[-1], c.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            h = block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class Autoencoder(nn.Module):
    """encode(x) → (μ, log σ²); sample z = μ + σ·ε; decode(z) → x̂ (diffusers' ``AutoencoderKL``)."""

    def __init__(self, config: AEConfig = AEConfig()):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = Encoder(config), Decoder(config)
        self.quant_conv = nn.Conv2d(2 * config.latent_channels, 2 * config.latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(config.latent_channels, config.latent_channels, 1)
        for module in self.modules():  # residual branches start at zero: each block starts as the identity (Goyal et al. 2017)
            if isinstance(module, ResBlock):
                nn.init.zeros_(module.conv2.weight), nn.init.zeros_(module.conv2.bias)
            elif isinstance(module, MidAttention):
                nn.init.zeros_(module.to_out[0].weight), nn.init.zeros_(module.to_out[0].bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.config.factor
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"image sides must be multiples of {f}, got {tuple(x.shape[-2:])}")
        if x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected images with {self.config.in_channels} channels, got {x.shape[1]}")
        mean, logvar = self.quant_conv(self.encoder(x)).chunk(2, dim=1)  # (B, 4, H/8, W/8) each
        return mean, logvar.clamp(-30, 20)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[1] != self.config.latent_channels:
            raise ValueError(f"expected latents with {self.config.latent_channels} channels, got {z.shape[1]}")
        return self.decoder(self.post_quant_conv(z))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar = self.encode(x)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return self.decode(z), mean, logvar


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) = ½ Σ (μ² + σ² − 1 − log σ²), summed over latent values, averaged over the batch."""
    return 0.5 * (mean.square() + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical finite differences: large on the edges of shapes."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def foreground_mask(x: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """1 on the objects (pixels away from the image's background colour, plus a 1-pixel rim), 0 elsewhere.

    The background colour is the per-channel median of the border pixels. Shape (B, 1, H, W).
    """
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)  # (B, 3, 4W)
    background = border.median(dim=-1).values[..., None, None]  # (B, 3, 1, 1)
    mask = ((x - background).abs().amax(dim=1, keepdim=True) > threshold).float()
    return F.max_pool2d(mask, 3, stride=1, padding=1)


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor, edge_weight: float = 1.0, object_weight: float = 0.0) -> torch.Tensor:
    """L1 on pixels plus L1 on image gradients (an edge term that keeps shapes' outlines crisp).

    ``object_weight``: pixels of objects count 1 + object_weight times (objects cover a few % of the image:
    unweighted, an autoencoder first learns the background and lets small shapes fade).
    """
    w = 1 + object_weight * foreground_mask(x) if object_weight else torch.ones_like(x[:, :1])
    (gx, gy), (hx, hy) = image_gradients(x), image_gradients(x_hat)
    pixel = (w * (x_hat - x).abs()).mean()
    edges = (w[..., :, 1:] * (hx - gx).abs()).mean() + (w[..., 1:, :] * (hy - gy).abs()).mean()
    return pixel + edge_weight * edges


def psnr(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [−1, 1] (peak-to-peak range 2)."""
    mse = (x_hat.clamp(-1, 1) - x).square().mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(4.0 / mse)).item()
