"""Train, evaluate and export: a run from its config to its packed file.

Each function here is the one implementation of its command (``bnnctl train``,
``bnnctl eval [--packed]``, ``bnnctl export``); the CLI parses, calls it and
prints what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnnctl.process import computing

if TYPE_CHECKING:
    from bnnctl.runs import Run
    from bnnctl.training.trainer import TrainObserver


@dataclass
class TrainResult:
    """A finished (or, under torchrun, a non-main rank's) training.

    ``run`` is the run folder (``None`` on a torchrun rank other than 0, which
    trains its share and writes nothing); ``summary`` its headline numbers.
    """

    run: Run | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path | None:
        return self.run.path if self.run is not None else None

    def metrics(self) -> list[dict[str, Any]]:
        """Every record of metrics.jsonl: one per epoch (``kind: epoch``) and per periodic validation."""
        return self.run.metrics() if self.run is not None else []

    def to_json(self) -> dict[str, Any]:
        return {**self.summary, "run_dir": str(self.path) if self.path else None}


def train(
    overrides: Sequence[str] = (),
    *,
    resume: str | Path | None = None,
    observer: TrainObserver | None = None,
    on_run: Any = None,
) -> TrainResult:
    """Train as ``bnnctl train OVERRIDES...`` does (``resume=RUN_DIR``: ``bnnctl train --resume RUN_DIR``).

    ``runs_dir=PATH`` among the overrides says where the run folder goes. Under
    torchrun, rank 0 writes the folder and the other ranks return a result
    without one. A new run that fails before its first epoch leaves no folder;
    a resumed one keeps what it had. ``on_run(run)`` is called once the folder
    exists (the CLI uses it to say where finished epochs are kept).
    """
    from bnnctl.runs import discard_if_untrained
    from bnnctl.training import train_into

    overrides = list(overrides)
    with computing():
        if _is_other_torchrun_rank():
            return _train_as_other_rank(overrides)
        run, cfg = _run_to_resume(Path(resume), overrides) if resume is not None else _new_run(overrides)
        if on_run is not None:
            on_run(run)
        try:
            summary = train_into(run, cfg, overrides, observer, resume=resume is not None)
        except BaseException:
            if resume is None:
                discard_if_untrained(run)  # the data was missing, or Ctrl-C came early
            raise
        assert summary is not None  # rank 0 trains here (the other torchrun ranks returned above)
        return TrainResult(run, summary)


def _is_other_torchrun_rank() -> bool:
    from bnnctl.distributed.launch import torchrun_rank

    launched = torchrun_rank()
    return launched is not None and not launched.is_main


def _train_as_other_rank(overrides: list[str]) -> TrainResult:
    """Under torchrun, ranks other than 0 train their share and write nothing: rank 0 has the folder and output."""
    from bnnctl.config import split_runs_dir
    from bnnctl.config.load import compose_train
    from bnnctl.distributed.ddp import with_launched_world
    from bnnctl.training import fit

    _, hydra_overrides = split_runs_dir(overrides)
    fit(with_launched_world(compose_train(hydra_overrides)), overrides=overrides)
    return TrainResult(None)


def _new_run(overrides: list[str]):
    from bnnctl.config import split_runs_dir
    from bnnctl.config.load import compose_train
    from bnnctl.distributed.ddp import with_launched_world
    from bnnctl.runs import create_run

    runs_dir, hydra_overrides = split_runs_dir(overrides)
    cfg = with_launched_world(compose_train(hydra_overrides))  # under torchrun, its world size
    return create_run(runs_dir, "train", cfg.run_name, cfg), cfg


def _run_to_resume(path: Path, overrides: list[str]):
    from bnnctl.runs import open_run
    from bnnctl.training.resume import config_to_resume

    run = open_run(path)
    return run, config_to_resume(run, overrides)


def evaluate(run_dir: str | Path, *, data_root: str | None = None, device: str | None = None) -> dict[str, Any]:
    """``bnnctl eval RUN_DIR``: the checkpoint on the test set (``eval.json`` in the run folder).

    Returns the metrics and ``layers``: per layer, weights, bits per weight and
    bytes deployed vs float32.
    """
    from bnnctl.training import evaluate_run

    with computing():
        return evaluate_run(run_dir, data_root=data_root, device=device)


def evaluate_packed(run_dir: str | Path, *, data_root: str | None = None) -> dict[str, Any]:
    """``bnnctl eval RUN_DIR --packed``: float and packed model on the test set, predictions compared.

    ``identical_predictions`` is False when any image's class differs (the CLI's exit 1).
    """
    from bnnctl.packed.runs import evaluate_packed as run_packed

    with computing():
        return run_packed(run_dir, data_root=data_root)


def export(run_dir: str | Path, output: str | Path | None = None) -> dict[str, Any]:
    """``bnnctl export RUN_DIR [-o FILE]``: the packed model file and its size beside the checkpoint's."""
    from bnnctl.packed.runs import export_run

    with computing():
        return export_run(run_dir, output)
