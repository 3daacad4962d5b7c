"""DQN: "Human-level control through deep reinforcement learning", V. Mnih, K. Kavukcuoglu, D. Silver et al., Nature
2015 (first as "Playing Atari with Deep Reinforcement Learning", 2013); Double DQN from "Deep Reinforcement Learning
with Double Q-learning", H. van Hasselt, A. Guez and D. Silver, AAAI 2016.

A network Q(s, .) learns the value of each action by regressing on its own one-step lookahead, the TD target
r + discount * max_a' Q_target(s', a'), computed by a frozen copy of itself that is refreshed now and then.

    agent = dqn(in_features=4, num_classes=2)           # Q-network 4-256-256-2 and its target copy
    q = agent(obs)                                        # (N, 4) -> Q-values (N, 2)
    loss = agent.td_loss(batch)                           # Huber(Q(s, a), TD target) on a replay minibatch
    agent.update_target()                                 # target <- tau * Q + (1 - tau) * target

The module is the agent as stable-baselines3's ``DQN`` holds it: the Q-network, the target network and the settings
of the learning rule, replay and exploration; ``train/reinforcement.py`` is the task that acts and learns with it.
The defaults are rl-baselines3-zoo's tuned CartPole-v1 settings (lr 2.3e-3 and batch 64 are in the recipe).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from dlbasics import nn
from dlbasics.autograd.grad_mode import no_grad
from dlbasics.models.registry import register
from dlbasics.nn import functional as F
from dlbasics.tensor import Tensor

PAPER = ("Human-level control through deep reinforcement learning (Mnih, Kavukcuoglu, Silver et al., Nature 2015); "
         "Double DQN: van Hasselt, Guez & Silver, AAAI 2016")
# rl-baselines3-zoo's DQN for CartPole-v1 (500 +- 0 at 50k steps); the agent's own settings are the builder's defaults
RECIPE = {"steps": 50_000, "batch_size": 64, "optimizer": "adam", "lr": 2.3e-3, "eval_every": 1000,
          "clip_grad_norm": 10.0}


class QNetwork(nn.Module):
    """obs (N, in_features) -> Q-values (N, n_actions): Linear-ReLU for each hidden width, then a Linear head
    (parameter names ``net.0.weight``, ``net.2.weight``, ... as the PyTorch twin's)."""

    def __init__(self, in_features: int, n_actions: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.in_features, self.n_actions = in_features, n_actions
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)


class DQN(nn.Module):
    """The agent: ``q_network`` (trained), ``target`` (its frozen copy) and the settings of the learning rule.

    Args:
        discount: gamma, the weight of the next state's value in the TD target.
        double: Double DQN: the online network picks argmax_a' Q(s', a'), the target network values it.
        tau: target <- tau * Q + (1 - tau) * target every ``target_update_interval`` environment steps; 1 is the
            paper's hard copy, below 1 Polyak averaging.
        buffer_size, learning_starts, train_freq, gradient_steps: replay holds the last ``buffer_size``
            transitions; after ``learning_starts`` random steps, every ``train_freq`` steps make ``gradient_steps``
            updates on uniform minibatches of it.
        exploration_*: epsilon of epsilon-greedy decays linearly from ``exploration_initial_eps`` to
            ``exploration_final_eps`` over the first ``exploration_fraction`` of the run.
    """

    def __init__(self, q_network: QNetwork, *, discount: float = 0.99, double: bool = False, tau: float = 1.0,
                 target_update_interval: int = 10, buffer_size: int = 100_000, learning_starts: int = 1000,
                 train_freq: int = 256, gradient_steps: int = 128, exploration_fraction: float = 0.16,
                 exploration_initial_eps: float = 1.0, exploration_final_eps: float = 0.04) -> None:
        super().__init__()
        checks = {"discount": (discount, 0 <= discount <= 1, "in [0, 1]"), "tau": (tau, 0 < tau <= 1, "in (0, 1]"),
                  "target_update_interval": (target_update_interval, target_update_interval >= 1, ">= 1"),
                  "buffer_size": (buffer_size, buffer_size >= 1, ">= 1"),
                  "learning_starts": (learning_starts, learning_starts >= 0, ">= 0"),
                  "train_freq": (train_freq, train_freq >= 1, ">= 1"),
                  "gradient_steps": (gradient_steps, gradient_steps >= 1, ">= 1"),
                  "exploration_fraction": (exploration_fraction, 0 <= exploration_fraction <= 1, "in [0, 1]"),
                  "exploration_initial_eps": (exploration_initial_eps, 0 <= exploration_initial_eps <= 1, "in [0, 1]"),
                  "exploration_final_eps": (exploration_final_eps, 0 <= exploration_final_eps <= 1, "in [0, 1]")}
        for name, (value, ok, what) in checks.items():
            if not ok:
                raise ValueError(f"dqn: {name} must be {what}, got {value}")
        self.q_network = q_network
        self.n_actions = q_network.n_actions
        self.target = copy.deepcopy(q_network)
        for p in self.target.parameters():
            p.requires_grad = False
        self.discount, self.double, self.tau = float(discount), bool(double), float(tau)
        self.target_update_interval = target_update_interval
        self.buffer_size, self.learning_starts = buffer_size, learning_starts
        self.train_freq, self.gradient_steps = train_freq, gradient_steps
        self.exploration = (float(exploration_initial_eps), float(exploration_final_eps), float(exploration_fraction))

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values (N, n_actions) of observations (N, *obs)."""
        return self.q_network(obs)

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(s, a) for observations (N, *obs) -> actions (N,) int64 (no graph)."""
        with no_grad():
            return self.q_network(Tensor._make(np.asarray(obs, np.float32), False, None)).data.argmax(axis=1)

    def td_target(self, rewards: np.ndarray, terminated: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """y = r + discount (1 - terminated) Q_target(s', a*), a* = argmax_a' of Q_target(s', .) - or of the
        online Q(s', .) with ``double``; (B,) in the network's dtype. A terminated s' has no future: no bootstrap; a
        truncated one (the time limit) is stored with terminated 0, so its value still counts."""
        with no_grad():
            next_obs_t = Tensor._make(next_obs, False, None)
            q_next = self.target(next_obs_t).data
            if self.double:
                best = self.q_network(next_obs_t).data.argmax(axis=1)
                value = np.take_along_axis(q_next, best[:, None], axis=1)[:, 0]
            else:
                value = q_next.max(axis=1)
        return (rewards + self.discount * (1.0 - terminated) * value).astype(value.dtype, copy=False)

    def td_loss(self, batch: tuple) -> Tensor:
        """Huber(Q(s, a), y) averaged over a replay minibatch (obs, actions, rewards, next_obs, terminated): the
        Huber loss's gradient is the TD error clipped to [-1, 1], the paper's error clipping."""
        obs, actions, rewards, next_obs, terminated = batch
        y = self.td_target(rewards, terminated, next_obs)
        q = self.q_network(Tensor._make(obs, False, None))
        q_taken = q.gather(1, actions.reshape(-1, 1)).reshape(-1)
        return F.huber_loss(q_taken, y)

    def update_target(self) -> None:
        """target <- tau * Q + (1 - tau) * target, in place (a copy when tau is 1)."""
        for t, p in zip(self.target.parameters(), self.q_network.parameters()):
            if self.tau == 1.0:
                np.copyto(t.data, p.data)
            else:
                t.data += self.tau * (p.data - t.data)
        for t, b in zip(self.target.buffers(), self.q_network.buffers()):
            np.copyto(t.data, b.data)

    def epsilon(self, step: int, total_steps: int) -> float:
        """epsilon of epsilon-greedy at environment step ``step`` (0-based) of ``total_steps``."""
        from dlbasics.rl.replay import linear_epsilon

        start, end, fraction = self.exploration
        return linear_epsilon(step, total_steps, start, end, fraction)


@register("dqn", paper=PAPER, default_data="env", task="reinforcement", recipe=RECIPE,
          summary="Q-network obs-256-256-actions (ReLU) with a target copy; Huber TD loss, replay, epsilon-greedy")
def dqn(in_features: int, num_classes: int, hidden: Sequence[int] = (256, 256), discount: float = 0.99,
        double: bool = False, tau: float = 1.0, target_update_interval: int = 10, buffer_size: int = 100_000,
        learning_starts: int = 1000, train_freq: int = 256, gradient_steps: int = 128,
        exploration_fraction: float = 0.16, exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.04) -> DQN:
    """A DQN agent for observations of ``in_features`` values and ``num_classes`` discrete actions; see ``DQN``."""
    return DQN(QNetwork(in_features, num_classes, hidden), discount=discount, double=double, tau=tau,
               target_update_interval=target_update_interval, buffer_size=buffer_size,
               learning_starts=learning_starts, train_freq=train_freq, gradient_steps=gradient_steps,
               exploration_fraction=exploration_fraction, exploration_initial_eps=exploration_initial_eps,
               exploration_final_eps=exploration_final_eps)


__all__ = ["DQN", "QNetwork", "dqn"]
