"""Regularizers do what the lecture says: dropout narrows the gap between training and validation accuracy,
weight decay shrinks the weights (and AdamW decays differently from Adam's L2 term), batch normalization
lets a deep sigmoid network train, MixUp trains on the soft-target cross-entropy; weight-decay groups.

Learning tests use fixed seeds, and thresholds far from the measured values (in each test's comment).
"""

import itertools

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models, nn, optim
from dlbasics.data import DataLoader, MixUp, Subset, TensorDataset, datasets
from dlbasics.optim.groups import NO_DECAY, param_groups
from dlbasics.train import Run, evaluate, fit, train_run

CHANCE_LOSS = np.log(10)  # cross-entropy of the uniform guess over the 10 digits


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


def accuracy_of(model, data):
    return evaluate(model, DataLoader(data, batch_size=512))["accuracy"]  # eval mode: no dropout


# ---- dropout ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_dropout_shrinks_the_train_validation_gap(digits):
    """150 training digits, 30% of their labels replaced by random ones, so that there is something to
    memorize; a wide MLP (512, 512) trained 60 epochs. Without dropout it fits every (noisy) training label
    and validation suffers; with p = 0.5 it memorizes less and generalizes better.

    Measured (mean of seeds 0-2): gap 0.214 without dropout, 0.150 with (train 1.000 / 0.971, val 0.786 /
    0.821); other subsets: 0.357 -> 0.202, 0.348 -> 0.204. On the clean labels the gap differed by < 0.01
    either way (0.081 vs 0.076 and the like), too little to assert: digits are easy to generalize from.
    """
    x, y = digits.train.arrays
    idx = np.random.default_rng(0).permutation(len(x))[:150]
    labels = y[idx].copy()
    rng = np.random.default_rng(1)
    flip = rng.random(150) < 0.3
    labels[flip] = rng.integers(0, 10, flip.sum())
    small = TensorDataset(x[idx], labels)

    def gap(p, seed):
        def build_run(seed):
            model = models.MLP(64, 10, hidden=[512, 512], dropout=p, batch_norm=False)
            return Run(model=model, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.Adam(model.parameters(), lr=1e-3),
                       epochs=60, batch_size=32)
        run, _ = train_run(build_run, small, seed=seed)
        train_acc, val_acc = accuracy_of(run.model, small), accuracy_of(run.model, digits.val)
        return train_acc - val_acc, val_acc

    plain = np.array([gap(0.0, s) for s in range(3)])
    dropped = np.array([gap(0.5, s) for s in range(3)])
    print(f"gap without dropout {plain[:, 0].mean():.3f}, with {dropped[:, 0].mean():.3f}; "
          f"val {plain[:, 1].mean():.3f} -> {dropped[:, 1].mean():.3f}")
    assert dropped[:, 0].mean() < plain[:, 0].mean() - 0.03
    assert dropped[:, 1].mean() > plain[:, 1].mean()


# ---- weight decay -------------------------------------------------------------------------------------
def weight_norm(model):
    return float(np.sqrt(sum(np.sum(p.data.astype(np.float64) ** 2)
                             for name, p in model.named_parameters() if name.endswith("weight"))))


def train_digits(digits, make_optimizer, epochs=15, seed=0):
    dl.manual_seed(seed)
    model = models.MLP(64, 10, hidden=[128], batch_norm=False)
    fit(model, nn.CrossEntropyLoss(), make_optimizer(model.parameters()),
        DataLoader(digits.train, 32, shuffle=True, seed=seed), epochs=epochs, verbose=0)
    return model


@pytest.mark.slow
def test_weight_norms_shrink_as_decay_grows(digits):
    """The same run (SGD, momentum 0.9, lr 0.05, 15 epochs) with weight decay 0, 1e-3, 1e-2, 1e-1.
    Measured weight norms: 15.01, 13.18, 8.55, 3.70."""
    norms = [weight_norm(train_digits(digits, lambda ps, wd=wd: optim.SGD(ps, lr=0.05, momentum=0.9,
                                                                          weight_decay=wd)))
             for wd in (0.0, 1e-3, 1e-2, 1e-1)]
    print("weight norms per decay (0, 1e-3, 1e-2, 1e-1):", [round(n, 2) for n in norms])
    for bigger, smaller in itertools.pairwise(norms):
        assert smaller < 0.95 * bigger


