"""Activation functions, their derivatives, and the vanishing gradient of a deep sigmoid network.

Claim: the derivative of the activation multiplies the gradient once per layer on the way back; the
sigmoid's is at most 1/4, so in a deep sigmoid network the first layers get almost no gradient and do not
learn, while ReLU-like and zero-centred activations keep the gradient alive.
Method: each activation (ReLU, Sigmoid, Tanh, GELU, LeakyReLU(0.1)) and its derivative, the derivative
taken by dl autograd (backward of f(x).sum()), not by formula. Then the same MLP - 10 hidden layers of 64,
no batch norm, PyTorch's default init, identical initial weights - on the digits: the norm of each layer's
weight gradient after one backward pass at initialization (ratio first/last layer), and Adam training
curves. ReLU with He init is added as the reference for what a well-scaled network looks like.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import dlbasics as dl
from dlbasics import nn, optim
from dlbasics.data import DataLoader
from dlbasics.data.datasets import digits
from dlbasics.lab.base import Finding, command_for, new_figure, save_figure
from dlbasics.train import evaluate, fit

NAME = "activations"
TITLE = "Activations: derivatives, and the vanishing gradient of deep sigmoid networks"
CLAIM = ("In a deep network the gradient is multiplied by the activation's derivative at every layer: with the "
         "sigmoid (derivative ≤ 1/4) it vanishes before it reaches the first layers, which then cannot learn.")

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
}
LABELS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU", "leaky_relu": "LeakyReLU(0.1)",
          "relu_he": "ReLU, He init"}
COLORS = {"relu": "tab:blue", "sigmoid": "tab:red", "tanh": "tab:green", "gelu": "tab:purple",
          "leaky_relu": "tab:orange", "relu_he": "k"}
DEPTH, WIDTH = 10, 64


def derivative(act: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(x) and f'(x) by autograd: for an elementwise f, d/dx_i Σ_j f(x_j) = f'(x_i)."""
    xt = dl.tensor(x, requires_grad=True)
    y = act(xt)
    y.sum().backward()
    return y.data.copy(), xt.grad.copy()


