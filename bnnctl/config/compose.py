"""Hydra configs from ``conf/`` composed into the typed training schema.

Hydra composes the YAML (groups, presets, command-line overrides); the result
is merged into ``OmegaConf.structured(TrainConfig)`` so that an unknown key, a
wrong type or a value outside an Enum fails at once with the key's name, then
converted to dataclasses that the library uses. Registries (binarizers,
architectures, losses, datasets) then check the names they own. Errors leave
here as one-line ConfigErrors.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from bnnctl.config.legacy import upgrade
from bnnctl.config.schema import DEVICE_PATTERN, BinarizerSpec, TrainConfig
from bnnctl.errors import ConfigError

CONFIG_GROUPS = ("model", "data", "optimizer", "binarize", "experiment", "debug", "logger")
DEFAULT_RUNS_DIR = "runs"
SCHEMA_NODE = "bnnctl_schema"  # TrainConfig in Hydra's ConfigStore; conf/train.yaml starts from it


def conf_dir() -> Path:
    """The Hydra config folder: inside the package (wheel) or beside it (source checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise ConfigError(
        f"bnnctl's config folder (conf/) is missing: looked in {package / 'conf'} and {package.parent / 'conf'}"
    )


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files in conf/<group>/."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def describe_groups() -> str:
    """One line per config group with its options, for ``--help``."""
    return "\n".join(f"{g}: {', '.join(group_options(g))}" for g in CONFIG_GROUPS)


def yaml_problem(exc: BaseException) -> str:
    """A YAML syntax error in one line with where it is: 'expected ..., found ... (line 3, column 7)'."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or one_line(exc)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


_PLAINER = {  # OmegaConf's wording -> what the user did wrong
    "Invalid value assigned: AnyNode is not a ListConfig, list or tuple.": "expects a list, e.g. [0,1,2]",
}


def one_line(exc: BaseException) -> str:
    """Hydra and OmegaConf errors span several lines and hide the cause; keep what names the problem."""
    parts = []
    while exc is not None:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        lines = [
            ln
            for ln in lines
            if not ln.startswith(("object_type", "full_key", "reference_type", "See https")) and ln != "None"
        ]
        key = getattr(exc, "full_key", None)
        lines = [_PLAINER.get(ln, ln) for ln in lines]
        if lines:
            parts.append(f"{key}: {lines[0]}" if key else "; ".join(lines))
        exc = exc.__cause__
    return " (".join(parts) + ")" * (len(parts) - 1) if parts else "unknown error"


def split_runs_dir(overrides: list[str]) -> tuple[str, list[str]]:
    """``runs_dir=PATH`` (where runs go, not what they are) taken out of the Hydra overrides."""
    runs_dir, rest = DEFAULT_RUNS_DIR, []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+") == "runs_dir":
            if not value:
                raise ConfigError("runs_dir: needs a folder, e.g. runs_dir=runs")
            runs_dir = value
        else:
            rest.append(override)
    return runs_dir, rest


GRID_ONLY_GROUPS = ("launcher", "ablation")  # what `bnnctl ablate grid` takes and `bnnctl train` does not


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


def _check_values(cfg: TrainConfig) -> None:
    """Value checks a type system cannot express."""
    from bnnctl.nn.lowp import FORMATS as PRODUCT_FORMATS

    t, d, o, m = cfg.train, cfg.data, cfg.optimizer, cfg.model
    checks = [
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
        (_non_negative(o.weight_decay), f"optimizer.weight_decay must be a finite number >= 0, got {o.weight_decay}"),
        (
            len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
            f"optimizer.betas must be two numbers in [0, 1), got {o.betas}",
        ),
        (0 <= m.dropout < 1, f"model.dropout must be in [0, 1), got {m.dropout}"),
        (0 <= m.input_dropout < 1, f"model.input_dropout must be in [0, 1), got {m.input_dropout}"),
        (m.width >= 1 and m.depth >= 1, f"model.width and model.depth must be >= 1, got {m.width} and {m.depth}"),
        (m.width_mult > 0, f"model.width_mult must be > 0, got {m.width_mult}"),
        (
            m.arch == "mlp" or not _mlp_only_keys(m),
            f"{', '.join(_mlp_only_keys(m))}: only the mlp architecture has them, got model.arch={m.arch}",
        ),
        (
            d.augment_rotation >= 0 and d.augment_shift >= 0,
            f"data.augment_rotation and data.augment_shift must be >= 0, got {d.augment_rotation} and {d.augment_shift}",
        ),
        (0 <= d.augment_jitter < 1, f"data.augment_jitter must be in [0, 1), got {d.augment_jitter}"),
        (d.val_size >= 0, f"data.val_size must be >= 0, got {d.val_size}"),
        (
            len(d.synthetic_shape) == 3 and all(n >= 1 for n in d.synthetic_shape),
            f"data.synthetic_shape must be three sizes >= 1 (channels, height, width), got {list(d.synthetic_shape)}",
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
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


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


def _check_registered_names(cfg: TrainConfig) -> tuple[Any, Any]:
    """Each registry checks the names it owns: fail now, not after the data has loaded.

    Returns the (weight, activation) binarizer objects the names resolved to.
    """
    from bnnctl.data import check_dataset_name
    from bnnctl.nn import check_model_names, make_binarizer

    binarizers = (
        make_binarizer(cfg.binarize.weights, "binarize.weights"),
        make_binarizer(cfg.binarize.activations, "binarize.activations"),
    )
    check_model_names(cfg.model)
    check_dataset_name(cfg.data.name)
    return binarizers


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check values and names; one spelling of a full-precision model.

    ``model.binarized=false`` sets both binarizers to identity, and identity
    binarizers on both mean ``binarized: false``: the two describe one model
    and must have one run id.
    """
    _check_values(cfg)
    b = cfg.binarize
    if not cfg.model.binarized:
        b.weights, b.activations = BinarizerSpec("identity", {}), BinarizerSpec("identity", {})
    weights, activations = _check_registered_names(cfg)
    if not weights.quantizes and not activations.quantizes:
        cfg.model.binarized = False
    return cfg


def _to_schema(*sources: Any) -> TrainConfig:
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), *sources)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def compose_train(overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The validated config of a training run: conf/train.yaml + presets + Hydra ``overrides``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra

    ConfigStore.instance().store(name=SCHEMA_NODE, node=TrainConfig)
    overrides = list(overrides)
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
    return validate(cfg)


def to_container(cfg: TrainConfig) -> dict[str, Any]:
    """Plain dicts, lists and strings (Enums by name): what YAML, JSON and hashes see."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)  # type: ignore[return-value]


def to_yaml(cfg: TrainConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def from_container(raw: dict[str, Any], where: str = "config") -> TrainConfig:
    """A config dict (today's or an older bnnctl's, see ``legacy``) validated against today's schema."""
    try:
        cfg = _to_schema(OmegaConf.create(upgrade(raw)))
    except (OmegaConfBaseException, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the {where}: {one_line(exc)}") from None
    return validate(cfg)


def load_yaml(path: Path) -> TrainConfig:
    """A resolved config written by a run (any bnnctl version), validated against today's schema."""
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
