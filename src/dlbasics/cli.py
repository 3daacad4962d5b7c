"""``dlbasics``: the command line. A run is data + model + loss + algorithm, each chosen by name.

    dlbasics train                                   # MLP on the bundled digits, Adam, cross-entropy
    dlbasics train --model resnet --depth 32 --data fashion-mnist --optimizer sgd --lr 0.1 --momentum 0.9
    dlbasics train --config run.toml                 # the same keys as the options
    dlbasics train --resume runs/mlp-digits-...      # continue a stopped run exactly
    dlbasics generate RUN_DIR --prompt "ROMEO:"     # a text model's continuation of a prompt
    dlbasics translate RUN_DIR "in the beginning"   # a translation run's translation, --beam K for beam search
    dlbasics finetune RUN_DIR --data tweets         # a pre-trained BERT's classifier, trained further
    dlbasics sample RUN_DIR --n 64 --out grid.png   # a GAN run's samples as an image grid
    dlbasics evaluate RUN_DIR | predict RUN_DIR INPUT | zoo | lab | compress | cv | ensemble | tune
    mpiexec -n 2 dlbasics train ...                 # one run, data-parallel on 2 processes (also cv, ensemble)

This module only parses and prints. The run options are generated from the run description
(``train/config.py``) and the registries: a new model, optimizer, data set or schedule brings its options and
choices here by itself. A user's mistake (``dlbasics.errors.DLBasicsError``) prints one line and exits 2; any
other exception is a bug in dlbasics and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from dlbasics.errors import ConfigError, DataNotFoundError, DLBasicsError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise ConfigError(message)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _argument(group: Any, name: str, kind: Any, help: str) -> None:
    """One run option as an argparse argument of ``kind`` (``train.options.Kind``); its default is None, so
    that only the options given on the command line override the config file and the defaults."""
    if kind.base == "bool" and kind.count is None:
        group.add_argument(_flag(name), action=argparse.BooleanOptionalAction, default=None, help=help)
        return
    from dlbasics.train.options import parse_text

    convert = {"int": int, "float": float, "number": parse_text, "any": parse_text}.get(kind.base, str)
    nargs = None if kind.count is None else "+" if kind.count < 0 else kind.count
    # the choices are shown here and checked where every option is checked, the run description (one message
    # for a flag, a TOML key and a Python argument; a flag several models share is checked against the model's own)
    metavar = ("{" + ",".join(map(str, kind.choices)) + "}" if kind.choices else
               {"int": "N", "float": "X", "number": "X", "path": "DIR", "any": "VALUE"}.get(kind.base, "NAME"))
    group.add_argument(_flag(name), type=convert, nargs=nargs, default=None, metavar=metavar, help=help)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options that describe a run: the description's own, then each model's, optimizer's, schedule's and
    data set's, read from their registries."""
    from dlbasics.data.datasets import DATASETS
    from dlbasics.models.registry import MODELS
    from dlbasics.nn.losses import LOSSES
    from dlbasics.optim import OPTIMIZERS
    from dlbasics.optim.schedules import SCHEDULES
    from dlbasics.train.config import FIELDS, component_options
    from dlbasics.train.task import TASKS

    choices = {"task": TASKS, "data": DATASETS, "model": MODELS, "loss": LOSSES, "optimizer": OPTIMIZERS,
               "scheduler": SCHEDULES}
    p.add_argument("--config", metavar="TOML", help="a TOML file of these options: flat keys (lr = 0.1, dashes or "
                   "underscores) or sections ([algorithm] lr = 0.1); the options given here win")
    groups: dict[str, Any] = {}
    for name, f in FIELDS.items():
        section = "run" if f.section == "run" else f.section
        g = groups.setdefault(section, p.add_argument_group(section))
        help = f.help
        if name in choices:
            help += f"; one of: {', '.join(choices[name].available())}"
        _argument(g, name, f.kind, help)
    described = {"model": "each model takes its own, with its own defaults (dlbasics zoo lists the models)",
                 "optimizer": "each optimizer takes its own, with its class's defaults",
                 "scheduler": "each schedule takes its own; lengths count in --schedule-unit",
                 "data": "each data set takes its own"}
    for name, (comp, kind, takers) in component_options().items():
        g = groups.get(f"opts-{comp.chooser}")
        if g is None:
            g = groups[f"opts-{comp.chooser}"] = p.add_argument_group(f"{comp.chooser} options",
                                                                      described[comp.chooser])
        _argument(g, name, kind, f"for {takers}")
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="the run folder (default runs/NAME-TIME; an existing run is never "
                                                "overwritten)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    g.add_argument("--threads", type=int, metavar="N", help="BLAS threads (default: all cores, shared among the "
                   "ranks of mpiexec); 1 when the machine is busy with other work")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dlbasics", description="Deep learning from Data, Model, Loss and Algorithm, on NumPy.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    t = sub.add_parser("train", help="train a model and save the run (defaults: MLP on digits with Adam)",
                       description="Train a model. Options not given come from --config, then the defaults. The run "
                                   "folder keeps a checkpoint, so a stopped run continues with --resume RUN_DIR.")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint (its "
                   "options are the run's own: give none but --quiet, --threads, --data-dir)")
    add_run_options(t)
    f = sub.add_parser("finetune", help="train a pre-trained run's model further on a task of its own (BERT -> a "
                       "classifier)", description="Fine-tune: a new run of the model the pre-trained run's model "
                       "is fine-tuned into (bert -> bert_classifier), with the same architecture, its matching "
                       "weights (--init-from RUN_DIR) and its vocabulary; every other option as dlbasics train's.")
    f.add_argument("pretrained", metavar="RUN_DIR", help="the pre-training run")
    add_run_options(f)
    e = sub.add_parser("evaluate", help="evaluate a saved run (any kind) on a split of its data")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--data-dir", metavar="DIR", help="where the run's data files are now, if they moved")
    e.add_argument("--split", default="test", help="train, val or test (default test)")
    e.add_argument("--episodes", type=int, metavar="N", help="a reinforcement run: play N greedy episodes of the "
                   "split (default: the run's own number, 100 for test)")
    e.add_argument("--best", action="store_true", help="evaluate the run's best evaluated snapshot (best.safetensors: "
                   "a GAN's or a DQN's), not the final weights")
    e.add_argument("--threads", type=int, metavar="N", help="BLAS threads")
    r = sub.add_parser("predict", help="a saved run's predictions for new inputs",
                       description="Predict with a run's model: INPUT is a .npy array (N, *input) or one sample, a "
                                   ".csv of features (one sample a row), or image files (a file or a folder of "
                                   ".png/.jpg) for image models, prepared as the run's data was.")
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("input", metavar="INPUT")
    r.add_argument("--out", metavar="FILE", help="write the predictions to FILE (.csv or .npy) instead of printing")
    r.add_argument("--threads", type=int, metavar="N", help="BLAS threads")
    g = sub.add_parser("generate", help="a text model's continuation of a prompt, sampled token by token")
    g.add_argument("run_dir", metavar="RUN_DIR")
    g.add_argument("--prompt", default="\n", help="the text to continue (default a newline)")
    g.add_argument("--tokens", type=int, default=300, metavar="N", help="tokens to sample (default 300)")
    g.add_argument("--temperature", type=float, default=0.8, metavar="X",
                   help="divides the logits: below 1 sharper, above 1 flatter (default 0.8)")
    g.add_argument("--top-k", type=int, default=40, metavar="K",
                   help="sample among the K most likely tokens only; 0 for all (default 40)")
    g.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the sampling (default 0)")
    g.add_argument("--threads", type=int, metavar="N", help="BLAS threads")
    tr = sub.add_parser("translate", help="a translation run's translation of sentences",
                        description="Translate SENTENCE(s) with a translation run's model: the sentence is split into "
                                    "lowercased word tokens as the run's data was, decoded greedily or by beam search.")
    tr.add_argument("run_dir", metavar="RUN_DIR")
    tr.add_argument("sentences", nargs="+", metavar="SENTENCE", help="source sentences (quote each)")
    tr.add_argument("--beam", type=int, default=1, metavar="K", help="beam width; 1 is greedy search (default 1)")
    tr.add_argument("--alpha", type=float, default=0.6, metavar="X",
                    help="length penalty exponent of beam search, GNMT's ((5 + |y|) / 6)^X; 0 for none (default 0.6)")
    tr.add_argument("--threads", type=int, metavar="N", help="BLAS threads")
    sm = sub.add_parser("sample", help="a GAN run's generated images, as a grid PNG",
                        description="Draw N images from a GAN run's generator (its best-FD snapshot, best.safetensors, "
                                    "unless --last) and write them as a grid, 8 to a row.")
    sm.add_argument("run_dir", metavar="RUN_DIR")
    sm.add_argument("--n", type=int, default=64, metavar="N", help="images to draw (default 64)")
    sm.add_argument("--out", default="samples.png", metavar="FILE", help="the PNG to write (default samples.png)")
    sm.add_argument("--seed", type=int, default=0, metavar="N", help="seeds the noise (default 0)")
    sm.add_argument("--last", action="store_true", help="the model at the end of training, not the best-FD snapshot")
    sm.add_argument("--threads", type=int, metavar="N", help="BLAS threads")
    sub.add_parser("zoo", help="list the models with their papers")

    from dlbasics.lab import EXPERIMENTS

    lab = sub.add_parser("lab", help="reproduce a claim of the lecture: figures + a finding with numbers",
                         description="Run one experiment (or all, with an index.html report). Experiments: "
                                     f"{', '.join(EXPERIMENTS)}.")
    lab.add_argument("experiment", metavar="NAME", help="an experiment name, 'all', or 'list'")
    lab.add_argument("--out", metavar="DIR", help="output folder (default report/NAME, or report/ for all)")
    lab.add_argument("--quick", action="store_true", help="the small size used by the tests (seconds)")
    lab.add_argument("--seed", type=int, default=0, help="default 0")
    lab.add_argument("--threads", type=int, metavar="N", help="BLAS threads")

    z = sub.add_parser("compress", help="low-rank (SVD) compression of a trained run's Linear layers",
                       description="Replace each Linear weight W by its rank-k truncation U_k S_k V_k^T (two smaller "
                                   "layers) where that saves parameters; report size and test accuracy before/after.")
    z.add_argument("run_dir", metavar="RUN_DIR")
    z.add_argument("--energy", type=float, help="keep the fewest singular values holding this share of sum(s^2)")
    z.add_argument("--rank", type=int, help="keep k singular values in every layer")
    z.add_argument("--out", metavar="DIR", help="default RUN_DIR/compressed")
    z.add_argument("--data-dir", metavar="DIR", help="where the run's data files are now, if they moved")
    z.add_argument("--recalibrate-bn", action="store_true", help="re-estimate batch-norm statistics afterwards")

    c = sub.add_parser("cv", help="k-fold cross-validation of a run on the train+val data",
                       description="Train one fresh model per fold; report per-fold and mean +- std metrics. "
                                   "The test split stays untouched.")
    add_run_options(c)
    c.add_argument("--k", type=int, default=5, help="number of folds (default 5)")
    c.add_argument("--workers", type=int, default=1, help="folds trained in parallel processes (default 1)")
    c.add_argument("--no-stratify", action="store_true", help="plain KFold instead of StratifiedKFold")

    n = sub.add_parser("ensemble", help="train N members with different seeds and average their predictions",
                       description="Train --members models (seeds SEED, SEED+1, ...; optionally each on a bootstrap "
                                   "resample) and report each member's and the ensemble's test metrics.")
    add_run_options(n)
    n.add_argument("--members", type=int, default=5, help="number of members (default 5)")
    n.add_argument("--bootstrap", action="store_true", help="train each member on a bootstrap resample (bagging)")
    n.add_argument("--average", default="prob", help="prob (average probabilities, default) or logits")

    u = sub.add_parser("tune", help="Bayesian optimization of hyperparameters (Optuna TPE)",
                       description="Search hyperparameters of a run, scoring each trial by its best validation "
                                   "loss. The study lives in a database (an SQLite file, or a PostgreSQL server that "
                                   "several machines share: --storage postgresql://USER@HOST/DB), so rerunning the "
                                   "same command resumes it and several processes can work on one study.")
    add_run_options(u)
    u.add_argument("--space", action="append", metavar="NAME=SPEC", default=[],
                   help="a search dimension, repeatable: lr=1e-4:1e-1:log (float), epochs=5:20:int, "
                        "optimizer=adam,sgd (choice), hidden=64,128x64 (lists with x)")
    u.add_argument("--trials", type=int, default=20, help="trials to add to the study (default 20)")
    u.add_argument("--sampler", default="tpe", help="tpe (default), random, or gp (needs torch)")
    u.add_argument("--storage", default="sqlite:///tune.db", help="study database (default sqlite:///tune.db)")
    u.add_argument("--study", metavar="NAME", help="study name (default tune-MODEL-DATA)")
    u.add_argument("--no-prune", action="store_true", help="do not stop lagging trials early")
    return p


