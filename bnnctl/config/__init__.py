"""Configuration: Hydra configs from ``conf/`` -> typed, checked dataclasses.

Two floors apart, one package:

* the floor every package may import (``nn`` and ``data`` included), which
  imports nothing of bnnctl but its errors: ``schema`` (the dataclasses and
  Enums of training, grid, launcher and geometry configs), ``io`` (the conf/
  folder, YAML out, one-line errors), ``legacy`` (configs older bnnctl
  versions wrote). This ``__init__`` re-exports those names only;
* above ``nn`` and ``data``: ``validate`` (value checks and the registries'
  checks of the names they own) and ``load`` (the one loader,
  ``load(kind, overrides)``, with ``compose_train``, ``load_grid``,
  ``load_launcher``, ``load_geometry``, ``load_yaml``, ``from_container``).
  Import them from ``bnnctl.config.load``: re-exporting them here would make
  every ``from bnnctl.config.schema import ...`` in ``nn`` pull in the
  registries it is part of.
"""

from bnnctl.config.io import (
    CONFIG_GROUPS,
    DEFAULT_RUNS_DIR,
    conf_dir,
    describe_groups,
    group_options,
    override_key,
    split_runs_dir,
    to_container,
    to_yaml,
)
from bnnctl.config.schema import (
    AblationConfig,
    AxisConfig,
    BinarizeConfig,
    BinarizerSpec,
    CellSpec,
    DataConfig,
    DistConfig,
    GeometryConfig,
    LauncherConfig,
    LoggerConfig,
    LoopConfig,
    ModelConfig,
    OptimizerConfig,
    StudyConfig,
    TrainConfig,
)

__all__ = [
    "CONFIG_GROUPS",
    "DEFAULT_RUNS_DIR",
    "AblationConfig",
    "AxisConfig",
    "BinarizeConfig",
    "BinarizerSpec",
    "CellSpec",
    "DataConfig",
    "DistConfig",
    "GeometryConfig",
    "LauncherConfig",
    "LoggerConfig",
    "LoopConfig",
    "ModelConfig",
    "OptimizerConfig",
    "StudyConfig",
    "TrainConfig",
    "conf_dir",
    "describe_groups",
    "group_options",
    "override_key",
    "split_runs_dir",
    "to_container",
    "to_yaml",
]
