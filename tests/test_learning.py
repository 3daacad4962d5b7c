"""It learns: an MLP trained with gradient descent written right here fits the two moons."""

import numpy as np
import pytest
from sklearn.datasets import make_moons

import dlbasics as dl
from dlbasics import nn


@pytest.mark.slow
def test_mlp_fits_moons_with_plain_gradient_descent():
    dl.manual_seed(0)
    X, y = make_moons(n_samples=500, noise=0.1, random_state=0)
    X, y = dl.tensor(X), dl.tensor(y)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    loss_fn = nn.CrossEntropyLoss()
    lr = 0.5
    for _ in range(400):
        loss = loss_fn(model(X), y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
    accuracy = (model(X).argmax(dim=1) == y).float().mean().item()
    assert accuracy >= 0.97, f"training accuracy {accuracy:.3f}"
    assert loss.item() < 0.1
    assert np.isfinite(loss.item())
