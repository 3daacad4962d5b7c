"""Low-rank compression of trained fully connected layers by truncated SVD.

Claim: a weight matrix W (out x in) with singular value decomposition W = U S Vᵀ (σ_1 >= σ_2 >= ... >= 0)
is best approximated among all matrices of rank k - in the Frobenius and in the spectral norm - by keeping
its k largest singular values, W_k = U_k S_k V_kᵀ (Eckart & Young, "The approximation of one matrix by
another of lower rank", Psychometrika, 1936). The error that is left is exactly the energy that was dropped:

    ||W - W_k||_F / ||W||_F = sqrt(Σ_{i>k} σ_i²) / sqrt(Σ_i σ_i²).

Method: ``y = x Wᵀ + b`` becomes two thinner layers, ``x -> x A ᵀ -> (x Aᵀ) Bᵀ + b`` with
A = S_k^½ V_kᵀ (k x in) and B = U_k S_k^½ (out x k), so B A = W_k: k (in + out) parameters instead of
in * out, which saves parameters when k < in * out / (in + out). ``low_rank`` does this for every
``nn.Linear`` of a model (a deep copy; the original is untouched) and reports, per layer, the rank, the
parameter counts and the measured relative error next to the one Eckart-Young predicts.

    small, report = low_rank(model, energy=0.99)      # per layer: smallest k keeping 99% of Σσ²
    print(report.table())
    dl.save(small, "small.safetensors")
    again, _ = low_rank(fresh_model, ranks=report.ranks)   # the same structure, to load the weights into
    again.load_state_dict(dl.load("small.safetensors"))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.autograd.grad_mode import no_grad
from dlbasics.nn.layers.linear import Linear
from dlbasics.nn.layers.norm import BatchNorm1d, BatchNorm2d
from dlbasics.nn.module import Module
from dlbasics.tensor import Tensor


class LowRankLinear(Module):
    """``Linear(in, out)`` factored through a rank-k bottleneck: y = (x Aᵀ) Bᵀ + b.

    ``first``: Linear(in_features -> rank, no bias), weight A (rank, in_features);
    ``second``: Linear(rank -> out_features, with bias), weight B (out_features, rank).
    x (..., in_features) -> y (..., out_features). ``from_linear(layer, k)`` fills A and B from the SVD of
    the layer's weight so that B A is its best rank-k approximation.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(f"LowRankLinear({in_features}, {out_features}): rank must be in "
                             f"[1, {min(in_features, out_features)}], got {rank}")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.first = Linear(in_features, rank, bias=False, dtype=dtype)
        self.second = Linear(rank, out_features, bias=bias, dtype=dtype)

    @classmethod
    def from_linear(cls, layer: Linear, rank: int) -> LowRankLinear:
        """The rank-``rank`` truncation of ``layer``: A = S_k^½ V_kᵀ, B = U_k S_k^½, bias copied."""
        w = layer.weight.data
        u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)  # s sorted descending
        root = np.sqrt(s[:rank])
        out = cls(layer.in_features, layer.out_features, rank, bias=layer.bias is not None, dtype=w.dtype)
        out.first.weight.data[...] = root[:, None] * vt[:rank]  # (k, in)
        out.second.weight.data[...] = u[:, :rank] * root[None, :]  # (out, k)
        if layer.bias is not None:
            out.second.bias.data[...] = layer.bias.data
        return out

    def dense_weight(self) -> np.ndarray:
        """The dense (out_features, in_features) matrix B A this layer applies."""
        return self.second.weight.data @ self.first.weight.data

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise RuntimeError(f"LowRankLinear({self.in_features}, {self.out_features}, rank={self.rank}): input "
                               f"{x.shape} has {x.shape[-1] if x.ndim else 0} features, expected {self.in_features}")
        return self.second(self.first(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


@dataclass
class LayerReport:
    """One ``nn.Linear`` of the model: what its truncation keeps and costs.

    ``rank`` is the k chosen for it; ``compressed`` is False when k (in + out) >= in * out (no saving: the
    layer is kept as it was, and its error is 0). ``relative_error`` = ||W - W_k||_F / ||W||_F measured on
    the stored factors; ``eckart_young`` = sqrt(Σ_{i>k} σ_i² / Σ σ_i²), the value the theorem predicts.
    """

    name: str
    shape: tuple[int, int]  # (out_features, in_features)
    rank: int
    compressed: bool
    params_before: int
    params_after: int
    energy: float  # Σ_{i<=k} σ_i² / Σ σ_i²: the share of the squared singular values kept
    relative_error: float
    eckart_young: float
    singular_values: list[float] = field(default_factory=list, repr=False)


@dataclass
class LowRankReport:
    """What ``low_rank`` did: one ``LayerReport`` per ``nn.Linear`` and the whole model's parameter counts."""

    layers: list[LayerReport]
    params_before: int  # every parameter of the model, not only the linear layers'
    params_after: int

    @property
    def ranks(self) -> dict[str, int]:
        """{layer name: k} of the layers that were factored; ``low_rank(model, ranks=...)`` rebuilds them."""
        return {r.name: r.rank for r in self.layers if r.compressed}

    @property
    def ratio(self) -> float:
        """params_after / params_before."""
        return self.params_after / max(self.params_before, 1)

    @property
    def max_bound_gap(self) -> float:
        """max over layers of |measured relative error - Eckart-Young's|, for the compressed layers."""
        gaps = [abs(r.relative_error - r.eckart_young) for r in self.layers if r.compressed]
        return max(gaps, default=0.0)

    def to_dict(self, singular_values: bool = False) -> dict[str, Any]:
        layers = []
        for r in self.layers:
            d = asdict(r)
            d["shape"] = list(r.shape)
            if not singular_values:
                d.pop("singular_values")
            layers.append(d)
        return {"ranks": self.ranks, "params_before": self.params_before, "params_after": self.params_after,
                "ratio": self.ratio, "layers": layers}

    def table(self) -> str:
        lines = [f"{'layer':<20} {'shape':>10} {'k':>4} {'params':>15} {'energy':>7} {'rel. error':>10}  "
                 f"{'Eckart-Young':>12}"]
        for r in self.layers:
            shape = f"{r.shape[0]}x{r.shape[1]}"
            params = f"{r.params_before}->{r.params_after}" if r.compressed else f"{r.params_before} (kept)"
            lines.append(f"{r.name or '(model)':<20} {shape:>10} {r.rank:>4} {params:>15} {r.energy:>7.4f} "
                         f"{r.relative_error:>10.6f}  {r.eckart_young:>12.6f}")
        lines.append(f"total parameters {self.params_before:,} -> {self.params_after:,} ({self.ratio:.1%})")
        return "\n".join(lines)


def _energy_rank(s: np.ndarray, energy: float) -> int:
    """Smallest k with Σ_{i<=k} σ_i² >= energy · Σ σ_i² (s sorted descending)."""
    sq = s.astype(np.float64) ** 2
    total = sq.sum()
    if total == 0.0:
        return 1
    kept = np.cumsum(sq) / total
    # the 1e-12 tolerance: energy=1.0 must give the numerical rank, not fail on cumsum rounding to 0.9999999
    return min(int(np.searchsorted(kept, energy - 1e-12, side="left")) + 1, len(s))


def _check_choice(rank: Any, energy: Any, ranks: Any) -> None:
    given = [n for n, v in (("rank", rank), ("energy", energy), ("ranks", ranks)) if v is not None]
    if len(given) != 1:
        raise ValueError("low_rank: give exactly one of rank= (an int k for every layer), energy= (the share of "
                         "Σσ² to keep, in (0, 1]) or ranks= (a dict layer name -> k)"
                         + (f"; got {' and '.join(given)}" if given else "; got none"))
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int | np.integer) or rank < 1):
        raise ValueError(f"low_rank: rank must be an integer >= 1, got {rank!r}")
    if energy is not None and (isinstance(energy, bool) or not isinstance(energy, int | float | np.floating)
                               or not 0.0 < energy <= 1.0):
        raise ValueError(f"low_rank: energy must be a number in (0, 1], got {energy!r}")
    if ranks is not None:
        if not isinstance(ranks, dict):
            raise TypeError(f"low_rank: ranks must be a dict of layer name -> k, got {type(ranks).__name__}")
        for name, k in ranks.items():
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
                raise ValueError(f"low_rank: ranks[{name!r}] must be an integer >= 1, got {k!r}")


