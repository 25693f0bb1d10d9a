"""Progress displays: rich bars on a terminal, one plain line per event otherwise.

Each observer has ``close()``, which commands call in a ``finally``: a live
bar never outlives the work it shows, however that work ended.
"""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bnnctl.cli.common import err, live_progress, say, show_progress
from bnnctl.sweep import GridObserver, Outcome
from bnnctl.training import TrainObserver


def _bar(*columns) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        *columns,
        console=err,
        transient=False,
    )


class LineObserver(TrainObserver):
    def on_fit_start(self, *, epochs, steps_per_epoch, run, device):
        where = f" -> {run.path}" if run is not None else ""
        say(f"training {epochs} epochs x {steps_per_epoch} steps on {device}{where}")

    def on_resume(self, history):
        if history:
            say(f"resuming after epoch {len(history)} (the state it saved); epochs 1-{len(history)} are not retrained")

    def on_epoch_end(self, record):
        parts = [f"epoch {record['epoch']}", f"loss {record['train_loss']:.4f}", f"train_acc {record['train_acc']:.4f}"]
        parts += [f"{k} {record[k]:.4f}" for k in ("val_acc", "test_acc") if k in record]
        parts.append(f"{record['epoch_time_s']:.1f}s")
        say("  ".join(parts))


class RichObserver(LineObserver):
    def __init__(self):
        self.progress = _bar(TimeElapsedColumn(), TimeRemainingColumn())

    def on_fit_start(self, *, epochs, steps_per_epoch, run, device):
        super().on_fit_start(epochs=epochs, steps_per_epoch=steps_per_epoch, run=run, device=device)
        self.progress.start()
        self.epochs = self.progress.add_task("epochs", total=epochs, info="")
        self.steps = self.progress.add_task("epoch 1", total=steps_per_epoch, info="")

    def on_resume(self, history):
        super().on_resume(history)
        self.progress.update(self.epochs, completed=len(history))

    def on_step(self, *, epoch, step, loss):
        info: dict[str, Any] = {"info": f"loss {loss:.4f}"} if loss is not None else {}
        self.progress.update(self.steps, completed=step, description=f"epoch {epoch + 1}", **info)

    def on_epoch_end(self, record):
        accs = "  ".join(f"{k} {record[k]:.4f}" for k in ("train_acc", "val_acc", "test_acc") if k in record)
        self.progress.update(self.epochs, advance=1, info=accs)
        self.progress.reset(self.steps)

    def close(self):
        self.progress.stop()


def train_observer() -> TrainObserver:
    """Bars on a terminal, one line per epoch elsewhere, nothing with -q."""
    if not show_progress():
        return TrainObserver()
    return RichObserver() if live_progress() else LineObserver()


def _accuracies(record) -> str:
    return "".join(f"  {k} {record[k]:.4f}" for k in ("val_acc", "test_acc") if isinstance(record.get(k), float))


class LineGridObserver(GridObserver):
    def on_grid_start(self, plan, pending):
        self.total, self.finished, self.failed, self.running = len(pending), 0, 0, 0
        skipped = len(plan.tasks) - len(pending)
        say(
            f"grid {plan.grid.name}: {len(plan.cells)} cells x {len(plan.grid.seeds)} seeds = {len(plan.tasks)} runs; "
            f"{skipped} already done, {len(pending)} to train -> {plan.grid_dir}"
        )

    def on_cell_start(self, task):
        self.running += 1
        if not err.is_terminal:
            say(f"start {task.key} -> {task.run_dir}")

    def on_cell_epoch(self, task, record):
        if not err.is_terminal:
            say(f"  {task.key}: epoch {record['epoch']}/{task.cfg.train.epochs}{_accuracies(record)}")

    def on_cell_end(self, task, outcome):
        self.running -= 1
        self.finished += 1
        if outcome.outcome is Outcome.failed:
            self.failed += 1
            say(f"[{self.finished}/{self.total}] FAILED {task.key}: {outcome.error}")
        elif outcome.outcome is Outcome.trained:
            s = outcome.summary or {}
            say(
                f"[{self.finished}/{self.total}] done {task.key}: peak val {s.get('best_val_acc') or float('nan'):.4f} "
                f"(epoch {s.get('best_epoch')}), final val {s.get('final_val_acc') or float('nan'):.4f}, {outcome.wall_s:.0f} s"
            )


class RichGridObserver(LineGridObserver):
    """One bar over the grid's runs; its text shows each running cell's epoch (epoch/epochs)."""

    progress: Progress | None = None

    def __init__(self):
        self.epochs: dict[str, tuple[int, int]] = {}

    def on_grid_start(self, plan, pending):
        super().on_grid_start(plan, pending)
        self.progress = _bar(TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        self.progress.start()
        self.bar = self.progress.add_task(f"grid {plan.grid.name}", total=len(pending), info=self._info())

    def _info(self):
        cells = "  ".join(f"{key} {epoch}/{of}" for key, (epoch, of) in self.epochs.items())
        return f"running {self.running}  failed {self.failed}" + (f"  [{cells}]" if cells else "")

    def on_cell_start(self, task):
        super().on_cell_start(task)
        self.epochs[task.key] = (0, task.cfg.train.epochs)
        assert self.progress is not None  # on_grid_start came first
        self.progress.update(self.bar, info=self._info())

    def on_cell_epoch(self, task, record):
        self.epochs[task.key] = (record["epoch"], task.cfg.train.epochs)
        assert self.progress is not None  # on_grid_start came first
        self.progress.update(self.bar, info=self._info())

    def on_cell_end(self, task, outcome):
        super().on_cell_end(task, outcome)
        self.epochs.pop(task.key, None)
        assert self.progress is not None  # on_grid_start came first
        self.progress.update(self.bar, advance=1, info=self._info())

    def close(self):
        if self.progress is not None:
            self.progress.stop()


def grid_observer() -> GridObserver:
    """A bar on a terminal, one line per event elsewhere, nothing with -q."""
    if not show_progress():
        return GridObserver()
    return RichGridObserver() if live_progress() else LineGridObserver()


class StudyProgress:
    """A bar over a study's settings (dimensions, thresholds, ...) on a terminal; nothing otherwise."""

    def __init__(self, title: str):
        self.title = title
        self.progress: Progress | None = None
        self.bar: TaskID | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if not live_progress():
            return
        if self.progress is None:
            self.progress = _bar(TimeElapsedColumn())
            self.progress.start()
            self.bar = self.progress.add_task(self.title, total=total, info="")
        assert self.bar is not None  # added with the bar
        self.progress.update(self.bar, completed=done, info=label)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
