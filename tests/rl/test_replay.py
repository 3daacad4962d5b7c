"""DQN's replay buffer (ring arrays, uniform sampling, wrap-around, exact state) and its epsilon schedule."""

import numpy as np
import pytest

from dlbasics.rl.replay import ReplayBuffer, linear_epsilon


def fill(buffer, n, start=0):
    for i in range(start, start + n):
        shape = buffer.obs.shape[1:]
        buffer.add(np.full(shape, i, np.float32), i % 2, float(i), np.full(shape, i + 1, np.float32), i % 5 == 4)


def test_the_ring_overwrites_the_oldest_and_samples_only_what_it_holds():
    b = ReplayBuffer(5, (2,), generator=0)
    fill(b, 3)
    assert len(b) == 3 and b.position == 3
    assert set(b.sample(200).rewards) == {0.0, 1.0, 2.0}
    fill(b, 4, start=3)  # 7 transitions in 5 slots: 0 and 1 are gone
    assert len(b) == 5 and b.position == 2
    batch = b.sample(500)
    assert set(batch.rewards) == {2.0, 3.0, 4.0, 5.0, 6.0}
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.obs[:, 0] + 1)  # rows stay whole transitions
    np.testing.assert_array_equal(batch.terminated, (batch.rewards % 5 == 4).astype(np.float32))
    assert batch.obs.dtype == np.float32 and batch.actions.dtype == np.int64


def test_sampling_is_uniform_and_seeded():
    b = ReplayBuffer(4, (1,), generator=1)
    fill(b, 4)
    counts = np.bincount(b.sample(40_000).rewards.astype(int), minlength=4)
    assert np.all(np.abs(counts / 40_000 - 0.25) < 0.01)
    again = ReplayBuffer(4, (1,), generator=1)
    fill(again, 4)
    state = again.state_dict()
    first = again.sample(8).rewards
    restored = ReplayBuffer(4, (1,), generator=99)
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.sample(8).rewards, first)


def test_empty_buffer_and_bad_capacity_are_errors():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(3, (1,)).sample(1)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, (1,))


def test_linear_epsilon_decays_over_its_fraction_then_holds():
    assert linear_epsilon(0, 1000, 1.0, 0.04, 0.16) == 1.0
    assert linear_epsilon(80, 1000, 1.0, 0.04, 0.16) == pytest.approx(0.52)
    assert linear_epsilon(160, 1000, 1.0, 0.04, 0.16) == pytest.approx(0.04)
    assert linear_epsilon(999, 1000, 1.0, 0.04, 0.16) == pytest.approx(0.04)
    assert linear_epsilon(5, 1000, fraction=0.0) == 0.05
