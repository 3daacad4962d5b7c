"""dlbasics' DQN agent in PyTorch, with the same parameter names and the same training loop step for step: the
benchmark's peer and the parity tests' oracle. The environment (``dlbasics.rl.CartPole``), the replay buffer and the
exploration schedule are dlbasics' own NumPy code on both sides, so only the network and its updates differ.

DQN (Mnih et al. 2015, "Human-level control through deep reinforcement learning", Nature): a Q-network trained on
uniform minibatches from a replay buffer toward the Huber-loss TD target r + gamma (1 - terminated) max_a' Q'(s', a')
of a periodically synchronised target network Q'; optionally Double DQN (van Hasselt et al. 2016), which picks a' with
the online network and reads its value from the target network.

``train`` follows stable-baselines3's DQN with rl-baselines3-zoo's CartPole-v1 settings, one env step per t = 1..steps:
epsilon-greedy with epsilon linear from 1.0 to 0.04 over the first 16% of the run, uniformly random actions while
t - 1 < learning_starts; truncated transitions are stored with terminated False and the real final observation (the
target bootstraps through the time limit); every ``target_update_interval`` steps a Polyak update of the target
(tau = 1: a hard copy); every ``train_freq`` steps after ``learning_starts``, ``gradient_steps`` Adam updates with the
gradient norm clipped to 10. Every ``eval_every`` steps, greedy episodes on fixed seeds score the agent; the best
snapshot is tested at the end on 100 other seeds.

    python benchmarks/twins/dqn.py --seed 0 --steps 50000 [--double] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlbasics.rl.envs import CartPole
from dlbasics.rl.replay import Batch, ReplayBuffer, linear_epsilon


class QNetwork(nn.Module):
    """An MLP from observations to one Q-value per action: ``net.0``, ``net.2``, ... are the Linear layers."""

    def __init__(self, in_features: int, n_actions: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


@torch.no_grad()
def td_target(rewards: torch.Tensor, terminated: torch.Tensor, next_q_target: torch.Tensor, gamma: float,
              next_q_online: torch.Tensor | None = None) -> torch.Tensor:
    """y = r + gamma (1 - terminated) Q'(s', a'), a' = argmax of Q'(s') or, for Double DQN, of the online Q(s');
    rewards and terminated (B,), next Q-values (B, A); returns (B,)."""
    if next_q_online is None:
        next_v = next_q_target.max(dim=1).values
    else:
        next_a = next_q_online.argmax(dim=1, keepdim=True)
        next_v = next_q_target.gather(1, next_a).squeeze(1)
    return rewards + gamma * (1.0 - terminated) * next_v


def dqn_update(q: QNetwork, target: QNetwork, optimizer: torch.optim.Optimizer, batch: Batch, gamma: float,
               double: bool = False, max_grad_norm: float = 10.0) -> float:
    """One gradient step on a minibatch (NumPy arrays or tensors): the Huber loss (delta 1, mean) of Q(s, a) against
    the TD target, the gradient norm clipped to ``max_grad_norm``; returns the loss."""
    obs, next_obs = torch.as_tensor(batch.obs), torch.as_tensor(batch.next_obs)
    actions = torch.as_tensor(batch.actions, dtype=torch.int64)
    rewards, terminated = torch.as_tensor(batch.rewards), torch.as_tensor(batch.terminated)
    with torch.no_grad():
        next_q_target = target(next_obs)
        next_q_online = q(next_obs) if double else None
        y = td_target(rewards, terminated, next_q_target, gamma, next_q_online)
    current = q(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
    loss = F.smooth_l1_loss(current, y)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(q.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- tau * source + (1 - tau) * target, in place (tau = 1: a copy)."""
    for p_t, p in zip(target.parameters(), source.parameters(), strict=True):
        if tau == 1.0:
            p_t.copy_(p)
        else:
            p_t.lerp_(p, tau)


@torch.no_grad()
def evaluate(q: QNetwork, seeds: Sequence[int], max_steps: int = 500) -> np.ndarray:
    """The returns (len(seeds),) float64 of greedy episodes of a fresh CartPole each, reset with one seed each and run
    in lockstep: one batched forward over the still-running episodes per step."""
    envs = [CartPole(max_episode_steps=max_steps) for _ in seeds]
    obs = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds)]
    returns = np.zeros(len(seeds), np.float64)
    running = list(range(len(seeds)))
    while running:
        actions = q(torch.from_numpy(np.stack([obs[i] for i in running]))).argmax(dim=1).tolist()
        still = []
        for i, a in zip(running, actions):
            obs[i], reward, terminated, truncated, _ = envs[i].step(int(a))
            returns[i] += reward
            if not (terminated or truncated):
                still.append(i)
        running = still
    return returns


