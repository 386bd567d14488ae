"""How much does diffusing in latent space save? Training images per second of the same U-Net
(same widths, same levels, same attention) on 64×64×3 pixels and on the autoencoder's 8×8×4 latents.

    python benchmarks/latent_vs_pixel.py

The latent rate includes encoding the batch with the autoencoder's encoder (as if latents were not
cached). Text states are random tensors of the CLIP's width in both cases (the text encoder's cost is
the same for both).
"""

import torch

from course.autoencoder import Autoencoder
from course.checkpoints import hardware
from course.ldm import UNET
from course.speed import training_images_per_second
from course.unet import UNet, UNetConfig

if __name__ == "__main__":
    torch.manual_seed(0)
    print(hardware(), f"torch {torch.__version__}")
    ae = Autoencoder().eval()
    images = torch.rand(64, 3, 64, 64) * 2 - 1

    def latents(n):
        with torch.no_grad():
            return ae.encode(images[:n])[0]

    latent_unet = UNet(UNET)
    pixel_unet = UNet(UNetConfig(**{**UNET.__dict__, "in_channels": 3, "out_channels": 3}))
    latent_rate = training_images_per_second(latent_unet, latents, steps=6, batch_size=64)
    pixel_rate = training_images_per_second(pixel_unet, lambda n: images[:n], steps=3, batch_size=8)
    print(f"U-Net channels {UNET.channels}, attention {UNET.attention}: {sum(p.numel() for p in latent_unet.parameters()) / 1e6:.1f}M parameters")
    print(f"pixel space 64×64×3 : {pixel_rate:8.1f} training images/s")
    print(f"latent space 8×8×4  : {latent_rate:8.1f} training images/s (encoding included)")
    print(f"speed-up            : {latent_rate / pixel_rate:8.1f}×")
