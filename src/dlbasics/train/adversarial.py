"""Adversarial training (a GAN's step) as a task of the one loop: two optimizers, updated in turn on every batch.

For a batch of real images x (labels, if any, are ignored) and fresh noise z:

    D step:  loss_D = BCE(D(x), 1) + BCE(D(G(z)), 0)      G(z) detached: only D's weights move
    G step:  loss_G = BCE(D(G(z)), 1) = -mean log sigma(D(G(z)))   the non-saturating loss; only G's weights move

(Goodfellow et al. 2014, section 3: early on D rejects G's samples with confidence and log(1 - D(G(z)))
saturates, so G maximizes log D(G(z)) instead.) The G step reuses the same G(z) and reads it with the just-updated D,
as PyTorch's DCGAN example does; D's weights do not require grad during it, so its weight gradients are not computed.

The model is a ``models.gan.GAN`` (``generator``, ``discriminator``, ``generate``, ``discriminate``, ``noise``); the
optimizers are "generator" and "discriminator", built from the run's algorithm over each network's parameters. The
noise comes from the task's own generator (seeded from the run's seed, saved in its state), so a resumed run draws
the noise an unbroken one would have.

Evaluation (``generative_metrics``): ``eval_samples`` images generated from fixed noise against as many real images
of the split, in the feature space of a small cached Fashion-MNIST classifier: FD_clf, the classifier's inception
score, the classes that get >= 2% of the samples, the largest class's share, and k-NN precision and recall. A run
folder also gets a sample grid at every evaluation (``samples/``), the weights of the best-FD evaluation
(``best.safetensors``; FD rises again late in training) and ``evaluation.json``: the best and the last model on the
test split beside the references, real images against real images and uniform noise.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.errors import ConfigError, DataError
from dlbasics.nn import functional as F
from dlbasics.nn.module import Module
from dlbasics.rng import set_generator_states
from dlbasics.tensor import Tensor
from dlbasics.train.callbacks import Callback
from dlbasics.train.task import TASKS, Task

# the noise generator's own stream of the run seed (the loader's shuffle and the default generator use the seed itself)
NOISE_STREAM = 2
EVAL_NOISE_SEED = 0  # the fixed noise every evaluation generates from, so evaluations compare across steps and runs
GRID_NOISE_SEED = 1  # the fixed noise of the sample grids
EVAL_SAMPLES = 2000


def real_images(batch: Any) -> Tensor:
    """The images of a batch: ``x`` of (x, y), or the batch itself."""
    x = batch[0] if isinstance(batch, tuple | list) else batch
    if not isinstance(x, Tensor):
        x = Tensor._make(np.asarray(x, np.float32), False, None)
    if x.ndim < 2:
        raise DataError(f"an adversarial step expects batches of images (N, C, H, W), got shape {x.shape}")
    return x


def loader_images(loader: Iterable, limit: int) -> np.ndarray:
    """The first ``limit`` images of ``loader``'s batches, as one float32 array."""
    parts, n = [], 0
    for batch in loader:
        x = real_images(batch).data
        parts.append(x[:limit - n])
        n += len(parts[-1])
        if n >= limit:
            break
    if not parts:
        raise DataError("the evaluation data gave no batch")
    return np.concatenate(parts).astype(np.float32, copy=False)


@TASKS.register("adversarial", help="a GAN's two updates per batch: the discriminator, then the generator "
                "(non-saturating loss)")
