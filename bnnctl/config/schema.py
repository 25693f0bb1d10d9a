"""The schemas: typed dataclasses that every composed config is validated against.

The floor of bnnctl's configuration: dataclasses and Enums only, importing
nothing of bnnctl, so that every package (``nn`` and ``data`` included) may
name its config's types. Reading them from YAML and overrides is
``config.load``; checks that ask the registries (binarizers, models, datasets)
are ``config.validate``, above ``nn`` and ``data``. Four schemas:
``TrainConfig`` (a training run), ``AblationConfig`` (a grid file),
``LauncherConfig`` (where a grid's cells train), ``GeometryConfig`` (a
geometry study).

The defaults here are the baseline every preset in ``conf/`` is a delta from
(the ablation report's Binary Linear Unit MLP with Adam), and what a run id
is measured against: a run's id hashes only the values that differ from these
defaults (``bnnctl.runs.identity``), so a new key with a default never moves
an existing id. Changing an existing default does: treat it as a schema change.

Fixed vocabularies are Enums, so OmegaConf rejects a bad value and names the
key itself; names resolved through a registry (binarizers, architectures,
losses, nonlinearities, datasets) are strings that the registry checks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING


class LayerPrecision(enum.StrEnum):
    binary = "binary"  # the run's weight binarizer
    float = "float"  # full precision (identity)


class InputPrecision(enum.StrEnum):
    real = "real"  # the image enters unbinarized
    binary = "binary"  # the activation binarizer is applied to the image itself


class Init(enum.StrEnum):
    torch = "torch"  # PyTorch's default initialisation
    uniform = "uniform"  # binary layers' latent weights from U(-1, 1) (Theano BNN)


class PixelRange(enum.StrEnum):
    symmetric = "symmetric"  # [-1, 1], as the BNN code
    positive = "positive"  # [0, 1], as torchvision's ToTensor
    normalized = "normalized"  # (x - 0.1307) / 0.3081 of [0, 1]: ToTensor + Normalize with MNIST's mean, std


class ValidateOn(enum.StrEnum):
    holdout = "holdout"  # the last data.val_size training examples (the BNN code's split)
    test = "test"  # the test split, training on every training example (the ablation report's code)


class DropoutAt(enum.StrEnum):
    # Without dropout both build the same network (nn.models.inert_model_keys).
    after_sign = "after_sign"  # BN -> sign -> dropout: a dropped unit enters the next layer as 0 (Theano BNN)
    before_sign = "before_sign"  # BN -> dropout -> sign: the next layer's sign sees the 0 (the report's code)


class ModelOutput(enum.StrEnum):
    logits = "logits"  # the last layer's outputs go into the loss
    softmax_twice = "softmax_twice"  # a Softmax, then cross-entropy's own softmax (the report's code)


class LinearBackward(enum.StrEnum):
    binarized = "binarized"  # F.linear's gradient at the binarized operands, then each binarizer's surrogate
    real = "real"  # F.linear's gradient at the latent W and the real input: g @ W, g^T @ x (the report's BLU)


class ClipAt(enum.StrEnum):
    after_step = "after_step"  # clamp latent weights after optimizer.step (the BNN code)
    before_step = "before_step"  # clamp between backward and step: the step may leave [-1, 1] (the report's code)


class GradClipMode(enum.StrEnum):
    elementwise = "elementwise"  # clamp every gradient element to [-1, 1]
    zero_positive = "zero_positive"  # set every positive weight and bias gradient of the binary layers to 0 (report)


class Schedule(enum.StrEnum):
    constant = "constant"
    exponential = "exponential"  # lr -> lr_end geometrically over the run
    cosine = "cosine"


class OptimizerName(enum.StrEnum):
    adam = "adam"


class Compress(enum.StrEnum):
    # What each data-parallel rank sends of its gradients (bnnctl.distributed.compress).
    none = "none"  # float32, one all-reduce
    bf16 = "bf16"  # 2 bytes per element, the rounding kept as a residual
    sign = "sign"  # 1 bit per element + one mean-|g| scale per tensor, error feedback (EF-signSGD)
    hadamard = "hadamard"  # 1 bit per element + one scale per block of dist.beta elements, error feedback


class LoggerName(enum.StrEnum):
    none = "none"
    tensorboard = "tensorboard"  # event files in the run folder's tensorboard/ (or logger.dir)
    mlflow = "mlflow"  # a run in an MLflow store: ./mlruns unless logger.tracking_uri says otherwise


class DistBackend(enum.StrEnum):
    auto = "auto"  # nccl for CUDA, gloo for the CPU
    gloo = "gloo"
    nccl = "nccl"


@dataclass
class BinarizerSpec:
    """A binarizer as config names it: ``{name: ste_sign, params: {clip: 1.0}}`` (see ``nn.binarize``)."""

    name: str = "ste_sign"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    name: str = MISSING  # the preset's name (blu_mlp, bnn_mlp, mlp_float)
    arch: str = "mlp"  # a builder in nn.models.ARCHITECTURES
    binarized: bool = True  # false: a full-precision twin (binarize is set to identity)
    width: int = 2048  # mlp: hidden units per layer
    depth: int = 3  # mlp: hidden layers
    width_mult: float = 1.0  # bnn_cnn: every conv and FC width times this (0.25: a CPU-sized net)
    batch_norm: bool = False
    last_batch_norm: bool = False  # BN on the output layer (BNN paper), no sign after it
    bn_eps: float = 1e-4
    bn_momentum: float = 0.1
    bias: bool = True
    binarize_bias: bool = True  # the weight binarizer on biases too (the Binary Linear Unit)
    nonlinearity: str = "none"  # nn.models.NONLINEARITIES, before the activation binarizer
    dropout: float = 0.0  # in each hidden block (where: dropout_at)
    dropout_at: DropoutAt = DropoutAt.after_sign
    dropout_in_eval: bool = False  # dropout also at evaluation (F.dropout's training=True, as PyTorch >= 1.0)
    input_batch_norm: bool = False  # BatchNorm1d over the flattened image before the first layer
    input_dropout: float = 0.0
    first_layer_weights: LayerPrecision = LayerPrecision.binary
    first_layer_input: InputPrecision = InputPrecision.real
    last_layer_weights: LayerPrecision = LayerPrecision.binary
    float_head: bool = False  # a full-precision Linear(classes, classes) after the last layer (the report's code)
    output: ModelOutput = ModelOutput.logits
    linear_backward: LinearBackward = LinearBackward.binarized  # mlp only
    loss: str = "cross_entropy"  # nn.losses.LOSSES
    init: Init = Init.torch


@dataclass
class BinarizeConfig:
    # Both default to sign with the gradient cancelled where |x| > 1 (the BNN paper's activations);
    # conf/binarize/deterministic.yaml gives weights BinaryConnect's unmasked gradient (clip: null).
    # The defaults carry no params, so that picking another binarizer by name inherits none.
    weights: BinarizerSpec = field(default_factory=BinarizerSpec)
    activations: BinarizerSpec = field(default_factory=BinarizerSpec)


@dataclass
class DataConfig:
    name: str = MISSING  # data.DATASETS: mnist | fashion_mnist | cifar10 | synthetic
    root: Optional[str] = None  # default: $BNNCTL_DATA, else ./data
    download: bool = True
    val_size: int = 10000  # last examples of the training set (validate_on=holdout)
    validate_on: ValidateOn = ValidateOn.holdout
    pixel_range: PixelRange = PixelRange.symmetric
    num_classes: int = 10  # synthetic only (real datasets know theirs)
    synthetic_train: int = 2000
    synthetic_test: int = 500
    synthetic_shape: list[int] = field(default_factory=lambda: [1, 28, 28])
    synthetic_noise: float = 0.5
    synthetic_seed: int = 0
    augment: bool = False  # random rotation + shift + jitter of each training batch
    augment_rotation: float = 10.0  # degrees, U(-r, r)
    augment_shift: float = 2.0  # pixels, U(-s, s) in x and y (a random crop with padding s)
    augment_jitter: float = 0.1  # contrast x U(1-j, 1+j), brightness + U(-j, j) of the range


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.adam
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: Schedule = Schedule.constant  # per epoch, lr -> lr_end
    lr_end: float = 3e-7
    glorot_lr_scale: bool = False  # BNN Theano: binary layers' step x 1/sqrt(1.5/(fan_in+fan_out))


@dataclass
class LoopConfig:
    epochs: int = 15
    batch_size: int = 100
    weight_clip: bool = False  # clip latent weights to [-1, 1] (where the binarizer asks; when: weight_clip_at)
    weight_clip_at: ClipAt = ClipAt.after_step
    grad_clip: bool = False  # change gradients before each step, as grad_clip_mode says
    grad_clip_mode: GradClipMode = GradClipMode.elementwise
    eval_every: int = 0  # validation accuracy every N iterations (0: per epoch only)
    eval_batch_size: int = 1000
    max_steps_per_epoch: int = 0  # 0: full epochs (tests and debug use small numbers)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    compile: bool = True  # torch.compile the model (falls back to eager if it fails)
    # The format of products whose two operands are +-1 (nn.lowp): auto (the fastest exact one here), fp32, int8, bf16.
    binary_matmul: str = "auto"
    threads: int = 0  # torch intra-op threads (0: torch's default)


@dataclass
class DistConfig:
    """Data-parallel training (``bnnctl.distributed.ddp``): DDP over ``world_size`` ranks.

    ``train.batch_size`` stays the global batch: each rank takes its 1/world_size
    share of every batch, so world sizes compare at the same optimizer steps.
    Launched by torchrun, the world size is torchrun's.
    """

    world_size: int = 1  # ranks on this machine (bnnctl spawns them); 1 with compress=none: no DDP at all
    compress: Compress = Compress.none
    beta: int = 64  # hadamard: elements per scale
    backend: DistBackend = DistBackend.auto


@dataclass
class LoggerConfig:
    """Where else a run's metrics go besides its folder (``bnnctl.training.loggers``): outside its identity."""

    name: LoggerName = LoggerName.none
    dir: Optional[str] = None  # tensorboard: the event files' folder (default: <run folder>/tensorboard)
    tracking_uri: Optional[str] = None  # mlflow: a store or server (default: file store ./mlruns)
    experiment: Optional[str] = None  # mlflow: the experiment (default: the grid's name, else the run's)
    tags: dict[str, str] = field(default_factory=dict)  # grid cells get grid, cell and seed


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    binarize: BinarizeConfig = field(default_factory=BinarizeConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    name: Optional[str] = None  # run name; default: the experiment preset, else <model>-<data>
    choices: dict[str, Optional[str]] = field(default_factory=dict)  # the group options picked (filled in)

    @property
    def run_name(self) -> str:
        return self.name or self.choices.get("experiment") or f"{self.model.name}-{self.data.name}"


# Keys that say how or where a run ran, not what it computes: outside its identity.
NOT_IDENTITY = ("name", "choices", "data.root", "data.download", "train.threads", "dist.backend", "logger")
DEVICE_PATTERN = r"cpu|cuda(:\d+)?|mps"  # besides "auto"


# --- grids and launchers (``bnnctl ablate grid``) ------------------------------------------
# Kept apart from the training schema: a grid is a list of training overrides (fixed ones,
# axes, seeds) plus published reference numbers, and a launcher says where cells run;
# neither is part of what a run computes.


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


# --- geometry studies (``bnnctl geometry ...``) ---------------------------------------------


@dataclass
class StudyConfig:
    """The keys of every geometry study (each study reads those it needs)."""

    dims: list[int] = field(default_factory=lambda: [2, 3, 5, 10, 27, 50, 100, 300, 1000, 3000, 10000])
    samples: int = 10000  # vectors per dimension (and per threshold, beta, basis)
    seed: int = 0
    chunk_elements: int = 2**22  # at most this many floats per array at once (x, its binarized copy, y)
    confidence: float = 0.95  # of the t-interval of the mean angle
    show_dims: list[int] = field(default_factory=lambda: [3, 10, 27, 1000])  # distributions drawn in the figure
    threshold_sigma: list[float] = field(
        default_factory=lambda: [0.01, 0.111, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5]
    )
    ternary_dim: int = 1000  # the dimension of the ternary sweep (the authors' notebook: 1000)
    beta: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    hadamard_dim: int = 4096
    rotation: bool = False  # exponentially decaying spectra, standard vs randomly rotated basis
    rotation_k: float = 0.1  # x_i ~ N(0, 1) exp(k (i - d/2))
    rotation_dims: list[int] = field(default_factory=lambda: [10, 100, 500])
    images: int = 500  # dot-products: test images fed through the trained net
    dataset: str = "fashion_mnist"  # first-layer: whose image patches (data.root: $BNNCTL_DATA, else ./data)
    patch_size: int = 3  # first-layer: k of the k x k x C patches
    patches: int = 50000  # first-layer: patches sampled


@dataclass
class GeometryConfig:
    # A binarizer of the registry (nn.binarize.BINARIZERS), as training names them. The angles study
    # sweeps the parameter a binarizer has: ternary's threshold_sigma over geometry.threshold_sigma,
    # hadamard's beta over geometry.beta; any other is measured over geometry.dims.
    binarize: str = "ste_sign"
    geometry: StudyConfig = field(default_factory=StudyConfig)
