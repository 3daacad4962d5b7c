"""DQN: the TD target (terminal vs truncated, Double DQN), target-network updates, the task's schedule of acting,
storing and learning, exact resume, parity with the PyTorch twin (``benchmarks/twins/dqn.py``), and that it learns."""

import sys
from pathlib import Path

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models, optim
from dlbasics.models.dqn import DQN, QNetwork
from dlbasics.rl.episodes import Environment, Episodes, Interaction, environment, play
from dlbasics.rl.replay import Batch
from dlbasics.train import Loop
from dlbasics.train.config import RunConfig
from dlbasics.train.reinforcement import ReinforcementTask
from tests.train.crashing import CrashError, crash_at_step


def agent(**kw):
    dl.manual_seed(0)
    return models.create("dqn", in_features=4, num_classes=2, hidden=[8], **kw)


def test_td_target_bootstraps_on_truncation_not_on_termination():
    a = agent(discount=0.5)
    next_obs = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    q_next = a.target(dl.tensor(next_obs)).data
    y = a.td_target(np.array([1.0, 1.0, 2.0], np.float32), np.array([1.0, 0.0, 0.0], np.float32), next_obs)
    # terminated: the reward alone; truncated (stored with terminated 0) and ordinary: r + discount max Q_target(s')
    np.testing.assert_allclose(y, [1.0, 1.0 + 0.5 * q_next[1].max(), 2.0 + 0.5 * q_next[2].max()], rtol=1e-6)


def test_double_dqn_lets_the_online_network_choose_and_the_target_value():
    a = agent(discount=1.0, double=True)
    for p in a.target.parameters():  # a target that disagrees with the online network
        p.data += 0.5 * np.random.default_rng(1).standard_normal(p.shape).astype(np.float32)
    next_obs = np.random.default_rng(2).standard_normal((64, 4)).astype(np.float32)
    q_online, q_target = a.q_network(dl.tensor(next_obs)).data, a.target(dl.tensor(next_obs)).data
    y = a.td_target(np.zeros(64, np.float32), np.zeros(64, np.float32), next_obs)
    np.testing.assert_allclose(y, q_target[np.arange(64), q_online.argmax(1)], rtol=1e-6)
    assert not np.allclose(y, q_target.max(1))  # plain DQN's max would differ somewhere


def test_the_target_network_is_a_frozen_copy_updated_hard_or_by_polyak_averaging():
    a = agent()
    assert all(not p.requires_grad for p in a.target.parameters())
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.target.parameters(), a.q_network.parameters()))
    for p in a.q_network.parameters():
        p.data += 1.0
    before = [p.data.copy() for p in a.target.parameters()]
    a.tau = 0.1
    a.update_target()
    for t, q, b in zip(a.target.parameters(), a.q_network.parameters(), before):
        np.testing.assert_allclose(t.data, 0.1 * q.data + 0.9 * b, rtol=1e-6, atol=1e-7)
    a.tau = 1.0
    a.update_target()
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.target.parameters(), a.q_network.parameters()))


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="dqn: tau must be in"):
        agent(tau=0.0)
    with pytest.raises(ValueError, match="dqn: train_freq must be >= 1"):
        agent(train_freq=0)


def small_task(seed=0, steps=60, **kw):
    settings = dict(learning_starts=10, train_freq=8, gradient_steps=2, target_update_interval=5, buffer_size=40) | kw
    a = agent(**settings)
    return ReinforcementTask(a, optim.Adam(a.q_network.parameters(), lr=1e-3), total_steps=steps, batch_size=8,
                             seed=seed)


def test_the_task_acts_stores_and_learns_on_stable_baselines3s_schedule():
    task = small_task()
    updates, targets = [], []
    real_loss, real_target = task.model.td_loss, task.model.update_target
    task.model.td_loss = lambda b: (updates.append(task.t), real_loss(b))[1]
    task.model.update_target = lambda: (targets.append(task.t), real_target())[1]
    stream = task.train_loader(Environment("CartPole-v1"), 8, seed=0)
    logged = [task.training_step(tr)[1] for tr, _ in zip(stream, range(60))]
    assert targets == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]
    assert updates == [16, 16, 24, 24, 32, 32, 40, 40, 48, 48, 56, 56]  # every 8 steps once past 10, 2 updates each
    assert ["loss" in v for v in logged].count(True) == 6
    assert len(task.buffer) == 40 and task.buffer.position == 20  # the ring wrapped
    # episodes end in the log exactly when the environment said so
    assert all(("episode_return" in v) == (i in ends) for i, v in enumerate(logged)
               for ends in [[i for i, v in enumerate(logged) if "episode_return" in v]])
    assert logged[0]["epsilon"] == 1.0 and logged[-1]["epsilon"] == pytest.approx(0.04)