@pytest.mark.slow
def test_adamw_and_adam_l2_train_to_different_weights(digits):
    """Same run, weight decay 1e-2: Adam's L2 term is rescaled by 1/sqrt(v), so weights whose gradients are
    small are decayed at nearly the full step size lr; AdamW decays every weight by lr * wd * p.
    Measured weight norms: no decay 13.00, AdamW 12.96, Adam-L2 8.38."""
    plain = train_digits(digits, lambda ps: optim.Adam(ps, lr=1e-3))
    adamw = train_digits(digits, lambda ps: optim.AdamW(ps, lr=1e-3, weight_decay=1e-2))
    adam_l2 = train_digits(digits, lambda ps: optim.Adam(ps, lr=1e-3, weight_decay=1e-2))
    n0, nw, nl2 = weight_norm(plain), weight_norm(adamw), weight_norm(adam_l2)
    print(f"weight norms: no decay {n0:.2f}, AdamW {nw:.2f}, Adam L2 {nl2:.2f}")
    assert nw < n0 and nl2 < n0
    assert nl2 < 0.8 * nw  # different weights, by far more than the runs' rounding differences


def one_adam_step(cls, p0, m0, v0, t, g, lr, wd):
    """One step of ``cls`` on a float64 parameter from the state (m0, v0) after t steps; returns p1."""
    p = nn.Parameter(p0.copy())
    opt = cls([p], lr=lr, weight_decay=wd)
    opt.load_state_dict({"state": {0: {"step": t, "exp_avg": m0, "exp_avg_sq": v0}},
                         "param_groups": opt.state_dict()["param_groups"]})
    p.grad = g.copy()
    opt.step()
    return p.data


def test_adamw_decouples_decay_from_the_adaptive_scaling_adam_l2_does_not():
    rng = np.random.default_rng(0)
    p0, g, m0 = rng.standard_normal(6), rng.standard_normal(6), 0.1 * rng.standard_normal(6)
    v0 = rng.uniform(0.01, 1.0, 6)
    lr, wd, t, b1, b2, eps = 1e-2, 0.1, 3, 0.9, 0.999, 1e-8

    def adam_update(d, v_prev):  # what Adam subtracts for the (possibly decayed) gradient d at step t + 1
        m = b1 * m0 + (1 - b1) * d
        v = b2 * v_prev + (1 - b2) * d * d
        return lr * (m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps)

    for v_prev in (v0, 100 * v0):  # the same step with a 100x larger second moment
        l2 = one_adam_step(optim.Adam, p0, m0, v_prev, t, g, lr, wd)
        decoupled = one_adam_step(optim.AdamW, p0, m0, v_prev, t, g, lr, wd)
        plain = one_adam_step(optim.Adam, p0, m0, v_prev, t, g, lr, 0.0)
        # Adam (L2): the decay enters the gradient, d = g + wd p, and goes through m and v
        np.testing.assert_allclose(l2, p0 - adam_update(g + wd * p0, v_prev), rtol=1e-12, atol=1e-15)
        # AdamW: p <- p (1 - lr wd), then the plain Adam step on g
        np.testing.assert_allclose(decoupled, p0 * (1 - lr * wd) - adam_update(g, v_prev), rtol=1e-12, atol=1e-15)
        # so AdamW's decay is exactly lr * wd * p whatever v is ...
        np.testing.assert_allclose(plain - decoupled, lr * wd * p0, rtol=1e-9, atol=1e-15)
    # ... while Adam's L2 decay is divided by sqrt(v): 100x the second moment, ~1/10 of the decay
    small_v = one_adam_step(optim.Adam, p0, m0, v0, t, g, lr, 0.0) - one_adam_step(optim.Adam, p0, m0, v0, t, g, lr, wd)
    big_v = (one_adam_step(optim.Adam, p0, m0, 100 * v0, t, g, lr, 0.0)
             - one_adam_step(optim.Adam, p0, m0, 100 * v0, t, g, lr, wd))
    ratio = big_v / small_v
    assert np.all((ratio > 0.05) & (ratio < 0.2)), ratio


