"""Experiment 5 - losses: why classification uses cross-entropy, and what cross-entropy is.

Claim: (a) for a confidently WRONG prediction, cross-entropy's gradient with respect to the true class's
logit stays near its largest value, p_true - 1 ≈ -1, while the squared error of the softmax output
(MSE against the one-hot label) has a gradient proportional to p_true, which vanishes - so a network
trained with cross-entropy learns faster; (b) cross-entropy IS the negative log-likelihood of a
categorical model, the quantity maximum-likelihood estimation minimizes.

Method: (a) logits (z_true, 5, 0, ..., 0) over 10 classes, z_true swept from -12 to 12: the gradient
∂L/∂z_true of L_CE = -log softmax(z)_true and of L_MSE = ||softmax(z) - onehot||² computed with dl's
autograd (float64), and read off where p_true = 1e-4. Then the same MLP (64-128-64-10, no batch norm,
SGD with momentum 0.9, lr 0.05, batch 32, one seed) trained on digits once with each loss: training loss and
validation accuracy per epoch, test accuracy at the end. (b) on random logits (float64, N = 100, C = 10)
and on the trained model's test-set logits: F.cross_entropy(logits, y), -mean(log_softmax(logits)[i, y_i]),
F.nll_loss(F.log_softmax(logits), y) and -log(Π_i p_i,y_i) / N must agree to float precision.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

import dlbasics as dl
from dlbasics import nn, optim
from dlbasics.data import DataLoader, datasets
from dlbasics.lab.base import Finding, command_for, new_figure, save_figure
from dlbasics.nn import functional as F
from dlbasics.tensor import Tensor
from dlbasics.train import Callback, evaluate, fit

NAME = "losses"
TITLE = "Cross-entropy vs squared error for classification; cross-entropy is the negative log-likelihood"
CLAIM = ("At a confidently wrong prediction cross-entropy's gradient on the true logit stays near -1 while the "
         "squared error of the softmax vanishes, so cross-entropy learns faster; and cross-entropy equals the "
         "negative log-likelihood of a categorical model.")

NUM_CLASSES = 10
WRONG_LOGIT = 5.0  # the one wrong class the network is confident about
SATURATED_P = 1e-4  # p_true at the "saturated wrong prediction"
LR, MOMENTUM, BATCH = 0.05, 0.9, 32


def mse_on_softmax(logits: Tensor, y: Tensor) -> Tensor:
    """||softmax(z) - onehot(y)||² summed over classes, mean over the batch."""
    d = F.softmax(logits, 1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return (d * d).sum(1).mean()


def logits_for(z_true: np.ndarray) -> np.ndarray:
    """(N, C) float64 logits: row i is (z_true[i], WRONG_LOGIT, 0, ..., 0); the true class is 0."""
    z = np.zeros((len(z_true), NUM_CLASSES))
    z[:, 0], z[:, 1] = z_true, WRONG_LOGIT
    return z


def true_logit_gradients(z_true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_true, ∂L_CE/∂z_true, ∂L_MSE/∂z_true) per entry of ``z_true``, by autograd (sum over rows = one
    example per row)."""
    y = dl.tensor(np.zeros(len(z_true), np.int64))
    grads = []
    for loss in ("ce", "mse"):
        z = dl.tensor(logits_for(z_true), dtype=dl.float64, requires_grad=True)
        if loss == "ce":
            value = F.cross_entropy(z, y, reduction="sum")
        else:
            d = F.softmax(z, 1) - F.one_hot(y, NUM_CLASSES).double()
            value = (d * d).sum()
        value.backward()
        grads.append(z.grad[:, 0].copy())
    p_true = np.exp(z_true) / (np.exp(z_true) + math.exp(WRONG_LOGIT) + NUM_CLASSES - 2)
    return p_true, grads[0], grads[1]


def saturated_logit(p: float = SATURATED_P) -> float:
    """z_true where softmax gives the true class probability p: e^z = p (e^5 + 8) / (1 - p)."""
    return math.log(p * (math.exp(WRONG_LOGIT) + NUM_CLASSES - 2) / (1 - p))


