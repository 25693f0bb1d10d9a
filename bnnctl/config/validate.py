"""Checks a type system cannot express, and the registries' say on the names they own.

OmegaConf already refused unknown keys, wrong types and values outside an
Enum while ``config.load`` merged the YAML into a schema; what is left is
checked here: ranges, keys that only make sense together, and names that a
registry resolves (binarizers, architectures, losses, nonlinearities,
datasets, product formats). This module sits above ``nn`` and ``data``, which
own those registries, and below everything that loads a config. Every check
fails with a one-line ConfigError naming the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from bnnctl.config.io import override_key
from bnnctl.config.schema import (
    DEVICE_PATTERN,
    GRID_COLUMNS,
    GRID_NAME,
    AblationConfig,
    BinarizerSpec,
    GeometryConfig,
    LauncherConfig,
    TrainConfig,
)
from bnnctl.data import check_dataset_name
from bnnctl.errors import ConfigError
from bnnctl.nn import BINARIZERS, check_model_names, make_binarizer
from bnnctl.nn.lowp import FORMATS as PRODUCT_FORMATS


def _raise_first(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


# --- training -------------------------------------------------------------------------------


def _positive(x: float) -> bool:
    """A finite number > 0 (inf and NaN pass a bare > 0 or fail it silently)."""
    return math.isfinite(x) and x > 0


def _non_negative(x: float) -> bool:
    return math.isfinite(x) and x >= 0


def _mlp_only_keys(m: Any) -> list[str]:
    """``model.*`` keys set away from their defaults that only the MLP builder reads."""
    default = type(m)()
    keys = (
        "linear_backward",
        "input_batch_norm",
        "input_dropout",
        "dropout",
        "dropout_at",
        "dropout_in_eval",
        "nonlinearity",
    )
    return [f"model.{k}" for k in keys if getattr(m, k) != getattr(default, k)]


def _check_train_values(cfg: TrainConfig) -> None:
    t, d, o, m = cfg.train, cfg.data, cfg.optimizer, cfg.model
    _raise_first(
        [
            (t.epochs >= 1, f"train.epochs must be >= 1, got {t.epochs}"),
            (t.batch_size >= 2, f"train.batch_size must be >= 2, got {t.batch_size}"),
            (t.eval_batch_size >= 1, f"train.eval_batch_size must be >= 1, got {t.eval_batch_size}"),
            (t.eval_every >= 0, f"train.eval_every must be >= 0, got {t.eval_every}"),
            (t.max_steps_per_epoch >= 0, f"train.max_steps_per_epoch must be >= 0, got {t.max_steps_per_epoch}"),
            (t.threads >= 0, f"train.threads must be >= 0, got {t.threads}"),
            (
                t.binary_matmul in PRODUCT_FORMATS,
                f"train.binary_matmul must be one of {', '.join(PRODUCT_FORMATS)}, got {t.binary_matmul!r}",
            ),
            (
                t.device == "auto" or re.fullmatch(DEVICE_PATTERN, t.device) is not None,
                f"train.device must be auto, cpu, cuda, cuda:N or mps, got {t.device!r}",
            ),
            (0 <= t.seed < 2**63, f"train.seed must be in [0, 2^63), got {t.seed}"),
            (1 <= cfg.dist.world_size <= 1024, f"dist.world_size must be in 1..1024, got {cfg.dist.world_size}"),
            (
                cfg.dist.world_size < 1 or t.batch_size % cfg.dist.world_size == 0,
                f"train.batch_size ({t.batch_size}) must be a multiple of dist.world_size ({cfg.dist.world_size}): "
                "it is the global batch, split evenly between the ranks",
            ),
            (cfg.dist.beta >= 1, f"dist.beta must be >= 1, got {cfg.dist.beta}"),
            (_positive(o.lr), f"optimizer.lr must be a finite number > 0, got {o.lr}"),
            (_positive(o.lr_end), f"optimizer.lr_end must be a finite number > 0, got {o.lr_end}"),
            (_positive(o.eps), f"optimizer.eps must be a finite number > 0, got {o.eps}"),
            (
                _non_negative(o.weight_decay),
                f"optimizer.weight_decay must be a finite number >= 0, got {o.weight_decay}",
            ),
            (
                len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
                f"optimizer.betas must be two numbers in [0, 1), got {o.betas}",
            ),
            (0 <= m.dropout < 1, f"model.dropout must be in [0, 1), got {m.dropout}"),
            (0 <= m.input_dropout < 1, f"model.input_dropout must be in [0, 1), got {m.input_dropout}"),
            (
                m.width >= 1 and m.depth >= 1,
                f"model.width and model.depth must be >= 1, got {m.width} and {m.depth}",
            ),
            (m.width_mult > 0, f"model.width_mult must be > 0, got {m.width_mult}"),
            (
                m.arch == "mlp" or not _mlp_only_keys(m),
                f"{', '.join(_mlp_only_keys(m))}: only the mlp architecture has them, got model.arch={m.arch}",
            ),
            (
                d.augment_rotation >= 0 and d.augment_shift >= 0,
                "data.augment_rotation and data.augment_shift must be >= 0, "
                f"got {d.augment_rotation} and {d.augment_shift}",
            ),
            (0 <= d.augment_jitter < 1, f"data.augment_jitter must be in [0, 1), got {d.augment_jitter}"),
            (d.val_size >= 0, f"data.val_size must be >= 0, got {d.val_size}"),
            (
                len(d.synthetic_shape) == 3 and all(n >= 1 for n in d.synthetic_shape),
                "data.synthetic_shape must be three sizes >= 1 (channels, height, width), "
                f"got {list(d.synthetic_shape)}",
            ),
            (
                _non_negative(d.synthetic_noise),
                f"data.synthetic_noise must be a finite number >= 0, got {d.synthetic_noise}",
            ),
            (d.num_classes >= 2, f"data.num_classes must be >= 2, got {d.num_classes}"),
            (d.synthetic_test >= 1, f"data.synthetic_test must be >= 1, got {d.synthetic_test}"),
            (0 <= d.synthetic_seed < 2**63, f"data.synthetic_seed must be in [0, 2^63), got {d.synthetic_seed}"),
            (
                d.synthetic_train > d.val_size or d.name != "synthetic",
                f"data.synthetic_train ({d.synthetic_train}) must exceed data.val_size ({d.val_size})",
            ),
        ]
    )


def check_train(cfg: TrainConfig) -> TrainConfig:
    """Check values and names, fail before any data loads; one spelling of a full-precision model.

    ``model.binarized=false`` sets both binarizers to identity, and identity
    binarizers on both mean ``binarized: false``: the two describe one model
    and must have one run id.
    """
    _check_train_values(cfg)
    b = cfg.binarize
    if not cfg.model.binarized:
        b.weights, b.activations = BinarizerSpec("identity", {}), BinarizerSpec("identity", {})
    weights = make_binarizer(b.weights, "binarize.weights")
    activations = make_binarizer(b.activations, "binarize.activations")
    check_model_names(cfg.model)
    check_dataset_name(cfg.data.name)
    if not weights.quantizes and not activations.quantizes:
        cfg.model.binarized = False
    return cfg


# --- grids and launchers --------------------------------------------------------------------


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


def check_grid(grid: AblationConfig) -> AblationConfig:
    """Axes, seeds, columns, the grid's name and its listed cells."""
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
    _raise_first(checks + _cell_checks(grid))
    return grid


