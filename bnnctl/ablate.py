"""Ablation grids: a grid file -> cells x seeds -> one ordinary run folder each.

A cell is one combination of the grid's axis values; it runs once per seed.
Each cell x seed is a training run folder at
``<runs_dir>/ablate/<grid>/cells/<hash8>/seed-<n>/``, where ``hash8`` is the
hash of the cell's resolved training config without the seed (the same rule
as ``bnnctl train``'s run names). A rerun of the same grid therefore finds the
folders it finished (``DONE``), skips them, and trains only what is missing:
a grid survives Ctrl-C, ``kill -9`` and power loss with nothing finished lost.
A run folder without ``DONE`` is an interrupted run and starts again from
scratch (runs do not checkpoint mid-way).

Every cell's config is composed and validated before the first cell starts,
so a typo in an override fails in a second, not an hour into the grid.
"""

from __future__ import annotations

import dataclasses
import fcntl
import itertools
import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bnnctl.config import AblationConfig, LauncherConfig, TrainConfig, compose_train
from bnnctl.errors import ConfigError, RunError
from bnnctl.runs import DONE, Run, atomic_write_text, config_hash

GRID_MANIFEST = "grid.yaml"
ERROR_FILE = "error.txt"


@dataclass(frozen=True)
class Cell:
    """One combination of axis values, e.g. label 'W+G' = {weight_clip: true, dropout: 0.0, grad_clip: true}."""

    label: str
    settings: dict[str, Any]
    overrides: tuple[str, ...]     # fixed + axes + the command line's, without the seed
    cell_id: str = ""              # hash8 of the resolved config without the seed


@dataclass
class CellTask:
    """One cell x seed, as a launcher hands it to a worker (picklable)."""

    cell: Cell
    seed: int
    cfg: TrainConfig
    overrides: list[str]
    run_dir: str
    threads: int = 0

    @property
    def key(self) -> str:
        return f"{self.cell.label} seed {self.seed}"


@dataclass
class GridPlan:
    grid: AblationConfig
    grid_dir: Path
    cells: list[Cell]
    tasks: list[CellTask]
    user_overrides: list[str]

    def pending(self) -> list[CellTask]:
        return [t for t in self.tasks if not (Path(t.run_dir) / DONE).is_file()]


