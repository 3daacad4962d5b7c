"""Every generator a run draws from is found, by a stable path, so a checkpoint can hold all their states."""

import numpy as np

import dlbasics as dl
from dlbasics import nn
from dlbasics.data import DataLoader, MixUp, TensorDataset
from dlbasics.data.datasets import cifar10_augmentation
from dlbasics.rng import find_generators, generator_states, set_generator_states


def test_find_generators_of_loader_collate_transforms_and_dropout():
    ds = TensorDataset(np.zeros((4, 3, 32, 32), dtype=np.float32), np.zeros(4, dtype=np.int64),
                       transform=cifar10_augmentation(0))
    loader = DataLoader(ds, batch_size=2, shuffle=True, seed=1, collate_fn=MixUp(0.2, 10, seed=2))
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5, generator=3))
    found = find_generators(loader=loader, modules={"model": model})
    assert set(found) == {"default", "loader._generator", "loader.collate_fn._generator",
                          "loader.dataset.transform.transforms.0._generator",
                          "loader.dataset.transform.transforms.1._generator", "modules.model.1.generator"}
    states = generator_states(found)
    draws = [g.random() for g in found.values()]
    set_generator_states(found, states)
    assert [g.random() for g in found.values()] == draws
    dl.manual_seed(0)
