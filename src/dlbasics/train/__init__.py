"""Training: ``fit`` puts Data + Model + Loss + Algorithm together; callbacks, metrics, history."""

from dlbasics.train.callbacks import Callback, Checkpoint, EarlyStopping
from dlbasics.train.history import History
from dlbasics.train.loop import evaluate, fit
from dlbasics.train.metrics import METRICS, accuracy, get_metric, mae, mse
from dlbasics.train.run import BuildRun, Run, train_run

__all__ = [
           "METRICS",
           "BuildRun",
           "Callback",
           "Checkpoint",
           "EarlyStopping",
           "History",
           "Run",
           "accuracy",
           "evaluate",
           "fit",
           "get_metric",
           "mae",
           "mse",
           "train_run",
]
