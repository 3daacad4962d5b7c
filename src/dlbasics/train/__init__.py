"""Training: ``fit`` puts Data + Model + Loss + Algorithm together; callbacks, metrics, history; and the
regularization tools that train many runs - k-fold cross-validation, ensembles, hyperparameter search."""

from dlbasics.train.callbacks import Callback, Checkpoint, EarlyStopping
from dlbasics.train.ensemble import Ensemble, bootstrap_indices, train_ensemble
from dlbasics.train.history import History
from dlbasics.train.kfold import CVResult, cross_validate, fold_indices, targets_of
from dlbasics.train.loop import evaluate, fit
from dlbasics.train.metrics import METRICS, accuracy, get_metric, mae, mse
from dlbasics.train.run import BuildRun, Run, train_run
from dlbasics.train.tuning import Choice, Float, Int, PruningCallback, TuneResult, parse_space, tune, tune_config

__all__ = [
    "METRICS",
    "BuildRun",
    "CVResult",
    "Callback",
    "Checkpoint",
    "Choice",
    "EarlyStopping",
    "Ensemble",
    "Float",
    "History",
    "Int",
    "PruningCallback",
    "Run",
    "TuneResult",
    "accuracy",
    "bootstrap_indices",
    "cross_validate",
    "evaluate",
    "fit",
    "fold_indices",
    "get_metric",
    "mae",
    "mse",
    "parse_space",
    "targets_of",
    "train_ensemble",
    "train_run",
    "tune",
    "tune_config",
]