def linear_layers(model: Module) -> list[tuple[str, Linear]]:
    """The ``nn.Linear`` layers of ``model`` by dotted name, leaving out the halves of ``LowRankLinear``s."""
    inside = {id(m) for _, lr in model.named_modules() if isinstance(lr, LowRankLinear) for m in (lr.first, lr.second)}
    return [(n, m) for n, m in model.named_modules() if isinstance(m, Linear) and id(m) not in inside]


def _param_count(model: Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _replace_child(parent: Module, attr: str, child: Module) -> None:
    """``setattr(parent, attr, child)`` keeping the child's place: a Sequential runs its children in the order
    of ``_modules``, and re-registering a name moves it to the end."""
    order = list(parent._modules)
    setattr(parent, attr, child)
    registry = parent._modules
    reordered = {k: registry[k] for k in order}
    registry.clear()
    registry.update(reordered)


def low_rank(model: Module, rank: int | None = None, energy: float | None = None,
             ranks: dict[str, int] | None = None) -> tuple[Module, LowRankReport]:
    """A copy of ``model`` whose ``nn.Linear`` layers are replaced by their rank-k SVD truncations.

    Exactly one of:
        rank: the same k for every layer (capped at min(in, out)).
        energy: per layer, the smallest k with Σ_{i<=k} σ_i² / Σ σ_i² >= energy.
        ranks: {layer name: k}, e.g. ``report.ranks`` of an earlier call, to rebuild a compressed model's
            structure; the layers it does not name are kept.
    A layer is factored only if k (in + out) < in * out (fewer parameters); otherwise it is kept as it is.
    Returns ``(new_model, LowRankReport)``; ``model`` itself is not changed.
    """
    _check_choice(rank, energy, ranks)
    if not isinstance(model, Module):
        raise TypeError(f"low_rank: expected an nn.Module, got {type(model).__name__}")
    new = copy.deepcopy(model)
    layers = linear_layers(new)
    if ranks is not None:
        unknown = sorted(set(ranks) - {n for n, _ in layers})
        if unknown:
            raise ValueError(f"low_rank: ranks names {', '.join(map(repr, unknown))}, not linear layers of the model "
                             f"(its linear layers: {', '.join(repr(n) for n, _ in layers) or 'none'})")
    modules = dict(new.named_modules())
    reports = []
    root = new
    for name, layer in layers:
        if ranks is not None and name not in ranks:
            continue
        w = layer.weight.data
        out_f, in_f = w.shape
        s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
        full = min(out_f, in_f)
        if rank is not None:
            k = min(int(rank), full)
        elif energy is not None:
            k = _energy_rank(s, float(energy))
        else:
            k = min(int(ranks[name]), full)
        sq = s**2
        total = float(sq.sum())
        kept_energy = float(sq[:k].sum() / total) if total else 1.0
        bias = out_f if layer.bias is not None else 0
        before = out_f * in_f + bias
        compressed = k * (in_f + out_f) < out_f * in_f
        if compressed:
            small = LowRankLinear.from_linear(layer, k).train(layer.training)
            dense = small.dense_weight().astype(np.float64)
            norm = float(np.linalg.norm(w.astype(np.float64)))
            error = float(np.linalg.norm(w.astype(np.float64) - dense) / norm) if norm else 0.0
            bound = math.sqrt(max(total - float(sq[:k].sum()), 0.0) / total) if total else 0.0
            after = k * (in_f + out_f) + bias
            if name:
                parent_name, _, attr = name.rpartition(".")
                _replace_child(modules[parent_name], attr, small)
            else:
                root = small
        else:
            error = bound = 0.0
            after = before
        reports.append(LayerReport(name=name, shape=(out_f, in_f), rank=k, compressed=compressed,
                                   params_before=before, params_after=after, energy=kept_energy,
                                   relative_error=error, eckart_young=bound, singular_values=s.tolist()))
    report = LowRankReport(reports, params_before=_param_count(model), params_after=_param_count(root))
    return root, report


def recalibrate_batch_norm(model: Module, loader: Iterable) -> Module:
    """Re-estimate the running mean and variance of every batch-norm layer of ``model`` from ``loader``'s
    inputs (a plain average over all its batches), with the rest of the model in eval mode. Returns ``model``
    in eval mode; only the batch-norm buffers change.

    Why: a batch-norm layer after a compressed ``Linear`` normalizes with statistics measured on the
    uncompressed layer's outputs; truncation changes their mean and variance (the dropped directions carried
    some of it), and re-measuring them recovers much of the lost accuracy at small k.
    """
    norms = [m for m in model.modules() if isinstance(m, BatchNorm1d | BatchNorm2d) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.running_mean.data[...] = 0
        m.running_var.data[...] = 1
        m.num_batches_tracked.data[...] = 0
        m.momentum = None  # a cumulative average: every batch counts the same
    model.eval()
    for m in norms:
        m.train()
    try:
        with no_grad():
            for batch in loader:
                model(batch[0] if isinstance(batch, tuple | list) else batch)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()
    return model


# ---- run folders (``dlbasics compress RUN_DIR``) ----------------------------------------------------------
def compress_run(run_dir: str | Path, energy: float | None = None, rank: int | None = None,
                 out_dir: str | Path | None = None, data_dir: str | None = None,
                 recalibrate_bn: bool = False) -> dict[str, Any]:
    """Compress the model of a run folder and measure what it costs on the test split.

    Reads the run (``dlbasics.train.rundir``), applies ``low_rank(model, energy=..., rank=...)``, evaluates the
    test loss and metric before and after, and writes a compress folder OUT_DIR (default RUN_DIR/compressed/):
    ``model.safetensors`` (the compressed weights), ``config.json`` (the run's description and the ranks per
    layer, so ``dlbasics evaluate`` and ``load_model`` rebuild it) and ``compress.json`` (ranks, parameter
    counts, test results and the per-layer report). Returns the summary that is written. With
    ``recalibrate_bn``, the batch-norm statistics of the compressed model are re-estimated on the run's
    training split before it is evaluated and saved (``recalibrate_batch_norm``).
    """
    from dlbasics.data import DataLoader
    from dlbasics.errors import ConfigError, RunFolderError
    from dlbasics.train import rundir
    from dlbasics.train.config import build_loss, load_data
    from dlbasics.train.task import evaluate

    if (energy is None) == (rank is None):
        raise ConfigError("compress: give exactly one of --energy (share of Σσ² to keep, in (0, 1]) or --rank K")
    if energy is not None and not (isinstance(energy, int | float) and 0 < energy <= 1):
        raise ConfigError(f"--energy: must be in (0, 1], got {energy!r}")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ConfigError(f"--rank: must be an integer >= 1, got {rank!r}")
    run = rundir.open_run(run_dir, data_dir)
    if run.kind not in ("train", "tune"):
        raise RunFolderError(f"compress: {run.path} is a {run.kind} folder; compress a train or tune run")
    cfg = run.config
    model = rundir.load_model(run)
    small, report = low_rank(model, rank=rank, energy=energy)
    splits = load_data(cfg)
    if recalibrate_bn:
        recalibrate_batch_norm(small, DataLoader(splits.train, batch_size=512))
    loader = DataLoader(splits.test, batch_size=512)
    loss_fn = build_loss(cfg)
    before = evaluate(model, loader, loss_fn, cfg.metrics)
    after = evaluate(small, loader, loss_fn, cfg.metrics)
    out = Path(out_dir) if out_dir is not None else run.path / "compressed"
    if out.resolve() == run.path.resolve():
        raise ConfigError(f"compress: the output folder is the run folder {run.path}; writing there would replace "
                          "the run's own model.safetensors (choose another --out)")
    out = rundir.new_run_dir(out, "compressed")
    rundir.save_model(out, small)
    summary = {"run_dir": str(run.path), "out_dir": str(out), "energy": energy, "rank": rank,
               "recalibrated_bn": bool(recalibrate_bn), **report.to_dict(), "test_before": before,
               "test_after": after}
    rundir.write_config(out, "compress", cfg, compress={"source": str(run.path), "energy": energy, "rank": rank,
                                                        "ranks": report.ranks, "recalibrated_bn": bool(recalibrate_bn)})
    rundir.write_json(out / "compress.json", summary)
    return summary


def load_compressed(out_dir: str | Path) -> Module:
    """The compressed model ``compress_run`` wrote to ``out_dir`` (``dlbasics.train.rundir.load_model``)."""
    from dlbasics.errors import RunFolderError
    from dlbasics.train import rundir

    run = rundir.open_run(out_dir)
    if run.kind != "compress":
        raise RunFolderError(f"compress: {out_dir} is not a compressed run folder (it is a {run.kind} folder)")
    return rundir.load_model(run)
