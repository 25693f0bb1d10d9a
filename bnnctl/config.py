"""Hydra configs from ``conf/`` composed into typed, validated dataclasses.

Hydra composes the YAML (groups, presets, command-line overrides); the result
is merged into ``OmegaConf.structured(TrainConfig)`` so that an unknown key or
a wrong type fails at once with the key's name, then converted to plain
dataclasses that the library uses. Errors leave here as one-line ConfigErrors.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from bnnctl.errors import ConfigError

CONFIG_GROUPS = ("model", "data", "optimizer", "binarize", "experiment", "debug")
DEVICE_PATTERN = r"cpu|cuda(:\d+)?|mps"   # besides "auto"


@dataclass
class ModelConfig:
    name: str = MISSING                 # the preset's name (blu_mlp, bnn_mlp, mlp_float)
    arch: str = "mlp"                   # the builder in models.ARCHITECTURES
    width: int = 2048
    depth: int = 3
    batch_norm: bool = False
    last_batch_norm: bool = False       # BN on the output layer (BNN paper), no sign after it
    bn_eps: float = 1e-4
    bn_momentum: float = 0.1
    bias: bool = True
    binarize_bias: bool = False         # sign() on biases too (the Binary Linear Unit)
    nonlinearity: str = "none"          # none | hardtanh | relu, before the activation binarizer
    dropout: float = 0.0                # after each hidden block
    input_dropout: float = 0.0
    first_layer_weights: str = "binary"  # binary | float
    first_layer_input: str = "real"      # real | binary (binarize the image itself)
    last_layer_weights: str = "binary"   # binary | float
    loss: str = "cross_entropy"          # cross_entropy | square_hinge
    init: str = "torch"                  # torch (PyTorch default) | uniform (U(-1,1), Theano BNN)


@dataclass
class BinarizeConfig:
    weights: str = "sign_passthrough"
    activations: str = "sign"


@dataclass
class DataConfig:
    name: str = MISSING                 # mnist | fashion_mnist | cifar10 | synthetic
    root: Optional[str] = None          # default: $BNNCTL_DATA, else ./data
    download: bool = True
    val_size: int = 10000               # last examples of the training set
    pixel_range: str = "symmetric"      # symmetric: [-1, 1] (BNN code) | positive: [0, 1] (ToTensor)
    num_classes: int = 10               # synthetic only (real datasets know theirs)
    synthetic_train: int = 2000
    synthetic_test: int = 500
    synthetic_shape: list[int] = field(default_factory=lambda: [1, 28, 28])
    synthetic_noise: float = 0.5
    synthetic_seed: int = 0
    augment: bool = False               # random rotation + shift + jitter of each training batch
    augment_rotation: float = 10.0      # degrees, U(-r, r)
    augment_shift: float = 2.0          # pixels, U(-s, s) in x and y (a random crop with padding s)
    augment_jitter: float = 0.1         # contrast x U(1-j, 1+j), brightness + U(-j, j) of the range


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "constant"          # constant | exponential | cosine (per epoch, lr -> lr_end)
    lr_end: float = 3e-7
    glorot_lr_scale: bool = False       # BNN Theano: binary layers' step x 1/sqrt(1.5/(fan_in+fan_out))


@dataclass
class LoopConfig:
    epochs: int = 15
    batch_size: int = 100
    weight_clip: bool = False           # clip latent binary weights to [-1, 1] after each step
    grad_clip: bool = False             # clip every gradient element to [-1, 1] before each step
    eval_every: int = 0                 # validation accuracy every N iterations (0: per epoch only)
    eval_batch_size: int = 1000
    max_steps_per_epoch: int = 0        # 0: full epochs (tests and debug use small numbers)
    seed: int = 0
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    compile: bool = True                # torch.compile the model (falls back to eager if it fails)
    threads: int = 0                    # torch intra-op threads (0: torch's default)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    binarize: BinarizeConfig = field(default_factory=BinarizeConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    name: Optional[str] = None          # run name; default: the experiment preset, else <model>-<data>
    runs_dir: str = "runs"
    choices: dict[str, Optional[str]] = field(default_factory=dict)  # the group options picked (filled in)

    @property
    def run_name(self) -> str:
        return self.name or self.choices.get("experiment") or f"{self.model.name}-{self.data.name}"


def conf_dir() -> Path:
    """The Hydra config folder: inside the package (wheel) or beside it (source checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise ConfigError(f"bnnctl's config folder (conf/) is missing: looked in {here / 'conf'} and {here.parent / 'conf'}")


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files in conf/<group>/."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def _check_group_choices(overrides: list[str]) -> None:
    """Name the valid options when an override picks one that does not exist."""
    for override in overrides:
        m = re.fullmatch(r"\+?(\w+)=(.*)", override)
        if m and m.group(1) in CONFIG_GROUPS:
            group, value = m.groups()
            options = group_options(group)
            if value not in options and value != "null":
                raise ConfigError(f"unknown option {value!r} for config group {group!r} (choose from: {', '.join(options)})")


def _one_line(exc: BaseException) -> str:
    """Hydra and OmegaConf errors span several lines and hide the cause; keep what names the problem."""
    parts = []
    while exc is not None:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith(("object_type", "full_key", "reference_type", "To append", "See https"))]
        key = getattr(exc, "full_key", None)
        if lines:
            parts.append(f"{key}: {lines[0]}" if key else "; ".join(lines))
        exc = exc.__cause__
    return " (".join(parts) + ")" * (len(parts) - 1) if parts else "unknown error"