def test_with_zero_gradient_adam_l2_steps_lr_whatever_the_decay():
    """A fresh state and g = 0: Adam's L2 step is lr * sign(p) for any wd (m/sqrt(v) = wd p / |wd p|, up to
    eps), AdamW's is lr * wd * p."""
    p0 = np.array([2.0, -0.5, 0.1])
    for wd in (1e-3, 1e-1):
        l2 = one_adam_step(optim.Adam, p0, np.zeros(3), np.zeros(3), 0, np.zeros(3), 1e-2, wd)
        w = one_adam_step(optim.AdamW, p0, np.zeros(3), np.zeros(3), 0, np.zeros(3), 1e-2, wd)
        np.testing.assert_allclose(p0 - l2, 1e-2 * np.sign(p0), rtol=1e-3)
        np.testing.assert_allclose(p0 - w, 1e-2 * wd * p0, rtol=1e-9)


# ---- weight-decay parameter groups --------------------------------------------------------------------
class Block(nn.Module):
    """Norm layers under names that say nothing ('scale'), and a LayerNorm subclass."""

    class MyNorm(nn.LayerNorm):
        pass

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 8)
        self.scale = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3, bias=False)
        self.post = Block.MyNorm(3, bias=False)
        self.bn = nn.BatchNorm1d(3)


def ids(params):  # Tensors compare elementwise with ==, so lists of them are compared by identity
    return [id(p) for p in params]


def test_param_groups_exempt_biases_and_norm_layers_by_type():
    m = Block()
    groups = param_groups(m, 0.01)
    decayed, rest = (ids(g["params"]) for g in groups)
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert decayed == ids([m.proj.weight, m.head.weight])
    assert rest == ids([m.proj.bias, m.scale.weight, m.scale.bias, m.post.weight, m.bn.weight, m.bn.bias])
    assert len(decayed) + len(rest) == len(list(m.parameters()))
    assert NO_DECAY[0] == "bias"
    # by name only, the norm layers' weights would be decayed
    by_name = ids(param_groups(m, 0.01, no_decay=("bias",))[0]["params"])
    assert id(m.scale.weight) in by_name and id(m.bn.weight) in by_name


def test_param_groups_in_an_mlp_with_batch_norm():
    m = models.MLP(64, 10, hidden=[32, 16], batch_norm=True)
    decayed, rest = (g["params"] for g in param_groups(m, 0.1))
    names = {id(p): n for n, p in m.named_parameters()}
    assert [names[id(p)] for p in decayed] == ["layers.0.weight", "layers.3.weight", "layers.6.weight"]
    assert all(names[id(p)].endswith("bias") or isinstance(m.layers[int(names[id(p)].split(".")[1])], nn.BatchNorm1d)
               for p in rest)


def test_adamw_over_param_groups_decays_only_the_decayed_group():
    """With zero gradients Adam's step is 0, so AdamW's step is the decay alone: p (1 - lr wd) or p."""
    m = Block()
    before = {n: p.data.copy() for n, p in m.named_parameters()}
    opt = optim.AdamW(param_groups(m, 0.1), lr=0.01)
    for p in m.parameters():
        p.grad = np.zeros_like(p.data)
    opt.step()
    for n, p in m.named_parameters():
        factor = 1 - 0.01 * 0.1 if n in ("proj.weight", "head.weight") else 1.0
        np.testing.assert_allclose(p.data, before[n] * np.float32(factor), rtol=1e-6, err_msg=n)


def test_param_groups_edge_cases():
    only_weights = nn.Sequential(nn.Linear(3, 3, bias=False))
    assert len(param_groups(only_weights, 0.1)) == 1  # no empty group: an optimizer rejects those
    optim.AdamW(param_groups(only_weights, 0.1))
    shared = nn.Linear(3, 3)
    tied = nn.Sequential(shared, nn.ReLU(), shared)
    decayed, rest = (ids(g["params"]) for g in param_groups(tied, 0.1))
    assert decayed == ids([shared.weight]) and rest == ids([shared.bias])  # each parameter once
    with pytest.raises(ValueError, match="weight_decay must be a number >= 0"):
        param_groups(tied, -1.0)
    with pytest.raises(TypeError, match="no_decay entries"):
        param_groups(tied, 0.1, no_decay=(int,))


