"""Training: a run description (``RunConfig``) turned into a task on the one ``Loop``; ``fit``/``evaluate`` for the
supervised case; run folders that resume exactly and load back in one call; callbacks, metrics, history; and
the regularization tools that train many runs - k-fold cross-validation, ensembles, hyperparameter search."""

from dlbasics.train import commands, rundir
from dlbasics.train.adversarial import AdversarialTask
from dlbasics.train.callbacks import Callback, Checkpoint, EarlyStopping
from dlbasics.train.config import RunBuilder, RunConfig
from dlbasics.train.contrastive import ContrastiveTask
from dlbasics.train.detection import DetectionTask
from dlbasics.train.ensemble import Ensemble, bootstrap_indices, train_ensemble
from dlbasics.train.history import History
from dlbasics.train.kfold import CVResult, cross_validate, fold_indices, targets_of
from dlbasics.train.language_model import LanguageModelTask, generate
from dlbasics.train.loop import Loop, evaluate, fit
from dlbasics.train.masked_lm import MaskedLMTask
from dlbasics.train.metrics import METRICS, accuracy, get_metric, mae, mse
from dlbasics.train.pose import PoseTask
from dlbasics.train.reinforcement import ReinforcementTask
from dlbasics.train.run import BuildRun, Run, train_run
from dlbasics.train.rundir import evaluate_run, load_model, open_run
from dlbasics.train.segmentation import SegmentationTask
from dlbasics.train.task import TASKS, SupervisedTask, Task
from dlbasics.train.translation import TranslationTask
from dlbasics.train.tuning import Choice, Float, Int, PruningCallback, TuneResult, parse_space, tune, tune_config
from dlbasics.train.vqa import VQATask

__all__ = [
    "METRICS",
    "TASKS",
    "AdversarialTask",
    "BuildRun",
    "CVResult",
    "Callback",
    "Checkpoint",
    "Choice",
    "ContrastiveTask",
    "DetectionTask",
    "EarlyStopping",
    "Ensemble",
    "Float",
    "History",
    "Int",
    "LanguageModelTask",
    "Loop",
    "MaskedLMTask",
    "PoseTask",
    "PruningCallback",
    "ReinforcementTask",
    "Run",
    "RunBuilder",
    "RunConfig",
    "SegmentationTask",
    "SupervisedTask",
    "Task",
    "TranslationTask",
    "TuneResult",
    "VQATask",
    "accuracy",
    "bootstrap_indices",
    "commands",
    "cross_validate",
    "evaluate",
    "evaluate_run",
    "fit",
    "fold_indices",
    "generate",
    "get_metric",
    "load_model",
    "mae",
    "mse",
    "open_run",
    "parse_space",
    "rundir",
    "targets_of",
    "train_ensemble",
    "train_run",
    "tune",
    "tune_config",
]