def _version() -> str:
    from dlbasics import __version__

    return f"dlbasics {__version__}"


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line (flat names)."""
    from dlbasics.train.config import option_names

    return {k: getattr(args, k) for k in option_names() if getattr(args, k, None) is not None}


def config_from_args(args: argparse.Namespace) -> Any:
    """Defaults, then the TOML file, then the options given on the command line; checked in one place."""
    from dlbasics.train.config import CLI, RunConfig

    given = run_options(args)
    if args.config:
        return RunConfig.from_toml(args.config, given)
    return RunConfig.from_options(given, CLI)


def set_threads(n: int | None) -> None:
    """At most ``n`` BLAS/OpenMP threads in this process and the processes it starts (the environment for
    libraries not loaded yet, threadpoolctl for those already loaded)."""
    if n is None:
        return
    if n < 1:
        raise ConfigError(f"--threads: must be an integer >= 1, got {n}")
    from dlbasics.train.kfold import _THREAD_ENV

    for var in _THREAD_ENV:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    global _thread_limits
    _thread_limits = threadpool_limits(limits=n)  # kept: the limit holds while the object lives


_thread_limits: Any = None

# the commands that run as MPI ranks (mpiexec -n R dlbasics COMMAND): one run data-parallel, or folds and members
RANK_COMMANDS = ("train", "cv", "ensemble")


def join_ranks(args: argparse.Namespace) -> int:
    """Under ``mpiexec -n R`` (R > 1): join the process group and share the cores (``--threads`` default:
    cores // ranks on this machine); returns this process's rank (0 without mpiexec)."""
    from dlbasics import distributed as dist

    ranks = dist.launched_world_size()
    if ranks == 1:
        return 0
    if args.command not in RANK_COMMANDS:
        raise ConfigError(f"{args.command} runs in one process; of the commands, {', '.join(RANK_COMMANDS)} run as "
                          f"MPI ranks (mpiexec -n {ranks} dlbasics COMMAND)")
    dist.init_process_group("mpi")
    if getattr(args, "threads", None) is None:
        local = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE", ranks))
        args.threads = max(1, (os.cpu_count() or 1) // local)
    return dist.get_rank()


# ---- the commands ---------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> list[str]:
    from dlbasics.train import commands

    verbose = 0 if args.quiet else 1
    if args.resume:
        extra = [k for k in run_options(args) if k != "data_dir"]
        if extra or args.config or args.out:
            given = [_flag(k) for k in extra] + (["--config"] if args.config else []) + (["--out"] if args.out else [])
            raise ConfigError(f"--resume: continues the run as it was described; {', '.join(given)} cannot change "
                              "it (start a new run instead)")
        result = commands.resume(args.resume, verbose, getattr(args, "data_dir", None))
    else:
        result = commands.train(config_from_args(args), args.out, verbose)
    return _train_lines(result)


def _train_lines(result: Any) -> list[str]:
    s = result.summary
    if not s:  # a rank other than 0 of a data-parallel run: rank 0 reports
        return []
    score = ", ".join(f"{k} {v:.4f}" for k, v in s.items() if k.startswith("test_") and v is not None)
    done = f"{s['epochs']} epochs" if "epochs" in s else f"{s['steps']} steps"
    stopped = ", stopped early" if s["stopped_early"] else ""
    return [f"{score}  ({done}{stopped}, {result.seconds:.1f} s)", f"saved to {result.run_dir}"]


def cmd_finetune(args: argparse.Namespace) -> list[str]:
    from dlbasics.train import commands
    from dlbasics.train.config import CLI, RunConfig

    if args.config:
        raise ConfigError("finetune: takes its options from the pre-trained run and the command line, not --config")
    given = commands.finetune_options(args.pretrained, run_options(args))
    return _train_lines(commands.train(RunConfig.from_options(given, CLI), args.out, 0 if args.quiet else 1))


def cmd_evaluate(args: argparse.Namespace) -> list[str]:
    from dlbasics.train.rundir import evaluate_run

    rows = evaluate_run(args.run_dir, args.split, args.data_dir, episodes=args.episodes, best=args.best)
    if len(rows) == 1:
        return [", ".join(f"{args.split}_{k} {v:.4f}" for k, v in rows[0][1].items())]
    width = max(len(name) for name, _ in rows) + 1
    return [f"{name + ':':<{width}} " + ", ".join(f"{args.split}_{k} {v:.4f}" for k, v in r.items())
            for name, r in rows]


def cmd_predict(args: argparse.Namespace) -> list[str]:
    from dlbasics.train.predict import predict_files

    return predict_files(args.run_dir, args.input, args.out)


def cmd_generate(args: argparse.Namespace) -> list[str]:
    from dlbasics.train.language_model import sample_text
    from dlbasics.train.rundir import load_model, load_tokenizer, open_run

    if args.tokens < 0:
        raise ConfigError(f"--tokens: must be >= 0, got {args.tokens}")
    if not args.temperature > 0:
        raise ConfigError(f"--temperature: must be > 0, got {args.temperature}")
    if args.top_k < 0:
        raise ConfigError(f"--top-k: must be >= 0 (0 for all tokens), got {args.top_k}")
    run = open_run(args.run_dir)
    tokenizer = load_tokenizer(run)
    if run.config.task != "language_model":
        use = "dlbasics translate" if run.config.task == "translation" else "a language model's run"
        raise ConfigError(f"generate: {run.path} is a {run.config.task} run, not a language model's; use {use}")
    model = load_model(run)
    try:
        return [sample_text(model, tokenizer, run.config, args.prompt, args.tokens, args.temperature,
                            args.top_k or None, args.seed)]
    except ValueError as e:  # a prompt character the vocabulary does not have
        if isinstance(e, DLBasicsError):
            raise
        raise ConfigError(f"--prompt: {e}") from None


def cmd_translate(args: argparse.Namespace) -> list[str]:
    from dlbasics.train.rundir import load_model, load_tokenizer, open_run
    from dlbasics.train.translation import translate_text

    if args.beam < 1:
        raise ConfigError(f"--beam: must be >= 1, got {args.beam}")
    if not args.alpha >= 0:
        raise ConfigError(f"--alpha: must be >= 0, got {args.alpha}")
    run = open_run(args.run_dir)
    if run.config.task != "translation":
        raise ConfigError(f"translate: {run.path} is a {run.config.task} run, not a translation run "
                          "(train one with --model seq2seq or --model transformer)")
    return translate_text(load_model(run), load_tokenizer(run), args.sentences, args.beam, args.alpha)


def cmd_sample(args: argparse.Namespace) -> list[str]:
    from dlbasics.train.adversarial import save_image_grid
    from dlbasics.train.rundir import load_model, load_weights, open_run

    if args.n < 1:
        raise ConfigError(f"--n: must be >= 1, got {args.n}")
    if not args.out.lower().endswith(".png"):
        raise ConfigError(f"--out {args.out}: writes a PNG; give a file ending in .png")
    run = open_run(args.run_dir)
    if run.config.task != "adversarial":
        raise ConfigError(f"sample: {run.path} is a {run.config.task} run, not a GAN's (train one with --model gan or "
                          "--model dcgan)")
    model = load_model(run)
    best = run.path / "best.safetensors"
    which = "the last model"
    if not args.last and best.is_file():
        load_weights(model, best)
        which = "the best-FD snapshot"
    save_image_grid(model.sample(args.n, args.seed), args.out)
    return [f"{args.n} samples of {which} written to {args.out}"]


def cmd_zoo(args: argparse.Namespace) -> list[str]:
    """One line per model: name, default data, the task that trains it, parameters (built for that data), paper."""
    from dlbasics import models
    from dlbasics.data import datasets
    from dlbasics.train.config import model_options

    lines = [f"{'model':<16} {'default data':<14} {'task':<15} {'parameters':>10}  paper"]
    for name in models.available():
        i = models.info(name)
        try:  # the size depends on the data (a vocabulary); data that is not installed leaves it unknown
            options = model_options(name, datasets.describe(i.default_data))
            # trained parameters: a DQN's frozen target copy is not counted twice
            count = f"{sum(p.numel() for p in models.create(name, **options).parameters() if p.requires_grad):,}"
        except DataNotFoundError:
            count = "?"
        lines.append(f"{name:<16} {i.default_data:<14} {i.task:<15} {count:>10}  {i.paper}")
    return lines


def cmd_lab(args: argparse.Namespace) -> tuple[list[str], int]:
    from pathlib import Path

    from dlbasics import lab

    name = args.experiment
    if name == "list":
        return [f"{n:<24} {lab.get(n).CLAIM}" for n in lab.available()], 0
    if name == "all":
        out_dir = Path(args.out or "report")
        outcomes = lab.run_all(out_dir, quick=args.quick, seed=args.seed)
        lines = []
        for o in outcomes:
            where = out_dir / o.name / "finding.md" if o.status == "ok" else o.reason
            lines.append(f"{o.name:<24} {o.status:<8} {o.seconds:6.1f} s  {where}")
        return [*lines, f"report: {out_dir / 'index.html'}"], lab.exit_status(outcomes)
    canonical = lab.canonical(name)
    out = args.out or f"report/{canonical}"
    finding = lab.run(canonical, Path(out), quick=args.quick, seed=args.seed)
    numbers = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in finding.numbers.items())
    return [f"{finding.title}: {numbers}", f"({finding.seconds:.1f} s) saved to {out}"], 0


def cmd_compress(args: argparse.Namespace) -> list[str]:
    from dlbasics.compress import compress_run

    s = compress_run(args.run_dir, energy=args.energy, rank=args.rank, out_dir=args.out, data_dir=args.data_dir,
                     recalibrate_bn=args.recalibrate_bn)
    metric = next(iter(k for k in s["test_before"] if k != "loss"))
    return [f"ranks {s['ranks']}",
            f"parameters {s['params_before']:,} -> {s['params_after']:,}; test {metric} "
            f"{s['test_before'][metric]:.4f} -> {s['test_after'][metric]:.4f}",
            f"saved to {s['out_dir']}"]


def cmd_cv(args: argparse.Namespace) -> list[str]:
    from dlbasics.train import commands

    result, out_dir = commands.cross_validate(config_from_args(args), args.k, args.workers, not args.no_stratify,
                                              args.out, verbose=0 if args.quiet else 1)
    return [result.table(), f"saved to {out_dir}"]


def cmd_ensemble(args: argparse.Namespace) -> list[str]:
    from dlbasics.train import commands

    s, out_dir = commands.ensemble(config_from_args(args), args.members, args.bootstrap, args.average, args.out)
    if not s:  # a rank other than 0: rank 0 reports
        return []
    metric = next(k for k in s["ensemble"] if k != "loss")
    lines = [f"member {i + 1}: test_loss {r['loss']:.4f}  test_{metric} {r[metric]:.4f}"
             for i, r in enumerate(s["members"])]
    m, e = s["member_mean"], s["ensemble"]
    lines.append(f"member mean: test_loss {m['loss']:.4f}  test_{metric} {m[metric]:.4f}")
    lines.append(f"ensemble: test_loss {e['loss']:.4f}  test_{metric} {e[metric]:.4f}")
    return [*lines, f"saved to {out_dir}"]


def cmd_tune(args: argparse.Namespace) -> list[str]:
    import json

    from dlbasics.train.tuning import parse_space, tune_config

    if not args.space:
        raise ConfigError("tune: give at least one --space NAME=SPEC, e.g. --space lr=1e-4:1e-1:log")
    if args.trials < 1:
        raise ConfigError(f"--trials: must be an integer >= 1, got {args.trials}")
    cfg = config_from_args(args)
    result, out_dir = tune_config(cfg, parse_space(args.space), args.trials, sampler=args.sampler, seed=cfg.seed,
                                  storage=args.storage, study_name=args.study, out_dir=args.out,
                                  verbose=0 if args.quiet else 1, pruner="none" if args.no_prune else "median")
    done = result.count("COMPLETE")
    return [f"{done} complete trials in study {result.study_name!r}; best val_loss {result.best_value:.4f} with "
            f"{json.dumps(result.best_params)}",
            f"saved to {out_dir} (trials.csv, best.json, history.png; the best run's model, trained again)"]


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "generate": cmd_generate,
            "translate": cmd_translate, "finetune": cmd_finetune, "sample": cmd_sample, "zoo": cmd_zoo,
            "compress": cmd_compress, "cv": cmd_cv, "ensemble": cmd_ensemble, "tune": cmd_tune}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 for a user's mistake (one line on stderr), 130 on Ctrl-C."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        rank = join_ranks(args)
        set_threads(getattr(args, "threads", None))
        status = 0
        if args.command == "lab":
            lines, status = cmd_lab(args)
        else:
            lines = COMMANDS[args.command](args)
        if rank == 0:  # the other ranks' work is in rank 0's results
            print("\n".join(lines), flush=True)
        return status
    except DLBasicsError as e:
        if os.environ.get("DLBASICS_DEBUG"):  # the whole story, for a report
            raise
        from dlbasics import distributed as dist

        ranks = dist.launched_world_size()
        where = f" (rank {os.environ.get('OMPI_COMM_WORLD_RANK', os.environ.get('PMI_RANK', '?'))} of {ranks})" \
            if ranks > 1 else ""
        print(f"dlbasics: error{where}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = ""
        if "args" in locals() and getattr(args, "command", None) == "train":
            hint = " (continue a run with: dlbasics train --resume RUN_DIR)"
        print(f"dlbasics: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
