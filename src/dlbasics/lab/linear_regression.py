"""Linear regression by gradient descent, with the gradient written by hand - and autograd agreeing.

Claim: minimising the mean squared error L = 1/N Σ_n ||y_n - ŷ_n||², ŷ = W x + b, by gradient descent with
dL/dW = -2/N Σ_n (y_n - ŷ_n) x_nᵀ and dL/db = -2/N Σ_n (y_n - ŷ_n) recovers the map that made the data.
Method: data from a known W (2x3) and b plus small Gaussian noise; two runs from the same init in float64 -
NumPy with the hand-written gradient, and ``nn.Linear`` + ``MSELoss`` + ``backward()`` - stepped side by
side, comparing their gradients at every step; the result is compared with the true W, b and with the
closed-form least-squares solution (``np.linalg.lstsq``). A 1-D example shows the line being fitted.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import dlbasics as dl
from dlbasics import nn
from dlbasics.lab.base import Finding, command_for, new_figure, save_figure

NAME = "linear-regression"
TITLE = "Linear regression: a hand-written gradient, autograd, and least squares agree"
CLAIM = ("Gradient descent on the mean squared error, with dL/dW = -2/N Σ (y - ŷ)xᵀ written by hand, recovers the "
         "linear map that generated the data - and autograd computes exactly the same gradient.")

TRUE_W = np.array([[2.0, -1.0, 0.5], [-0.5, 1.5, 3.0]])  # (out 2, in 3)
TRUE_B = np.array([1.0, -2.0])


def hand_gradients(W: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """L, dL/dW, dL/db for L = 1/N Σ_n ||y_n - (W x_n + b)||².   x (N, in), y (N, out), W (out, in), b (out,)."""
    n = len(x)
    r = y - (x @ W.T + b)  # (N, out) residuals y - ŷ
    return float((r**2).sum() / n), -2.0 / n * r.T @ x, -2.0 / n * r.sum(axis=0)


def least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closed-form minimiser: solve [x 1] θ = y in the least-squares sense; W = θ[:-1]ᵀ, b = θ[-1]."""
    a = np.hstack([x, np.ones((len(x), 1))])
    theta = np.linalg.lstsq(a, y, rcond=None)[0]  # (in + 1, out)
    return theta[:-1].T, theta[-1]


