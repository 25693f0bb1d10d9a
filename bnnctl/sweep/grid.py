"""Ablation grids: a grid file -> cells x seeds -> one ordinary run folder each.

A cell is one combination of the grid's axis values; it runs once per seed.
Each cell x seed is a training run folder at
``<runs_dir>/ablate/<grid>/cells/<cell id>/seed-<n>/`` (``runs.cell_run_dir``),
where the cell id hashes what the cell's config sets differently from the
schema defaults, without the seed (``runs.cell_id``). A rerun of the same grid
therefore finds the folders it finished (``DONE``), skips them, and trains only
what is missing: a grid survives Ctrl-C, ``kill -9`` and power loss with
nothing finished lost. A folder without ``DONE`` is an interrupted run: it
continues from its last finished epoch (``training.resume``).

Every cell's config is composed and validated before the first cell starts,
so a typo in an override fails in a second, not an hour into the grid.
"""

from __future__ import annotations

import dataclasses
import enum
import fcntl
import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bnnctl.config import AblationConfig, LauncherConfig, TrainConfig, compose_train, split_runs_dir
from bnnctl.config.sweep import override_key
from bnnctl.errors import ConfigError, RunError
from bnnctl.runs import Run, Status, cell_id, cell_run_dir, fresh_run, grid_dir, set_aside, write_manifest
from bnnctl.sweep.launchers import first_line, launcher_class, make_launcher


@dataclass(frozen=True)
class Cell:
    """One combination of axis values, e.g. label 'W+G' = {weight_clip: true, dropout: 0.0, grad_clip: true}."""

    label: str
    settings: dict[str, Any]
    overrides: tuple[str, ...]  # fixed + axes + the command line's, without the seed
    cell_id: str = ""  # runs.cell_id of its resolved config


@dataclass
class CellTask:
    """One cell x seed, as a launcher hands it to a worker (picklable)."""

    cell: Cell
    seed: int
    cfg: TrainConfig
    overrides: list[str]
    run_dir: str

    @property
    def key(self) -> str:
        return f"{self.cell.label} seed {self.seed}"


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
class GridPlan:
    grid: AblationConfig
    grid_dir: Path
    cells: list[Cell]
    tasks: list[CellTask]
    user_overrides: list[str]

    def pending(self) -> list[CellTask]:
        return [t for t in self.tasks if not Run(Path(t.run_dir)).done]


def finished_twin(task: CellTask) -> Path | None:
    """A finished run of the same cell id and seed in another grid of the same runs folder, if one exists.

    Cell ids hash the resolved config, so a twin is the same experiment; the
    ``report_attribution`` grid's faithful cells are ``clip_dropout_report``'s.
    """
    run_dir = Path(task.run_dir)  # <runs_dir>/ablate/<grid>/cells/<cell id>/seed-<n>
    grid = run_dir.parents[2]
    for other in sorted(grid.parent.iterdir()):
        twin = cell_run_dir(other, task.cell.cell_id, task.seed)
        if other != grid and Run(twin).status() is Status.done:
            return twin
    return None


def adopt_finished_twins(plan: GridPlan) -> list[tuple[CellTask, Path]]:
    """Copy each pending run that another grid has finished (copied, not linked: a grid folder stands alone).

    The copy lands under a temporary name and is renamed into place, so an
    interrupted copy is never mistaken for a finished run; ``shared_from.txt``
    names the source.
    """
    adopted = []
    for task in plan.pending():
        twin = finished_twin(task)
        if twin is None:
            continue
        target = Path(task.run_dir)
        staging = target.with_name(target.name + ".copying")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(twin, staging)
        (staging / "shared_from.txt").write_text(f"{twin}\n")
        if target.exists():
            shutil.rmtree(target)  # an interrupted attempt of this grid's own
        staging.rename(target)
        adopted.append((task, twin))
    return adopted


def set_aside_damaged(plan: GridPlan) -> list[tuple[CellTask, Path]]:
    """Rename each finished run whose summary cannot be read to ``seed-<n>.damaged``, so the grid trains it again.

    Without this a DONE marker beside a truncated summary would be skipped by
    every rerun while no table could count it.
    """
    moved = []
    for task in plan.tasks:
        run = Run(Path(task.run_dir))
        if run.done and run.status() is Status.damaged:
            moved.append((task, set_aside(run)))
    return moved


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


