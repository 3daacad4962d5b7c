"""The translation models against their PyTorch twins (``benchmarks/twins/seq2seq.py``): one state dict, loaded by
name, gives the same logits and every parameter's gradient, with padded sources of different lengths."""

import sys
from pathlib import Path

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import models, nn

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins import seq2seq as twins  # noqa: E402

CASES = [
    ("seq2seq", {"attention": None}),
    ("seq2seq", {"attention": "bahdanau"}),
    ("seq2seq", {"attention": "luong"}),
    ("seq2seq", {"attention": None, "num_layers": 2}),
    ("transformer", {"d_model": 16, "nhead": 2, "num_layers": 2, "dim_feedforward": 24}),
]


@pytest.fixture(autouse=True)
def _seeded():
    """Fixed weights in every test, whatever ran before it in the same process."""
    dl.manual_seed(0)


def batch():
    rng = np.random.default_rng(0)
    lengths = np.array([7, 4, 2])
    src = rng.integers(4, 13, (3, 7))
    src[np.arange(7) >= lengths[:, None]] = 0  # right padding
    tgt = rng.integers(4, 11, (3, 6))
    tgt[:, 0] = 2
    y = rng.integers(4, 11, (3 * 6,))
    return src, lengths, tgt, y


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 2e-4)])
@pytest.mark.parametrize("name, options", CASES, ids=lambda c: str(c))
def test_translator_matches_its_pytorch_twin_by_name(name, options, dtype, tol):
    small = {"embed_dim": 10, "hidden_size": 12} if name == "seq2seq" else {}
    torch.manual_seed(0)
    tm = getattr(twins, name)(13, 11, dropout=0.0, **small, **options)
    tm = tm.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = models.create(name, src_vocab_size=13, tgt_vocab_size=11, dropout=0.0, **small, **options).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    src, lengths, tgt, y = batch()
    t_logits = tm(torch.tensor(src), torch.tensor(lengths), torch.tensor(tgt))
    torch.nn.functional.cross_entropy(t_logits.reshape(-1, 11), torch.tensor(y)).backward()
    logits = ours(src, lengths, tgt)
    nn.functional.cross_entropy(logits.reshape(-1, 11), y).backward()
    np.testing.assert_allclose(logits.data, t_logits.detach().numpy(), rtol=tol, atol=tol)
    grads = dict(ours.named_parameters())
    for pname, p in tm.named_parameters():  # a tied weight appears once, under its first name
        np.testing.assert_allclose(grads[pname].grad, p.grad.numpy(), rtol=tol * 10, atol=tol * 10, err_msg=pname)


def test_padding_does_not_change_a_sentence_s_translation_scores():
    """A sentence's logits are the same alone and beside a longer one (its padding is masked everywhere)."""
    for name, options in CASES:
        small = {"embed_dim": 10, "hidden_size": 12} if name == "seq2seq" else {}
        model = models.create(name, src_vocab_size=13, tgt_vocab_size=11, dropout=0.0, **small, **options)
        model.eval()
        src, lengths, tgt, _ = batch()
        both = model(src, lengths, tgt).data
        alone = model(src[2:, :2], lengths[2:], tgt[2:]).data
        np.testing.assert_allclose(both[2:], alone, rtol=1e-5, atol=1e-5, err_msg=f"{name} {options}")


def test_step_by_step_decoding_gives_the_full_forward_s_log_probabilities():
    """Each model's ``step`` (the Transformer's with its cache of earlier positions) equals the log-softmax of the
    teacher-forced forward at that position."""
    src, lengths, tgt, _ = batch()
    for name, options in CASES:
        small = {"embed_dim": 10, "hidden_size": 12} if name == "seq2seq" else {}
        model = models.create(name, src_vocab_size=13, tgt_vocab_size=11, dropout=0.0, **small, **options).eval()
        full = model(src, lengths, tgt).log_softmax(-1).data  # (B, T, V)
        memory = model.encode(src, lengths)
        state = model.start(memory)
        for t in range(tgt.shape[1]):
            logp, state = model.step(memory, tgt[:, :t + 1], state)
            np.testing.assert_allclose(logp.data, full[:, t], rtol=1e-4, atol=1e-5, err_msg=f"{name} {options} {t}")