# ---- batch normalization ------------------------------------------------------------------------------
@pytest.mark.slow
def test_batch_norm_lets_a_deep_sigmoid_network_train(digits):
    """10 hidden sigmoid layers of 64, SGD (lr 0.05, momentum 0.9), 5 epochs. Without BN the gradient
    vanishes through the sigmoids and the loss stays at chance; with BN every layer's input is
    standardized and it trains. Measured: loss 2.361 -> 2.329 (chance 2.303), val accuracy 0.100 without;
    1.613 -> 0.319, val accuracy 0.877 with (0.936, 0.942 for seeds 1, 2)."""
    def run(bn):
        def build_run(seed):
            model = models.MLP(64, 10, hidden=[64] * 10, activation="sigmoid", batch_norm=bn)
            return Run(model=model, loss_fn=nn.CrossEntropyLoss(),
                       optimizer=optim.SGD(model.parameters(), lr=0.05, momentum=0.9), epochs=5, batch_size=32)
        _, h = train_run(build_run, digits.train, digits.val, seed=0)
        return h

    plain, bn = run(False), run(True)
    print(f"without BN: loss {plain['train_loss'][0]:.3f} -> {plain['train_loss'][-1]:.3f}, "
          f"val acc {plain['val_accuracy'][-1]:.3f}; with BN: loss {bn['train_loss'][0]:.3f} -> "
          f"{bn['train_loss'][-1]:.3f}, val acc {bn['val_accuracy'][-1]:.3f}")
    assert plain["train_loss"][-1] > 0.95 * CHANCE_LOSS and plain["val_accuracy"][-1] < 0.25
    assert bn["train_loss"][-1] < 0.3 * CHANCE_LOSS and bn["val_accuracy"][-1] > 0.7


# ---- MixUp --------------------------------------------------------------------------------------------
def soft_cross_entropy(logits, q):
    z = logits.astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return float(-(q * logp).sum(1).mean())


def test_fit_with_mixup_reports_the_soft_target_cross_entropy(digits):
    """One epoch of one full batch: the loss fit reports is the loss at the initial weights, on the mixed
    batch, which the same seeds rebuild here: -mean_i sum_c y'_ic log softmax(f(x'_i))_c."""
    data = Subset(digits.train, np.arange(128))

    def loader():
        return DataLoader(data, batch_size=128, shuffle=True, seed=0, collate_fn=MixUp(0.4, 10, seed=1))

    dl.manual_seed(0)
    model = models.MLP(64, 10, hidden=[32])
    xb, yb = next(iter(loader()))
    with dl.no_grad():
        expected = soft_cross_entropy(model(xb).data, yb.data.astype(np.float64))
    assert not np.allclose(yb.data.max(1), 1.0)  # really mixed
    h = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), loader(), epochs=1, verbose=0)
    np.testing.assert_allclose(h["train_loss"][0], expected, rtol=1e-5)


@pytest.mark.slow
def test_an_mlp_learns_digits_with_mixup(digits):
    """MixUp as the training loader's collate_fn through Run; validation on clean batches. Measured: val
    accuracy 0.96, and the soft-target train loss stays above the clean validation loss (mixed examples
    are harder to be sure about)."""
    def build_run(seed):
        model = models.MLP(64, 10, hidden=[128])
        return Run(model=model, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.Adam(model.parameters(), lr=3e-3),
                   epochs=15, batch_size=32, collate_fn=MixUp(0.2, 10, seed=seed))

    _, h = train_run(build_run, digits.train, digits.val, seed=0)
    print(f"MixUp: train loss {h['train_loss'][-1]:.3f}, val loss {h['val_loss'][-1]:.3f}, "
          f"val acc {h['val_accuracy'][-1]:.3f}")
    assert h["val_accuracy"][-1] > 0.9
    assert h["train_loss"][-1] > h["val_loss"][-1]
