"""The error catalogue (docs/errors.md): every mistake a user makes, the one line it gives, and this test.

Each case runs ``dlbasics ...`` in-process and checks: exit status 2, exactly one line on stderr starting with
``dlbasics: error:``, the message, no traceback, and (for runs that cannot start) no run folder left behind.
``test_the_catalogue_lists_every_case`` keeps docs/errors.md and this table in step.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dlbasics import nn, optim
from dlbasics.cli import main
from dlbasics.data import DataLoader, TensorDataset
from dlbasics.errors import DivergedError
from dlbasics.train import fit
from tests.data.test_datasets import write_idx

CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cat") / "run"
    assert main(["train", "--hidden", "8", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    return out


def _idx_folder(folder, bad_train=0, bad_test=0):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for part, n, bad in (("train", 300, bad_train), ("t10k", 100, bad_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        labels[:bad] = 200
        write_idx(folder / f"{part}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{part}-labels-idx1-ubyte", labels)
    return folder


def _setup(kind, tmp, run_dir):
    """Files a case needs, made in ``tmp``; returns the values to put into its command line."""
    if kind == "file":
        (tmp / "file").write_text("not a folder")
    elif kind == "corrupt":
        (tmp / "bad").mkdir()
        (tmp / "bad" / "config.json").write_text("{not json")
    elif kind == "foreign":
        import dlbasics as dl

        (tmp / "other").mkdir()
        (tmp / "other" / "config.json").write_text((run_dir / "config.json").read_text())
        other = dl.models.create("mlp", in_features=64, num_classes=10, hidden=[4])
        dl.save(other, tmp / "other" / "model.safetensors")
    elif kind.startswith("toml:"):
        (tmp / "run.toml").write_text(kind[5:].replace("\\n", "\n"))
    elif kind == "bad-train-labels":
        _idx_folder(tmp / "idx", bad_train=40)
    elif kind == "bad-test-label":
        _idx_folder(tmp / "idx", bad_test=1)
    return {"tmp": str(tmp), "run": str(run_dir)}


# id, what the user does (argv, {tmp} and {run} filled in), setup, the message (a part of it)
CASES = [
    # ---- paths ----
    ("config-missing", "train --config {tmp}/none.toml", None, "--config: no such file: {tmp}/none.toml"),
    ("data-folder-missing", "train --data mnist --data-dir {tmp}/none", None, "mnist folder not found: {tmp}/none"),
    ("fashion-mnist-missing", "train --data fashion-mnist --data-dir {tmp}/none", None,
     "fashion-mnist folder not found: {tmp}/none; Debian's package dataset-fashion-mnist installs"),
    ("data-dir-not-read", "train --data-dir {tmp}", None,
     "--data-dir: the data set 'digits' takes no such option: it is bundled or generated and reads no files"),
    ("data-dir-needed", "train --data cifar10", None,
     "--data-dir: the data set 'cifar10' needs it; give the folder that holds its files"),
    ("out-is-a-file", "train --out {tmp}/file", "file", "--out {tmp}/file: is a file, not a folder"),
    ("out-holds-a-run", "train --out {run}", None, "--out {run}: already holds a run; continue it with --resume {run}"),
    ("evaluate-missing", "evaluate {tmp}/none", None, "{tmp}/none: no such run folder"),
    ("evaluate-not-a-run", "evaluate {tmp}", None, "{tmp} is not a run folder (no config.json)"),
    ("config-json-corrupt", "evaluate {tmp}/bad", "corrupt", "{tmp}/bad/config.json: not valid JSON"),
    ("predict-input-missing", "predict {run} {tmp}/none.npy", None, "predict: no such file or folder: {tmp}/none.npy"),
    # ---- data ----
    ("labels-out-of-range", "train --data mnist --data-dir {tmp}/idx", "bad-train-labels",
     "{tmp}/idx/train-labels-idx1-ubyte: 40 of 300 labels lie outside 0..9 (first: 200 at index 0)"),
    ("test-label-out-of-range", "train --data mnist --data-dir {tmp}/idx", "bad-test-label",
     "{tmp}/idx/t10k-labels-idx1-ubyte: 1 of 100 labels lie outside 0..9"),
    ("data-does-not-fit-model", "train --model lenet5 --data moons", None,
     "the model 'lenet5' does not take the samples of the data set 'moons', of shape (2,): Conv2d(1, 6, "),
    ("batch-size-zero", "train --batch-size 0", None, "--batch-size: must be an integer >= 1, got 0"),
    ("batch-size-too-large", "train --batch-size 5000", None,
     "--batch-size 5000 is larger than the training split (1079 samples); use at most 1079"),
    ("data-option-rejected", "train --data moons --noise -1", None,
     "--data moons: The 'noise' parameter of make_moons"),
    # ---- values ----
    ("lr-not-positive", "train --lr 0", None, "--lr: must be a finite number > 0, got 0.0"),
    ("lr-not-finite", "train --lr inf", None, "--lr: must be a finite number, got inf"),
    ("weight-decay-not-finite", "train --weight-decay inf", None, "--weight-decay: must be a finite number, got inf"),
    ("dropout-out-of-range", "train --dropout 1", None, "--dropout: must be in [0, 1), got 1.0"),
    ("not-a-number", "train --epochs x", None, "argument --epochs: invalid int value: 'x'"),
    ("epochs-and-steps", "train --epochs 2 --steps 5", None, "--steps: a budget is in epochs or in steps, not both"),
    ("option-of-another-model", "train --depth 20", None,
     "--depth: the model 'mlp' has no such option (its options: hidden, activation, dropout, batch_norm)"),
    ("model-rejects-a-value", "train --model resnet --depth 21 --data digits --no-flatten", None,
     "--model resnet: resnet: depth must be 6n + 2 with basic blocks"),
    ("nesterov-without-momentum", "train --optimizer sgd --nesterov", None, "--nesterov: needs --momentum > 0"),
    ("loss-for-regression", "train --data sin --loss cross_entropy", None,
     "--loss cross_entropy: the data set 'sin' is a regression task; use mse"),
    ("mixup-for-regression", "train --data sin --mixup 0.2", None, "--mixup: mixes class labels"),
    ("data-argument-not-taken", "train --data digits:3", None,
     "--data digits:3: the data set 'digits' takes no NAME:VALUE argument (those that do: text, pairs,"),
    ("text-file-missing", "train --model gpt --data text:{tmp}/none.txt --steps 1", None, "{tmp}/none.txt"),
    ("loss-for-text", "train --model gpt --loss mse", None,
     "--loss mse: a language model is trained by the next token's cross-entropy; use cross_entropy"),
    ("threads-zero", "train --threads 0", None, "--threads: must be an integer >= 1, got 0"),
    ("resume-with-new-options", "train --resume {run} --lr 0.1", None,
     "--resume: continues the run as it was described; --lr cannot change it"),
    ("toml-wrong-type", "train --config {tmp}/run.toml", 'toml:batch_norm = "no"',
     "{tmp}/run.toml: batch_norm: must be true or false, got 'no'"),
    ("toml-path-not-a-string", "train --config {tmp}/run.toml", 'toml:data = "mnist"\\ndata_dir = 7',
     "{tmp}/run.toml: data_dir: must be a path (a string), got 7"),
    ("toml-unknown-key", "train --config {tmp}/run.toml", "toml:optimiser = 'sgd'",
     "{tmp}/run.toml: optimiser: unknown option; did you mean 'optimizer'?"),
    ("toml-not-toml", "train --config {tmp}/run.toml", "toml:lr = ", "--config {tmp}/run.toml: not valid TOML"),
    # ---- names ----
    ("unknown-model", "train --model vgg", None,
     "--model: invalid choice 'vgg' (choose from alexnet, bert, bert_classifier,"),
    ("unknown-optimizer", "train --optimizer adamm", None,
     "--optimizer: invalid choice 'adamm' (choose from adadelta, adagrad, adam, adamw, rmsprop, sgd)"),
    ("unknown-data", "train --data imagenet", None, "--data: invalid choice 'imagenet' (choose from digits, moons"),
    ("unknown-loss", "train --loss hinge", None,
     "--loss: invalid choice 'hinge' (choose from mse, cross_entropy, nll,"),
    ("unknown-scheduler", "train --scheduler linear", None,
     "--scheduler: invalid choice 'linear' (choose from constant, cosine, step, exponential, plateau)"),
    ("unknown-task", "train --task gan", None,
     "--task: invalid choice 'gan' (choose from supervised, adversarial, contrastive,"),
    ("unknown-option", "train --optimiser sgd", None, "unrecognized arguments: --optimiser sgd"),
    ("unknown-model-choice", "train --model lenet5 --activation gelu", None,
     "--activation: invalid choice 'gelu' (choose from tanh, relu)"),
    ("unknown-command", "frobnicate", None, "invalid choice: 'frobnicate'"),
    ("unknown-experiment", "lab nope", None, "unknown experiment 'nope'; choose from linear-regression"),
    ("generate-not-a-text-run", "generate {run}", None, "holds no tokenizer.json: it is not the run of a text model"),
    ("translate-not-a-translation-run", "translate {run} hello", None,
     "is a supervised run, not a translation run (train one with --model seq2seq or --model transformer)"),
    ("translate-bad-beam", "translate {run} hello --beam 0", None, "--beam: must be >= 1, got 0"),
    ("finetune-nothing-to-finetune", "finetune {run}", None,
     "its model 'mlp' has no fine-tuning model; pre-train one of: bert"),
    ("sample-not-a-gan-run", "sample {run}", None,
     "is a supervised run, not a GAN's (train one with --model gan or --model dcgan)"),
    ("sample-bad-n", "sample {run} --n 0", None, "--n: must be >= 1, got 0"),
    ("adversarial-on-vectors", "train --model gan --data digits", None,
     "--task adversarial: generates images; the data set 'digits' has samples of shape (64,), not (C, H, W)"),
    ("contrastive-on-vectors", "train --model simclr --data digits", None,
     "--task contrastive: learns from images; the data set 'digits' has samples of shape (64,), not (C, H, W)"),
    ("segmentation-on-vectors", "train --model unet --data digits", None,
     "--task segmentation: predicts a class for every pixel; the data set 'digits' is a classification task"),
    ("segmentation-loss", "train --model unet --loss mse", None,
     "--loss mse: a segmentation model is trained by the pixels' cross-entropy; use cross_entropy or "
     "cross_entropy_dice"),
    ("not-a-detector", "train --model unet --data shapes-det --task detection", None,
     "--task detection: the model 'unet' is not a detector; train --model centernet"),
    ("pose-on-masks", "train --model keypoint_net --data shapes-seg", None,
     "--task pose: finds the joints of a figure; the data set 'shapes-seg' is a segmentation task"),
    ("dqn-in-epochs", "train --model dqn --epochs 3", None,
     "--epochs: a reinforcement run has no epochs; give its length in environment steps with --steps"),
    ("dqn-loss", "train --model dqn --loss mse", None, "--loss mse: a DQN learns by the Huber loss of its TD error"),
    ("env-for-a-classifier", "train --model mlp --data env", None,
     "--data env: an environment to act in, not samples to learn from; the supervised task cannot train on it "
     "(train an agent: --model dqn)"),
    ("dqn-on-images", "train --model dqn --data digits", None,
     "--task reinforcement: acts in an environment; the data set 'digits' is a classification task"),
    ("env-unknown", "train --model dqn --env NoSuchEnv-v0 --steps 10", None,
     "--data env: gymnasium has no environment 'NoSuchEnv-v0'"),
    ("env-builtin-missing", "train --model dqn --env Acrobot-v1 --backend builtin --steps 10", None,
     "--data env: no built-in environment 'Acrobot-v1' (built in: CartPole-v1); use backend gymnasium"),
    ("episodes-not-rl", "evaluate {run} --episodes 5", None,
     "--episodes: {run} is a classification run; episodes are played by a reinforcement run's agent"),
    ("best-not-kept", "evaluate {run} --best", None, "--best: {run} keeps no best snapshot (best.safetensors)"),
    ("init-from-nothing", "train --init-from {tmp}/none --epochs 1", None,
     "--init-from {tmp}/none: no trained model there (expected a run folder with model.safetensors, or a "
     ".safetensors file)"),
    # ---- runs ----
    ("diverged", "train --lr 1e6 --epochs 2", None,
     "training diverged at step 2 (epoch 1): the loss is 1.8e+13, over 10,000 times its first value 2.395; no "
     "checkpoint was kept; try a lower learning rate than 1e+06"),
    ("diverged-keeps-checkpoint", "train --optimizer sgd --lr 1e6 --no-batch-norm --checkpoint-every 1 --out {tmp}/d",
     None, "the last good checkpoint (step 1) is kept in {tmp}/d/checkpoint.safetensors"),
    ("weights-of-another-model", "evaluate {tmp}/other", "foreign",
     "{tmp}/other/model.safetensors: Error(s) in loading state_dict for MLP (is it another model's?): size mismatch "
     "for layers.0.weight"),
    ("tune-storage-url", "tune --space lr=1e-3:1e-2:log --storage foo://bar", None,
     "--storage foo://bar: not a database URL dlbasics can use: 'foo' is not one of sqlite, postgresql"),
    ("tune-storage-unreachable", "tune --space lr=1e-3:1e-2:log --storage postgresql://me:pw@127.0.0.1:1/dlbasics",
     None, "--storage postgresql://me:***@127.0.0.1:1/dlbasics: cannot connect to the server at 127.0.0.1:1"),
    ("tune-without-space", "tune", None, "tune: give at least one --space NAME=SPEC"),
    ("tune-bad-space", "tune --space lr=0:1:log --storage {tmp}/t.db", None, "a log-scale range needs low > 0"),
    ("cv-one-fold", "cv --k 1", None, "--k: k must be at least 2 folds, got 1"),
    ("ensemble-of-one", "ensemble --members 1", None, "--members: an ensemble needs at least 2 members, got 1"),
    ("compress-rank-and-energy", "compress {run} --rank 2 --energy 0.5", None,
     "compress: give exactly one of --energy"),
]

# Mistakes whose test lives elsewhere (a Python API, or another exit status): id -> test
ELSEWHERE = {
    "model-default-data": "tests/train/test_config.py::test_the_default_data_is_the_models_own",
    "threads": "tests/test_cli.py::test_threads_option_limits_blas",
    "interrupted": "tests/train/test_resume.py::test_train_resume_on_the_command_line",
    "killed": "tests/train/test_resume.py::test_sigkill_at_20_random_moments_then_resume_reaches_the_same_weights",
    "empty-split": "tests/data/test_checks.py::test_empty_split",
    "nan-in-inputs": "tests/data/test_checks.py::test_nan_in_train_inputs",
    "nan-in-fit": "tests/test_errors.py::test_fit_on_nan_data_stops_at_the_first_step",
    "evaluation-fails-after-training": "tests/test_errors.py::test_a_failing_test_evaluation_keeps_the_model",
    "run-folders-collide": "tests/train/test_rundir.py::test_new_runs_never_share_a_folder",
    "predict-wrong-shape": "tests/train/test_rundir.py::test_predict_errors_name_the_shapes",
    "lab-all-without-data": "tests/test_errors.py::test_lab_all_skips_what_has_no_data",
    "tune-storage-driver-missing": "tests/train/test_tune_postgres.py::test_a_missing_driver_names_the_extra",
    "not-a-rank-command": "tests/distributed/test_train.py::test_commands_that_do_not_run_as_ranks_say_which_do",
    "task-not-data-parallel": "tests/distributed/test_shares.py::"
                              "test_only_tasks_whose_loss_and_evaluation_are_means_over_samples_train_on_ranks",
    "cv-workers-and-ranks": "tests/distributed/test_shares.py::test_cv_workers_and_mpi_ranks_do_not_mix",
    "rank-failed": "tests/distributed/test_mpi.py::test_a_failing_rank_ends_the_job_within_seconds",
    "idx-corrupt": "tests/data/test_reader_fuzz.py::test_idx_reader_on_mutated_and_random_files",
    "cifar-corrupt": "tests/data/test_reader_fuzz.py::test_cifar_batch_reader_on_mutated_and_random_files",
    "checkpoint-corrupt": "tests/data/test_reader_fuzz.py::test_read_checkpoint_on_mutated_and_random_files",
    "toml-corrupt": "tests/data/test_reader_fuzz.py::test_read_toml_on_mutated_and_random_files",
    "vocabulary-corrupt": "tests/data/test_reader_fuzz.py::test_tokenizer_reader_on_mutated_and_random_files",
    "text-corrupt": "tests/data/test_reader_fuzz.py::test_text_data_set_on_mutated_and_random_files",
    "pairs-corrupt": "tests/data/test_reader_fuzz.py::test_sentence_pairs_on_mutated_and_random_files",
}


@pytest.mark.parametrize("case, argv, setup, message", CASES, ids=[c[0] for c in CASES])
def test_each_mistake_is_one_line_and_exit_2(case, argv, setup, message, tmp_path, run_dir, capsys):
    if case.startswith("tune"):
        pytest.importorskip("optuna")
    if "postgresql://" in argv:
        pytest.importorskip("psycopg")
    values = _setup(setup or "", tmp_path, run_dir)
    args = argv.format(**values).split()
    fresh = args[0] == "train" and "--out" not in args and "--resume" not in args
    out = tmp_path / "never"
    if fresh or args[0] in ("cv", "ensemble", "tune"):
        args += ["--out", str(out), "--quiet"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlbasics: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert message.format(**values) in err, err
    if case not in ("diverged", "diverged-keeps-checkpoint"):
        assert not out.exists()  # a run that cannot start leaves nothing behind


def test_a_diverged_run_keeps_its_last_good_checkpoint(tmp_path):
    from dlbasics.train.checkpoint import read_checkpoint

    assert main(["train", "--optimizer", "sgd", "--lr", "1e6", "--no-batch-norm", "--checkpoint-every", "1", "--out",
                 str(tmp_path / "d"), "--quiet"]) == 2
    state = read_checkpoint(tmp_path / "d" / "checkpoint.safetensors")
    assert state["position"]["step"] == 1
    weights = state["task"]["modules"]["model"]
    assert all(np.isfinite(w).all() for w in weights.values())


def test_fit_on_nan_data_stops_at_the_first_step():
    x = np.random.default_rng(0).random((64, 4)).astype(np.float32)
    x[5, 2] = np.nan
    model = nn.Linear(4, 3)
    with pytest.raises(DivergedError, match=r"training diverged at step 1 \(epoch 1\): the loss is nan"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
            DataLoader(TensorDataset(x, np.zeros(64, dtype=np.int64)), batch_size=64), epochs=1, verbose=0)
    assert np.isfinite(model.weight.data).all()  # the step that saw the NaN changed nothing


def test_a_failing_test_evaluation_keeps_the_model(tmp_path, monkeypatch, capsys):
    from dlbasics.errors import DataError
    from dlbasics.train.task import SupervisedTask

    real, calls = SupervisedTask.evaluate, []

    def evaluate(self, loader):
        calls.append(1)
        if len(calls) == 3:  # after the two epochs' validations: the test split
            raise DataError("the test split cannot be read")
        return real(self, loader)

    monkeypatch.setattr(SupervisedTask, "evaluate", evaluate)
    assert main(["train", "--epochs", "2", "--hidden", "8", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert (tmp_path / "r" / "model.safetensors").is_file() and (tmp_path / "r" / "metrics.csv").is_file()


def test_lab_all_skips_what_has_no_data(tmp_path, monkeypatch, capsys):
    import dlbasics.data.datasets as D
    import dlbasics.lab as lab

    monkeypatch.setattr(D, "FASHION_MNIST_ROOT", tmp_path / "nowhere")
    monkeypatch.setattr(lab, "EXPERIMENTS", ("linear-regression", "resnet-depth"))
    assert main(["lab", "all", "--quick", "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"linear-regression\s+ok", out)
    assert re.search(r"resnet-depth\s+skipped .*apt-get install dataset-fashion-mnist", out), out
    page = (tmp_path / "report" / "index.html").read_text()
    assert "apt-get install dataset-fashion-mnist" in page


def test_a_library_bug_keeps_its_traceback(monkeypatch):
    from dlbasics.train import commands

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(commands, "train", broken)
    with pytest.raises(ZeroDivisionError):
        main(["train"])


def test_debug_shows_the_traceback_of_a_mistake(monkeypatch):
    from dlbasics.errors import ConfigError

    monkeypatch.setenv("DLBASICS_DEBUG", "1")
    with pytest.raises(ConfigError):
        main(["train", "--lr", "0"])


def test_the_catalogue_lists_every_case():
    text = CATALOGUE.read_text()
    ids = [c[0] for c in CASES] + list(ELSEWHERE)
    missing = [i for i in ids if f"`{i}`" not in text]
    assert not missing, f"docs/errors.md has no row for {missing}"
    root = Path(__file__).resolve().parents[1]
    for test in ELSEWHERE.values():
        file, name = test.split("::")
        assert f"def {name}(" in (root / file).read_text(), test
    rows = re.findall(r"^\| `([\w-]+)` \|", text, flags=re.M)
    assert sorted(rows) == sorted(ids), "docs/errors.md lists a mistake that has no test"
    json.dumps(CASES)  # plain data: the catalogue is generated from nothing else