def validate(cfg: TrainConfig) -> None:
    """Value checks a type system cannot express."""
    t, d, o, m = cfg.train, cfg.data, cfg.optimizer, cfg.model
    checks = [
        (t.epochs >= 1, f"train.epochs must be >= 1, got {t.epochs}"),
        (t.batch_size >= 2, f"train.batch_size must be >= 2, got {t.batch_size}"),
        (t.eval_batch_size >= 1, f"train.eval_batch_size must be >= 1, got {t.eval_batch_size}"),
        (t.eval_every >= 0, f"train.eval_every must be >= 0, got {t.eval_every}"),
        (t.max_steps_per_epoch >= 0, f"train.max_steps_per_epoch must be >= 0, got {t.max_steps_per_epoch}"),
        (t.threads >= 0, f"train.threads must be >= 0, got {t.threads}"),
        (t.device == "auto" or re.fullmatch(DEVICE_PATTERN, t.device) is not None, f"train.device must be auto, cpu, cuda or cuda:N, got {t.device!r}"),
        (o.lr > 0, f"optimizer.lr must be > 0, got {o.lr}"),
        (o.lr_end > 0, f"optimizer.lr_end must be > 0, got {o.lr_end}"),
        (o.name == "adam", f"optimizer.name must be 'adam', got {o.name!r}"),
        (o.schedule in ("constant", "exponential", "cosine"), f"optimizer.schedule must be constant, exponential or cosine, got {o.schedule!r}"),
        (len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), f"optimizer.betas must be two numbers in [0, 1), got {o.betas}"),
        (0 <= m.dropout < 1, f"model.dropout must be in [0, 1), got {m.dropout}"),
        (0 <= m.input_dropout < 1, f"model.input_dropout must be in [0, 1), got {m.input_dropout}"),
        (m.width >= 1 and m.depth >= 1, f"model.width and model.depth must be >= 1, got {m.width} and {m.depth}"),
        (d.augment_rotation >= 0 and d.augment_shift >= 0, f"data.augment_rotation and data.augment_shift must be >= 0, got {d.augment_rotation} and {d.augment_shift}"),
        (0 <= d.augment_jitter < 1, f"data.augment_jitter must be in [0, 1), got {d.augment_jitter}"),
        (d.val_size >= 0, f"data.val_size must be >= 0, got {d.val_size}"),
        (d.synthetic_train > d.val_size or d.name != "synthetic", f"data.synthetic_train ({d.synthetic_train}) must exceed data.val_size ({d.val_size})"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    # Names resolved through registries: fail now, not after the data has loaded.
    from bnnctl.binarize import get_binarizer
    from bnnctl.data import PIXEL_RANGES
    from bnnctl.models import ARCHITECTURES, LOSSES, NONLINEARITIES

    get_binarizer(cfg.binarize.weights)
    get_binarizer(cfg.binarize.activations)
    for value, known, key in (
        (m.arch, ARCHITECTURES, "model.arch"), (m.loss, LOSSES, "model.loss"),
        (m.nonlinearity, NONLINEARITIES, "model.nonlinearity"),
        (m.init, ("torch", "uniform"), "model.init"),
        (m.first_layer_weights, ("binary", "float"), "model.first_layer_weights"),
        (m.first_layer_input, ("real", "binary"), "model.first_layer_input"),
        (m.last_layer_weights, ("binary", "float"), "model.last_layer_weights"),
        (d.pixel_range, PIXEL_RANGES, "data.pixel_range"),
    ):
        if value not in known:
            raise ConfigError(f"unknown {key} {value!r} (known: {', '.join(known)})")


def compose_train(overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The validated config of a training run: conf/train.yaml + presets + ``overrides``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    _check_group_choices(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="bnnctl"):
            raw = compose("train", overrides=overrides, return_hydra_config=True)
        choices = {k: v for k, v in raw.hydra.runtime.choices.items() if k in CONFIG_GROUPS}
        with open_dict(raw):
            del raw["hydra"]
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), raw)
        cfg: TrainConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except ConfigError:
        raise
    except (OmegaConfBaseException, Exception) as exc:  # hydra's errors share no base class
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise ConfigError(f"invalid configuration: {_one_line(exc)}") from None
    finally:
        GlobalHydra.instance().clear()
    cfg.choices = choices
    validate(cfg)
    return cfg


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)


