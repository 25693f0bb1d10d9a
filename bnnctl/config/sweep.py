"""The grid and launcher schema: ablation grid files and where their cells train.

Kept apart from the training schema: a grid is a list of training overrides
(fixed ones, axes, seeds) plus published reference numbers, and a launcher
says where cells run; neither is part of what a run computes.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bnnctl.config.compose import conf_dir, group_options, one_line, yaml_problem
from bnnctl.errors import ConfigError


class SubmititCluster(enum.StrEnum):
    slurm = "slurm"
    local = "local"  # local subprocesses (what the tests use)
    debug = "debug"  # in the driver process


GRID_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"  # a grid's name becomes a folder under runs_dir/ablate
# Summary keys a grid may add to its table (``columns:``), each as mean ± CI over seeds (report.grid_tables).
GRID_COLUMNS = (
    "epoch_time_s",
    "samples_per_s",
    "comm_bytes_per_step",
    "comm_wire_bytes_per_step",
    "compression_ratio",
    "comm_s_per_epoch",
)


@dataclass
class AxisConfig:
    key: str = MISSING  # a training config key, e.g. train.weight_clip
    values: list[Any] = MISSING  # the first value is the baseline
    short: Optional[str] = None  # label of a non-baseline value, e.g. W (default: the key)


@dataclass
class CellSpec:
    """A listed cell: a label and the overrides that make it (crossed with the grid's axes, if any)."""

    label: str = MISSING
    overrides: list[str] = field(default_factory=list)
    values: dict[str, list[Any]] = field(default_factory=dict)  # axis key -> this cell's own values for that axis
    compare_to: Optional[str] = None  # attribution: the listed cell this one changes (default: the first)
    note: str = ""  # what the change is, in words (tables show it)


@dataclass
class ReferenceConfig:
    """Published numbers to print beside each cell (keyed by cell label)."""

    source: str = ""
    metric: str = "peak_val_acc"
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class AblationConfig:
    name: str = MISSING
    description: str = ""
    fixed: list[str] = field(default_factory=list)  # overrides every cell gets, before the axes
    axes: list[AxisConfig] = field(default_factory=list)
    cells: list[CellSpec] = field(default_factory=list)  # listed cells (one change at a time), crossed with axes
    seeds: list[int] = field(default_factory=lambda: [0])
    baseline_label: str = "none"  # label of the cell with every axis at its first value
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    columns: list[str] = field(default_factory=list)  # more summary keys for the table, from GRID_COLUMNS


@dataclass
class LauncherConfig:
    name: str = "local"  # a launcher in sweep.launchers.LAUNCHERS: inline | local | ray | submitit
    workers: int = 0  # cells trained at once (0: auto)
    threads: int = 0  # torch threads per cell (0: the cores split between the workers)
    address: Optional[str] = None  # ray: cluster address (null: start a local cluster)
    cluster: Optional[SubmititCluster] = (
        None  # submitit: null (SLURM if sbatch exists, else local) | slurm | local | debug
    )
    folder: Optional[str] = None  # submitit: job logs (default: <grid dir>/submitit)
    partition: Optional[str] = None  # submitit: SLURM partition
    timeout_min: int = 240  # submitit: per-cell time limit
    cpus_per_task: int = 2  # submitit / ray: CPUs each cell asks for (ray: 0 = threads)
    gpus_per_task: int = 0  # submitit / ray: GPUs each cell asks for
    mem_gb: int = 16  # submitit: memory per cell
    poll_s: float = 1.0  # how often to poll for finished cells


def _load_structured(schema: type, sources: list[Any], what: str, prefix: str) -> Any:
    """Merge YAML and overrides into a dataclass schema; errors name the key as the user writes it."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), *sources)
        return OmegaConf.to_object(merged)
    except (OmegaConfBaseException, OSError, ValueError) as exc:
        if getattr(exc, "full_key", None):
            exc.full_key = f"{prefix}.{exc.full_key}"
        raise ConfigError(f"invalid {what}: {one_line(exc)}") from None


def _load_with_overrides(schema: type, raw: Any, overrides: list[str], what: str, prefix: str) -> Any:
    """The file checked alone (an error blames it), then each override on it (an error blames that override)."""
    _load_structured(schema, [raw], what, prefix)
    for override in overrides:
        _load_structured(schema, [raw, _dotlist([override], prefix)], f"override {override}", prefix)
    return _load_structured(
        schema, [raw, _dotlist(list(overrides), prefix)], f"{what} with {' '.join(overrides)}", prefix
    )


def _dotlist(overrides: list[str], prefix: str) -> Any:
    """``prefix.key=value`` overrides as an OmegaConf tree (values parsed as YAML)."""
    items = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key.startswith(prefix + "."):
            raise ConfigError(f"cannot apply {override!r}: expected {prefix}.<key>=<value>")
        item = f"{key[len(prefix) + 1 :]}={value}"
        try:  # one at a time, so that an error names its override
            OmegaConf.from_dotlist([item])
        except yaml.YAMLError as exc:
            raise ConfigError(f"{override}: the value is not valid YAML: {yaml_problem(exc)}") from None
        except OmegaConfBaseException as exc:
            raise ConfigError(f"{override}: {one_line(exc)}") from None
        items.append(item)
    return OmegaConf.from_dotlist(items)


def grid_file(name_or_path: str) -> Path:
    """``conf/ablation/<name>.yaml``, or a YAML file of the user's own."""
    path = Path(name_or_path).expanduser()
    if name_or_path.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise ConfigError(f"grid file {path} does not exist")
        return path
    options = group_options("ablation")
    if name_or_path not in options:
        raise ConfigError(f"unknown grid {name_or_path!r} (choose from: {', '.join(options)}, or give a .yaml file)")
    return conf_dir() / "ablation" / f"{name_or_path}.yaml"


def load_grid(name_or_path: str, overrides: list[str] = ()) -> AblationConfig:
    """A grid file with ``ablation.<key>=<value>`` overrides, checked."""
    path = grid_file(name_or_path)
    try:
        raw = OmegaConf.load(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read the grid file {path}: not valid YAML: {yaml_problem(exc)}") from None
    except (OmegaConfBaseException, OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the grid file {path}: {one_line(exc)}") from None
    grid: AblationConfig = _load_with_overrides(AblationConfig, raw, list(overrides), f"grid file {path}", "ablation")
    keys = [a.key for a in grid.axes]
    checks = [
        (bool(grid.axes or grid.cells), f"grid {grid.name!r} has neither axes nor cells"),
        (len(set(keys)) == len(keys), f"grid {grid.name!r} lists an axis twice: {keys}"),
        (all(len(a.values) >= 1 for a in grid.axes), f"grid {grid.name!r} has an axis without values"),
        (
            all(len(set(map(str, a.values))) == len(a.values) for a in grid.axes),
            f"grid {grid.name!r} repeats a value on an axis",
        ),
        (
            bool(grid.seeds) and len(set(grid.seeds)) == len(grid.seeds),
            f"ablation.seeds must be distinct and not empty, got {grid.seeds}",
        ),
        ("train.seed" not in keys, "train.seed cannot be an axis: list the seeds in ablation.seeds"),
        (
            set(grid.columns) <= set(GRID_COLUMNS),
            f"ablation.columns: {sorted(set(grid.columns) - set(GRID_COLUMNS))} unknown (choose from: "
            f"{', '.join(GRID_COLUMNS)})",
        ),
        (
            re.fullmatch(GRID_NAME, grid.name) is not None and ".." not in grid.name,
            f"ablation.name must be a plain folder name (letters, digits, _ . -), got {grid.name!r}",
        ),
    ]
    for ok, message in checks + _cell_checks(grid):
        if not ok:
            raise ConfigError(message)
    return grid


def override_key(override: str) -> str:
    """The key an override sets: ``+a.b=1``, ``~a.b`` and ``a.b=1`` all set ``a.b``."""
    return override.partition("=")[0].lstrip("+~")


def _cell_checks(grid: AblationConfig) -> list[tuple[bool, str]]:
    """Listed cells: distinct labels, overrides that leave the axes alone, own values that fit their axis."""
    labels = [c.label for c in grid.cells]
    axes = {a.key: a for a in grid.axes}
    checks = [
        (len(set(labels)) == len(labels), f"grid {grid.name!r} lists a cell label twice: {labels}"),
        (
            all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.=-]*", label) for label in labels),
            f"grid {grid.name!r}: cell labels must be letters, digits, _ . = - (no '+', which joins axis labels), "
            f"got {labels}",
        ),
    ]
    for cell in grid.cells:
        where = f"cell {cell.label!r} of grid {grid.name!r}"
        set_keys = [override_key(o) for o in cell.overrides]
        checks += [
            (all("=" in o for o in cell.overrides), f"{where}: overrides must be key=value, got {cell.overrides}"),
            (
                not set(set_keys) & set(axes) and "train.seed" not in set_keys,
                f"{where} overrides an axis or the seed ({set_keys}): give its own axis values in `values:`",
            ),
            (
                all(k in axes and len(v) == len(axes[k].values) for k, v in cell.values.items()),
                f"{where}: `values:` must name axes of the grid, with as many values as the axis",
            ),
            (
                cell.compare_to is None or cell.compare_to in labels,
                f"{where}: compare_to {cell.compare_to!r} is not a listed cell",
            ),
        ]
    return checks


def load_launcher(overrides: list[str] = ()) -> LauncherConfig:
    """``launcher=<name>`` picks conf/launcher/<name>.yaml; ``launcher.<key>=<value>`` overrides its keys."""
    name = "local"
    rest = []
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "launcher":
            name = value
        else:
            rest.append(override)
    if name not in group_options("launcher"):
        raise ConfigError(f"unknown launcher {name!r} (choose from: {', '.join(group_options('launcher'))})")
    raw = OmegaConf.load(conf_dir() / "launcher" / f"{name}.yaml")
    cfg: LauncherConfig = _load_with_overrides(LauncherConfig, raw, rest, f"launcher config {name}", "launcher")
    checks = [
        (
            cfg.workers >= 0 and cfg.threads >= 0,
            f"launcher.workers and launcher.threads must be >= 0, got {cfg.workers} and {cfg.threads}",
        ),
        (
            cfg.timeout_min >= 1 and cfg.cpus_per_task >= 0 and cfg.gpus_per_task >= 0 and cfg.mem_gb >= 1,
            "launcher.timeout_min and launcher.mem_gb must be >= 1, cpus_per_task and gpus_per_task >= 0",
        ),
        (cfg.poll_s > 0, f"launcher.poll_s must be > 0, got {cfg.poll_s}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    return cfg