def check_launcher(cfg: LauncherConfig) -> LauncherConfig:
    _raise_first(
        [
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
    )
    return cfg


# --- geometry studies -----------------------------------------------------------------------


def check_geometry(cfg: GeometryConfig) -> GeometryConfig:
    """The study's sizes and sweeps, and ``binarize``: a binarizer of the registry, as training names them."""
    g = cfg.geometry
    _raise_first(
        [
            (
                bool(g.dims) and all(d >= 1 for d in g.dims),
                f"geometry.dims must be a non-empty list of dimensions >= 1, got {g.dims}",
            ),
            (g.samples >= 2, f"geometry.samples must be >= 2, got {g.samples}"),
            (g.chunk_elements >= 1, f"geometry.chunk_elements must be >= 1, got {g.chunk_elements}"),
            (0 < g.confidence < 1, f"geometry.confidence must be in (0, 1), got {g.confidence}"),
            (
                bool(g.threshold_sigma) and all(t >= 0 for t in g.threshold_sigma),
                f"geometry.threshold_sigma must be a non-empty list of values >= 0, got {g.threshold_sigma}",
            ),
            (g.ternary_dim >= 1, f"geometry.ternary_dim must be >= 1, got {g.ternary_dim}"),
            (
                bool(g.beta) and all(b >= 1 for b in g.beta),
                f"geometry.beta must be a non-empty list of block lengths >= 1, got {g.beta}",
            ),
            (g.hadamard_dim >= 1, f"geometry.hadamard_dim must be >= 1, got {g.hadamard_dim}"),
            (
                bool(g.rotation_dims) and all(d >= 2 for d in g.rotation_dims),
                f"geometry.rotation_dims must be a non-empty list of dimensions >= 2, got {g.rotation_dims}",
            ),
            (g.images >= 2, f"geometry.images must be >= 2, got {g.images}"),
            (g.patch_size >= 1, f"geometry.patch_size must be >= 1, got {g.patch_size}"),
            (g.patches >= 2, f"geometry.patches must be >= 2, got {g.patches}"),
            (
                cfg.binarize in BINARIZERS,
                f"binarize: unknown binarizer {cfg.binarize!r} (known: {', '.join(sorted(BINARIZERS))})",
            ),
        ]
    )
    make_binarizer(cfg.binarize, "binarize")  # its defaults must build
    return cfg


CHECKS: dict[str, Callable[[Any], Any]] = {
    "train": check_train,
    "grid": check_grid,
    "launcher": check_launcher,
    "geometry": check_geometry,
}


def check(kind: str, cfg: Any) -> Any:
    """The checks of a config of ``kind`` (train | grid | launcher | geometry); returns ``cfg``."""
    return CHECKS[kind](cfg)
