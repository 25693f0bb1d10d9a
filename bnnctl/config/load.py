"""The one loader: conf/ YAML and overrides -> a checked schema dataclass, for every kind of config.

``load(kind, overrides, name)`` with ``kind``:

* ``train``: Hydra composes conf/train.yaml with its groups, presets and the
  overrides (``model=bnn_mlp train.epochs=3``) into ``TrainConfig``;
* ``grid``: the grid file ``name`` (conf/ablation/<name>.yaml or a path) with
  ``ablation.<key>=<value>`` overrides into ``AblationConfig``;
* ``launcher``: ``launcher=<name>`` picks conf/launcher/<name>.yaml (``local``
  when none does), ``launcher.<key>=<value>`` overrides its keys;
* ``geometry``: conf/geometry/<name>.yaml (the study) with ``binarize=<binarizer>``
  and ``geometry.<key>=<value>`` into ``GeometryConfig``.

Each is merged into ``OmegaConf.structured(<schema>)`` so that an unknown key,
a wrong type or a value outside an Enum fails at once with the key's name;
``config.validate`` then checks values and the registries' names. Errors leave
as one-line ConfigErrors. ``compose_train``, ``load_grid``, ``load_launcher``
and ``load_geometry`` are ``load`` for one kind, as most callers want one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from bnnctl.config.io import CONFIG_GROUPS, conf_dir, group_options, one_line, yaml_problem
from bnnctl.config.legacy import upgrade
from bnnctl.config.schema import AblationConfig, GeometryConfig, LauncherConfig, TrainConfig
from bnnctl.config.validate import check
from bnnctl.errors import ConfigError
from bnnctl.nn.binarize import BINARIZERS

KINDS = ("train", "grid", "launcher", "geometry")
SCHEMA_NODE = "bnnctl_schema"  # TrainConfig in Hydra's ConfigStore; conf/train.yaml starts from it
GRID_ONLY_GROUPS = ("launcher", "ablation")  # what `bnnctl ablate grid` takes and `bnnctl train` does not


def load(kind: str, overrides: Sequence[str] = (), name: str | None = None) -> Any:
    """The checked config of ``kind`` (train | grid | launcher | geometry) with ``overrides``.

    ``name`` is the grid (a name in conf/ablation or a .yaml path) or the
    geometry study (default ``angles``); train and launcher take none.
    """
    overrides = list(overrides)
    if kind == "train":
        return check("train", _compose_train(overrides))
    if kind == "grid":
        if name is None:
            raise ConfigError("a grid needs its name or file")
        return check("grid", _read_grid(name, overrides))
    if kind == "launcher":
        return check("launcher", _read_launcher(overrides))
    if kind == "geometry":
        return check("geometry", _read_geometry(name or "angles", overrides))
    raise ConfigError(f"unknown kind of config {kind!r} (choose from: {', '.join(KINDS)})")


def compose_train(overrides: Sequence[str] = ()) -> TrainConfig:
    """The checked config of a training run: conf/train.yaml + presets + Hydra ``overrides``."""
    return load("train", overrides)


def load_grid(name_or_path: str, overrides: Sequence[str] = ()) -> AblationConfig:
    """A grid file with ``ablation.<key>=<value>`` overrides, checked."""
    return load("grid", overrides, name_or_path)


def load_launcher(overrides: Sequence[str] = ()) -> LauncherConfig:
    """``launcher=<name>`` picks conf/launcher/<name>.yaml; ``launcher.<key>=<value>`` overrides its keys."""
    return load("launcher", overrides)


def load_geometry(study: str, overrides: Sequence[str]) -> GeometryConfig:
    """conf/geometry/<study>.yaml with ``binarize=...`` and ``geometry.<key>=...`` overrides, checked."""
    return load("geometry", overrides, study)


# --- training: Hydra --------------------------------------------------------------------------


def _check_override_form(override: str) -> None:
    """key=value, +key=value, ++key=value or ~key; the common slips named before Hydra's parser sees them."""
    if override.startswith("-") and not override.startswith("~"):
        raise ConfigError(
            f"{override}: not an option of this command; it takes overrides like train.epochs=3 (see --help)"
        )
    key = override.lstrip("+~").partition("=")[0]
    if not key:
        raise ConfigError(f"{override!r}: an override needs a key, as in train.epochs=3")
    root = key.split(".")[0]
    if root in GRID_ONLY_GROUPS:
        raise ConfigError(f"{override}: {root} settings belong to `bnnctl ablate grid`, not to a single run")
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:  # one at a time, so that a syntax error names its override
        OverridesParser.create().parse_override(override)
    except HydraException as exc:  # the parser's syntax errors are plain HydraExceptions
        raise ConfigError(f"{override}: not a valid override ({one_line(exc)})") from None