def test_the_first_actions_are_random_then_mostly_greedy():
    task = small_task(steps=1000, learning_starts=100, exploration_fraction=0.0, exploration_final_eps=0.0)
    obs = np.zeros(4, np.float32)
    greedy = task.model.greedy(obs[None])[0]
    early = [task.act(obs) for _ in range(50)]
    assert set(early) == {0, 1}  # random while t < learning_starts
    task.t = 100
    assert {task.act(obs) for _ in range(20)} == {greedy}  # epsilon 0 after the decay


def test_interaction_keeps_the_real_final_observation_and_resets():
    env_split = Environment("CartPole-v1")
    stream = Interaction(env_split, lambda obs: 0, seed=3)
    first = stream.step()
    transitions = [first] + [stream.step() for _ in range(60)]
    end = next(i for i, t in enumerate(transitions) if t.terminated)
    t = transitions[end]
    assert t.episode_return == end + 1 and abs(t.next_obs[2]) > 0.2  # the pole has fallen in s', not a reset state
    assert np.all(np.abs(transitions[end + 1].obs) <= 0.05)  # the next transition starts a new episode


def test_play_runs_episodes_in_lockstep_and_matches_one_at_a_time():
    episodes = Episodes("CartPole-v1", [5, 6, 7])
    a = agent()
    batched = play(a.greedy, episodes)
    from dlbasics.rl.envs import CartPole

    for seed, ret in zip(episodes.seeds, batched):
        env, total = CartPole(), 0.0
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(int(a.greedy(obs[None])[0]))
            total, done = total + r, term or trunc
        assert total == ret


def build_loop(ckpt, crash_at=None):
    splits = environment(eval_episodes=2)
    task = small_task(seed=4, steps=90)
    crash_at_step(task, crash_at)
    return Loop(task, task.train_loader(splits.train, 8, seed=4), steps=90, val_loader=splits.val, eval_every=30,
                checkpoint=ckpt, checkpoint_every=20, verbose=0)


def test_a_stopped_dqn_run_resumes_bit_identically(tmp_path):
    full = build_loop(tmp_path / "full.safetensors")
    history = full.run()
    with pytest.raises(CrashError):
        build_loop(tmp_path / "cut.safetensors", crash_at=53).run()
    resumed = build_loop(tmp_path / "cut.safetensors").resume()
    assert resumed.step == 40
    again = resumed.run()
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h.rows]  # noqa: E731
    assert strip(again) == strip(history)
    a, b = full.task.model.state_dict(), resumed.task.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)  # Q-network and target
    assert np.array_equal(full.task.buffer.obs, resumed.task.buffer.obs)
    assert np.array_equal(full.train_loader.env.state, resumed.train_loader.env.state)