def deep_mlp(activation: str, seed: int, depth: int = DEPTH, width: int = WIDTH) -> nn.Sequential:
    """64 -> [Linear(width) -> activation] x depth -> Linear(10); default init, or He init for "relu_he"."""
    dl.manual_seed(seed)  # the same seed draws the same initial weights for every activation
    make = ACTIVATIONS["relu" if activation == "relu_he" else activation]
    layers: list[nn.Module] = []
    fan_in = 64
    for _ in range(depth):
        linear = nn.Linear(fan_in, width)
        if activation == "relu_he":  # Var(W) = 2 / fan_in, zero bias: keeps the signal's scale through ReLUs
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        layers += [linear, make()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    return nn.Sequential(*layers)


def layer_grad_norms(model: nn.Sequential, x: np.ndarray, y: np.ndarray) -> list[float]:
    """||dL/dW|| (Frobenius) of each Linear layer, first to last, after one cross-entropy backward pass."""
    model.zero_grad()
    nn.functional.cross_entropy(model(dl.tensor(x)), dl.tensor(y)).backward()
    return [float(np.linalg.norm(m.weight.grad)) for m in model if isinstance(m, nn.Linear)]


def run(out_dir: Path, quick: bool = False, seed: int = 0) -> Finding:
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = 4 if quick else 30
    train, val, _ = digits(seed=seed)
    x_train, y_train = train.arrays

    # 1. the functions and their autograd derivatives
    xs = np.linspace(-4, 4, 801, dtype=np.float32)
    fig, axes = new_figure(1, 2, figsize=(12, 4.4))
    for name, make in ACTIVATIONS.items():
        f, df = derivative(make(), xs)
        axes[0].plot(xs, f, color=COLORS[name], lw=2, label=LABELS[name])
        axes[1].plot(xs, df, color=COLORS[name], lw=2, label=LABELS[name])
    axes[1].axhline(0.25, color="tab:red", ls=":", lw=1, label="1/4 = max of sigmoid'")
    axes[0].set(title="activation f(x)", xlabel="x", ylabel="f(x)", ylim=(-1.5, 4.2))
    axes[1].set(title="derivative f'(x), computed by dl autograd", xlabel="x", ylabel="f'(x)", ylim=(-0.2, 1.25))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    figures = [save_figure(fig, out_dir, "functions_and_derivatives")]

    # 2. gradient norm per layer at initialization, and 3. training curves
    names = [*ACTIVATIONS, "relu_he"]
    norms, histories, finals = {}, {}, {}
    for name in names:
        model = deep_mlp(name, seed)
        norms[name] = layer_grad_norms(model, x_train, y_train)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        histories[name] = fit(model, nn.CrossEntropyLoss(), opt,
                              DataLoader(train, batch_size=32, shuffle=True, seed=seed), epochs=epochs, verbose=0)
        finals[name] = evaluate(model, DataLoader(val, batch_size=512), nn.CrossEntropyLoss())

    fig, ax = new_figure(figsize=(8, 4.8))
    layers = np.arange(1, DEPTH + 2)
    for name in names:
        ax.plot(layers, norms[name], marker="o", color=COLORS[name], ls="--" if name == "relu_he" else "-",
                label=f"{LABELS[name]}: first/last = {norms[name][0] / norms[name][-1]:.1e}")
    ax.set_yscale("log")
    ax.set_xticks(layers)
    ax.set(xlabel="Linear layer (1 = next to the input, 11 = output)", ylabel="||dL/dW|| at initialization (log)",
           title=f"Gradient norm per layer: {DEPTH} hidden layers of {WIDTH}, one backward pass on digits")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    figures.append(save_figure(fig, out_dir, "gradient_norm_per_layer"))

    fig, axes = new_figure(1, 2, figsize=(12, 4.4))
    for name in names:
        h = histories[name]
        kw = {"color": COLORS[name], "ls": "--" if name == "relu_he" else "-", "marker": "o", "ms": 3}
        axes[0].plot(h["epoch"], h["train_loss"], label=LABELS[name], **kw)
        axes[1].plot(h["epoch"], h["train_accuracy"], label=LABELS[name], **kw)
    axes[0].set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="Training loss (Adam, lr 1e-3)")
    axes[1].set(xlabel="epoch", ylabel="training accuracy", title="Training accuracy", ylim=(0, 1.02))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figures.append(save_figure(fig, out_dir, "training_curves"))

    numbers: dict[str, float | int | str] = {}
    for name in names:
        numbers[f"grad_ratio_{name}"] = norms[name][0] / norms[name][-1]
    for name in names:
        numbers[f"train_loss_{name}"] = histories[name]["train_loss"][-1]
        numbers[f"train_acc_{name}"] = histories[name]["train_accuracy"][-1]
        numbers[f"val_acc_{name}"] = finals[name]["accuracy"]
    numbers["epochs"] = epochs

    others = [n for n in ACTIVATIONS if n != "sigmoid"]
    smallest_other = min(others, key=lambda n: numbers[f"grad_ratio_{n}"])
    summary = (
        f"The same {DEPTH}-hidden-layer MLP (width {WIDTH}, no batch norm, default init, identical initial "
        f"weights) on the digits. At initialization the sigmoid net's first layer gets "
        f"**{numbers['grad_ratio_sigmoid']:.1e}** times the gradient norm of its last layer - the vanishing "
        f"gradient; the smallest ratio among the others is {LABELS[smallest_other]}'s "
        f"{numbers[f'grad_ratio_{smallest_other}']:.1e}, and ReLU with He init keeps it at "
        f"{numbers['grad_ratio_relu_he']:.2f}.\n\n"
        f"After {epochs} epochs of Adam the sigmoid net has not moved from chance: training loss "
        f"**{numbers['train_loss_sigmoid']:.2f}** (ln 10 = 2.30), accuracy {numbers['train_acc_sigmoid']:.1%}; "
        f"ReLU reaches {numbers['train_acc_relu']:.1%}, Tanh {numbers['train_acc_tanh']:.1%}, GELU "
        f"{numbers['train_acc_gelu']:.1%}, and ReLU with He init {numbers['train_acc_relu_he']:.1%}."
    )
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed),
                   time.perf_counter() - start)