def _check_group_choices(overrides: list[str]) -> None:
    """Name the valid options when an override picks one that does not exist."""
    for override in overrides:
        m = re.fullmatch(r"\+?(\w+)=(.*)", override)
        if m and m.group(1) in CONFIG_GROUPS:
            group, value = m.groups()
            options = group_options(group)
            if value not in options and value != "null":
                raise ConfigError(
                    f"unknown option {value!r} for config group {group!r} (choose from: {', '.join(options)})"
                )


def _to_schema(*sources: Any) -> TrainConfig:
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), *sources)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def _compose_train(overrides: list[str]) -> TrainConfig:
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra

    ConfigStore.instance().store(name=SCHEMA_NODE, node=TrainConfig)
    for override in overrides:
        _check_override_form(override)
    _check_group_choices(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="bnnctl"):
            raw = compose("train", overrides=overrides, return_hydra_config=True)
        choices = {k: v for k, v in raw.hydra.runtime.choices.items() if k in CONFIG_GROUPS}
        with open_dict(raw):
            del raw["hydra"]
        # Through plain containers: a key added with +key=... that the schema lacks is refused here.
        cfg = _to_schema(OmegaConf.to_container(raw))
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - hydra's errors share no base class
        raise ConfigError(f"invalid configuration: {one_line(exc)}") from None
    finally:
        GlobalHydra.instance().clear()
    cfg.choices = choices
    return cfg


def from_container(raw: dict[Any, Any], where: str = "config") -> TrainConfig:
    """A config dict (today's or an older bnnctl's, see ``legacy``) checked against today's schema."""
    try:
        cfg = _to_schema(OmegaConf.create(upgrade(raw)))
    except (OmegaConfBaseException, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the {where}: {one_line(exc)}") from None
    return check("train", cfg)


def load_yaml(path: Path) -> TrainConfig:
    """A resolved config written by a run (any bnnctl version), checked against today's schema."""
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read the config {path}: not valid YAML: {yaml_problem(exc)}") from None
    except (OmegaConfBaseException, OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config {path}: {one_line(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"cannot read the config {path}: not a mapping of keys to values")
    try:
        return from_container(raw, f"config {path}")
    except ConfigError as exc:
        raise ConfigError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None


# --- grids and launchers: a file and prefix.key=value overrides ------------------------------


def _load_structured(schema: type, sources: list[Any], what: str, prefix: str) -> Any:
    """Merge YAML and overrides into a dataclass schema; errors name the key as the user writes it."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), *sources)
        return OmegaConf.to_object(merged)
    except (OmegaConfBaseException, OSError, ValueError) as exc:
        if isinstance(exc, OmegaConfBaseException) and exc.full_key:
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


def _read_grid(name_or_path: str, overrides: list[str]) -> AblationConfig:
    path = grid_file(name_or_path)
    try:
        raw = OmegaConf.load(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read the grid file {path}: not valid YAML: {yaml_problem(exc)}") from None
    except (OmegaConfBaseException, OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the grid file {path}: {one_line(exc)}") from None
    return _load_with_overrides(AblationConfig, raw, overrides, f"grid file {path}", "ablation")


def _read_launcher(overrides: list[str]) -> LauncherConfig:
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
    return _load_with_overrides(LauncherConfig, raw, rest, f"launcher config {name}", "launcher")


# --- geometry studies -------------------------------------------------------------------------


def _read_geometry(study: str, overrides: list[str]) -> GeometryConfig:
    for override in overrides:
        key = override.partition("=")[0]
        if "=" not in override or not (key == "binarize" or key.startswith("geometry.")):
            raise ConfigError(
                f"cannot apply {override!r}: expected binarize=<{'|'.join(sorted(BINARIZERS))}> "
                "or geometry.<key>=<value>"
            )
    path = conf_dir() / "geometry" / f"{study}.yaml"
    try:
        raw: Any = OmegaConf.load(path) if path.is_file() else OmegaConf.create({})
        merged = OmegaConf.merge(OmegaConf.structured(GeometryConfig), raw, OmegaConf.from_dotlist(overrides))
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"invalid geometry config: {one_line(exc)}") from None
