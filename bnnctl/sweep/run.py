"""A planned grid trained: each pending cell x seed through a launcher, progress to an observer, outcomes collected.

A folder without ``DONE`` is an interrupted run: it continues from its last
finished epoch (``training.resume``). One failed cell never stops the grid;
its failure is collected in the result and its ``error.txt``.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnnctl.config import LauncherConfig
from bnnctl.errors import RunError
from bnnctl.runs.folder import Run
from bnnctl.runs.making import fresh_run
from bnnctl.sweep.launchers import first_line, launcher_class, make_launcher
from bnnctl.sweep.lock import GridLock
from bnnctl.sweep.plan import CellTask, GridPlan, write_grid_manifest
from bnnctl.sweep.reuse import adopt_finished_twins, set_aside_damaged


class Outcome(enum.StrEnum):
    trained = "trained"
    skipped = "skipped"  # already DONE
    failed = "failed"


@dataclass(frozen=True)
class CellOutcome:
    """What happened to one cell x seed."""

    outcome: Outcome
    summary: dict[str, Any] | None = None
    error: str | None = None
    wall_s: float = 0.0


@dataclass
class GridResult:
    plan: GridPlan
    damaged: list[tuple[CellTask, Path]] = field(default_factory=list)  # set aside (renamed), trained again
    skipped: list[CellTask] = field(default_factory=list)
    shared: list[tuple[CellTask, Path]] = field(default_factory=list)  # copied from another grid's finished run
    done: list[tuple[CellTask, CellOutcome]] = field(default_factory=list)
    failed: list[tuple[CellTask, str]] = field(default_factory=list)
    wall_s: float = 0.0  # this invocation's training, from the first submission to the last result
    concurrency: str = ""  # e.g. "1 at once x 2 threads"
    # Filled by whoever writes the grid's results (bnnctl.ablate): the shown table, its numbers, the files.
    table: Any = None
    cells: Any = None
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def samples_trained(self) -> float:
        """Training examples the runs trained here processed (epochs x examples per epoch, from their summaries)."""
        total = 0.0
        for _, outcome in self.done:
            s = outcome.summary or {}
            epochs = s.get("epochs", 0) - (s.get("resumed_from_epoch") or 0)
            total += float(s.get("samples_per_s") or 0) * float(s.get("epoch_time_s") or 0) * epochs
        return total

    @property
    def samples_per_s(self) -> float:
        """The grid's training throughput: every run's samples over the wall time (all workers together)."""
        return self.samples_trained / self.wall_s if self.wall_s else 0.0


def run_cell(task: CellTask) -> CellOutcome:
    """Train one cell x seed into its run folder; runs in a worker. Never raises: failures are returned.

    A folder without DONE is what an interrupted run left: when it holds a
    resume state of this same config, training continues from its last
    finished epoch (the numbers an uninterrupted run gives); otherwise it is
    cleared and the run starts again, so a grid never mixes two experiments.
    """
    from bnnctl.training import train_into
    from bnnctl.training.resume import can_resume

    t0 = time.perf_counter()
    run = Run(Path(task.run_dir))
    if run.done:
        return CellOutcome(Outcome.skipped)
    try:
        resume = can_resume(run, task.cfg)
        summary = train_into(run if resume else fresh_run(task.run_dir), task.cfg, task.overrides, resume=resume)
        return CellOutcome(Outcome.trained, summary=summary, wall_s=time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - one failed cell must not stop the grid; error.txt has the traceback
        return CellOutcome(Outcome.failed, error=first_line(exc), wall_s=time.perf_counter() - t0)


class GridObserver:
    """Receives the grid's progress; the default does nothing."""

    def on_grid_start(self, plan: GridPlan, pending: list[CellTask]) -> None: ...

    def on_cell_start(self, task: CellTask) -> None: ...

    def on_cell_epoch(self, task: CellTask, record: dict[str, Any]) -> None:
        """A running cell finished an epoch (its newest metrics record), seen while the grid waits."""

    def on_cell_end(self, task: CellTask, outcome: CellOutcome) -> None: ...

    def on_grid_end(self, result: GridResult) -> None: ...

    def close(self) -> None:
        """Stop any live display (called however the grid ended)."""


def _prepare_data(tasks: list[CellTask]) -> None:
    """Each dataset the pending runs use, found (or downloaded) once here, before any worker starts."""
    from bnnctl.data import prepare_dataset

    distinct: dict[tuple, Any] = {}
    for task in tasks:
        data = task.cfg.data
        distinct.setdefault((data.name, data.root, data.download), data)
    for data in distinct.values():
        prepare_dataset(data)


class EpochWatch:
    """Reads the running cells' metrics files and reports each newly finished epoch to the observer.

    Workers append a record to their run folder's metrics.jsonl after every
    epoch, wherever they run (a worker process, a Ray node or a SLURM job on a
    shared file system), so the run folder itself is the progress channel.
    """

    def __init__(self, observer: GridObserver):
        self.observer = observer
        self.seen: dict[str, int] = {}

    def __call__(self, running: list[CellTask]) -> None:
        for task in running:
            try:
                epochs = [r for r in Run(Path(task.run_dir)).metrics() if r.get("kind") == "epoch"]
            except (RunError, OSError):
                continue
            if epochs and len(epochs) != self.seen.get(task.run_dir):
                self.seen[task.run_dir] = len(epochs)
                self.observer.on_cell_epoch(task, epochs[-1])


def _uses_gpu(tasks: list[CellTask]) -> bool:
    import torch

    return torch.cuda.is_available() and any(
        t.cfg.train.device == "auto" or t.cfg.train.device.startswith("cuda") for t in tasks
    )


def run_grid(plan: GridPlan, launcher_cfg: LauncherConfig, observer: GridObserver | None = None) -> GridResult:
    """Train every pending cell x seed with the chosen launcher; failures are collected, not raised."""
    observer = observer or GridObserver()
    launcher_class(launcher_cfg.name)  # a bad launcher name fails before anything is written
    _prepare_data(plan.pending())
    result = GridResult(plan)
    with GridLock(plan.grid_dir):
        write_grid_manifest(plan)
        result.damaged = set_aside_damaged(plan)
        result.shared = adopt_finished_twins(plan)
        pending = plan.pending()
        to_run = {t.run_dir for t in pending}
        result.skipped = [t for t in plan.tasks if t.run_dir not in to_run]
        observer.on_grid_start(plan, pending)
        if pending:
            launcher = make_launcher(launcher_cfg, len(pending), _uses_gpu(pending), plan.grid_dir)
            result.concurrency = f"{launcher.max_in_flight} at once x {launcher.threads} threads"
            t0 = time.perf_counter()
            watch = EpochWatch(observer)
            for task, returned in launcher.map(run_cell, pending, on_start=observer.on_cell_start, on_poll=watch):
                outcome = returned.value if returned.ok else CellOutcome(Outcome.failed, error=returned.error)
                assert outcome is not None  # run_cell returns an outcome whenever it returns
                if outcome.outcome is Outcome.failed:
                    result.failed.append((task, outcome.error or "unknown error"))
                elif outcome.outcome is Outcome.trained:
                    result.done.append((task, outcome))
                else:
                    result.skipped.append(task)
                observer.on_cell_end(task, outcome)
            result.wall_s = time.perf_counter() - t0
    observer.on_grid_end(result)
    return result
