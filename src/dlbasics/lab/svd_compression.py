"""Experiment 8 - SVD compression: keep a trained layer's largest singular values.

Claim: the SVD of a weight matrix, W = U S Vᵀ, returns the singular values sorted in descending order, so
"keep the k largest" is "keep the first k": W_k = U_k S_k V_kᵀ. By the Eckart-Young theorem W_k is the best
rank-k approximation of W, and its relative error is exactly the root of the energy dropped,
||W - W_k||_F / ||W||_F = sqrt(Σ_{i>k} σ_i² / Σ σ_i²). Replacing each layer by its two factors (k (in + out)
parameters instead of in * out) shrinks a trained MLP; where training has concentrated each layer's energy in
a few singular values it keeps its accuracy with a fraction of the parameters.

Method: the lecture's MLP (64-128-64-10, ReLU, batch norm) and the same MLP without batch norm, each trained
on digits as ``dlbasics train`` does (Adam, lr 1e-3, batch 32, 40 epochs; 10 with ``quick``). ``np.linalg.svd``
of each layer's weight: check that the singular values are non-increasing and plot them (log scale) next
to those of the same layers at initialization. Then ``dl.compress.low_rank(model, rank=k)`` for k from 1 to
64 (the same k for every layer; a layer whose factors would not be smaller stays as it is): test accuracy
and parameter count against k - for the batch-norm MLP also after re-estimating its batch-norm statistics
on the training set (``dl.compress.recalibrate_batch_norm``), since truncation changes the statistics of
the layer outputs they normalize. Finally every truncation k = 1 ... min(in, out) of every layer: the relative
Frobenius error measured on the stored factors against sqrt(tail energy) (the largest difference must be
below 1e-5).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np

import dlbasics as dl
from dlbasics import nn, optim
from dlbasics.compress import LowRankLinear, linear_layers, low_rank, recalibrate_batch_norm
from dlbasics.data import DataLoader, datasets
from dlbasics.lab.base import Finding, command_for, new_figure, save_figure
from dlbasics.train import evaluate, fit

NAME = "svd-compression"
TITLE = "SVD compression: keep the largest singular values of each trained layer"
CLAIM = ("The SVD returns singular values in descending order; keeping the first k gives the best rank-k "
         "layer (Eckart-Young: relative error = sqrt of the dropped energy), and a trained MLP whose layers "
         "have a few dominant singular values keeps its accuracy with a fraction of its parameters.")

RANKS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 42, 64)
QUICK_RANKS = (1, 2, 4, 8, 16, 32, 42, 64)
REPORTED = (4, 8, 16, 32, 42)  # the k whose accuracy and parameter count go into the numbers
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red")
TAIL_LABEL = r": $\sqrt{\sum_{i>k} \sigma_i^2 / \sum_i \sigma_i^2}$"
MEASURED_LABEL = r": measured $\|W - W_k\|_F \,/\, \|W\|_F$"


VARIANTS = {  # key -> (label, batch norm in the model, re-estimate its statistics after compressing)
    "bn": ("lecture MLP (batch norm)", True, False),
    "bn_recal": ("lecture MLP, batch-norm statistics re-estimated", True, True),
    "nobn": ("MLP without batch norm", False, False),
}


def train_mlp(batch_norm: bool, splits: object, epochs: int, seed: int) -> tuple[nn.Module, nn.Module]:
    """(the model at initialization, the model trained as ``dlbasics train`` does), both in eval mode."""
    dl.manual_seed(seed)
    model = dl.models.create("mlp", in_features=64, num_classes=10, batch_norm=batch_norm)
    init = copy.deepcopy(model)
    fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3),
        DataLoader(splits.train, batch_size=32, shuffle=True, seed=seed), epochs=epochs, verbose=0)
    return init.eval(), model.eval()


def truncation_errors(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For k = 1 ... min(out, in): (measured ||W - B A||_F / ||W||_F with the factors ``LowRankLinear``
    stores, sqrt(Σ_{i>k} σ_i² / Σ σ_i²))."""
    out_f, in_f = w.shape
    layer = nn.Linear(in_f, out_f)
    layer.weight.data[...] = w
    s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    total = float((s**2).sum())
    norm = float(np.linalg.norm(w.astype(np.float64)))
    measured, predicted = [], []
    for k in range(1, len(s) + 1):
        dense = LowRankLinear.from_linear(layer, k).dense_weight().astype(np.float64)
        measured.append(float(np.linalg.norm(w.astype(np.float64) - dense)) / norm)
        predicted.append(math.sqrt(max(total - float((s[:k] ** 2).sum()), 0.0) / total))
    return np.array(measured), np.array(predicted)


