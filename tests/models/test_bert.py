"""BERT against its PyTorch twin (``benchmarks/twins/bert.py``): the same state dict by name gives the same logits
and gradients for both heads, with padding; the masked-LM head on chosen positions only; pre-trained ``bert.*``
weights load into the classifier by name; and a tiny BERT learns to fill in masked words."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import dlbasics as dl
from dlbasics import models, nn, optim
from dlbasics.models.bert import BertConfig, BertForMaskedLM, BertForSequenceClassification
from dlbasics.train.masked_lm import MaskedLMTask

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from twins.bert import bert as torch_bert  # noqa: E402
from twins.bert import bert_classifier as torch_bert_classifier  # noqa: E402

V, L = 13, 9
SHAPE = {"hidden_size": 16, "num_layers": 2, "num_heads": 2, "intermediate_size": 32, "dropout": 0.0}


def _batch():
    """(3, 9) ids: words 5..12 after <bos> 2, right-padded with 0 past lengths (9, 5, 2)."""
    ids = np.random.default_rng(0).integers(5, V, (3, L))
    ids[:, 0] = 2
    lengths = np.array([9, 5, 2])
    ids[np.arange(L) >= lengths[:, None]] = 0
    return ids, lengths


def _pair(name, twin, dtype, **extra):
    torch.manual_seed(0)
    tm = twin(vocab_size=V, max_len=L, **SHAPE, **extra).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = models.create(name, vocab_size=V, max_len=L, **SHAPE, **extra).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, ours


def _assert_same_grads(ours, tm, tol):
    grads = dict(ours.named_parameters())
    assert len(grads) == len(list(tm.parameters()))  # a tied weight appears once, under its first name
    for pname, p in tm.named_parameters():
        np.testing.assert_allclose(grads[pname].grad, p.grad.numpy(), rtol=tol * 10, atol=tol * 10, err_msg=pname)


@pytest.mark.parametrize("dtype, tol, segments", [(np.float64, 1e-9, False), (np.float64, 1e-9, True),
                                                  (np.float32, 2e-4, False)])
def test_masked_lm_matches_its_pytorch_twin_by_name_with_padding(dtype, tol, segments):
    tm, ours = _pair("bert", torch_bert, dtype)
    ids, lengths = _batch()
    types = np.random.default_rng(2).integers(0, 2, ids.shape) if segments else None
    labels = np.where(np.random.default_rng(1).random(ids.shape) < 0.5, ids, -100).reshape(-1)  # -100: skipped
    t_logits = tm(torch.tensor(ids), torch.tensor(lengths), None if types is None else torch.tensor(types))
    torch.nn.functional.cross_entropy(t_logits.reshape(-1, V), torch.tensor(labels)).backward()
    logits = ours(ids, lengths, types)
    assert logits.shape == (3, L, V) and logits.dtype == dtype
    nn.functional.cross_entropy(logits.reshape(-1, V), labels).backward()
    np.testing.assert_allclose(logits.data, t_logits.detach().numpy(), rtol=tol, atol=tol)
    _assert_same_grads(ours, tm, tol)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 2e-4)])
def test_classifier_matches_its_pytorch_twin_by_name_with_padding(dtype, tol):
    tm, ours = _pair("bert_classifier", torch_bert_classifier, dtype, num_classes=3)
    ids, lengths = _batch()
    y = np.array([0, 2, 1])
    t_out = tm(torch.tensor(ids), torch.tensor(lengths))
    torch.nn.functional.cross_entropy(t_out, torch.tensor(y)).backward()
    out = ours(ids, lengths)
    assert out.shape == (3, 3)
    nn.functional.cross_entropy(out, y).backward()
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=tol, atol=tol)
    _assert_same_grads(ours, tm, tol)


def test_masked_positions_give_those_rows_of_the_full_logits_and_the_same_gradients():
    tm, ours = _pair("bert", torch_bert, np.float64)
    ids, lengths = _batch()
    chosen = np.zeros(ids.shape, bool)
    chosen[[0, 0, 1, 2], [1, 7, 3, 1]] = True
    full = ours(ids, lengths).data
    part = ours(ids, lengths, masked_positions=chosen)
    np.testing.assert_allclose(part.data, full[chosen], rtol=1e-12, atol=1e-12)
    y = ids[chosen]
    nn.functional.cross_entropy(part, y).backward()
    t_part = tm(torch.tensor(ids), torch.tensor(lengths), masked_positions=torch.tensor(chosen))
    torch.nn.functional.cross_entropy(t_part, torch.tensor(y)).backward()
    _assert_same_grads(ours, tm, 1e-9)


def test_padding_comes_from_lengths_or_from_the_pad_id_and_does_not_reach_the_words():
    dl.manual_seed(0)
    m = models.create("bert", vocab_size=V, max_len=L, **SHAPE).eval()
    ids, lengths = _batch()
    out = m(ids, lengths).data
    np.testing.assert_allclose(m(ids).data, out, rtol=1e-6, atol=1e-6)  # no lengths: padding is where ids == 0
    other = ids.copy()
    other[np.arange(L) >= lengths[:, None]] = 7  # other ids in the padding: the real positions do not change
    again = m(other, lengths).data
    real = np.arange(L) < lengths[:, None]
    np.testing.assert_allclose(again[real], out[real], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"longer than max_len 9"):
        m(np.full((1, 10), 5))
    with pytest.raises(ValueError, match=r"lengths of shape \(2,\) do not fit input_ids of shape \(3, 9\)"):
        m(ids, lengths[:2])
    with pytest.raises(ValueError, match="hidden_size 10 must be a multiple of num_heads 4"):
        models.create("bert", vocab_size=V, max_len=L, hidden_size=10, num_heads=4)


def test_bert_tiny_shape_tied_weights_and_registrations():
    m = models.create("bert", vocab_size=1000, max_len=128)
    assert m.mlm.decoder.weight is m.bert.embeddings.word_embeddings.weight
    assert not m.bert.embeddings.word_embeddings.weight.data[0].any()  # <pad>'s vector starts at 0
    encoder = sum(p.numel() for n, p in m.named_parameters() if n.startswith("bert.encoder."))
    assert encoder == 2 * (4 * 128 * 128 + 4 * 128 + 2 * 128 * 512 + 512 + 128 + 4 * 128)  # BERT-Tiny's 2 layers
    assert (models.info("bert").task, models.info("bert").default_data) == ("masked_lm", "pretraining")
    assert (models.info("bert_classifier").task, models.info("bert_classifier").default_data) == ("supervised",
                                                                                                 "tweets")
    assert models.info("bert").recipe["optimizer"] == "adamw" and models.info("bert").recipe["weight_decay"] == 0.01
    assert {"vocab_size", "max_len", "num_classes"} <= set(models.info("bert_classifier").options())


def test_a_pretrained_encoder_loads_into_the_classifier_by_name():
    dl.manual_seed(0)
    mlm = models.create("bert", vocab_size=V, max_len=L, **SHAPE)
    clf = models.create("bert_classifier", vocab_size=V, max_len=L, num_classes=2, **SHAPE)
    pretrained = {k: v for k, v in mlm.state_dict().items() if k.startswith("bert.")}
    result = clf.load_state_dict(pretrained, strict=False)
    assert result.unexpected_keys == [] and all(k.startswith(("pooler.", "classifier.")) for k in result.missing_keys)
    ours = clf.state_dict()
    for k, v in pretrained.items():
        np.testing.assert_array_equal(ours[k], v)
    ids, lengths = _batch()
    mlm.eval(), clf.eval()
    np.testing.assert_array_equal(clf.bert(ids, lengths).data, mlm.bert(ids, lengths).data)


class _Batches:
    """Sequences of the synthetic language w_(k+1) = w_k + 1 (mod 20 words), after <bos>, right-padded to 16."""

    def __init__(self, n, batch, seed):
        rng = np.random.default_rng(seed)
        self.batches = []
        for _ in range(n):
            lengths = rng.integers(8, 17, batch)
            ids = 5 + (rng.integers(0, 20, (batch, 1)) + np.arange(16)) % 20
            ids[:, 0] = 2
            ids[np.arange(16) >= lengths[:, None]] = 0
            self.batches.append((ids, lengths))

    def __iter__(self):
        return iter(self.batches)


def test_a_tiny_bert_learns_to_fill_in_masked_words():
    """ln 25 = 3.2 nats for a model that knows nothing; the neighbours of a masked word give it away (300 steps,
    1.8 s: 3.0 nats after 50, 1.0 after 200, 0.4 after 300; seeds 1-3 end at 0.56, 0.36, 0.83)."""
    dl.manual_seed(0)
    model = BertForMaskedLM(BertConfig(25, 16, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                       dropout=0.0))
    task = MaskedLMTask(model, optim.AdamW(model.parameters(), lr=3e-3), vocab_size=25, seed=0)
    # one BLAS thread: products of 32-wide matrices are too small to share, and with a busy core two threads took
    # the 300 steps in 4-10 s instead of 1.5 s (the same numbers either way)
    with threadpool_limits(1, user_api="blas"):
        for batch in _Batches(300, 32, seed=0):
            task.training_step(batch)
    scores = task.evaluate(_Batches(4, 64, seed=1))
    assert scores["loss"] < 1.0 and scores["accuracy"] > 0.7, scores


def test_the_classifier_is_called_with_tokens_and_lengths_by_the_supervised_task():
    dl.manual_seed(0)
    clf = BertForSequenceClassification(BertConfig(V, L, **SHAPE), num_classes=2)
    from dlbasics.train.task import SupervisedTask

    task = SupervisedTask(clf, nn.CrossEntropyLoss(), optim.AdamW(clf.parameters(), lr=1e-3))
    ids, lengths = _batch()
    n, values = task.training_step(((dl.tensor(ids), dl.tensor(lengths)), dl.tensor(np.array([0, 1, 1]))))
    assert n == 3 and math.isfinite(values["loss"])
