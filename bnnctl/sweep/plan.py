"""A grid planned: grid file -> cells (axis combinations) -> cell x seed tasks, each with its run folder.

Every cell's config is composed and validated here, before the first cell
starts, so a typo in an override fails in a second, not an hour into the grid.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bnnctl.config import AblationConfig, CellSpec, TrainConfig, override_key, split_runs_dir
from bnnctl.config.load import compose_train
from bnnctl.errors import ConfigError
from bnnctl.runs.folder import Run
from bnnctl.runs.grids import cell_run_dir, grid_dir, write_manifest
from bnnctl.runs.ids import cell_id


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


@dataclass
class GridPlan:
    grid: AblationConfig
    grid_dir: Path
    cells: list[Cell]
    tasks: list[CellTask]
    user_overrides: list[str]

    def pending(self) -> list[CellTask]:
        return [t for t in self.tasks if not Run(Path(t.run_dir)).done]


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
    specs: Sequence[CellSpec | None] = grid.cells or [None]
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