def run(out_dir: Path, quick: bool = False, seed: int = 0) -> Finding:
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = 10 if quick else 40
    splits = datasets.digits()
    test_loader, train_loader = DataLoader(splits.test, batch_size=512), DataLoader(splits.train, batch_size=512)
    loss_fn = nn.CrossEntropyLoss()
    nets = {"bn": train_mlp(True, splits, epochs, seed), "nobn": train_mlp(False, splits, epochs, seed)}

    # 1. the singular values, as np.linalg.svd returns them
    spectra: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}  # net -> layer -> (trained, init)
    for key, (init, trained) in nets.items():
        init_layers = dict(linear_layers(init))
        spectra[key] = {name: (np.linalg.svd(layer.weight.data.astype(np.float64), compute_uv=False),
                               np.linalg.svd(init_layers[name].weight.data.astype(np.float64), compute_uv=False))
                        for name, layer in linear_layers(trained)}
    sorted_ok = all(bool(np.all(np.diff(s) <= 0)) for per in spectra.values() for pair in per.values() for s in pair)
    if not sorted_ok:
        raise AssertionError("np.linalg.svd returned singular values that are not in descending order")
    fig, axes = new_figure(1, 2, figsize=(13, 4.6), sharey=True)
    for ax, key in zip(axes, ("bn", "nobn")):
        shapes = {n: "x".join(map(str, layer.weight.shape)) for n, layer in linear_layers(nets[key][1])}
        for (name, (s, s0)), color in zip(spectra[key].items(), COLORS):
            i = np.arange(1, len(s) + 1)
            ax.semilogy(i, s, color=color, marker="o", ms=2.5, label=f"{name} ({shapes[name]}), trained")
            ax.semilogy(i, s0, color=color, ls="--", lw=1, label=f"{name}, at initialization")
        ax.set_xlabel("index i (the order np.linalg.svd returns them in)")
        ax.set_title(f"{VARIANTS[key][0]}: sorted, largest first")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_ylabel(r"singular value $\sigma_i$")
    figures = [save_figure(fig, out_dir, "singular_values")]

    # 2. accuracy and size against k
    ranks = QUICK_RANKS if quick else RANKS
    full = {key: evaluate(nets[key][1], test_loader, loss_fn)["accuracy"] for key in nets}
    params_full = {key: int(sum(p.numel() for p in nets[key][1].parameters())) for key in nets}
    acc: dict[str, dict[int, float]] = {v: {} for v in VARIANTS}
    params: dict[str, dict[int, int]] = {"bn": {}, "nobn": {}}
    bound_gap = 0.0
    for variant, (_, batch_norm, recal) in VARIANTS.items():
        net = "bn" if batch_norm else "nobn"
        for k in ranks:
            small, report = low_rank(nets[net][1], rank=k)
            if recal:
                recalibrate_batch_norm(small, train_loader)
            acc[variant][k] = evaluate(small, test_loader, loss_fn)["accuracy"]
            params[net][k] = report.params_after
            bound_gap = max(bound_gap, report.max_bound_gap)
    energy_runs = {e: low_rank(nets["bn"][1], energy=e) for e in (0.9, 0.99)}
    energy_acc = {e: evaluate(m, test_loader, loss_fn)["accuracy"] for e, (m, _) in energy_runs.items()}

    fig, (ax, pax) = new_figure(1, 2, figsize=(13, 4.8))
    styles = {"bn": ("tab:blue", "o-"), "bn_recal": ("tab:cyan", "^-"), "nobn": ("tab:red", "s-")}
    for variant, (label, _, _) in VARIANTS.items():
        color, style = styles[variant]
        ax.plot(ranks, [acc[variant][k] for k in ranks], style, color=color, ms=4, label=label)
    for net, color in (("bn", "tab:blue"), ("nobn", "tab:red")):
        ax.axhline(full[net], color=color, ls=":", lw=1, label=f"{VARIANTS[net][0]}, full: {full[net]:.1%}")
        pax.plot(ranks, [params[net][k] for k in ranks], styles[net][1], color=color, ms=4, label=VARIANTS[net][0])
        pax.axhline(params_full[net], color=color, ls=":", lw=1, label=f"full: {params_full[net]:,}")
    for a in (ax, pax):
        a.set_xscale("log", base=2)
        a.set_xticks(list(ranks), [str(k) for k in ranks])
        a.set_xlabel("rank k of every compressed layer")
        a.grid(alpha=0.3)
    ax.set_ylabel("test accuracy")
    ax.set_title("Test accuracy against k")
    ax.legend(loc="lower right", fontsize=8)
    pax.set_ylabel("parameters")
    pax.set_title("Parameters against k (a layer is kept where k(in+out) ≥ in·out)")
    pax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"MLP 64-128-64-10 trained on digits ({epochs} epochs), each Linear replaced by its rank-k factors")
    figures.append(save_figure(fig, out_dir, "accuracy_vs_rank"))

    # 3. Eckart-Young: the measured error of every truncation of every layer against sqrt(tail energy)
    fig, axes = new_figure(1, 2, figsize=(13, 4.6), sharey=True)
    max_diff = bound_gap
    for ax, key in zip(axes, ("bn", "nobn")):
        for (name, layer), color in zip(linear_layers(nets[key][1]), COLORS):
            measured, predicted = truncation_errors(layer.weight.data)
            max_diff = max(max_diff, float(np.abs(measured - predicted).max()))
            k = np.arange(1, len(measured) + 1)
            ax.plot(k, predicted, color=color, lw=1.5, label=name + TAIL_LABEL)
            ax.plot(k, measured, "o", color=color, ms=3, mfc="none", label=name + MEASURED_LABEL)
        ax.set_xlabel("k")
        ax.set_title(VARIANTS[key][0])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("relative Frobenius error of the rank-k truncation")
    if max_diff >= 1e-5:
        raise AssertionError(f"Eckart-Young: measured and predicted relative errors differ by {max_diff:.2e}")
    fig.suptitle(f"Eckart-Young: the error is the root of the dropped energy (largest difference {max_diff:.1e})")
    figures.append(save_figure(fig, out_dir, "eckart_young"))

    numbers: dict[str, float | int | str] = {
        "epochs": epochs,
        "singular_values_sorted": int(sorted_ok),
        "accuracy_full": full["bn"],
        "params_full": params_full["bn"],
    }
    for k in REPORTED:
        if k in ranks:
            numbers[f"accuracy_k{k}"] = acc["bn"][k]
            numbers[f"accuracy_recal_k{k}"] = acc["bn_recal"][k]
            numbers[f"params_k{k}"] = params["bn"][k]
    for key in ("bn", "nobn"):  # how much of the first layer's energy its 10 largest singular values hold
        s_trained, s_init = next(iter(spectra[key].values()))
        numbers[f"{key}_layer0_top10_energy"] = float((s_trained[:10] ** 2).sum() / (s_trained**2).sum())
        numbers[f"{key}_layer0_top10_energy_init"] = float((s_init[:10] ** 2).sum() / (s_init**2).sum())
    numbers["nobn_accuracy_full"] = full["nobn"]
    numbers["nobn_params_full"] = params_full["nobn"]
    for k in REPORTED:
        if k in ranks:
            numbers[f"nobn_accuracy_k{k}"] = acc["nobn"][k]
            numbers[f"nobn_params_k{k}"] = params["nobn"][k]
    for e, (_, report) in energy_runs.items():
        tag = f"energy{round(e * 100)}"
        numbers[f"accuracy_{tag}"] = energy_acc[e]
        numbers[f"params_{tag}"] = report.params_after
        numbers[f"ranks_{tag}"] = ", ".join(f"{n}: {k}" for n, k in report.ranks.items()) or "none compressed"
    numbers["eckart_young_max_diff"] = max_diff

    def smallest_k(variant: str, net: str) -> str:
        ok = [k for k in ranks if acc[variant][k] >= full[net] - 0.02]
        return str(min(ok)) if ok else "none"

    summary = (
        f"`np.linalg.svd` returned the singular values of every layer in descending order, so keeping the "
        f"largest k is keeping the first k. "
        f"The lecture's MLP (batch norm, {params_full['bn']:,} parameters, {full['bn']:.1%} test accuracy) at rank "
        f"8: {params['bn'][8]:,} parameters and {acc['bn'][8]:.1%}, or {acc['bn_recal'][8]:.1%} once the "
        f"batch-norm statistics are re-estimated on the training set; at rank 32: {params['bn'][32]:,} parameters, "
        f"{acc['bn'][32]:.1%} ({acc['bn_recal'][32]:.1%} re-estimated). "
        f"Without batch norm ({full['nobn']:.1%} full) rank 8 keeps {acc['nobn'][8]:.1%} with "
        f"{params['nobn'][8]:,} of {params_full['nobn']:,} parameters: there training lifts a few singular values "
        f"far above the rest (the first layer's 10 largest hold {numbers['nobn_layer0_top10_energy']:.0%} of its "
        f"energy, {numbers['nobn_layer0_top10_energy_init']:.0%} at initialization), while with batch norm the "
        f"spectrum stays close to the random one ({numbers['bn_layer0_top10_energy']:.0%}). "
        f"Smallest k within 2 points of the full model: {smallest_k('bn', 'bn')} (batch norm), "
        f"{smallest_k('bn_recal', 'bn')} (re-estimated), {smallest_k('nobn', 'nobn')} (no batch norm). "
        f"Over every truncation of every layer the measured relative error and sqrt(tail energy) differ by at "
        f"most {max_diff:.1e} (Eckart-Young)."
    )
    return Finding(NAME, TITLE, CLAIM, numbers, figures, summary, command_for(NAME, out_dir, quick, seed),
                   time.perf_counter() - start)
