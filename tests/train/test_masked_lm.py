"""The masked-LM task (``train/masked_lm.py``) on the one loop: a resumed run draws the masks the uninterrupted one
draws (the generator's state is in the task's state dict); validation masks are fixed; the loss counts the masked
words only; built from a run description, it refuses data that is not for masked language modelling."""

import numpy as np
import pytest

import dlbasics as dl
from dlbasics import nn, optim
from dlbasics.data import DataLoader
from dlbasics.data.dataset import DatasetInfo, Splits
from dlbasics.data.text import pad_collate
from dlbasics.errors import ConfigError, DataError
from dlbasics.models.bert import BertConfig, BertForMaskedLM
from dlbasics.train import Loop
from dlbasics.train.config import RunConfig, load_data
from dlbasics.train.masked_lm import MaskedLMTask
from dlbasics.train.task import TASKS

V = 30
RNG = np.random.default_rng(0)
SEQUENCES = [np.concatenate([[2], RNG.integers(5, V, RNG.integers(3, 12)), [3]]) for _ in range(48)]


def _task(seed=0):
    dl.manual_seed(1)
    model = BertForMaskedLM(BertConfig(V, 16, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                                       dropout=0.1))
    return MaskedLMTask(model, optim.AdamW(model.parameters(), lr=1e-3), vocab_size=V, seed=seed)


def _loop(task, steps, checkpoint=None):
    loader = DataLoader(SEQUENCES, batch_size=8, shuffle=True, seed=3, collate_fn=pad_collate)
    val = DataLoader(SEQUENCES[:16], batch_size=8, collate_fn=pad_collate)
    return Loop(task, loader, steps=steps, val_loader=val, eval_every=4, checkpoint=checkpoint, verbose=0)


def test_a_resumed_run_draws_the_same_masks_as_an_uninterrupted_one(tmp_path):
    whole = _task()
    _loop(whole, 10).run()
    ckpt = tmp_path / "ckpt.safetensors"
    _loop(_task(), 4, ckpt).run()  # stopped after 4 steps, mid-epoch
    resumed = _task()
    _loop(resumed, 10).resume(ckpt).run()
    for k, v in whole.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[k], v, err_msg=k)
    forgetful = _task()  # the same checkpoint without the masks' generator: other masks, other weights
    loop = _loop(forgetful, 10).resume(ckpt)
    forgetful.generator = np.random.default_rng(0)
    loop.run()
    assert loop.step == 10 and not np.array_equal(forgetful.model.mlm.dense.weight.data,
                                                  whole.model.mlm.dense.weight.data)


def test_validation_masks_are_fixed_and_do_not_draw_from_the_training_generator():
    task = _task()
    val = DataLoader(SEQUENCES, batch_size=16, collate_fn=pad_collate)
    state = task.generator.bit_generator.state
    first = task.evaluate(val)
    assert task.evaluate(val) == first and task.generator.bit_generator.state == state
    assert set(first) == {"loss", "accuracy"} and 0 <= first["accuracy"] <= 1
    assert abs(first["loss"] - np.log(V)) < 0.5  # untrained: about ln V nats per masked word
    assert task.model.training  # the mode is restored


def test_the_loss_is_the_cross_entropy_of_the_masked_words_only():
    task = _task()
    task.model.eval()
    batch = pad_collate(SEQUENCES[:8])
    loss, logits, target = task.masked_loss(task.model, batch, np.random.default_rng(5))
    from dlbasics.data.text.masking import mask_tokens

    tokens, lengths = batch[0].data, batch[1].data
    inputs, labels = mask_tokens(tokens, lengths, mask_id=4, vocab_size=V, special_ids=range(5),
                                 generator=np.random.default_rng(5))
    full = task.model(inputs, lengths)  # (B, L, V): every position
    expected = nn.functional.cross_entropy(full.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    np.testing.assert_allclose(float(loss.item()), float(expected.item()), rtol=1e-5)
    assert logits.shape == (int((labels != -100).sum()), V) and (target == labels[labels != -100]).all()
    with pytest.raises(DataError, match=r"expects batches \(tokens \(B, L\), lengths \(B,\)\)"):
        task.training_step((batch[0], batch[1], batch[1]))
    with pytest.raises(DataError, match="without a single word to mask"):
        task.training_step(pad_collate([np.array([2, 3]), np.array([2, 1, 3])]))  # <bos> <unk> <eos>: all special


def test_built_from_a_run_description_for_masked_language_modeling_data():
    cfg = RunConfig.from_options(model="bert", data="digits", batch_size=4, seed=7, hidden_size=16, num_layers=1)
    assert cfg.task == "masked_lm" and cfg.algorithm.optimizer == "adamw"
    info = DatasetInfo("fake-pretraining", "masked_language_modeling", (14,),
                       model_options={"vocab_size": V, "max_len": 14})
    resolved = cfg.resolve(Splits(SEQUENCES, SEQUENCES[:8], SEQUENCES[:8], info))
    task = TASKS.get("masked_lm").builder.build(resolved)
    assert isinstance(task, MaskedLMTask) and task.vocab_size == V and task.model.config.max_len == 14
    assert task.generator.bit_generator.state == MaskedLMTask(task.model, None, V, seed=7).generator.bit_generator.state
    with pytest.raises(ConfigError, match=r"masked_lm: pre-trains on text; the data set 'digits' is a classification"):
        TASKS.get("masked_lm").builder.build(cfg.resolve(load_data(cfg)))
