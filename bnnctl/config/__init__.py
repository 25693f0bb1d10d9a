"""Configuration: Hydra configs from ``conf/`` -> typed, validated dataclasses.

``schema`` (the training schema), ``compose`` (Hydra composition, YAML in and
out), ``legacy`` (configs older bnnctl versions wrote), ``sweep`` (grid files
and launchers). This package sits below the library: it imports only the
registries it asks to check names (``nn``, ``data``).
"""

from bnnctl.config.compose import (
    CONFIG_GROUPS,
    DEFAULT_RUNS_DIR,
    compose_train,
    conf_dir,
    describe_groups,
    from_container,
    group_options,
    load_yaml,
    split_runs_dir,
    to_container,
    to_yaml,
)
from bnnctl.config.schema import (
    BinarizeConfig,
    BinarizerSpec,
    DataConfig,
    DistConfig,
    LoggerConfig,
    LoopConfig,
    ModelConfig,
    OptimizerConfig,
    TrainConfig,
)
from bnnctl.config.sweep import AblationConfig, AxisConfig, CellSpec, LauncherConfig, load_grid, load_launcher

__all__ = [
    "CONFIG_GROUPS",
    "DEFAULT_RUNS_DIR",
    "AblationConfig",
    "AxisConfig",
    "CellSpec",
    "BinarizeConfig",
    "BinarizerSpec",
    "DataConfig",
    "DistConfig",
    "LoggerConfig",
    "LauncherConfig",
    "LoopConfig",
    "ModelConfig",
    "OptimizerConfig",
    "TrainConfig",
    "compose_train",
    "conf_dir",
    "describe_groups",
    "from_container",
    "group_options",
    "load_grid",
    "load_launcher",
    "load_yaml",
    "split_runs_dir",
    "to_container",
    "to_yaml",
]
