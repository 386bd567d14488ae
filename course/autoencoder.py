"""The autoencoder of latent diffusion (slides: « Décodeur », espace latent; Rombach et al. 2022, §3.1).

The encoder turns a 64×64×3 image into a small 8×8×4 latent (a downsampling factor f = 8, as in
Stable Diffusion); the decoder turns a latent back into an image. As in Stable Diffusion the encoder
outputs a Gaussian q(z|x) = N(μ, σ²) and a small KL term pulls it towards N(0, I) ("KL-regularised"),
which keeps the latent space smooth. Diffusion then runs on latents scaled to unit variance by a
``scaling_factor`` computed from data, as Stable Diffusion's 0.18215 was.

Shapes: x (B, 3, 64, 64) in [−1, 1] → μ, log σ² (B, 4, 8, 8) → z → x̂ (B, 3, 64, 64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course.unet import Downsample, ResBlock, Upsample


@dataclass(frozen=True)
class AEConfig:
    channels: tuple[int, ...] = (32, 64, 128)  # one level per resolution after the first halving: 32 → 16 → 8
    latent_channels: int = 4
    groups: int = 8


class Encoder(nn.Module):
    """64×64×3 → (space-to-depth) 32×32×12 → ResBlocks and downsamplers → μ and log σ² at 8×8×4.

    The first halving is a lossless rearrangement (each 2×2 block of pixels becomes 12 channels), so no
    convolution runs at full resolution: the cheap part of the image is the one we read most.
    """

    def __init__(self, c: AEConfig):
        super().__init__()
        ch = c.channels
        layers: list[nn.Module] = [nn.PixelUnshuffle(2), nn.Conv2d(12, ch[0], 3, padding=1)]
        c_prev = ch[0]
        for i, width in enumerate(ch):
            layers.append(ResBlock(c_prev, width, None, c.groups))
            if i < len(ch) - 1:
                layers.append(Downsample(width))
            c_prev = width
        layers += [nn.GroupNorm(c.groups, c_prev), nn.SiLU(), nn.Conv2d(c_prev, 2 * c.latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.net(x).chunk(2, dim=1)  # (B, 4, H/8, W/8) each
        return mean, logvar.clamp(-30, 20)


class Decoder(nn.Module):
    """8×8×4 → ResBlocks and upsamplers → 32×32×12 → (depth-to-space) 64×64×3: the slides' « Décodeur »."""

    def __init__(self, c: AEConfig):
        super().__init__()
        ch = c.channels[::-1]
        layers: list[nn.Module] = [nn.Conv2d(c.latent_channels, ch[0], 3, padding=1)]
        c_prev = ch[0]
        for i, width in enumerate(ch):
            layers.append(ResBlock(c_prev, width, None, c.groups))
            if i < len(ch) - 1:
                layers.append(Upsample(width))
            c_prev = width
        layers += [nn.GroupNorm(c.groups, c_prev), nn.SiLU(), nn.Conv2d(c_prev, 12, 3, padding=1), nn.PixelShuffle(2)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Autoencoder(nn.Module):
    """encode(x) → (μ, log σ²); sample z = μ + σ·ε; decode(z) → x̂."""

    def __init__(self, config: AEConfig = AEConfig()):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = Encoder(config), Decoder(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"image sides must be multiples of 8, got {tuple(x.shape[-2:])}")
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

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
