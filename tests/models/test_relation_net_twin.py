"""CNN+MLP and the Relation Network against their PyTorch twins (``benchmarks/twins/relation_net.py``), with and
without FiLM: one state dict, loaded by name, gives the same answer logits (train and eval mode, float64) and the same
weights after Adam steps on the cross-entropy of the answers. Dropout is set to 0 on both sides: the two libraries
draw different masks."""

import sys
from pathlib import Path

import numpy as np
import pytest

from dlbasics import models, nn
from dlbasics.nn import functional as F

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins import relation_net as twins  # noqa: E402

from tests.models.torch_twins import follow_adam, randomize_batch_norm  # noqa: E402

N, SIZE, WIDTH, HIDDEN = 3, 32, 8, 16
CASES = [(name, film) for name in ("vqa_cnn_mlp", "relation_net") for film in (False, True)]


def pair(name, film, seed=0):
    """The twin (random batch-norm statistics, float64, no dropout) and dlbasics' model loaded from its state dict."""
    torch.manual_seed(seed)
    opts = {"image_size": SIZE} if name == "vqa_cnn_mlp" else {}
    cls = twins.CNNMLP if name == "vqa_cnn_mlp" else twins.RelationNet
    tm = randomize_batch_norm(cls(3, 10, 11, WIDTH, HIDDEN, film, **opts)).double()
    ours = models.create(name, in_channels=3, num_classes=10, question_size=11, width=WIDTH, hidden_size=HIDDEN,
                         film=film, **opts).to(np.float64)
    state = tm.state_dict()
    assert list(ours.state_dict()) == list(state)  # the same names, in the same order
    ours.load_state_dict({k: v.numpy() for k, v in state.items()})
    for m in tm.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    for m in ours.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return ours, tm


def batch(seed):
    rng = np.random.default_rng(seed)
    q = np.zeros((N, 11))
    q[np.arange(N), rng.integers(0, 6, N)] = 1
    q[np.arange(N), 6 + rng.integers(0, 2, N)] = 1
    q[np.arange(N), 8 + rng.integers(0, 3, N)] = 1
    return rng.random((N, 3, SIZE, SIZE)), q, rng.integers(0, 10, N)


@pytest.mark.parametrize("name, film", CASES)
def test_logits_match_the_twin_in_train_and_eval_mode(name, film):
    ours, tm = pair(name, film)
    x, q, _ = batch(0)
    for mode in (True, False):  # train first: it moves the running statistics, which eval then uses
        ours.train(mode)
        tm.train(mode)
        with torch.no_grad():
            expected = tm(torch.from_numpy(x), torch.from_numpy(q)).numpy()
        np.testing.assert_allclose(ours(x, q).data, expected, rtol=1e-10, atol=1e-10, err_msg=f"train={mode}")


@pytest.mark.parametrize("name, film", CASES)
def test_adam_steps_follow_the_twins_trajectory(name, film):
    ours, tm = pair(name, film, seed=1)

    def losses(step):
        x, q, a = batch(step + 1)
        t = torch.from_numpy
        return F.cross_entropy(ours(x, q), a), torch.nn.functional.cross_entropy(tm(t(x), t(q)), t(a))

    follow_adam(ours, tm, losses)
