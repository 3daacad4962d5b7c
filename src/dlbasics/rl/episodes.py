"""The data of a control problem: an environment to act in, and episodes from fixed seeds to judge a policy by.

In reinforcement learning the data is not given, it is collected: the agent's own actions decide what it sees. So
the **Data** component of a reinforcement run is an environment. ``environment("CartPole-v1")`` (``--data env``,
``--env CartPole-v1``) gives ``Splits`` like any data set:

- ``train``: an ``Environment``, which a run turns into an ``Interaction`` - the stream of transitions the agent
  collects, one per environment step, as its training "batches";
- ``val``: ``Episodes`` from ``eval_episodes`` fixed seeds, played greedily at every evaluation, so the scores of a
  run (and of different runs) compare the same starts;
- ``test``: ``Episodes`` from ``test_episodes`` other seeds, never seen during training: the final word.

``play(policy, episodes)`` plays episodes in lockstep, one batched forward of the policy per step for all the
episodes still running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from dlbasics.data.dataset import DatasetInfo, Splits
from dlbasics.rl.envs import CartPole, GymEnv

BUILTIN = {"CartPole-v1": CartPole}
BACKENDS = ("auto", "builtin", "gymnasium")
VAL_SEED, TEST_SEED = 10_000, 20_000  # the evaluation episodes' seeds: val 10000..., test 20000...


def make_env(name: str, backend: str = "auto") -> Any:
    """A new environment ``name``: the built-in NumPy twin where there is one ("auto" or "builtin"), else
    gymnasium's (the ``[rl]`` extra)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "gymnasium" and name in BUILTIN:
        return BUILTIN[name]()
    if backend == "builtin":
        raise ValueError(f"no built-in environment {name!r} (built in: {', '.join(BUILTIN)}); use backend "
                         "gymnasium")
    try:
        return GymEnv(name)
    except ImportError as e:
        raise ValueError(f"the environment {name!r} needs gymnasium, which is not installed "
                         "(pip install 'dlbasics[rl]')") from e
    except Exception as e:  # gymnasium's own error for an unknown id
        if type(e).__module__.startswith("gymnasium"):
            raise ValueError(f"gymnasium has no environment {name!r}: {e}") from None
        raise


class Environment:
    """The training split of a control problem: how to make the environment (``make()``); a run seeds it."""

    def __init__(self, name: str, backend: str = "auto") -> None:
        self.name, self.backend = name, backend

    def make(self) -> Any:
        return make_env(self.name, self.backend)


class Episodes:
    """Evaluation episodes: the environment ``name`` started from each of ``seeds`` (``len`` is their number)."""

    def __init__(self, name: str, seeds: range | list[int], backend: str = "auto") -> None:
        self.name, self.seeds, self.backend = name, list(seeds), backend

    def __len__(self) -> int:
        return len(self.seeds)

    def make(self) -> Any:
        return make_env(self.name, self.backend)


def environment(env: str = "CartPole-v1", backend: str = "auto", eval_episodes: int = 10,
                test_episodes: int = 100) -> Splits:
    """The control problem ``env``: train in it, validate on ``eval_episodes`` fixed episodes, test on
    ``test_episodes`` others. The model's inputs are the observation, its outputs one value per action."""
    for name, n in (("eval_episodes", eval_episodes), ("test_episodes", test_episodes)):
        if n < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")
    probe = make_env(env, backend)
    info = DatasetInfo(env, "reinforcement_learning", tuple(probe.observation_shape), num_classes=probe.n_actions)
    return Splits(Environment(env, backend), Episodes(env, range(VAL_SEED, VAL_SEED + eval_episodes), backend),
                  Episodes(env, range(TEST_SEED, TEST_SEED + test_episodes), backend), info)


def play(policy: Callable[[np.ndarray], np.ndarray], episodes: Episodes, max_steps: int | None = None) -> np.ndarray:
    """The return of each of ``episodes`` under ``policy`` (observations (N, *obs) -> actions (N,)), played in
    lockstep: at each step one call of ``policy`` on the episodes still running. -> (len(episodes),) float64."""
    envs = [episodes.make() for _ in episodes.seeds]
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, episodes.seeds)])
    returns = np.zeros(len(envs))
    running = np.arange(len(envs))
    steps = 0
    while running.size and (max_steps is None or steps < max_steps):
        actions = policy(obs[running])
        still = []
        for i, a in zip(running, actions):
            o, r, terminated, truncated, _ = envs[i].step(int(a))
            obs[i], returns[i] = o, returns[i] + r
            if not (terminated or truncated):
                still.append(i)
        running = np.array(still, dtype=np.int64)
        steps += 1
    return returns


class Transition(NamedTuple):
    """One environment step: s, a, r, s' (the real next observation, also at the end of an episode),
    ``terminated`` (s' ends the episode: no future), ``truncated`` (the time limit: s' has a future), and the
    episode's return when this step ended it (else None)."""

    obs: np.ndarray
    action: int
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool
    episode_return: float | None


class Interaction:
    """The training "loader" of a reinforcement run: an endless stream of transitions, one per ``next``, from
    acting with ``policy(obs) -> action`` in a new ``environment.make()``, first reset with ``seed``.

    Its ``state_dict`` holds the exact position (the environment's state when it has one - the built-in
    environments do - the current observation and the episode so far), so a resumed run goes on acting from the
    same state. A gymnasium environment cannot be put back: a resumed run starts a new episode there."""

    def __init__(self, environment: Environment, policy: Callable[[np.ndarray], int], seed: int = 0) -> None:
        self.env = environment.make()
        self.policy = policy
        self.seed = seed
        self.obs: np.ndarray | None = None
        self.episode_return = 0.0

    def __iter__(self) -> Iterator[Transition]:
        while True:
            yield self.step()

    def step(self) -> Transition:
        if self.obs is None:
            self.obs, _ = self.env.reset(seed=self.seed)
        obs = self.obs
        action = int(self.policy(obs))
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.episode_return += reward
        ended = terminated or truncated
        episode_return = self.episode_return if ended else None
        if ended:
            self.obs, _ = self.env.reset()  # no seed: the environment's generator continues
            self.episode_return = 0.0
        else:
            self.obs = next_obs
        return Transition(obs, action, float(reward), next_obs, bool(terminated), bool(truncated), episode_return)

    def state_dict(self) -> dict[str, Any]:
        env = self.env.state_dict() if hasattr(self.env, "state_dict") else None
        return {"env": env, "obs": self.obs, "episode_return": self.episode_return}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["env"] is not None and hasattr(self.env, "load_state_dict"):
            self.env.load_state_dict(state["env"])
            self.obs = None if state["obs"] is None else np.asarray(state["obs"], np.float32)
            self.episode_return = float(state["episode_return"])
        else:
            self.obs, self.episode_return = None, 0.0


__all__ = ["BACKENDS", "Environment", "Episodes", "Interaction", "Transition", "environment", "make_env", "play"]
