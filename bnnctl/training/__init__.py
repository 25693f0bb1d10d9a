"""Training: ``runtime`` (device, CPU tuning, seeds, compile), ``optim`` (Adam groups, schedules, clipping),
``trainer`` (``Trainer.step`` and the epoch loop), ``fit`` (a whole run, ``train_into`` a run folder),
``evaluation`` (a finished run on the test split)."""

from bnnctl.training.evaluation import evaluate_run
from bnnctl.training.fit import fit, summarize, train_into
from bnnctl.training.runtime import resolve_device, tune_cpu
from bnnctl.training.trainer import Trainer, TrainObserver, evaluate

__all__ = [
    "Trainer",
    "TrainObserver",
    "evaluate",
    "evaluate_run",
    "fit",
    "resolve_device",
    "summarize",
    "train_into",
    "tune_cpu",
]
