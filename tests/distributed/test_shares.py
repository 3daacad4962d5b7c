"""Each rank's share of the global batches (``DataLoader(num_replicas=R, rank=r)``), in one process."""

from __future__ import annotations

import numpy as np
import pytest

from dlbasics.data import DataLoader, TensorDataset
from dlbasics.errors import ConfigError
from dlbasics.train import data_parallel
from dlbasics.train.segmentation import SegmentationTask
from dlbasics.train.task import SupervisedTask


def ids(n: int) -> TensorDataset:
    return TensorDataset(np.arange(n))


@pytest.mark.parametrize("n, batch, ranks", [(23, 6, 2), (23, 6, 3), (24, 8, 4), (10, 4, 3), (5, 16, 2)])
def test_the_shares_of_a_batch_are_the_batch_one_process_draws(n, batch, ranks):
    whole = [b[0].numpy() for b in DataLoader(ids(n), batch_size=batch, shuffle=True, seed=3)]
    loaders = [DataLoader(ids(n), batch_size=batch, shuffle=True, seed=3, num_replicas=ranks, rank=r)
               for r in range(ranks)]
    per_rank = [[(b[0].numpy(), loader.batch_share) for b in loader] for loader in loaders]
    kept = [b for b in whole if len(b) >= ranks]  # a last batch smaller than the ranks is dropped
    assert [len(loader) for loader in loaders] == [len(kept)] * ranks
    for k, batch_k in enumerate(kept):
        shares = [per_rank[r][k][0] for r in range(ranks)]
        np.testing.assert_array_equal(np.concatenate(shares), batch_k)
        assert [per_rank[r][k][1] for r in range(ranks)] == [(len(s), len(batch_k)) for s in shares]
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_a_last_batch_smaller_than_the_ranks_is_dropped():
    loader = DataLoader(ids(9), batch_size=4, num_replicas=2, rank=1)
    assert [b[0].numpy().tolist() for b in loader] == [[2, 3], [6, 7]]  # the batch [8] cannot be shared by 2
    assert len(loader) == 2


def test_a_share_resumes_mid_epoch():
    loader = DataLoader(ids(20), batch_size=6, shuffle=True, seed=0, num_replicas=2, rank=1)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    rest = [b[0].numpy().tolist() for b in it]
    again = DataLoader(ids(20), batch_size=6, shuffle=True, seed=0, num_replicas=2, rank=1)
    again.load_state_dict(state)
    assert [b[0].numpy().tolist() for b in again] == rest


@pytest.mark.parametrize("kwargs, message", [({"num_replicas": 0}, "num_replicas must be a positive integer"),
                                             ({"num_replicas": 2, "rank": 2}, "rank must be an integer in 0 .. 1")])
def test_bad_shares_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(ids(4), batch_size=2, **kwargs)


def test_only_tasks_whose_loss_and_evaluation_are_means_over_samples_train_on_ranks(monkeypatch):
    monkeypatch.setattr(data_parallel, "world", lambda: (0, 2))
    data_parallel.check_task(SupervisedTask.__new__(SupervisedTask))
    with pytest.raises(ConfigError, match=r"the SegmentationTask cannot train on 2 ranks .*; tasks that can: "
                                          "supervised, language_model"):
        data_parallel.check_task(SegmentationTask.__new__(SegmentationTask))


def test_a_shard_of_the_validation_data_is_a_contiguous_share(monkeypatch):
    parts = []
    for rank in range(3):
        monkeypatch.setattr(data_parallel, "world", lambda rank=rank: (rank, 3))
        parts.append([int(s[0]) for s in data_parallel.shard(ids(10))])
    assert parts == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]


def test_cv_workers_and_mpi_ranks_do_not_mix(monkeypatch):
    from dlbasics.train import commands
    from dlbasics.train.config import RunConfig

    monkeypatch.setattr(commands, "world", lambda: (0, 2))
    with pytest.raises(ConfigError, match="--workers: the 2 MPI ranks share the folds; leave --workers at 1"):
        commands.cross_validate(RunConfig.from_options({}), 3, workers=2)
