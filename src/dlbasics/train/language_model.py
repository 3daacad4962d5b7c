"""Language modelling as a task of the one loop: predict every next token of a window.

A batch is ``(x, y)``, both (B, T) token ids with ``y[:, t]`` the token after ``x[:, :t+1]``; the model maps x
to logits (B, T, V) and the loss is the mean cross-entropy over all B·T positions - the negative
log-likelihood of the text in nats per token (ln V for a model that knows nothing: 4.17 for 65 characters).

``generate`` samples a continuation from any model whose forward gives (B, T, V) logits, as nanoGPT's
``GPT.generate`` does: the last ``block_size`` tokens in, the last position's logits / temperature, optionally
only the ``top_k`` largest, a draw from the softmax, appended, repeated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from dlbasics.errors import ConfigError
from dlbasics.nn.module import Module
from dlbasics.rng import Seed, get_generator
from dlbasics.tensor import Tensor
from dlbasics.train.task import TASKS, SupervisedTask, evaluate, evaluating, split_batch


def next_token_loss(loss_fn: Any, logits: Tensor, y: Any) -> Tensor:
    """The loss of logits (B, T, V) against next tokens (B, T): over the B·T positions as one batch."""
    b, t, v = logits.shape
    target = y.reshape(b * t) if isinstance(y, Tensor) else np.asarray(y).reshape(b * t)
    return loss_fn(logits.reshape(b * t, v), target)


@TASKS.register("language_model", help="next-token cross-entropy over (B, T) windows of token ids")
class LanguageModelTask(SupervisedTask):
    """One model, one optimizer, the mean next-token cross-entropy; validation reports the same loss."""

    def __init__(self, model: Module, loss_fn: Any, optimizer: Any) -> None:
        super().__init__(model, loss_fn, optimizer, metrics=())

    @classmethod
    def build(cls, cfg: Any) -> LanguageModelTask:
        from dlbasics.train.config import build_loss, build_model, build_optimizer

        cls.require_problem(cfg, "language_modeling", "language_model", "trains on text")
        model = build_model(cfg)
        return cls(model, build_loss(cfg), build_optimizer(cfg, model))

    def training_step(self, batch: Any) -> tuple[int, dict[str, float]]:
        x, y = split_batch(batch)
        loss = self.optimize(next_token_loss(self.loss_fn, self.model(x), y), self.optimizer)
        return x.shape[0], {"loss": loss}

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        return evaluate_language_model(self.model, loader, self.loss_fn)

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Module, loader: Iterable) -> dict[str, float]:
        from dlbasics.train.config import build_loss

        return evaluate_language_model(model, loader, build_loss(cfg))

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        """sample.txt: 300 characters the model writes after a newline (temperature 0.8, top 40, the run's seed)."""
        from dlbasics.io import atomic_write_text

        if splits.tokenizer is not None:
            atomic_write_text(out_dir / "sample.txt", sample_text(self.model, splits.tokenizer, cfg, seed=cfg.seed))


def evaluate_language_model(model: Module, loader: Iterable, loss_fn: Any) -> dict[str, float]:
    """The mean next-token loss over ``loader``'s windows, in eval mode without a graph (mode restored)."""
    return evaluate(model, loader, lambda logits, y: next_token_loss(loss_fn, logits, y), metrics=())


def generate(model: Module, idx: Any, max_new_tokens: int, block_size: int, temperature: float = 1.0,
             top_k: int | None = None, generator: Seed = None) -> np.ndarray:
    """idx (B, T0) token ids continued by ``max_new_tokens`` sampled tokens: (B, T0 + max_new_tokens).

    p(next) = softmax(logits[:, -1] / temperature), restricted to the ``top_k`` most likely tokens if given;
    the model sees the last ``block_size`` tokens. Eval mode, no graph (the model's mode is restored)."""
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    if not temperature > 0:
        raise ValueError(f"generate: temperature must be > 0, got {temperature}")
    from threadpoolctl import threadpool_limits

    rng = get_generator(generator)
    idx = np.array(idx.data if isinstance(idx, Tensor) else idx, dtype=np.int64, ndmin=2)
    # one BLAS thread: a few rows per product, too small to share, and a second thread waiting on a busy core
    # made each step 70x slower (GPT, one sequence: 6 ms a token with one thread, 455 ms with two, a core busy)
    with evaluating(model), threadpool_limits(limits=1, user_api="blas"):
        for _ in range(max_new_tokens):
            logits = model(Tensor._make(idx[:, -block_size:], False, None)).data[:, -1, :]  # (B, V)
            logits = logits.astype(np.float64) / temperature
            if top_k is not None and top_k < logits.shape[-1]:
                kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]  # the k-th largest
                logits = np.where(logits < kth, -np.inf, logits)
            p = np.exp(logits - logits.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            u = rng.random((p.shape[0], 1))
            nxt = np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)  # inverse CDF
            idx = np.concatenate([idx, nxt[:, None]], axis=1)
    return idx


def sample_text(model: Module, tokenizer: Any, cfg: Any, prompt: str = "\n", tokens: int = 300,
                temperature: float = 0.8, top_k: int | None = 40, seed: Seed = 0) -> str:
    """``prompt`` and ``tokens`` sampled tokens after it, as text (a run's sample.txt, ``dlbasics generate``)."""
    if not prompt:
        raise ConfigError("--prompt: give at least one character to start from")
    ids = tokenizer.encode(prompt)
    block = int(cfg.model.options.get("block_size") or cfg.data.input_shape[0])
    out = generate(model, ids[None, :], tokens, block, temperature, top_k, generator=seed)
    return tokenizer.decode(out[0])


__all__ = ["LanguageModelTask", "evaluate_language_model", "generate", "next_token_loss", "sample_text"]
