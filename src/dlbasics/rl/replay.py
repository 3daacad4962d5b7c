"""Experience replay and the exploration schedule of DQN (Mnih et al. 2013, "Playing Atari with Deep Reinforcement
Learning"; 2015, "Human-level control through deep reinforcement learning").

Replay: the agent's transitions (s, a, r, s', terminated) go into a ring of preallocated NumPy arrays; each update
learns from a uniform random minibatch of them, which breaks the correlation of consecutive steps and reuses each
transition many times. ``terminated`` (the pole fell) is kept apart from truncation (the time limit): a truncated
transition is stored with terminated False, so its TD target still bootstraps from s'.

Exploration: epsilon-greedy, with epsilon decaying linearly from ``start`` to ``end`` over the first ``fraction`` of
the run, then held (SB3's ``exploration_fraction``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dlbasics.rng import Seed, get_generator


class Batch(NamedTuple):
    """A minibatch of transitions: observations (B, *obs), actions (B,), rewards (B,), next observations (B, *obs),
    terminated (B,) as float32 (1.0 where s' ends the episode: no bootstrap)."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray


class ReplayBuffer:
    """A ring of ``capacity`` transitions: ``add`` overwrites the oldest once full; ``sample(batch_size)`` draws
    uniformly with replacement among the stored ones, from ``generator``."""

    def __init__(self, capacity: int, observation_shape: tuple[int, ...], generator: Seed = None) -> None:
        if capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, *observation_shape), np.float32)
        self.next_obs = np.zeros((capacity, *observation_shape), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.position, self.size = 0, 0  # the next slot to write; how many are filled
        self.generator = get_generator(generator) if generator is not None else np.random.default_rng()

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        i = self.position
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, float(terminated)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        if self.size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty")
        idx = self.generator.integers(0, self.size, batch_size)
        return Batch(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminated[idx])

    def state_dict(self) -> dict:
        """Everything a resumed run needs: the arrays, the position and the sampling generator's state."""
        return {"obs": self.obs, "next_obs": self.next_obs, "actions": self.actions, "rewards": self.rewards,
                "terminated": self.terminated, "position": self.position, "size": self.size,
                "generator": self.generator.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        for k in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, k)[...] = state[k]
        self.position, self.size = int(state["position"]), int(state["size"])
        self.generator.bit_generator.state = state["generator"]


def linear_epsilon(step: int, total_steps: int, start: float = 1.0, end: float = 0.05, fraction: float = 0.1) -> float:
    """epsilon at ``step``: from ``start`` to ``end`` linearly over the first ``fraction * total_steps`` steps, then
    ``end``."""
    span = fraction * total_steps
    if span <= 0:
        return end
    return start + (end - start) * min(1.0, step / span)


__all__ = ["Batch", "ReplayBuffer", "linear_epsilon"]
