"""Environments with gymnasium's API: a NumPy CartPole with exactly CartPole-v1's dynamics, and an adapter for any
gymnasium environment with Box observations and a Discrete action space.

    env = CartPole()                          # no dependency
    obs, info = env.reset(seed=0)             # obs (4,) float32: cart position, velocity, pole angle, its velocity
    obs, reward, terminated, truncated, info = env.step(1)   # push right (0: left)

CartPole (Barto, Sutton & Anderson 1983, "Neuronlike adaptive elements that can solve difficult learning control
problems"): a pole hinged on a cart; push the cart left or right, 10 N, every 0.02 s, to keep the pole up. Reward 1
per step, including the step that ends it; the episode is terminated when the pole leans more than 12 degrees or the
cart leaves +-2.4, and truncated after 500 steps (v1's time limit). The equations of motion are Florian's correction
of the paper's (2007), integrated by explicit Euler, as gymnasium does:

    a = (F + m l w^2 sin t) / M;   t'' = (g sin t - cos t a) / (l (4/3 - m cos^2 t / M));   x'' = a - m l t'' cos t / M
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlbasics.rng import Seed


class CartPole:
    """CartPole-v1 on NumPy: ``reset(seed=None) -> (obs, info)``, ``step(action) -> (obs, reward, terminated,
    truncated, info)``; the state is float64 and the observation its float32 copy, as gymnasium's. The same seed and
    actions give the same observations as ``gymnasium.make("CartPole-v1")`` (tests/rl hold them equal)."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masspole + masscart
    polemass_length = masspole * length  # length is half the pole's
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    observation_shape, n_actions = (4,), 2

    def __init__(self, max_episode_steps: int = 500) -> None:
        self.max_episode_steps = max_episode_steps
        self.np_random = np.random.default_rng()
        self.state: np.ndarray | None = None
        self.steps = 0
        self.done = False

    def reset(self, *, seed: Seed = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """A new episode from a state drawn uniformly in [-0.05, 0.05]^4; ``seed`` re-seeds the generator (as
        gymnasium: an int seeds ``np.random.default_rng(seed)``; None continues the current one)."""
        if seed is not None:
            self.np_random = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.state = self.np_random.uniform(-0.05, 0.05, size=(4,))
        self.steps, self.done = 0, False
        return self.state.astype(np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.state is None:
            raise RuntimeError("CartPole.step: call reset() first")
        if action not in (0, 1):
            raise ValueError(f"CartPole.step: action must be 0 (push left) or 1 (push right), got {action!r}")
        if self.done:
            raise RuntimeError("CartPole.step: the episode has ended (terminated or truncated); call reset()")
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        cos, sin = np.cos(theta), np.sin(theta)
        temp = (force + self.polemass_length * np.square(theta_dot) * sin) / self.total_mass
        thetaacc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * np.square(cos) / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * cos / self.total_mass
        # explicit Euler: positions move with the old velocities
        self.state = np.array((x + self.tau * x_dot, x_dot + self.tau * xacc, theta + self.tau * theta_dot,
                               theta_dot + self.tau * thetaacc), dtype=np.float64)
        x, theta = self.state[0], self.state[2]
        terminated = bool(x < -self.x_threshold or x > self.x_threshold
                          or theta < -self.theta_threshold or theta > self.theta_threshold)
        self.steps += 1
        truncated = not terminated and self.steps >= self.max_episode_steps
        self.done = terminated or truncated
        return self.state.astype(np.float32), 1.0, terminated, truncated, {}

    def state_dict(self) -> dict[str, Any]:
        """The exact position: the float64 state, the step count, whether the episode has ended, the generator."""
        return {"state": None if self.state is None else self.state.copy(), "steps": self.steps, "done": self.done,
                "generator": self.np_random.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from dlbasics.rng import _plain_state

        self.state = None if state["state"] is None else np.array(state["state"], np.float64)
        self.steps, self.done = int(state["steps"]), bool(state["done"])
        self.np_random.bit_generator.state = _plain_state(state["generator"])


class GymEnv:
    """A gymnasium environment with Box observations and a Discrete action space, behind the same interface as
    ``CartPole`` (``observation_shape``, ``n_actions``, ``reset``, ``step``); ``gymnasium`` is the optional ``[rl]``
    extra: ``GymEnv("CartPole-v1")`` or ``GymEnv(gymnasium.make(...))``."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        try:
            import gymnasium
        except ImportError:
            raise ImportError("GymEnv needs gymnasium: pip install 'dlbasics[rl]' (or pip install gymnasium)") from None
        self.env = gymnasium.make(env, **kwargs) if isinstance(env, str) else env
        obs, act = self.env.observation_space, self.env.action_space
        if not isinstance(obs, gymnasium.spaces.Box) or not isinstance(act, gymnasium.spaces.Discrete):
            raise ValueError(f"GymEnv: needs Box observations and Discrete actions, got {type(obs).__name__} and "
                             f"{type(act).__name__}")
        self.observation_shape, self.n_actions = tuple(obs.shape), int(act.n)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs, np.float32), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(int(action))
        return np.asarray(obs, np.float32), float(reward), bool(terminated), bool(truncated), info


__all__ = ["CartPole", "GymEnv"]
