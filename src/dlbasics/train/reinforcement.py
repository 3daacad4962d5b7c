"""Reinforcement learning (DQN) as a task of the one loop: one training step is one step in the environment.

The loop's batches are the transitions of an ``rl.Interaction``: the agent acts epsilon-greedily with its
Q-network, and each step of the loop (Mnih et al. 2015, Algorithm 1, with stable-baselines3's schedule):

    store (s, a, r, s', terminated) in the replay buffer
    every target_update_interval steps:       target <- tau Q + (1 - tau) target
    every train_freq steps after learning_starts:
        gradient_steps times, on a uniform minibatch of replay:
            Huber(Q(s, a), r + discount (1 - terminated) max_a' Q_target(s', a'))

Epsilon decays linearly over the first part of the run; the first ``learning_starts`` actions are random. A run
validates by playing its fixed evaluation episodes greedily (``val_return`` is their mean), keeps the best
snapshot (``best.safetensors``: DQN's greedy score often collapses late, as stable-baselines3's EvalCallback
guards against) and tests that snapshot on fresh episodes: ``evaluation.json``, ``returns.png`` (the learning
curve) and ``episode.gif`` with ``episode.png`` (an episode of the best snapshot, drawn).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.errors import ConfigError
from dlbasics.nn.module import Module
from dlbasics.rl.episodes import Environment, Episodes, Interaction, Transition, play
from dlbasics.rl.replay import ReplayBuffer
from dlbasics.rng import set_generator_states
from dlbasics.train.task import TASKS, Task

REPLAY_STREAM, EXPLORE_STREAM = 1, 2  # the run seed's streams for replay sampling and exploration


@TASKS.register("reinforcement", help="DQN: act epsilon-greedily in an environment, learn from replayed transitions")
class ReinforcementTask(Task):
    """Train a ``models.dqn.DQN`` agent for ``total_steps`` environment steps, with ``optimizer`` over its
    Q-network and replay minibatches of ``batch_size``; ``seed`` seeds the environment, replay and exploration."""

    curves = ("return", "loss", "episode_return")
    best = ("return", "max")

    def __init__(self, agent: Module, optimizer: Any, *, total_steps: int, batch_size: int = 64,
                 observation_shape: tuple[int, ...] | None = None, seed: int = 0) -> None:
        super().__init__(agent, optimizer)
        self.total_steps, self.batch_size, self.seed = total_steps, batch_size, seed
        shape = observation_shape or (agent.q_network.in_features,)
        self.buffer = ReplayBuffer(agent.buffer_size, tuple(shape), np.random.default_rng([seed, REPLAY_STREAM]))
        self.explore = np.random.default_rng([seed, EXPLORE_STREAM])
        self.t = 0  # environment steps taken

    @classmethod
    def build(cls, cfg: Any) -> ReinforcementTask:
        from dlbasics.train.config import build_model, build_optimizer

        cls.require_problem(cfg, "reinforcement_learning", "reinforcement", "acts in an environment")
        if cfg.budget.steps is None:
            raise ConfigError(f"{cfg.spelling('epochs')}: a reinforcement run has no epochs; give its length in "
                              f"environment steps with {cfg.spelling('steps')}")
        agent = build_model(cfg)
        if not hasattr(agent, "td_loss"):
            raise ConfigError(f"{cfg.spelling('task')} reinforcement: the model {cfg.model.name!r} is not an agent; "
                              "train --model dqn")
        return cls(agent, build_optimizer(cfg, agent.q_network), total_steps=cfg.budget.steps,
                   batch_size=cfg.data.batch_size, observation_shape=tuple(cfg.data.input_shape), seed=cfg.seed)

    # ---- acting ----
    def act(self, obs: np.ndarray) -> int:
        """epsilon-greedy: random during the first ``learning_starts`` steps, then with probability epsilon."""
        agent = self.model
        if self.t < agent.learning_starts or self.explore.random() < agent.epsilon(self.t, self.total_steps):
            return int(self.explore.integers(agent.n_actions))
        return int(agent.greedy(obs[None])[0])

    def train_loader(self, dataset: Any, batch_size: int, seed: int, collate_fn: Any = None) -> Iterable:
        if not isinstance(dataset, Environment):
            raise ConfigError(f"the reinforcement task acts in an environment (--data env), not in a "
                              f"{type(dataset).__name__}")
        return Interaction(dataset, self.act, seed)

    # ---- one step ----
    def training_step(self, batch: Transition) -> tuple[int, dict[str, float]]:
        agent = self.model
        self.buffer.add(batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated)
        self.t += 1
        values: dict[str, float] = {"epsilon": agent.epsilon(self.t - 1, self.total_steps)}
        if batch.episode_return is not None:
            values["episode_return"] = batch.episode_return
        if self.t % agent.target_update_interval == 0:
            agent.update_target()
        if self.t % agent.train_freq == 0 and self.t > agent.learning_starts:
            losses = [self.optimize(agent.td_loss(self.buffer.sample(self.batch_size)), self.optimizer)
                      for _ in range(agent.gradient_steps)]
            values["loss"] = float(np.mean(losses))
        return 1, values

    def example_batch(self, splits: Any) -> Any:
        env = splits.train.make()
        return env.reset(seed=self.seed)[0][None]

    def probe(self, batch: np.ndarray) -> None:
        self.model.greedy(batch)

    # ---- evaluation: greedy episodes ----
    @staticmethod
    def eval_loader(dataset: Any, batch_size: int) -> Any:
        return dataset

    def evaluate(self, loader: Any) -> dict[str, float]:
        return episode_scores(self.model, loader)

    @classmethod
    def evaluate_model(cls, cfg: Any, model: Module, loader: Any) -> dict[str, float]:
        return episode_scores(model, loader)

    @classmethod
    def folder_callbacks(cls, out_dir: Path, cfg: Any) -> list[Any]:
        from dlbasics.train.callbacks import Checkpoint

        return [Checkpoint(out_dir, every=None, keep_best=True, monitor="val_return", mode="max")]

    def write_outputs(self, out_dir: Any, cfg: Any, splits: Any) -> None:
        """evaluation.json (the best snapshot and the last agent on the test episodes), returns.png (the learning
        curve) and, for the built-in CartPole, episode.gif and episode.png (a test episode of the best snapshot)."""
        from dlbasics.io import load
        from dlbasics.train.rundir import read_metrics, write_json

        out_dir = Path(out_dir)
        best = self.model
        best_file = out_dir / "best.safetensors"
        if best_file.is_file():
            best = copy.deepcopy(self.model)
            best.load_state_dict(load(best_file))
        result = {"episodes": len(splits.test), "best": episode_scores(best, splits.test),
                  "last": episode_scores(self.model, splits.test)}
        write_json(out_dir / "evaluation.json", result)
        rows = read_metrics(out_dir)
        plot_returns([(f"seed {cfg.seed}", rows)], out_dir / "returns.png", f"{cfg.model.name} on {splits.info.name}")
        draw_episode(best, splits.test, out_dir)

    # ---- state: the modules', the optimizer's, the replay buffer, exploration and the step count ----
    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"replay": self.buffer.state_dict(), "t": self.t,
                                       "explore": self.explore.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["replay"])
        self.t = int(state["t"])
        set_generator_states({"explore": self.explore}, {"explore": state["explore"]})


def episode_scores(agent: Module, episodes: Episodes) -> dict[str, float]:
    """The greedy policy's mean return over ``episodes``, its standard deviation, the worst and the best."""
    if not isinstance(episodes, Episodes):
        raise ConfigError(f"a reinforcement run is evaluated on episodes of its environment, not on a "
                          f"{type(episodes).__name__}")
    returns = play(agent.greedy, episodes)
    return {"return": float(returns.mean()), "return_std": float(returns.std()), "return_min": float(returns.min()),
            "return_max": float(returns.max())}


