"""Generative adversarial networks: an MLP GAN and a DCGAN for 28 x 28 greyscale images.

Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville & Bengio, "Generative Adversarial Nets" (2014);
Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional Generative Adversarial
Networks" (2015).

The idea: two networks learn together. A generator G maps noise z ~ N(0, I) to an image; a discriminator D gives the
logit that an image is real. D learns to tell real from generated, G learns to make D say "real":

    D: max  E_x log sigma(D(x)) + E_z log(1 - sigma(D(G(z))))
    G: max  E_z log sigma(D(G(z)))        (the non-saturating loss: strong gradients while D still wins)

The two updates, in turn on every batch, are ``train.adversarial.AdversarialTask``. DCGAN's recipe is built in:
strided (transposed) convolutions instead of pooling, batch norm in both networks except G's output and D's input,
ReLU in G with tanh at the output, LeakyReLU(0.2) in D, and weights drawn from N(0, 0.02).

Images are in [0, 1] outside the model, like every image data set here; inside, G's tanh works in [-1, 1] as in the
papers: ``generate`` maps G's output to [0, 1], ``discriminate`` maps [0, 1] images to [-1, 1] for D.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.nn import init
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor, float_input

PAPER = "Goodfellow et al., Generative Adversarial Nets (2014)"
DCGAN_PAPER = ("Radford, Metz & Chintala, Unsupervised Representation Learning with Deep Convolutional Generative "
               "Adversarial Networks (2015)")
# Adam at 2e-4 with beta1 = 0.5 is DCGAN's recipe (beta1 = 0.9 oscillated, the paper says); both models use it
RECIPE = {"steps": 10_000, "batch_size": 64, "optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999),
          "eval_every": 1000}


class GAN(nn.Module):
    """A generator and a discriminator of (C, H, W) images in [0, 1].

    ``generate(z (N, latent_dim))`` -> images (N, C, H, W) in [0, 1]; ``discriminate(images)`` -> logits (N,);
    ``sample(n, seed)`` draws z ~ N(0, I) and generates. ``forward`` is ``generate``."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                 image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)

    def noise(self, n: int, generator: Seed = None) -> Tensor:
        """z ~ N(0, I): (n, latent_dim) float32."""
        z = get_generator(generator).standard_normal((n, self.latent_dim), dtype=np.float32)
        return Tensor._make(z, False, None)

    def generate(self, z: Any) -> Tensor:
        z = float_input(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise RuntimeError(f"GAN.generate: expected noise (N, {self.latent_dim}), got {z.shape}")
        g = self.generator(z).reshape(z.shape[0], *self.image_shape)  # tanh: [-1, 1]
        return g * 0.5 + 0.5

    def discriminate(self, images: Any) -> Tensor:
        images = float_input(images)
        if tuple(images.shape[1:]) != self.image_shape:
            raise RuntimeError(f"GAN.discriminate: expected images (N, {', '.join(map(str, self.image_shape))}), "
                               f"got {images.shape}")
        return self.discriminator(images * 2.0 - 1.0).reshape(images.shape[0])

    def forward(self, z: Any) -> Tensor:
        return self.generate(z)

    def sample(self, n: int, seed: Seed = None) -> np.ndarray:
        """``n`` generated images (n, C, H, W) in [0, 1] from noise drawn with ``seed``; eval mode, no graph."""
        from dlbasics.train.task import evaluating

        with evaluating(self):
            return self.generate(self.noise(n, seed)).data


class Reshape(nn.Module):
    """(N, ...) -> (N, *shape)."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return ", ".join(map(str, self.shape))


def _check_image(in_channels: int, image_size: int, who: str, multiple: int = 1) -> None:
    if in_channels < 1 or image_size < 1 or image_size % multiple:
        raise ValueError(f"{who}: needs images whose size is a multiple of {multiple}, got {in_channels} channels of "
                         f"{image_size} x {image_size}")


@register("gan", paper=PAPER, default_data="fashion-mnist", task="adversarial", recipe=RECIPE,
          summary="MLP generator z-256-512-image (tanh) and discriminator image-512-256-1 (LeakyReLU 0.2)")
def gan(in_channels: int, image_size: int, latent_dim: int = 64, width: int = 256) -> GAN:
    """The MLP GAN: G = z -> width -> 2 width -> C H W (tanh), D = C H W -> 2 width -> width -> 1, both with
    LeakyReLU(0.2); PyTorch's default initialization."""
    _check_image(in_channels, image_size, "gan")
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


@register("dcgan", paper=DCGAN_PAPER, default_data="fashion-mnist", task="adversarial", recipe=RECIPE | {"steps": 5000},
          summary="G: z -> 2w x S/4 x S/4 -> transposed convs 4x4/2 -> image; D: convs 4x4/2 -> 1 logit")
def dcgan(in_channels: int, image_size: int, latent_dim: int = 64, width: int = 64) -> GAN:
    """DCGAN for S x S images (S a multiple of 4; 28 for Fashion-MNIST):

        G: z -> Linear -> (2w, S/4, S/4) BN ReLU -> ConvT 4x4/2 -> (w, S/2, S/2) BN ReLU -> ConvT 4x4/2 -> (C, S, S)
           tanh
        D: (C, S, S) -> Conv 4x4/2 -> (w, S/2, S/2) LReLU -> Conv 4x4/2 -> (2w, S/4, S/4) BN LReLU -> Linear -> 1

    Conv and linear weights ~ N(0, 0.02), biases 0, batch-norm scales ~ N(1, 0.02), as the paper."""
    _check_image(in_channels, image_size, "dcgan", multiple=4)
    s = image_size // 4
    generator = nn.Sequential(
        nn.Linear(latent_dim, 2 * width * s * s, bias=False), Reshape(2 * width, s, s),
        nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),  # (w, S/2, S/2)
        nn.BatchNorm2d(width), nn.ReLU(),
        nn.ConvTranspose2d(width, in_channels, 4, stride=2, padding=1),  # (C, S, S)
        nn.Tanh())
    discriminator = nn.Sequential(
        nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (w, S/2, S/2)
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),  # (2w, S/4, S/4)
        nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * width * s * s, 1))
    model = GAN(generator, discriminator, latent_dim, (in_channels, image_size, image_size))
    dcgan_init_(model)
    return model


def dcgan_init_(model: nn.Module, generator: Seed = None) -> None:
    """DCGAN's initialization: conv, transposed conv and linear weights ~ N(0, 0.02), biases 0; batch-norm
    scales ~ N(1, 0.02), shifts 0."""
    rng = get_generator(generator)
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            init.normal_(m.weight, 0.0, 0.02, rng)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            init.normal_(m.weight, 1.0, 0.02, rng)
            init.zeros_(m.bias)


__all__ = ["GAN", "Reshape", "dcgan", "dcgan_init_", "gan"]