def hydra_value(value: Any) -> str:
    """A Python value as a Hydra override value (true/false/null, numbers, lists, strings)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    return str(value)


def _label(axes: list[Any], indices: tuple[int, ...], baseline: str) -> str:
    parts = []
    for axis, i in zip(axes, indices, strict=True):
        if i == 0:
            continue
        short = axis.short or axis.key
        parts.append(short if len(axis.values) == 2 else f"{short}={axis.values[i]}")
    return "+".join(parts) or baseline


def _check_user_overrides(grid: AblationConfig, user_overrides: list[str]) -> None:
    """The command line may not set what the grid varies: an axis, the seed, or a key a listed cell sets."""
    axis_keys = {a.key for a in grid.axes}
    cell_keys = {override_key(o): c.label for c in grid.cells for o in c.overrides}
    for override in user_overrides:
        key = override_key(override)
        if key in axis_keys:
            raise ConfigError(f"{key} is an axis of grid {grid.name!r}: it cannot be overridden for every cell")
        if key in cell_keys:
            raise ConfigError(
                f"{key} is what cell {cell_keys[key]!r} of grid {grid.name!r} changes: it cannot be overridden for every cell"
            )
        if key == "train.seed":
            raise ConfigError("train.seed is set per run by the grid: use ablation.seeds=[0,1,2] instead")


def _axis_combos(axes: list[Any]) -> list[tuple[int, ...]]:
    """Every combination of axis value indices: baseline first, then by number of changes (the report's order)."""
    return sorted(
        itertools.product(*[range(len(a.values)) for a in axes]),
        key=lambda idx: (sum(i > 0 for i in idx), [-(i > 0) for i in idx], idx),
    )


def expand_cells(grid: AblationConfig, user_overrides: list[str]) -> list[Cell]:
    """The grid's cells in table order.

    Axes only: every combination of axis values. Listed ``cells``: each in the
    order given, crossed with the axes (with its own ``values`` where it gives
    them); its label is the cell's, joined with the axis labels (``logits+D``),
    and its settings record the change (``change``) beside the axis values.
    """
    _check_user_overrides(grid, user_overrides)
    specs = grid.cells or [None]
    cells = []
    for spec in specs:
        axes = [
            dataclasses.replace(a, values=list(spec.values[a.key])) if spec and a.key in spec.values else a
            for a in grid.axes
        ]
        for idx in _axis_combos(axes):
            settings = {a.key: a.values[i] for a, i in zip(axes, idx, strict=True)}
            axis_overrides = [f"{k}={hydra_value(v)}" for k, v in settings.items()]
            if spec is None:
                label = _label(axes, idx, grid.baseline_label)
                overrides = (*grid.fixed, *axis_overrides, *user_overrides)
            else:
                label = "+".join([spec.label, *filter(None, [_label(axes, idx, "")])])
                settings = {"change": spec.label, **settings}
                overrides = (*grid.fixed, *spec.overrides, *axis_overrides, *user_overrides)
            cells.append(Cell(label, settings, overrides))
    return cells


def plan_grid(grid: AblationConfig, user_overrides: list[str]) -> GridPlan:
    """Compose and validate every cell x seed config; fix each run folder's path.

    ``runs_dir=PATH`` among ``user_overrides`` says where the grid folder goes.
    """
    runs_dir, user_overrides = split_runs_dir(list(user_overrides))
    folder = grid_dir(runs_dir, grid.name)
    tasks: list[CellTask] = []
    planned: list[Cell] = []
    seen: dict[str, str] = {}
    for cell in expand_cells(grid, user_overrides):
        # The seed changes nothing Hydra composes or validation checks: compose once per cell.
        try:
            base = compose_train([*cell.overrides, f"train.seed={grid.seeds[0]}"])
        except ConfigError as exc:
            raise ConfigError(f"cell {cell.label!r} of grid {grid.name!r}: {exc}") from None
        base.name = f"{grid.name}/{cell.label}"
        cid = cell_id(base)
        cell = dataclasses.replace(cell, cell_id=cid)
        planned.append(cell)
        if cid in seen:
            if grid.cells:  # a listed cell that equals another (e.g. a dropout variant without dropout) shares its runs
                continue
            raise ConfigError(
                f"cells {seen[cid]!r} and {cell.label!r} of grid {grid.name!r} resolve to the same config"
            )
        seen[cid] = cell.label
        for seed in grid.seeds:
            logger = dataclasses.replace(  # an MLflow experiment per grid, each run tagged with its cell and seed
                base.logger,
                experiment=base.logger.experiment or grid.name,
                tags={**base.logger.tags, "grid": grid.name, "cell": cell.label, "seed": str(seed)},
            )
            cfg = dataclasses.replace(base, train=dataclasses.replace(base.train, seed=seed), logger=logger)
            tasks.append(
                CellTask(cell, seed, cfg, [*cell.overrides, f"train.seed={seed}"], str(cell_run_dir(folder, cid, seed)))
            )
    return GridPlan(grid, folder, planned, tasks, user_overrides)


def write_grid_manifest(plan: GridPlan) -> Path:
    """grid.yaml: the grid, the command line's overrides and each cell's id, for ``ablate table``."""
    return write_manifest(
        plan.grid_dir,
        {
            "grid": OmegaConf.to_container(OmegaConf.structured(plan.grid), enum_to_str=True),
            "overrides": plan.user_overrides,
            "cells": [
                {"label": c.label, "id": c.cell_id, "settings": c.settings, "overrides": list(c.overrides)}
                for c in plan.cells
            ],
        },
    )


class GridLock:
    """An exclusive lock on a grid folder: two drivers on one grid would train the same cells twice."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> GridLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise RunError(
                f"grid {self.path.parent} is already running (pid {holder}); wait for it or stop it"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


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


def split_grid_args(args: list[str]) -> tuple[str, list[str], list[str], list[str]]:
    """``[NAME] [overrides]`` -> (grid name, ablation.* overrides, launcher overrides, per-cell overrides)."""
    name = "clip_dropout"
    grid_overrides, launcher_overrides, cell_overrides = [], [], []
    for i, arg in enumerate(args):
        key = arg.partition("=")[0]
        if i == 0 and "=" not in arg:
            name = arg
        elif "=" not in arg:
            raise ConfigError(f"unexpected argument {arg!r}: the grid name comes first, then key=value overrides")
        elif key.startswith("ablation."):
            grid_overrides.append(arg)
        elif key == "launcher" or key.startswith("launcher."):
            launcher_overrides.append(arg)
        else:
            cell_overrides.append(arg)
    return name, grid_overrides, launcher_overrides, cell_overrides