def run(out_dir: Path, quick: bool = False, seed: int = 0) -> Finding:
    from matplotlib import colormaps

    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n, noise, lr = 200, 0.1, 0.1
    steps = 150 if quick else 300
    x = rng.standard_normal((n, 3))
    y = x @ TRUE_W.T + TRUE_B + noise * rng.standard_normal((n, 2))

    # Two models from one init: the autograd layer, and a NumPy copy of its weights.
    dl.manual_seed(seed)
    layer = nn.Linear(3, 2, dtype=dl.float64)
    W, b = layer.weight.data.copy(), layer.bias.data.copy()
    xt, yt = dl.tensor(x, dtype=dl.float64), dl.tensor(y, dtype=dl.float64)
    mse_sum = nn.MSELoss(reduction="sum")  # Σ over samples and outputs; / N gives L above

    W_ls, b_ls = least_squares(x, y)
    loss_ls = hand_gradients(W_ls, b_ls, x, y)[0]
    losses_hand, losses_auto, grad_diffs, dist_ls = [], [], [], []
    for _ in range(steps):
        loss_h, gW, gb = hand_gradients(W, b, x, y)
        loss = mse_sum(layer(xt), yt) / n
        layer.zero_grad()
        loss.backward()
        grad_diffs.append(max(np.abs(gW - layer.weight.grad).max(), np.abs(gb - layer.bias.grad).max()))
        losses_hand.append(loss_h)
        losses_auto.append(float(loss.item()))
        W -= lr * gW
        b -= lr * gb
        with dl.no_grad():
            layer.weight.data -= lr * layer.weight.grad
            layer.bias.data -= lr * layer.bias.grad
        dist_ls.append(max(np.abs(W - W_ls).max(), np.abs(b - b_ls).max()))

    final_loss = hand_gradients(W, b, x, y)[0]
    numbers = {
        "max_grad_diff": float(max(grad_diffs)),
        "param_diff": float(max(np.abs(W - layer.weight.data).max(), np.abs(b - layer.bias.data).max())),
        "w_error": float(np.abs(W - TRUE_W).max()),
        "b_error": float(np.abs(b - TRUE_B).max()),
        "lstsq_error": float(max(np.abs(W - W_ls).max(), np.abs(b - b_ls).max())),
        "final_loss": float(final_loss),
        "lstsq_loss": float(loss_ls),
        "noise_floor": float(2 * noise**2),
        "steps": steps,
        "lr": lr,
    }

    # The same hand-written descent on a 1-D problem, where the line can be drawn.
    x1 = rng.uniform(-2, 2, (40, 1))
    y1 = 1.5 * x1 - 0.5 + 0.4 * rng.standard_normal((40, 1))
    w1, b1 = np.zeros((1, 1)), np.zeros(1)
    snapshots = {}
    for step in range(61):
        if step in (0, 2, 5, 10, 20, 60):
            snapshots[step] = (w1.item(), b1.item())
        _, gw, gb = hand_gradients(w1, b1, x1, y1)
        w1, b1 = w1 - 0.05 * gw, b1 - 0.05 * gb

    fig, axes = new_figure(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    steps_axis = np.arange(1, steps + 1)
    ax.plot(steps_axis, losses_hand, lw=2.5, label="hand-written gradient (NumPy)")
    ax.plot(steps_axis, losses_auto, "--", lw=1.5, label="autograd (nn.Linear + MSELoss)")
    ax.axhline(loss_ls, color="k", ls=":", lw=1, label=f"least squares (lstsq): {loss_ls:.4f}")
    ax.set_yscale("log")
    ax.set(xlabel="gradient descent step", ylabel="training loss  1/N Σ ||y - ŷ||²  (log)",
           title=f"y = Wx + b, x ∈ R³, y ∈ R², N = {n}")
    ax.legend()
    ax.grid(alpha=0.3)

    ax = axes[1]
    tiny = 1e-18
    ax.plot(steps_axis, np.maximum(grad_diffs, tiny), ".", ms=3,
            label="max |hand - autograd| gradient (zeros drawn at 1e-18)")
    ax.plot(steps_axis, np.maximum(dist_ls, tiny), lw=2, label="max |θ - θ_lstsq|  (distance to least squares)")
    ax.axhline(np.finfo(np.float64).eps, color="gray", ls=":", lw=1, label="float64 machine epsilon")
    ax.set_yscale("log")
    ax.set(xlabel="gradient descent step", ylabel="max abs difference (log)",
           title="hand = autograd at every step; GD → least squares")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[2]
    ax.scatter(x1[:, 0], y1[:, 0], s=14, color="gray", label="data: y = 1.5x - 0.5 + noise")
    grid = np.linspace(-2, 2, 2)
    cmap = colormaps["viridis"]
    for i, (step, (w_s, b_s)) in enumerate(snapshots.items()):
        ax.plot(grid, w_s * grid + b_s, color=cmap(i / (len(snapshots) - 1)), lw=2,
                label=f"step {step}: ŷ = {w_s:.2f}x {'+' if b_s >= 0 else '-'} {abs(b_s):.2f}")
    ax.set(xlabel="x", ylabel="y", title="1-D example: the fitted line during descent")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figures = [save_figure(fig, out_dir, "linear_regression")]

    apart = ("with bit-identical weights" if numbers["param_diff"] == 0
             else f"{numbers['param_diff']:.1e} apart")
    summary = (
        f"Gradient descent (lr {lr}, {steps} full-batch steps, float64) on N = {n} noisy samples of a known "
        f"y = Wx + b. The hand-written gradient and autograd's agree at **every** step: the largest difference "
        f"is **{numbers['max_grad_diff']:.1e}** (float64 rounding), and the two runs end {apart}.\n\n"
        f"The fit recovers the true map to within the noise: max |W - W_true| = **{numbers['w_error']:.4f}**, "
        f"max |b - b_true| = **{numbers['b_error']:.4f}**; it is the least-squares solution of `np.linalg.lstsq` "
        f"to **{numbers['lstsq_error']:.1e}**. The final loss {final_loss:.4f} sits at the noise floor "
        f"(2 outputs * noise² = {numbers['noise_floor']:.3f})."
    )
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed),
                   time.perf_counter() - start)