class AdversarialTask(Task):
    """A GAN: ``model`` holds both networks; ``opt_g`` and ``opt_d`` update each. ``seed`` seeds the noise;
    ``eval_samples`` images are generated at each evaluation (FD and the others are computed on them)."""

    curves = ("loss_d", "loss_g", "fd")
    best = ("fd", "min")

    def __init__(self, model: Module, opt_g: Any, opt_d: Any, *, seed: int = 0, eval_samples: int = EVAL_SAMPLES,
                 k: int = 3) -> None:
        super().__init__(model)
        self.optimizers = {"generator": opt_g, "discriminator": opt_d}
        self.opt_g, self.opt_d = opt_g, opt_d
        self.eval_samples, self.k = eval_samples, k
        self.generator = np.random.default_rng([seed, NOISE_STREAM])
        self._scorers: dict[str, Any] = {}  # real images' digest -> SampleEvaluator (features computed once)

    @classmethod
    def build(cls, cfg: Any) -> AdversarialTask:
        from dlbasics.train.config import build_model, build_optimizer

        if len(cfg.data.input_shape) != 3:
            raise ConfigError(f"{cfg.spelling('task')} adversarial: generates images; the data set {cfg.data.name!r} "
                              f"has samples of shape {tuple(cfg.data.input_shape)}, not (C, H, W)")
        model = build_model(cfg)
        for part in ("generator", "discriminator"):
            if not isinstance(getattr(model, part, None), Module):
                raise ConfigError(f"{cfg.spelling('task')} adversarial: the model {cfg.model.name!r} has no {part}; "
                                  "train a GAN (--model gan or dcgan)")
        return cls(model, build_optimizer(cfg, model.generator), build_optimizer(cfg, model.discriminator),
                   seed=cfg.seed)

    # ---- one step: D, then G ----
    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        real = real_images(batch)
        n = real.shape[0]
        model = self.model
        fake = model.generate(model.noise(n, self.generator))
        d_real, d_fake = model.discriminate(real), model.discriminate(fake.detach())
        real_label, fake_label = np.ones(n, d_real.dtype), np.zeros(n, d_real.dtype)
        loss_d = (F.binary_cross_entropy_with_logits(d_real, real_label)
                  + F.binary_cross_entropy_with_logits(d_fake, fake_label))
        loss_d_value = self.optimize(loss_d, self.opt_d)
        with frozen(model.discriminator):
            loss_g = F.binary_cross_entropy_with_logits(model.discriminate(fake), real_label)
            loss_g_value = self.optimize(loss_g, self.opt_g)
        sigmoid = lambda t: float((1.0 / (1.0 + np.exp(-t.data.astype(np.float64)))).mean())  # noqa: E731
        return n, {"loss_d": loss_d_value, "loss_g": loss_g_value, "d_real": sigmoid(d_real), "d_fake": sigmoid(d_fake)}

    def probe(self, batch: Any) -> None:
        real = real_images(batch)
        self.model.discriminate(real)
        self.model.discriminate(self.model.generate(self.model.noise(real.shape[0], EVAL_NOISE_SEED)))

    # ---- evaluation ----
    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return self.score(self.model, loader_images(loader, self.eval_samples))

    def score(self, model: Module, real: np.ndarray) -> dict[str, float]:
        """``generative_metrics`` of ``eval_samples`` images generated from the fixed evaluation noise, against
        ``real`` (N, C, H, W)."""
        from dlbasics.train.generative_metrics import SampleEvaluator

        key = hashlib.blake2b(real.tobytes(), digest_size=16).hexdigest() + str(real.shape)
        if key not in self._scorers:
            self._scorers[key] = SampleEvaluator(real, k=self.k)
        return self._scorers[key](model.sample(self.eval_samples, EVAL_NOISE_SEED))

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Module, loader: Iterable) -> dict[str, float]:
        return cls(model, None, None, seed=cfg.seed).evaluate(loader)

    @classmethod
    def folder_callbacks(cls, out_dir: Path, cfg: Any) -> list[Callback]:
        from dlbasics.train.callbacks import Checkpoint

        return [SampleGrid(out_dir / "samples"),
                Checkpoint(out_dir, every=None, keep_best=True, monitor="val_fd", mode="min")]

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        """evaluation.json: the best-FD snapshot and the last model on the test split, beside the references
        (held-out real images against the test images, and uniform noise); samples.png from the best snapshot."""
        from dlbasics.io import load
        from dlbasics.train.generative_metrics import reference_scores
        from dlbasics.train.rundir import write_json

        out_dir = Path(out_dir)
        test = loader_images(_batches(splits.test), self.eval_samples)
        result: dict[str, Any] = {"samples": self.eval_samples, "k": self.k, "last": self.score(self.model, test)}
        best_file = out_dir / "best.safetensors"
        if best_file.is_file():
            best = copy.deepcopy(self.model)
            best.load_state_dict(load(best_file))
            result["best"] = self.score(best, test)
            save_image_grid(best.sample(64, GRID_NOISE_SEED), out_dir / "samples.png")
        if splits.val is not None:
            val = loader_images(_batches(splits.val), self.eval_samples)
            result["references"] = reference_scores(val, test, k=self.k)
        write_json(out_dir / "evaluation.json", result)

    # ---- state: the modules', the optimizers', and the noise generator ----
    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"noise": self.generator.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        set_generator_states({"noise": self.generator}, {"noise": state["noise"]})


class frozen:
    """``with frozen(module):`` its parameters do not require grad inside (no weight gradients are computed)."""

    def __init__(self, module: Module) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad = False

    def __exit__(self, *exc: Any) -> None:
        for p in self.params:
            p.requires_grad = True


def _batches(dataset: Any, batch_size: int = 500) -> Iterable:
    from dlbasics.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size)


class SampleGrid(Callback):
    """At every evaluation, ``folder/step-N.png`` (or ``epoch-N.png``): an 8 x 8 grid of the model's samples from
    fixed noise, so the grids of a run show the same 64 draws improving."""

    def __init__(self, folder: str | Path, n: int = 64) -> None:
        self.folder, self.n = Path(folder), n

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        unit = "step" if "step" in logs else "epoch"
        save_image_grid(self.model.sample(self.n, GRID_NOISE_SEED), self.folder / f"{unit}-{int(logs[unit]):06d}.png")


def make_grid(images: np.ndarray, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] tiled ``nrow`` to a row with ``padding`` pixels between them (torchvision's
    ``make_grid``): (C, rows (H + padding) + padding, nrow (W + padding) + padding)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"make_grid: expected images (N, C, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, images.dtype)
    for i in range(n):  # a handful of tiles: one slice copy each
        y, x = divmod(i, cols)
        grid[:, padding + y * (h + padding):padding + y * (h + padding) + h,
             padding + x * (w + padding):padding + x * (w + padding) + w] = images[i]
    return grid


def save_image_grid(images: np.ndarray, path: str | Path, nrow: int = 8, scale: int = 2) -> None:
    """``make_grid`` of images in [0, 1] written as a PNG (each pixel ``scale`` x ``scale``), atomically."""
    import io

    from PIL import Image

    from dlbasics.io import atomic_write_bytes

    grid = make_grid(np.clip(images, 0.0, 1.0), nrow)
    pixels = np.round(grid * 255).astype(np.uint8)
    pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="png")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


__all__ = ["AdversarialTask", "SampleGrid", "frozen", "make_grid", "save_image_grid"]