def nll_forms(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Four ways to write the same number (float64): cross-entropy and the categorical model's NLL."""
    z, t = dl.tensor(logits, dtype=dl.float64), dl.tensor(y.astype(np.int64))
    n = len(y)
    logp = F.log_softmax(z, 1)
    probs = F.softmax(z, 1).numpy()[np.arange(n), y]  # the predicted probability of each label
    return {
        "cross_entropy": F.cross_entropy(z, t).item(),
        "mean_neg_log_softmax": -logp[np.arange(n), y].mean().item(),
        "nll_of_log_softmax": F.nll_loss(logp, t).item(),
        "neg_log_likelihood": -math.log(float(np.prod(probs))) / n,  # -log Π_i p(y_i | x_i) / N
    }


class TrainingNLL(Callback):
    """After each epoch, the cross-entropy (NLL) of the whole training set in eval mode: one scale on which
    models trained with different losses can be compared."""

    def __init__(self, data) -> None:
        self.loader = DataLoader(data, batch_size=512)
        self.values: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.values.append(evaluate(self.model, self.loader, nn.CrossEntropyLoss(), ())["loss"])


def train_with(loss_fn, splits, epochs: int, seed: int) -> tuple[dl.train.History, list[float], dict[str, float],
                                                                     nn.Module]:
    """(history, training NLL per epoch, test loss/accuracy, model) of the MLP trained with ``loss_fn``."""
    dl.manual_seed(seed)
    model = dl.models.create("mlp", in_features=64, num_classes=NUM_CLASSES, hidden=[128, 64], batch_norm=False)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    nll = TrainingNLL(splits.train)
    history = fit(model, loss_fn, opt, DataLoader(splits.train, batch_size=BATCH, shuffle=True, seed=seed),
                  epochs=epochs, val_loader=DataLoader(splits.val, batch_size=512), callbacks=[nll], verbose=0)
    test = evaluate(model, DataLoader(splits.test, batch_size=512), nn.CrossEntropyLoss())
    return history, nll.values, test, model


def _first_epoch(values: list[float], threshold: float) -> int | None:
    return next((i + 1 for i, v in enumerate(values) if v >= threshold), None)


def run(out_dir: Path, quick: bool = False, seed: int = 0) -> Finding:
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # (a) gradients at saturation
    z_sat = saturated_logit()
    _, ce_sat, mse_sat = true_logit_gradients(np.array([z_sat]))
    ce_grad, mse_grad = abs(float(ce_sat[0])), abs(float(mse_sat[0]))
    z = np.linspace(-12.0, 12.0, 97 if quick else 481)
    _, ce_g, mse_g = true_logit_gradients(z)

    fig, ax = new_figure(figsize=(7, 4.5))
    ax.semilogy(z, np.abs(ce_g), label="cross-entropy  |p_true - 1|", color="tab:blue")
    ax.semilogy(z, np.abs(mse_g), label="squared error of softmax", color="tab:red")
    ax.axvline(z_sat, color="gray", ls=":", label=f"p_true = {SATURATED_P:g}")
    ax.plot([z_sat, z_sat], [ce_grad, mse_grad], "ko", ms=4)
    ax.annotate(f"{ce_grad:.4f}", (z_sat, ce_grad), textcoords="offset points", xytext=(6, 4))
    ax.annotate(f"{mse_grad:.1e}", (z_sat, mse_grad), textcoords="offset points", xytext=(6, -12))
    ax.set_xlabel("logit of the true class z_true (wrong class at 5, others at 0)")
    ax.set_ylabel("|∂ loss / ∂ z_true|")
    ax.set_title("Gradient on the true logit: wrong and confident on the left")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left")
    fig_grad = save_figure(fig, out_dir, "gradient_at_saturation")

    # training both on digits
    splits = datasets.digits()
    epochs = 6 if quick else 30
    runs = {"cross-entropy": train_with(nn.CrossEntropyLoss(), splits, epochs, seed),
            "squared error": train_with(mse_on_softmax, splits, epochs, seed)}
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    for (name, (h, nll, _, _)), color in zip(runs.items(), ("tab:blue", "tab:red")):
        axes[0].plot(h["epoch"], nll, color=color, marker="o", ms=3, label=f"trained with {name}")
        axes[1].plot(h["epoch"], h["val_accuracy"], color=color, marker="o", ms=3, label=f"{name}, validation")
        axes[1].plot(h["epoch"], h["train_accuracy"], color=color, ls=":", label=f"{name}, training")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("cross-entropy (NLL) on the training set")
    axes[0].set_title("Training-set NLL per epoch (both measured the same way)")
    axes[1].set_ylabel("accuracy")
    axes[1].set_title("Accuracy per epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"MLP 64-128-64-10 on digits, SGD lr {LR} momentum {MOMENTUM}: same model, two losses")
    fig_train = save_figure(fig, out_dir, "training_curves")

    # (b) cross-entropy = negative log-likelihood
    rng = np.random.default_rng(seed)
    random_logits = rng.normal(0.0, 2.0, (100, NUM_CLASSES))
    random_labels = rng.integers(0, NUM_CLASSES, 100)
    forms = [nll_forms(random_logits, random_labels)]
    ce_model = runs["cross-entropy"][3].eval()
    x_test, y_test = splits.test.arrays
    with dl.no_grad():
        test_logits = ce_model(dl.tensor(x_test)).numpy().astype(np.float64)
    forms.append(nll_forms(test_logits, y_test))
    max_diff = max(max(f.values()) - min(f.values()) for f in forms)

    ce_test, mse_test = runs["cross-entropy"][2]["accuracy"], runs["squared error"][2]["accuracy"]
    ce_h, mse_h = runs["cross-entropy"][0], runs["squared error"][0]
    reach = 0.9
    ce_epoch, mse_epoch = _first_epoch(ce_h["val_accuracy"], reach), _first_epoch(mse_h["val_accuracy"], reach)
    numbers: dict[str, float | int | str] = {
        "p_true_at_saturation": SATURATED_P,
        "ce_grad_at_saturation": ce_grad,
        "mse_grad_at_saturation": mse_grad,
        "ce_nll_max_diff": float(max_diff),
        "ce_nll_value_random_logits": forms[0]["cross_entropy"],
        "ce_nll_value_test_logits": forms[1]["cross_entropy"],
        "epochs": epochs,
        "ce_test_accuracy": ce_test,
        "mse_test_accuracy": mse_test,
        "ce_train_nll_final": runs["cross-entropy"][1][-1],
        "mse_train_nll_final": runs["squared error"][1][-1],
        "ce_val_accuracy_epoch1": ce_h["val_accuracy"][0],
        "mse_val_accuracy_epoch1": mse_h["val_accuracy"][0],
        "ce_epochs_to_val_90": ce_epoch if ce_epoch is not None else "not reached",
        "mse_epochs_to_val_90": mse_epoch if mse_epoch is not None else "not reached",
    }

    def epochs_text(e: int | None) -> str:
        return f"{e} epochs" if e is not None else f"not within {epochs} epochs"

    summary = (
        f"At a confidently wrong prediction (p_true = {SATURATED_P:g}) the gradient on the true logit is "
        f"{ce_grad:.4f} for cross-entropy and {mse_grad:.1e} for the squared error of the softmax, "
        f"{ce_grad / mse_grad:,.0f} times smaller. "
        f"Trained the same way on digits, cross-entropy reached 90% validation accuracy after "
        f"{epochs_text(ce_epoch)}, squared error after {epochs_text(mse_epoch)}; test accuracy after {epochs} "
        f"epochs: {ce_test:.1%} vs {mse_test:.1%}. "
        f"`F.cross_entropy`, `-mean(log_softmax[y])`, `F.nll_loss(F.log_softmax(.))` and `-log(Π p_y) / N` differ "
        f"by at most {max_diff:.1e} (float64, random and trained-model logits): cross-entropy is the categorical "
        f"negative log-likelihood."
    )
    return Finding(name=NAME, title=TITLE, claim=CLAIM, numbers=numbers, figures=[fig_grad, fig_train],
                   summary=summary, command=command_for(NAME, out_dir, quick, seed),
                   seconds=time.perf_counter() - start)
