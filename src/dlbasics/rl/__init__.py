"""Reinforcement learning: environments with gymnasium's API (a NumPy CartPole-v1, an adapter for gymnasium)."""

from dlbasics.rl.envs import CartPole, GymEnv

__all__ = ["CartPole", "GymEnv"]
