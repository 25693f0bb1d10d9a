"""Training: ``runtime`` (device, seeds, compile), ``optim`` (Adam groups, schedules, clipping),
``trainer`` (``Trainer.step`` and the epoch loop), ``observer`` (what training reports as it goes),
``fit`` (a whole run, on one process or a DDP world; ``train_into`` a run folder), ``summary`` (a run's
headline numbers), ``evaluation`` (a finished run on the test split)."""

from bnnctl.training.evaluation import evaluate_run
from bnnctl.training.fit import fit, train_into
from bnnctl.training.observer import TrainObserver
from bnnctl.training.runtime import resolve_device
from bnnctl.training.summary import summarize
from bnnctl.training.trainer import Trainer, evaluate

__all__ = [
    "Trainer",
    "TrainObserver",
    "evaluate",
    "evaluate_run",
    "fit",
    "resolve_device",
    "summarize",
    "train_into",
]