@dataclass
class GridResult:
    plan: GridPlan
    skipped: list[CellTask] = field(default_factory=list)
    done: list[tuple[CellTask, dict[str, Any]]] = field(default_factory=list)
    failed: list[tuple[CellTask, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def hydra_value(value: Any) -> str:
    """A Python value as a Hydra override value (true/false/null, numbers, lists, strings)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    return str(value)


def _label(grid: AblationConfig, indices: tuple[int, ...]) -> str:
    parts = []
    for axis, i in zip(grid.axes, indices):
        if i == 0:
            continue
        short = axis.short or axis.key
        parts.append(short if len(axis.values) == 2 else f"{short}={axis.values[i]}")
    return "+".join(parts) or grid.baseline_label


def expand_cells(grid: AblationConfig, user_overrides: list[str]) -> list[Cell]:
    """Every combination of axis values, baseline first, then by number of changes (the report's order)."""
    axis_keys = {a.key for a in grid.axes}
    for override in user_overrides:
        key = override.partition("=")[0].lstrip("+~")
        if key in axis_keys:
            raise ConfigError(f"{key} is an axis of grid {grid.name!r}: it cannot be overridden for every cell")
        if key == "train.seed":
            raise ConfigError("train.seed is set per run by the grid: use ablation.seeds=[0,1,2] instead")
    combos = sorted(itertools.product(*[range(len(a.values)) for a in grid.axes]),
                    key=lambda idx: (sum(i > 0 for i in idx), [-(i > 0) for i in idx], idx))
    cells = []
    for idx in combos:
        settings = {a.key: a.values[i] for a, i in zip(grid.axes, idx)}
        overrides = (*grid.fixed, *[f"{k}={hydra_value(v)}" for k, v in settings.items()], *user_overrides)
        cells.append(Cell(_label(grid, idx), settings, overrides))
    return cells


def cell_identity(cfg: TrainConfig) -> dict[str, Any]:
    """The run identity of ``bnnctl train`` without the seed: all seeds of a cell share it."""
    from bnnctl.train import run_identity

    identity = run_identity(cfg)
    identity["train"].pop("seed", None)
    return identity


def plan_grid(grid: AblationConfig, user_overrides: list[str]) -> GridPlan:
    """Compose and validate every cell x seed config; fix each run folder's path."""
    cells = expand_cells(grid, list(user_overrides))
    tasks: list[CellTask] = []
    planned: list[Cell] = []
    seen: dict[str, str] = {}
    runs_dirs = set()
    for cell in cells:
        # The seed changes nothing Hydra composes or validation checks: compose once per cell.
        try:
            base = compose_train([*cell.overrides, f"train.seed={grid.seeds[0]}"])
        except ConfigError as exc:
            raise ConfigError(f"cell {cell.label!r} of grid {grid.name!r}: {exc}") from None
        base.name = f"{grid.name}/{cell.label}"
        runs_dirs.add(base.runs_dir)
        cell_tasks = [(seed, dataclasses.replace(base, train=dataclasses.replace(base.train, seed=seed)),
                       [*cell.overrides, f"train.seed={seed}"]) for seed in grid.seeds]
        cell_id = config_hash(cell_identity(base))
        if cell_id in seen:
            raise ConfigError(f"cells {seen[cell_id]!r} and {cell.label!r} of grid {grid.name!r} resolve to the same config")
        seen[cell_id] = cell.label
        cell = dataclasses.replace(cell, cell_id=cell_id)
        planned.append(cell)
        for seed, cfg, overrides in cell_tasks:
            run_dir = Path(cfg.runs_dir).expanduser() / "ablate" / grid.name / "cells" / cell_id / f"seed-{seed}"
            tasks.append(CellTask(cell, seed, cfg, overrides, str(run_dir)))
    if len(runs_dirs) != 1:
        raise ConfigError(f"the cells of grid {grid.name!r} name different runs_dir values {sorted(runs_dirs)}: "
                          "a grid lives in one runs folder")
    (runs_dir,) = runs_dirs
    return GridPlan(grid, Path(runs_dir).expanduser() / "ablate" / grid.name, planned, tasks, list(user_overrides))


def write_manifest(plan: GridPlan) -> Path:
    """grid.yaml: the grid, the command line's overrides and each cell's id, for ``ablate table``."""
    manifest = {
        "grid": OmegaConf.to_container(OmegaConf.structured(plan.grid)),
        "overrides": plan.user_overrides,
        "cells": [{"label": c.label, "id": c.cell_id, "settings": c.settings, "overrides": list(c.overrides)}
                  for c in plan.cells],
    }
    path = plan.grid_dir / GRID_MANIFEST
    plan.grid_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(manifest)))
    return path


def read_manifest(grid_dir: str | Path) -> dict[str, Any]:
    path = Path(grid_dir).expanduser() / GRID_MANIFEST
    if not Path(grid_dir).expanduser().is_dir():
        raise RunError(f"grid folder {grid_dir} does not exist")
    if not path.is_file():
        raise RunError(f"{grid_dir} is not an ablation grid folder (no {GRID_MANIFEST})")
    try:
        return OmegaConf.to_container(OmegaConf.load(path))  # type: ignore[return-value]
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
        raise RunError(f"cannot read {path}: {exc}") from None


class GridLock:
    """An exclusive lock on a grid folder: two drivers on one grid would train the same cells twice."""

    def __init__(self, grid_dir: Path):
        self.path = grid_dir / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "GridLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise RunError(f"grid {self.path.parent} is already running (pid {holder}); wait for it or stop it") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


def run_cell(task: CellTask) -> dict[str, Any]:
    """Train one cell x seed into its run folder; runs in a worker. Never raises: failures are returned.

    A folder without DONE is what an interrupted run left: it is cleared and
    the run starts again, so a resumed grid never mixes two attempts' epochs.
    """
    import torch

    from bnnctl.train import fit

    t0 = time.perf_counter()
    run_dir = Path(task.run_dir)
    if (run_dir / DONE).is_file():
        return {"status": "skipped"}
    try:
        if task.threads:
            torch.set_num_threads(task.threads)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        summary = fit(task.cfg, Run(run_dir), overrides=task.overrides)
        return {"status": "done", "summary": summary, "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - one failed cell must not stop the grid
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        try:
            atomic_write_text(run_dir / ERROR_FILE, traceback.format_exc())
        except OSError:
            pass
        return {"status": "failed", "error": message, "wall_s": time.perf_counter() - t0}


class GridObserver:
    """Receives the grid's progress; the default does nothing."""

    def on_grid_start(self, plan: GridPlan, pending: list[CellTask]) -> None: ...

    def on_cell_start(self, task: CellTask) -> None: ...

    def on_cell_end(self, task: CellTask, outcome: dict[str, Any]) -> None: ...

    def on_grid_end(self, result: GridResult) -> None: ...


def run_grid(plan: GridPlan, launcher_cfg: LauncherConfig, observer: GridObserver | None = None) -> GridResult:
    """Train every pending cell x seed with the chosen launcher; failures are collected, not raised."""
    from bnnctl.launch import make_launcher

    observer = observer or GridObserver()
    result = GridResult(plan)
    with GridLock(plan.grid_dir):
        write_manifest(plan)
        pending = plan.pending()
        to_run = {t.run_dir for t in pending}
        result.skipped = [t for t in plan.tasks if t.run_dir not in to_run]
        observer.on_grid_start(plan, pending)
        if pending:
            launcher = make_launcher(launcher_cfg, plan.grid_dir, pending)
            pending = [dataclasses.replace(t, threads=launcher.threads) for t in pending]

            def finished(task: CellTask, outcome: dict[str, Any]) -> None:
                if outcome["status"] == "failed":
                    result.failed.append((task, outcome["error"]))
                elif outcome["status"] == "done":
                    result.done.append((task, outcome))
                else:
                    result.skipped.append(task)
                observer.on_cell_end(task, outcome)

            launcher.run_all(pending, on_start=observer.on_cell_start, on_end=finished, poll_s=launcher_cfg.poll_s)
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