def to_yaml(cfg: TrainConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def load_yaml(path: Path) -> TrainConfig:
    """A resolved config written by a run, validated against today's schema."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.load(path))
        cfg: TrainConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except (OmegaConfBaseException, OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the config {path}: {_one_line(exc)}") from None
    validate(cfg)
    return cfg


def describe_groups() -> str:
    """One line per config group with its options, for ``--help``."""
    return "\n".join(f"{g}: {', '.join(group_options(g))}" for g in CONFIG_GROUPS)


# --- ablation grids and launchers ------------------------------------------------

LAUNCHERS = ("local", "ray", "submitit")


@dataclass
class AxisConfig:
    key: str = MISSING                  # a training config key, e.g. train.weight_clip
    values: list[Any] = MISSING         # the first value is the baseline
    short: Optional[str] = None         # label of a non-baseline value, e.g. W (default: the key)


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
    fixed: list[str] = field(default_factory=list)      # overrides every cell gets, before the axes
    axes: list[AxisConfig] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    baseline_label: str = "none"                        # label of the cell with every axis at its first value
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)


@dataclass
class LauncherConfig:
    name: str = "local"                 # local | ray | submitit
    workers: int = 0                    # cells trained at once (0: auto)
    threads: int = 0                    # torch threads per cell (0: the cores split between the workers)
    address: Optional[str] = None       # ray: cluster address (null: start a local cluster)
    cluster: Optional[str] = None       # submitit: null (SLURM if sbatch exists, else local) | slurm | local | debug
    folder: Optional[str] = None        # submitit: job logs (default: <grid dir>/submitit)
    partition: Optional[str] = None     # submitit: SLURM partition
    timeout_min: int = 240              # submitit: per-cell time limit
    cpus_per_task: int = 2              # submitit / ray: CPUs each cell asks for (ray: 0 = threads)
    gpus_per_task: int = 0              # submitit / ray: GPUs each cell asks for
    mem_gb: int = 16                    # submitit: memory per cell
    poll_s: float = 1.0                 # how often to poll for finished cells


def _load_structured(schema: type, sources: list[Any], what: str, prefix: str) -> Any:
    """Merge YAML and overrides into a dataclass schema; errors name the key as the user writes it."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), *sources)
        return OmegaConf.to_object(merged)
    except (OmegaConfBaseException, OSError, ValueError) as exc:
        if getattr(exc, "full_key", None):
            exc.full_key = f"{prefix}.{exc.full_key}"
        raise ConfigError(f"invalid {what}: {_one_line(exc)}") from None


def _dotlist(overrides: list[str], prefix: str) -> Any:
    """``prefix.key=value`` overrides as an OmegaConf tree (values parsed as YAML)."""
    items = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key.startswith(prefix + "."):
            raise ConfigError(f"cannot apply {override!r}: expected {prefix}.<key>=<value>")
        items.append(f"{key[len(prefix) + 1:]}={value}")
    try:
        return OmegaConf.from_dotlist(items)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid override in {overrides}: {_one_line(exc)}") from None


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
    except (OmegaConfBaseException, OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the grid file {path}: {_one_line(exc)}") from None
    grid: AblationConfig = _load_structured(AblationConfig, [raw, _dotlist(list(overrides), "ablation")],
                                            f"grid file {path}", "ablation")
    keys = [a.key for a in grid.axes]
    checks = [
        (bool(grid.axes), f"grid {grid.name!r} has no axes"),
        (len(set(keys)) == len(keys), f"grid {grid.name!r} lists an axis twice: {keys}"),
        (all(len(a.values) >= 1 for a in grid.axes), f"grid {grid.name!r} has an axis without values"),
        (all(len(set(map(str, a.values))) == len(a.values) for a in grid.axes), f"grid {grid.name!r} repeats a value on an axis"),
        (bool(grid.seeds) and len(set(grid.seeds)) == len(grid.seeds), f"ablation.seeds must be distinct and not empty, got {grid.seeds}"),
        ("train.seed" not in keys, "train.seed cannot be an axis: list the seeds in ablation.seeds"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    return grid


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
    cfg: LauncherConfig = _load_structured(LauncherConfig, [raw, _dotlist(rest, "launcher")], "launcher config", "launcher")
    checks = [
        (cfg.name in LAUNCHERS, f"launcher.name must be one of {', '.join(LAUNCHERS)}, got {cfg.name!r}"),
        (cfg.workers >= 0 and cfg.threads >= 0, f"launcher.workers and launcher.threads must be >= 0, got {cfg.workers} and {cfg.threads}"),
        (cfg.cluster in (None, "slurm", "local", "debug"), f"launcher.cluster must be null, slurm, local or debug, got {cfg.cluster!r}"),
        (cfg.timeout_min >= 1 and cfg.cpus_per_task >= 0 and cfg.gpus_per_task >= 0 and cfg.mem_gb >= 1,
         "launcher.timeout_min and launcher.mem_gb must be >= 1, cpus_per_task and gpus_per_task >= 0"),
        (cfg.poll_s > 0, f"launcher.poll_s must be > 0, got {cfg.poll_s}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    return cfg