def train(seed: int = 0, steps: int = 50_000, lr: float = 2.3e-3, batch_size: int = 64, buffer_size: int = 100_000,
          learning_starts: int = 1000, gamma: float = 0.99, target_update_interval: int = 10, tau: float = 1.0,
          train_freq: int = 256, gradient_steps: int = 128, exploration_fraction: float = 0.16,
          exploration_initial_eps: float = 1.0, exploration_final_eps: float = 0.04, hidden: Sequence[int] = (256, 256),
          double: bool = False, eval_every: int = 1000, eval_episodes: int = 10, eval_seed: int = 10_000,
          test_episodes: int = 100, test_seed: int = 20_000, threads: int = 1) -> dict[str, Any]:
    """Train a DQN agent on CartPole with SB3's semantics (see the module docstring); returns the timings, the
    evaluation curve [[t, mean, std], ...], the best snapshot's step and mean, and its test mean and std."""
    start = time.perf_counter()
    eval_seconds = 0.0
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    q = QNetwork(4, 2, hidden)
    target = copy.deepcopy(q)
    optimizer = torch.optim.Adam(q.parameters(), lr=lr)
    env = CartPole()
    obs, _ = env.reset(seed=seed)
    buffer = ReplayBuffer(buffer_size, (4,), np.random.default_rng([seed, 1]))
    explore = np.random.default_rng([seed, 2])

    curve: list[list[float]] = []
    best_return, best_step, best_state = -np.inf, 0, copy.deepcopy(q.state_dict())
    episode_return, episodes = 0.0, 0
    episode_returns: list[float] = []
    losses: list[float] = []
    for t in range(1, steps + 1):
        epsilon = linear_epsilon(t - 1, steps, exploration_initial_eps, exploration_final_eps, exploration_fraction)
        if t - 1 < learning_starts or explore.random() < epsilon:
            action = int(explore.integers(2))
        else:
            with torch.no_grad():
                action = int(q(torch.from_numpy(obs).unsqueeze(0)).argmax(dim=1).item())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        episode_return += reward
        if terminated or truncated:
            obs, _ = env.reset()
            episode_returns.append(episode_return)
            episode_return, episodes = 0.0, episodes + 1
        else:
            obs = next_obs

        if t % target_update_interval == 0:
            polyak_update(target, q, tau)

        if t % train_freq == 0 and t > learning_starts:
            losses = []
            for _ in range(gradient_steps):
                losses.append(dqn_update(q, target, optimizer, buffer.sample(batch_size), gamma, double))

        if t % eval_every == 0 or t == steps:
            tick = time.perf_counter()
            returns = evaluate(q, [eval_seed + i for i in range(eval_episodes)])
            mean, std = float(returns.mean()), float(returns.std())
            curve.append([t, mean, std])
            if mean > best_return:
                best_return, best_step, best_state = mean, t, copy.deepcopy(q.state_dict())
            eval_seconds += time.perf_counter() - tick

    tick = time.perf_counter()
    test_seeds = [test_seed + i for i in range(test_episodes)]
    last_test = evaluate(q, test_seeds)
    best_q = QNetwork(4, 2, hidden)
    best_q.load_state_dict(best_state)
    test = evaluate(best_q, test_seeds)
    eval_seconds += time.perf_counter() - tick
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "train_seconds": seconds - eval_seconds, "eval_seconds": eval_seconds,
            "best_return": float(best_return), "best_step": best_step, "curve": curve,
            "test_mean": float(test.mean()), "test_std": float(test.std()), "last_test_mean": float(last_test.mean()),
            "episodes": episodes, "mean_loss_last": float(np.mean(losses)) if losses else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the PyTorch twin of dlbasics' DQN on CartPole-v1.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--double", action="store_true", help="Double DQN targets")
    parser.add_argument("--json", metavar="OUT", help="write the result dict as JSON to OUT")
    args = parser.parse_args()
    result = train(seed=args.seed, steps=args.steps, double=args.double)
    print(f"dqn twin seed={args.seed} steps={args.steps} double={args.double}: {result['seconds']:.1f}s "
          f"(train {result['train_seconds']:.1f}s), best {result['best_return']:.1f} at {result['best_step']}, "
          f"test {result['test_mean']:.1f} +- {result['test_std']:.1f} (last {result['last_test_mean']:.1f}), "
          f"{result['episodes']} episodes, loss {result['mean_loss_last']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
