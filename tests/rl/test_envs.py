"""The NumPy CartPole against gymnasium's CartPole-v1: the same seeds and actions give the same observations,
rewards, terminations and truncations, step for step (float32 observations equal exactly; the float64 states too)."""

import numpy as np
import pytest

from dlbasics.rl import CartPole, GymEnv

gymnasium = pytest.importorskip("gymnasium")


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize("policy", ["random", "always_right", "balance"])
def test_cartpole_steps_as_gymnasium(seed, policy):
    ours, theirs = CartPole(), gymnasium.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    for episode in range(3):  # the first reset seeds, the next ones continue the generator
        a, _ = ours.reset(seed=seed if episode == 0 else None)
        b, _ = theirs.reset(seed=seed if episode == 0 else None)
        np.testing.assert_array_equal(a, b)
        for _ in range(600):
            if policy == "random":
                action = int(rng.integers(0, 2))
            elif policy == "always_right":
                action = 1
            else:  # push the way the pole falls: episodes that last to the 500-step truncation
                action = int(a[2] + 0.5 * a[3] > 0)
            a, ra, ta, ua, _ = ours.step(action)
            b, rb, tb, ub, _ = theirs.step(action)
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ours.state, theirs.unwrapped.state)
            assert (ra, ta, ua) == (rb, tb, ub)
            if ta or ua:
                break
        if policy == "balance":
            assert ua and ours.steps == 500  # truncated, not terminated, at v1's limit


def test_gym_adapter_and_errors():
    env = GymEnv("CartPole-v1")
    assert env.observation_shape == (4,) and env.n_actions == 2
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, CartPole().reset(seed=0)[0])
    cart = CartPole()
    with pytest.raises(RuntimeError, match="reset"):
        cart.step(0)
    cart.reset(seed=0)
    with pytest.raises(ValueError, match="0 \\(push left\\) or 1"):
        cart.step(2)
    with pytest.raises(ValueError, match="Discrete actions"):
        GymEnv("Pendulum-v1")
