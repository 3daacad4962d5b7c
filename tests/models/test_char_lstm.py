"""The char-LSTM against its PyTorch twin (``benchmarks/twins/char_lstm.py``): the same state dict by name gives
the same logits and gradients; and it learns."""

import sys
from pathlib import Path

import numpy as np
import pytest

from dlbasics import models, nn

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins.char_lstm import char_lstm as torch_char_lstm  # noqa: E402


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 2e-4)])
def test_char_lstm_matches_its_pytorch_twin_by_name(dtype, tol):
    torch.manual_seed(0)
    tm = torch_char_lstm(vocab_size=11, block_size=8, n_layer=2, hidden_size=12).to(
        torch.float64 if dtype == np.float64 else torch.float32)
    ours = models.create("char_lstm", vocab_size=11, block_size=8, n_layer=2, hidden_size=12).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    idx = np.random.default_rng(0).integers(0, 11, (3, 8))
    y = np.random.default_rng(1).integers(0, 11, (3 * 8,))
    t_logits = tm(torch.tensor(idx))
    torch.nn.functional.cross_entropy(t_logits.reshape(-1, 11), torch.tensor(y)).backward()
    logits = ours(idx)
    nn.functional.cross_entropy(logits.reshape(-1, 11), y).backward()
    np.testing.assert_allclose(logits.data, t_logits.detach().numpy(), rtol=tol, atol=tol)
    grads = dict(ours.named_parameters())
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(grads[name].grad, p.grad.numpy(), rtol=tol * 10, atol=tol * 10, err_msg=name)


@pytest.mark.slow
def test_char_lstm_recipe_learns_shakespeare_below_the_bigram_floor(tmp_path):
    """500 steps of the recipe bring the validation loss below the add-one bigram model's 2.48 nats per character
    (PyTorch's twin reaches 1.85 here, the issue says)."""
    import json

    from dlbasics.cli import main

    assert main(["train", "--model", "char_lstm", "--steps", "500", "--eval-every", "500", "--quiet", "--out",
                 str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["val_loss"] < 2.48
