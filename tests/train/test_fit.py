"""fit / evaluate / callbacks: the four components put together."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import io, models, nn, optim
from dlbasics.data import DataLoader, Subset, datasets
from dlbasics.train import Callback, Checkpoint, EarlyStopping, History, evaluate, fit


def moons_loaders(seed=0):
    sp = datasets.moons(n_samples=600, noise=0.15, seed=seed)
    return DataLoader(sp.train, batch_size=32, shuffle=True, seed=seed), DataLoader(sp.val, batch_size=256)


def test_fit_learns_and_records_history(capsys):
    dl.manual_seed(0)
    train, val = moons_loaders()
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    h = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=12, val_loader=val, scheduler=sched, verbose=0)
    assert capsys.readouterr().out == ""  # verbose=0 is silent
    assert isinstance(h, History) and len(h) == 12
    assert h.keys() == ["epoch", "train_loss", "train_accuracy", "lr", "val_loss", "val_accuracy", "seconds"]
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert h["val_accuracy"][-1] >= 0.95
    assert h["lr"][:6] == pytest.approx([0.2] * 5 + [0.1])  # the lr used during each epoch
    assert model.training  # fit leaves the model in train mode; evaluate restores the mode it found
    csv = h.to_csv().splitlines()
    assert csv[0].startswith("epoch,train_loss") and len(csv) == 13


def test_fit_prints_one_line_per_epoch_when_verbose(capsys):
    train, val = moons_loaders()
    model = nn.Linear(2, 2)
    fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()), train, epochs=2, val_loader=val, verbose=1)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 2 and "val_loss" in lines[0]


def test_evaluate_is_eval_mode_without_graph():
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            out = self.lin(x)
            seen.append((self.training, out.requires_grad))
            return out

    m = Probe()
    _, val = moons_loaders()
    res = evaluate(m, val, nn.CrossEntropyLoss(), ("accuracy",))
    assert set(res) == {"loss", "accuracy"} and 0 <= res["accuracy"] <= 1
    assert all(s == (False, False) for s in seen) and m.training


def test_regression_metrics():
    sp = datasets.function_regression("sin", n_samples=256)
    dl.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
    h = fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=0.01), DataLoader(sp.train, 32, shuffle=True),
            epochs=30, val_loader=DataLoader(sp.val, 256), metrics=("mae",), verbose=0)
    assert h["val_mae"][-1] < 0.1 < h["val_mae"][0]


def test_early_stopping_unit():
    """Scripted val losses: stop after `patience` epochs without improvement, restore the best weights."""
    model = nn.Linear(1, 1)
    es = EarlyStopping(patience=2, min_delta=0.01)
    es.model = model
    losses = [1.0, 0.5, 0.495, 0.6, 0.7, 0.4]
    for epoch, loss in enumerate(losses):
        with dl.no_grad():
            model.weight.data[...] = epoch  # the weights "of" each epoch
        es.on_epoch_end(epoch, {"val_loss": loss})
        if es.stop_training:
            break
    assert es.stopped_epoch == 4 and es.best_epoch == 1 and es.best == 0.5  # 0.495 is within min_delta
    es.on_train_end()
    assert model.weight.data.item() == 1.0


def test_early_stopping_in_fit_stops_and_restores_best():
    """A wide MLP on 80 digits over-fits: validation loss turns up, training stops and rolls back."""
    dl.manual_seed(0)
    sp = datasets.digits()
    train = DataLoader(Subset(sp.train, range(80)), batch_size=16, shuffle=True, seed=0)
    val = DataLoader(sp.val, batch_size=512)
    model = models.create("mlp", in_features=64, num_classes=10, hidden=[256, 256])
    es = EarlyStopping(patience=3)
    loss_fn = nn.CrossEntropyLoss()
    h = fit(model, loss_fn, optim.Adam(model.parameters(), lr=3e-3), train, epochs=200, val_loader=val,
            callbacks=[es], verbose=0)
    assert h.stopped_early and len(h) < 200 and len(h) == es.best_epoch + 1 + 3 + 1
    assert min(h["val_loss"]) == pytest.approx(es.best)
    assert evaluate(model, val, loss_fn)["loss"] == pytest.approx(es.best, rel=1e-5)  # best weights are back


def test_monitoring_a_missing_value_is_a_clear_error():
    train, _ = moons_loaders()
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*val_loader"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), train, epochs=1,
            callbacks=[EarlyStopping()], verbose=0)


def test_checkpoint_writes_last_and_best(tmp_path):
    dl.manual_seed(0)
    train, val = moons_loaders()
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    ck = Checkpoint(tmp_path / "ck", every=2)
    h = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=5, val_loader=val, callbacks=[ck], verbose=0)
    last = io.load(tmp_path / "ck" / "last.safetensors")
    assert last["epoch"] == 4  # written after epochs 2 and 4
    assert set(last) == {"model", "optimizer", "epoch", "logs"}
    fresh = optim.Adam(nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2)).parameters())
    fresh.load_state_dict(last["optimizer"])  # the optimizer state comes back loadable
    best = io.load(tmp_path / "ck" / "best.safetensors")
    assert ck.best_epoch == int(np.argmin(h["val_loss"]))
    if ck.best_epoch == 4:
        for k, v in model.state_dict().items():
            np.testing.assert_array_equal(best[k], v)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["best.safetensors", "last.safetensors"]


def test_custom_callback_can_stop_training():
    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs):
            self.stop_training = epoch == 1

    train, _ = moons_loaders()
    model = nn.Linear(2, 2)
    h = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), train, epochs=10,
            callbacks=[StopAfterTwo()], verbose=0)
    assert len(h) == 2 and h.stopped_early


def test_bad_batches_are_clear_errors():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"batches of \(inputs, targets\)"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), [dl.zeros(2, 2)], epochs=1,
            verbose=0)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), [], epochs=0, verbose=0)


def test_training_data_that_runs_dry_is_an_error_not_a_hang():
    from dlbasics.errors import DataError

    model = nn.Linear(2, 2)
    batches = iter([(dl.zeros(4, 2), dl.tensor(np.zeros(4, dtype=np.int64)))])  # one pass, then nothing
    with pytest.raises(DataError, match="the training data gave no batch in epoch 2"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), batches, steps=5, verbose=0)