def returns_figure(runs: list[tuple[str, list[dict]]], title: str = "", solved: float | None = 475.0,
                   ax: Any = None) -> Any:
    """The greedy evaluation return against environment steps, one line per run (label, metrics rows), with the
    mean return of its training episodes faint behind it, and the "solved" line; on ``ax`` or a new Figure."""
    from matplotlib.figure import Figure

    fig = None
    if ax is None:
        fig = Figure(figsize=(7, 4), layout="constrained")
        ax = fig.subplots()
    for i, (label, rows) in enumerate(runs):
        rows = [r for r in rows if "val_return" in r]
        color = f"C{i}"
        ax.plot([r["step"] for r in rows], [r["val_return"] for r in rows], color=color, marker="o", markersize=2,
                label=label)
        train = [(r["step"], r["train_episode_return"]) for r in rows if r.get("train_episode_return") is not None]
        if train:
            ax.plot(*zip(*train), color=color, alpha=0.3, linewidth=1)
    if solved is not None:
        ax.axhline(solved, color="grey", linestyle="--", linewidth=1, label=f"solved ({solved:g})")
    ax.set_xlabel("environment step")
    ax.set_ylabel("return (greedy, evaluation episodes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig if fig is not None else ax.figure


def plot_returns(runs: list[tuple[str, list[dict]]], path: Path, title: str = "") -> None:
    """``returns_figure`` written as a PNG, atomically."""
    from dlbasics.io import write_png

    write_png(returns_figure(runs, title), path)


def draw_episode(agent: Module, episodes: Episodes, out_dir: Path, every: int = 2) -> float | None:
    """episode.gif and episode.png (8 frames) of the first of ``episodes`` played greedily, for environments that
    can be drawn (the built-in CartPole); returns its return, or None."""
    from dlbasics.rl.envs import CartPole
    from dlbasics.rl.render import episode_frames, frame_strip, save_gif

    env = episodes.make()
    if not isinstance(env, CartPole):
        return None
    frames, ret = episode_frames(env, lambda obs: int(agent.greedy(obs[None])[0]), seed=episodes.seeds[0],
                                 every=every)
    save_gif(frames, out_dir / "episode.gif")
    frame_strip(frames, 8, out_dir / "episode.png")
    return ret


__all__ = ["ReinforcementTask", "draw_episode", "episode_scores", "plot_returns", "returns_figure"]
