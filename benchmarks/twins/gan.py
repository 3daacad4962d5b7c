"""dlbasics' ``models/gan.py`` in PyTorch, with the same parameter names and the same adversarial step as
``train/adversarial.py``: the benchmark's peer and the parity tests' oracle."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class GAN(nn.Module):
    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                 image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z).reshape(z.shape[0], *self.image_shape) * 0.5 + 0.5

    def discriminate(self, images: torch.Tensor) -> torch.Tensor:
        return self.discriminator(images * 2.0 - 1.0).reshape(images.shape[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        was = self.training
        self.eval()
        images = self.generate(torch.randn(n, self.latent_dim, generator=generator))
        self.train(was)
        return images


class Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def gan(in_channels: int = 1, image_size: int = 28, latent_dim: int = 64, width: int = 256) -> GAN:
    pixels = in_channels * image_size * image_size
    generator = nn.Sequential(
        nn.Linear(latent_dim, width), nn.LeakyReLU(0.2),
        nn.Linear(width, 2 * width), nn.LeakyReLU(0.2),
        nn.Linear(2 * width, pixels), nn.Tanh())
    discriminator = nn.Sequential(
        nn.Flatten(),
        nn.Linear(pixels, 2 * width), nn.LeakyReLU(0.2),
        nn.Linear(2 * width, width), nn.LeakyReLU(0.2),
        nn.Linear(width, 1))
    return GAN(generator, discriminator, latent_dim, (in_channels, image_size, image_size))


def dcgan(in_channels: int = 1, image_size: int = 28, latent_dim: int = 64, width: int = 64) -> GAN:
    s = image_size // 4
    generator = nn.Sequential(
        nn.Linear(latent_dim, 2 * width * s * s, bias=False), Reshape(2 * width, s, s),
        nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(),
        nn.ConvTranspose2d(width, in_channels, 4, stride=2, padding=1),
        nn.Tanh())
    discriminator = nn.Sequential(
        nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * width * s * s, 1))
    model = GAN(generator, discriminator, latent_dim, (in_channels, image_size, image_size))
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return model


def adversarial_step(model: GAN, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, real: torch.Tensor,
                     z: torch.Tensor) -> tuple[float, float]:
    """``AdversarialTask.training_step``: D on real vs detached fake, then G's non-saturating loss through the
    updated D (whose weights do not require grad meanwhile)."""
    n = real.shape[0]
    ones, zeros = torch.ones(n, dtype=real.dtype), torch.zeros(n, dtype=real.dtype)
    fake = model.generate(z)
    loss_d = (F.binary_cross_entropy_with_logits(model.discriminate(real), ones)
              + F.binary_cross_entropy_with_logits(model.discriminate(fake.detach()), zeros))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    model.discriminator.requires_grad_(False)
    loss_g = F.binary_cross_entropy_with_logits(model.discriminate(fake), ones)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    model.discriminator.requires_grad_(True)
    return loss_d.item(), loss_g.item()
