"""Data, the first of the four components: datasets, batching, splits, transforms and bundled data.

    import dlbasics as dl
    train, val, test = dl.data.datasets.digits()
    for x, y in dl.data.DataLoader(train, batch_size=64, shuffle=True, seed=0):
        ...  # x: (64, 64) float32 Tensor, y: (64,) int64 Tensor
"""

from dlbasics.data import datasets, text, transforms
from dlbasics.data.checks import check_batch_size, check_splits
from dlbasics.data.dataloader import DataLoader, default_collate
from dlbasics.data.dataset import (
    ConcatDataset,
    Dataset,
    DatasetInfo,
    Splits,
    StackedItems,
    Subset,
    TensorDataset,
    random_split,
)
from dlbasics.data.distributed import DistributedSampler
from dlbasics.data.mixup import MixUp

__all__ = [
    "ConcatDataset", "DataLoader", "Dataset", "DatasetInfo", "DistributedSampler", "MixUp", "Splits", "StackedItems",
    "Subset", "TensorDataset", "check_batch_size", "check_splits", "datasets", "default_collate", "random_split",
    "text", "transforms",
]
