"""Small ε-prediction networks for lesson 02: an MLP for 2-D points and a little convolutional net for images.

Both have the signature ``model(x_t, t, cond) -> eps_pred`` used by :mod:`course.ddpm`. The image
net is a two-level U-shaped conv net with the U-Net's residual blocks and no attention (lesson 04
builds the full U-Net with attention). Its condition ``cond`` is a (B, 2) tensor of (shape, colour) label
indices from :mod:`course.scenes`; −1 means "no condition" (a learned null embedding), which is
what classifier-free guidance needs later.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course.embeddings import timestep_embedding
from course.scenes import COLOURS, SHAPES
from course.unet import ResBlock


class MLPDenoiser(nn.Module):
    """ε_θ(x_t, t) for 2-D points: x_t and a time embedding, concatenated, through a SiLU MLP."""

    def __init__(self, dim: int = 2, hidden: int = 128, layers: int = 3, time_dim: int = 32):
        super().__init__()
        self.config = {"dim": dim, "hidden": hidden, "layers": layers, "time_dim": time_dim}
        self.time_dim = time_dim
        blocks: list[nn.Module] = [nn.Linear(dim + time_dim, hidden), nn.SiLU()]
        for _ in range(layers - 1):
            blocks += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, dim))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        return self.net(torch.cat([x_t, timestep_embedding(t, self.time_dim)], dim=1))


class ConvDenoiser(nn.Module):
    """ε_θ(x_t, t, c) for small images: 32 → 16 → 8 pixels and back, with skip connections."""

    def __init__(self, channels: int = 3, width: int = 32, emb_dim: int = 128, conditional: bool = True):
        super().__init__()
        self.config = {"channels": channels, "width": width, "emb_dim": emb_dim, "conditional": conditional}
        w = width
        self.emb_dim = emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if conditional:  # index len(...) is the "no condition" embedding
            self.shape_emb = nn.Embedding(len(SHAPES) + 1, emb_dim)
            self.colour_emb = nn.Embedding(len(COLOURS) + 1, emb_dim)
        self.conditional = conditional
        self.stem = nn.Conv2d(channels, w, 3, padding=1)
        block = lambda c_in, c_out: ResBlock(c_in, c_out, emb_dim, emb_activation=False)  # noqa: E731
        self.down1 = block(w, w)
        self.down2 = block(w, 2 * w)
        self.mid = block(2 * w, 2 * w)
        self.global_context = nn.Linear(2 * w, 2 * w)  # the whole image's mean, broadcast back to every pixel
        self.up2 = block(4 * w, 2 * w)
        self.up1 = block(3 * w, w)
        self.out = nn.Sequential(nn.GroupNorm(8, w), nn.SiLU(), nn.Conv2d(w, channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)  # start by predicting ε = 0
        nn.init.zeros_(self.out[-1].bias)

    def embed(self, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim))
        if self.conditional:
            if cond is None:
                cond = torch.full((t.shape[0], 2), -1, dtype=torch.long, device=t.device)
            shape = torch.where(cond[:, 0] < 0, len(SHAPES), cond[:, 0])
            colour = torch.where(cond[:, 1] < 0, len(COLOURS), cond[:, 1])
            emb = emb + self.shape_emb(shape) + self.colour_emb(colour)
        return emb

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if x_t.shape[-1] % 4 or x_t.shape[-2] % 4:
            raise ValueError(f"image sides must be multiples of 4, got {tuple(x_t.shape[-2:])}")
        emb = self.embed(t, cond)
        h1 = self.down1(self.stem(x_t), emb)  # (B, w, H, W)
        h2 = self.down2(F.avg_pool2d(h1, 2), emb)  # (B, 2w, H/2, W/2)
        h = self.mid(F.avg_pool2d(h2, 2), emb)  # (B, 2w, H/4, W/4)
        h = h + self.global_context(h.mean(dim=(2, 3)))[:, :, None, None]  # global information (placement, balance)
        h = self.up2(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), h2], dim=1), emb)  # (B, 2w, H/2, W/2)
        h = self.up1(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), h1], dim=1), emb)  # (B, w, H, W)
        return self.out(h)