def test_the_run_description_of_a_dqn():
    cfg = RunConfig.from_options({"model": "dqn"})
    assert (cfg.task, cfg.data.name, cfg.budget.steps, cfg.lr, cfg.data.batch_size) == (
        "reinforcement", "env", 50_000, 2.3e-3, 64)
    assert cfg.data.options["env"] == "CartPole-v1"
    with pytest.raises(dl.errors.ConfigError, match="no epochs"):
        from dlbasics.train.commands import train

        train(RunConfig.from_options({"model": "dqn", "epochs": 2}), verbose=0)
    with pytest.raises(dl.errors.ConfigError, match="Huber"):
        RunConfig.from_options({"model": "dqn", "loss": "mse", "steps": 10}).resolve(environment())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dqn_updates_follow_the_pytorch_twin(dtype):
    """The same weights (loaded by name), the same replay batches: the same TD losses and the same weights after
    three updates (Adam, Huber, gradient clipping at 10), with plain and Double DQN targets."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from twins import dqn as twin

    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    for double in (False, True):
        torch.manual_seed(0)
        tq = twin.QNetwork(4, 2, (16, 16)).to(tdtype)
        tt = twin.QNetwork(4, 2, (16, 16)).to(tdtype)  # a target that differs from the online network
        ours = DQN(QNetwork(4, 2, (16, 16)), discount=0.9, double=double)
        ours.q_network.load_state_dict({k: v.numpy() for k, v in tq.state_dict().items()})
        ours.target.load_state_dict({k: v.numpy() for k, v in tt.state_dict().items()})
        ours.to(dtype)
        t_opt = torch.optim.Adam(tq.parameters(), lr=0.01)
        o_opt = optim.Adam(ours.q_network.parameters(), lr=0.01)
        rng = np.random.default_rng(1)
        for _ in range(3):
            batch = Batch(rng.standard_normal((32, 4)).astype(dtype), rng.integers(0, 2, 32),
                          rng.uniform(0, 3, 32).astype(dtype), rng.standard_normal((32, 4)).astype(dtype),
                          (rng.random(32) < 0.3).astype(dtype))
            t_loss = twin.dqn_update(tq, tt, t_opt, batch, 0.9, double=double, max_grad_norm=0.5)
            loss = ours.td_loss(batch)
            o_opt.zero_grad()
            loss.backward()
            dl.nn.utils.clip_grad_norm_(ours.q_network.parameters(), 0.5)
            o_opt.step()
            assert float(loss.item()) == pytest.approx(t_loss, rel=1e-5 if dtype == np.float32 else 1e-10)
        for k, v in tq.state_dict().items():
            np.testing.assert_allclose(ours.q_network.state_dict()[k], v.numpy(),
                                       rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6 if dtype == np.float32
                                       else 1e-12)


def test_dqn_learns_cartpole_in_10k_steps():
    """The zoo's settings for 10,000 steps on the one loop: the best greedy score is far above random play's ~22."""
    from dlbasics.train.config import RunBuilder, load_data
    from dlbasics.train.run import train_run

    cfg = RunConfig.from_options({"model": "dqn", "steps": 10_000, "eval_every": 1000, "eval_episodes": 5})
    splits = load_data(cfg)
    _, history = train_run(RunBuilder(cfg.resolve(splits)), splits.train, splits.val, seed=0)
    assert max(history["val_return"]) >= 75


@pytest.mark.slow
def test_dqn_solves_cartpole_in_50k_steps(tmp_path, capsys):
    """The issue's bar, on seed 0: a best 10-episode greedy mean >= 475 within 50k steps, and 100 fresh greedy
    episodes of that snapshot average >= 475 (through the command line, as the README runs it)."""
    import json

    from dlbasics.cli import main

    out = tmp_path / "run"
    assert main(["train", "--model", "dqn", "--env", "CartPole-v1", "--steps", "50000", "--quiet", "--out",
                 str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_val_return"] >= 475
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["episodes"] == 100 and evaluation["best"]["return"] >= 475
    for name in ("returns.png", "episode.gif", "episode.png", "best.safetensors", "curves.png"):
        assert (out / name).is_file(), name
    capsys.readouterr()
    assert main(["evaluate", str(out), "--best", "--episodes", "20"]) == 0
    line = capsys.readouterr().out
    assert "test_return " in line and "test_return_std" in line
    assert float(line.split("test_return ")[1].split(",")[0]) >= 475


def test_gymnasiums_cartpole_gives_the_same_episodes_and_trains_the_same_way():
    """backend gymnasium: the adapter plays the very episodes of the built-in twin, and a task trains on it."""
    pytest.importorskip("gymnasium")
    a = agent()
    seeds = [11, 12, 13]
    np.testing.assert_array_equal(play(a.greedy, Episodes("CartPole-v1", seeds, backend="gymnasium")),
                                  play(a.greedy, Episodes("CartPole-v1", seeds)))
    task = small_task()
    stream = task.train_loader(Environment("CartPole-v1", backend="gymnasium"), 8, seed=0)
    logged = [task.training_step(tr)[1] for tr, _ in zip(stream, range(30))]
    assert len(task.buffer) == 30 and any("loss" in v for v in logged)


def test_a_dqn_run_folder_evaluates_and_resumes_from_the_command_line(tmp_path, capsys):
    from dlbasics.cli import main

    out = tmp_path / "run"
    assert main(["train", "--model", "dqn", "--steps", "1500", "--eval-every", "500", "--eval-episodes", "3",
                 "--test-episodes", "5", "--quiet", "--out", str(out)]) == 0
    for name in ("best.safetensors", "evaluation.json", "returns.png", "episode.gif", "episode.png", "metrics.csv"):
        assert (out / name).is_file(), name
    capsys.readouterr()
    assert main(["evaluate", str(out), "--episodes", "4", "--best"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("test_return ") and "test_return_std" in line
    assert main(["evaluate", str(out), "--split", "train", "--episodes", "4"]) == 2  # the environment is no split
    assert main(["train", "--resume", str(out), "--quiet"]) == 0  # finished: resumes to the same end
