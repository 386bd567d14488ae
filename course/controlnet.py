"""ControlNet (Zhang, Rao & Agrawala 2023, « Adding Conditional Control to Text-to-Image Diffusion Models »;
slides: « Conditionnement Spatial », « Control Net », the figure "Input image → annotation (canny edge
detector) → Stable Diffusion").

A frozen U-Net ε_θ(z_t, t, c_t) is steered by a condition image c_i (edges, a scribble, a mask) through a
trainable copy of its way down and of its mid block (§3.1–3.2; the paper writes c_f = E(c_i) for the encoded
condition):

    y_c = F(x; Θ) + Z(F(x + Z(c_f; Θ_z1); Θ_c); Θ_z2)

    condition encoder E (§3.2): c_i (B, 3, H, W) in [0, 1] → eight 3 × 3 convolutions, three of stride 2, the last
                                one zero-initialised (Z(·; Θ_z1)) → (B, C0, h, w) — diffusers' layout; the paper
                                describes four 4 × 4 convolutions with ReLU
    the copy:                   conv_in(z_t) + E(c_i) → down_blocks → mid_block   (weights Θ_c, copied from the U-Net)
    zero convolutions Z:        one 1 × 1 convolution per skip and one on the mid output, weights and bias 0
    the U-Net:                  its skips + scale · Z(copy's skips), its mid output + scale · Z(copy's mid)

Because every Z starts at zero, the controlled U-Net starts exactly equal to the base model (§3.1: "no harmful
noise"); the gradient of a zero convolution's weight is not zero (its input times the gradient that comes back),
so the weights leave 0 at the first step.

The parameter names are those of diffusers' ``ControlNetModel`` (``controlnet_cond_embedding``,
``controlnet_down_blocks``, ``controlnet_mid_block``, and the U-Net's own names for the copy), so the weights
map one to one; ``ControlNet.forward`` returns what ``ControlNetModel`` returns, and
:class:`ControlledUNet` is the U-Net called with them, as ``StableDiffusionControlNetPipeline`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course.unet import DownBlock, MidBlock, TextPooling, TimestepEmbedding, UNet, UNetConfig, embed
from course.yours import pick

HINT_CHANNELS = (16, 32, 64, 128)  # the paper's hint encoder (§3.2: "channels are 16, 32, 64, 128"); diffusers' default is (16, 32, 96, 256)


@dataclass(frozen=True)
class ControlNetConfig:
    unet: UNetConfig  # the U-Net it controls (the copy has its topology)
    conditioning_channels: int = 3  # channels of the condition image (diffusers: conditioning_channels)
    hint_channels: tuple[int, ...] = HINT_CHANNELS  # widths of the hint encoder; len − 1 halvings (diffusers: conditioning_embedding_out_channels)

    def __post_init__(self):
        if len(self.hint_channels) < 1:
            raise ValueError("hint_channels needs at least one width")

    @property
    def factor(self) -> int:
        """How much the hint encoder shrinks the condition image (8 for Stable Diffusion: 512 px → 64 latent pixels)."""
        return 2 ** (len(self.hint_channels) - 1)


def zero_conv(channels: int) -> nn.Conv2d:
    """A 1 × 1 convolution whose weight and bias are 0 (Zhang et al. 2023, §3.1: the zero convolution Z)."""
    conv = nn.Conv2d(channels, channels, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class HintEncoder(nn.Module):
    """E(c_i): the condition image (B, k, H, W) → features (B, C0, H/f, W/f) added to conv_in(z_t) (§3.2).

    conv 3 × 3 → SiLU → [conv 3 × 3 → SiLU → conv 3 × 3 stride 2 → SiLU] × (n − 1) → conv 3 × 3, zero-initialised
    (diffusers' ``ControlNetConditioningEmbedding``; the paper says ReLU and 4 × 4 kernels, diffusers and the
    released weights use SiLU and 3 × 3).
    """

    def __init__(self, out_channels: int, in_channels: int = 3, channels: tuple[int, ...] = HINT_CHANNELS):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        blocks = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            blocks += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.Conv2d(c_in, c_out, 3, padding=1, stride=2)]
        self.blocks = nn.ModuleList(blocks)
        self.conv_out = nn.Conv2d(channels[-1], out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.conv_in(c))
        for block in self.blocks:
            h = F.silu(block(h))
        return self.conv_out(h)


class ControlNet(nn.Module):
    """The trainable copy of a U-Net's way down, its hint encoder and its zero convolutions: returns the residuals
    (one per skip of the U-Net, and one for its mid block), each multiplied by ``scale``."""

    def __init__(self, config: ControlNetConfig):
        super().__init__()
        self.config = config.unet  # what course.unet.embed reads (the copy's topology)
        self.control_config = config
        c, ch, n = config.unet, config.unet.channels, len(config.unet.channels)
        emb_dim = 4 * ch[0]
        self.time_dim = ch[0]
        self.time_embedding = TimestepEmbedding(ch[0], emb_dim)
        if c.pooled:
            self.add_embedding = TextPooling(c.context_dim, emb_dim, c.pooled_heads)
        self.conv_in = nn.Conv2d(c.in_channels, ch[0], 3, padding=1)
        self.controlnet_cond_embedding = HintEncoder(ch[0], config.conditioning_channels, config.hint_channels)
        self.down_blocks = nn.ModuleList(
            DownBlock(ch[max(i - 1, 0)], ch[i], emb_dim, c, c.attention[i], downsample=i < n - 1) for i in range(n)
        )
        skips = [ch[0]] + [ch[i] for i in range(n) for _ in range(c.layers_per_block + (i < n - 1))]
        self.controlnet_down_blocks = nn.ModuleList(zero_conv(s) for s in skips)
        self.mid_block = MidBlock(ch[-1], emb_dim, c)
        self.controlnet_mid_block = zero_conv(ch[-1])

    @classmethod
    def from_unet(cls, unet: UNet, conditioning_channels: int = 3, hint_channels: tuple[int, ...] = HINT_CHANNELS) -> "ControlNet":
        """A ControlNet whose copy starts as ``unet``'s weights (§3.1: Θ_c ← Θ), its zero convolutions at 0."""
        net = cls(ControlNetConfig(unet.config, conditioning_channels, hint_channels))
        for name in ("time_embedding", "conv_in", "down_blocks", "mid_block") + (("add_embedding",) if unet.config.pooled else ()):
            getattr(net, name).load_state_dict(getattr(unet, name).state_dict())
        return net.to(next(unet.parameters()).device)

    def check_condition(self, x: torch.Tensor, cond: torch.Tensor) -> None:
        """A ``ValueError`` naming the expected shape unless ``cond`` is (B, k, f·h, f·w) for latents (B, C, h, w)."""
        k, f = self.control_config.conditioning_channels, self.control_config.factor
        expected = (k, f * x.shape[-2], f * x.shape[-1])
        if cond.dim() != 4 or tuple(cond.shape[1:]) != expected:
            raise ValueError(f"the condition image must be (B, {expected[0]}, {expected[1]}, {expected[2]}) for latents of "
                             f"{tuple(x.shape[-2:])}, got {tuple(cond.shape)}")

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None, context_mask: torch.Tensor | None,
                cond: torch.Tensor, scale: float = 1.0) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(down residuals, mid residual) for latents x (B, C, h, w) and the condition image ``cond`` (B, k, H, W) in [0, 1]."""
        self.check_condition(x, cond)
        mask, emb = embed(self, x, t, context, context_mask)
        residuals = pick("controlnet_residuals") or ControlNet.residuals  # the learner's, after course.yours.use (lesson 08)
        return residuals(self, x, emb, context, mask, cond.to(x.dtype), scale)

    def residuals(self, x: torch.Tensor, emb: torch.Tensor, context, mask, cond: torch.Tensor, scale: float):
        """The body of :meth:`forward`, given the time embedding ``emb`` and the attention mask (from :func:`course.unet.embed`)."""
        h = self.conv_in(x) + self.controlnet_cond_embedding(cond)  # x + Z(c; Θ_z1), with E(c) as Z's input
        skips = [h]
        for block in self.down_blocks:
            h, new = block(h, emb, context, mask)
            skips += new
        h = self.mid_block(h, emb, context, mask)
        down = [scale * z(s) for z, s in zip(self.controlnet_down_blocks, skips)]
        return down, scale * self.controlnet_mid_block(h)


class ControlledUNet(nn.Module):
    """ε_θ(z_t, t, c_t, c_i): the frozen U-Net with a ControlNet's residuals, a drop-in for the U-Net in the samplers and
    in guidance (both the prompt's and ∅'s halves of the batch see the condition, as in diffusers' pipeline)."""

    def __init__(self, unet: UNet, controlnet: ControlNet, cond: torch.Tensor, scale: float = 1.0):
        super().__init__()
        self.unet, self.controlnet, self.scale = unet, controlnet, scale
        self.cond = cond

    @property
    def config(self) -> UNetConfig:
        return self.unet.config

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.cond.to(x.device)
        if cond.shape[0] != x.shape[0]:
            if x.shape[0] % cond.shape[0]:
                raise ValueError(f"{cond.shape[0]} condition images for a batch of {x.shape[0]} latents")
            cond = cond.repeat(x.shape[0] // cond.shape[0], 1, 1, 1)  # guidance stacks [∅, c]: each half gets the condition
        if self.scale == 0:
            return self.unet(x, t, context, context_mask)
        down, mid = self.controlnet(x, t, context, context_mask, cond, self.scale)
        return self.unet(x, t, context, context_mask, down, mid)
