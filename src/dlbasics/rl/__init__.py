"""Reinforcement learning: environments with gymnasium's API (a NumPy CartPole-v1, an adapter for gymnasium), the
environment as a run's data (``episodes``), experience replay and epsilon schedules (``replay``), and drawing an
episode (``render``). The DQN agent is ``models.dqn``; its training step is the ``reinforcement`` task
(``train/reinforcement.py``), on the one loop.

    dlbasics train --model dqn --env CartPole-v1 --steps 50000
"""

from dlbasics.rl.envs import CartPole, GymEnv
from dlbasics.rl.episodes import Environment, Episodes, Interaction, Transition, environment, make_env, play
from dlbasics.rl.render import draw_cartpole, episode_frames, frame_strip, save_gif
from dlbasics.rl.replay import Batch, ReplayBuffer, linear_epsilon

__all__ = ["Batch", "CartPole", "Environment", "Episodes", "GymEnv", "Interaction", "ReplayBuffer", "Transition",
           "draw_cartpole", "environment", "episode_frames", "frame_strip", "linear_epsilon", "make_env", "play",
           "save_gif"]
