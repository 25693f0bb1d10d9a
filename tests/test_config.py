import dataclasses
from pathlib import Path

import pytest

from bnnctl.config import group_options, to_yaml
from bnnctl.config.load import compose_train, load_yaml
from bnnctl.config.schema import LoopConfig, TrainConfig
from bnnctl.errors import ConfigError
from bnnctl.nn.binarize import IDENTITY, SteSign, StochasticSign, make_binarizer
from bnnctl.runs import cell_id, identity, run_id

LEGACY = Path(__file__).parent / "fixtures" / "legacy_v1"


@pytest.mark.parametrize("group", ["model", "data", "optimizer", "binarize", "experiment"])
def test_every_option_of_every_group_composes_and_validates(group):
    options = group_options(group)
    assert options, f"conf/{group}/ has no options"
    for option in options:
        cfg = compose_train([f"{group}={option}", "debug=tiny"] if group != "data" else [f"data={option}"])
        assert cfg.choices[group] == option


@pytest.mark.parametrize("group", ["model", "data", "optimizer", "launcher"])
def test_option_files_state_only_what_differs_from_the_schema(group):
    """Presets are deltas: no option file repeats a key at the schema's default (lightning-hydra-template's habit)."""
    from omegaconf import OmegaConf

    from bnnctl.config import conf_dir
    from bnnctl.config.schema import DataConfig, LauncherConfig, ModelConfig, OptimizerConfig

    schemas = {"model": ModelConfig, "data": DataConfig, "optimizer": OptimizerConfig, "launcher": LauncherConfig}
    default = OmegaConf.to_container(OmegaConf.structured(schemas[group]), enum_to_str=True)
    for option in group_options(group):
        raw = OmegaConf.to_container(OmegaConf.load(conf_dir() / group / f"{option}.yaml")) or {}
        repeated = [k for k, v in raw.items() if k != "name" and default.get(k) == v]
        assert not repeated, f"conf/{group}/{option}.yaml repeats defaults: {repeated}"


def test_blu_mnist_preset_is_the_ablation_reports_setting():
    cfg = compose_train(["experiment=blu_mnist"])
    assert (cfg.model.name, cfg.model.width, cfg.model.depth) == ("blu_mlp", 2048, 3)
    assert cfg.data.name == "mnist" and cfg.train.epochs == 15
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.betas, cfg.optimizer.schedule) == (
        "adam",
        1e-3,
        [0.9, 0.999],
        "constant",
    )
    assert not cfg.train.weight_clip and not cfg.train.grad_clip and cfg.model.dropout == 0
    assert cfg.run_name == "blu_mnist"
    # measured choices the report leaves open: identity STE, ToTensor's [0, 1] pixels
    assert cfg.choices["binarize"] == "passthrough"
    assert make_binarizer(cfg.binarize.activations) == SteSign(clip=None)
    assert make_binarizer(cfg.binarize.weights) == SteSign(clip=None)
    assert cfg.data.pixel_range == "positive"
    deterministic = compose_train(["experiment=blu_mnist", "binarize=deterministic"])
    assert make_binarizer(deterministic.binarize.activations) == SteSign(clip=1.0)


def test_bnn_mnist_preset_is_the_papers_setting_and_data_can_be_swapped():
    cfg = compose_train(["experiment=bnn_mnist", "data=fashion_mnist"])
    assert cfg.data.name == "fashion_mnist"  # the command line beats the preset
    m, o = cfg.model, cfg.optimizer
    assert (m.name, m.width, m.batch_norm, m.loss, m.dropout, m.input_dropout) == (
        "bnn_mlp",
        4096,
        True,
        "square_hinge",
        0.5,
        0.2,
    )
    assert (o.lr, o.lr_end, o.schedule, o.glorot_lr_scale) == (3e-3, 3e-7, "exponential", True)
    assert cfg.train.weight_clip and cfg.train.batch_size == 100


def test_bnn_fashion_preset_is_bnn_mnist_without_dropout_for_ten_epochs():
    fashion = compose_train(["experiment=bnn_fashion"])
    paper = compose_train(
        ["experiment=bnn_mnist", "data=fashion_mnist", "train.epochs=10", "model.dropout=0", "model.input_dropout=0"]
    )
    assert fashion.model == paper.model and fashion.optimizer == paper.optimizer and fashion.train == paper.train
    assert fashion.data == paper.data and fashion.data.name == "fashion_mnist"


def test_float_baseline_is_full_precision_whatever_the_binarize_group_says():
    for overrides in (
        ["model=mlp_float"],
        ["experiment=bnn_mnist", "model=mlp_float"],
        ["model=mlp_float", "binarize=stochastic"],
    ):
        cfg = compose_train(overrides)
        assert make_binarizer(cfg.binarize.weights) == make_binarizer(cfg.binarize.activations) == IDENTITY
    # Two spellings of one full-precision model get one id.
    spelled_out = compose_train(["model=mlp_float", "model.binarized=true", "binarize=none"])
    assert run_id(spelled_out) == run_id(compose_train(["model=mlp_float"]))


def test_hydra_overrides_reach_the_typed_config():
    cfg = compose_train(
        ["model=bnn_mlp", "train.epochs=3", "binarize=stochastic", "model.dropout=0.25", "train.weight_clip=true"]
    )
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert make_binarizer(cfg.binarize.activations) == StochasticSign()
    assert cfg.model.dropout == 0.25 and cfg.train.weight_clip is True


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["model=resnet"],
            r"unknown option 'resnet' for config group 'model' \(choose from: .*blu_mlp.*\)",
        ),
        (["data=imagenet"], r"unknown option 'imagenet' for config group 'data'"),
        (["train.epoch=3"], r"train.epoch.*not in 'LoopConfig'"),
        (["+train.epoch=3"], r"train.epoch.*not in 'LoopConfig'"),
        (["train.epochs=three"], r"train.epochs: Value 'three'.*Integer"),
        (["train.weight_clip=maybe"], r"train.weight_clip:.*not a valid bool"),
        (["train.epochs=-1"], r"train.epochs must be >= 1, got -1"),
        (["train.epochs=0"], r"train.epochs must be >= 1"),
        (["model.dropout=1.5"], r"model.dropout must be in \[0, 1\)"),
        (["binarize.weights.name=signum"], r"binarize.weights.name: unknown binarizer 'signum'"),
        (["+binarize.activations.params.beta=4"], r"binarize.activations.params.beta: not a parameter of ste_sign"),
        (["binarize.activations.params.clip=0.5"], r"params.clip.*use \+binarize.activations.params.clip=0.5"),
        (["model.loss=mse"], r"unknown model.loss 'mse'"),
        (["model.init=glorot"], r"model.init.*glorot.*(torch|uniform)"),
        (["optimizer.schedule=linear"], r"optimizer.schedule.*linear"),
        (["runs_dir=elsewhere"], r"runs_dir.*not in 'TrainConfig'"),  # where runs go is not part of a run's config
        (["train.device=tpu"], r"train.device must be"),
        (["optimizer.lr=inf"], r"optimizer.lr must be a finite number > 0, got inf"),
        (["optimizer.lr=nan"], r"optimizer.lr must be a finite number > 0, got nan"),
        (["optimizer.eps=-1"], r"optimizer.eps must be a finite number > 0, got -1.0"),
        (["optimizer.weight_decay=-1"], r"optimizer.weight_decay must be a finite number >= 0"),
        (["train.seed=99999999999999999999"], r"train.seed must be in \[0, 2\^63\)"),
        (["train.seed=-1"], r"train.seed must be in \[0, 2\^63\)"),
        (["data.synthetic_noise=nan"], r"data.synthetic_noise must be a finite number >= 0, got nan"),
        (["data.synthetic_shape=[0,28,28]"], r"data.synthetic_shape must be three sizes >= 1 .* got \[0, 28, 28\]"),
        (["data.synthetic_shape=[28,28]"], r"data.synthetic_shape must be three sizes"),
        (["data.num_classes=1"], r"data.num_classes must be >= 2"),
        (["epochs"], r"epochs: not a valid override \(missing EQUAL"),
        (["="], r"'=': an override needs a key, as in train.epochs=3"),
        (["--unknown-flag"], r"--unknown-flag: not an option of this command"),
        (["launcher=local"], r"launcher=local: launcher settings belong to `bnnctl ablate grid`"),
        (["ablation.seeds=[0]"], r"ablation settings belong to `bnnctl ablate grid`"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        compose_train(overrides)
    assert "\n" not in str(info.value)


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = compose_train(["experiment=bnn_mnist", "data=fashion_mnist", "train.epochs=7"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    assert load_yaml(path) == cfg


# --- run identity ------------------------------------------------------------------------------


def test_runs_dir_is_taken_out_of_the_overrides():
    from bnnctl.config import split_runs_dir

    assert split_runs_dir(["debug=tiny", "runs_dir=/x", "train.epochs=1"]) == ("/x", ["debug=tiny", "train.epochs=1"])
    assert split_runs_dir(["debug=tiny"])[0] == "runs"
    with pytest.raises(ConfigError, match="runs_dir: needs a folder"):
        split_runs_dir(["runs_dir="])


def test_a_run_id_hashes_only_what_differs_from_the_schema_defaults():
    assert identity(compose_train(["model=blu_mlp", "data=mnist", "binarize=deterministic"])) == {
        "model": {"name": "blu_mlp"},
        "data": {"name": "mnist"},
        "binarize": {"weights": {"params": {"clip": None}}},
    }
    tiny = compose_train(["debug=tiny"])
    assert identity(tiny)["train"] == {
        "epochs": 2,
        "batch_size": 50,
        "eval_batch_size": 250,
        "device": "cpu",
        "compile": False,
    }
    # Where and how it ran is not what it is.
    assert run_id(compose_train(["debug=tiny", "train.threads=1", "name=x", "data.root=/elsewhere"])) == run_id(tiny)
    # A binarizer's parameter written out at its default is the same binarizer.
    assert run_id(compose_train(["debug=tiny", "+binarize.activations.params.clip=1.0"])) == run_id(tiny)
    assert run_id(compose_train(["debug=tiny", "+binarize.activations.params.clip=0.5"])) != run_id(tiny)
    assert (
        cell_id(tiny)
        == cell_id(compose_train(["debug=tiny", "train.seed=7"]))
        != cell_id(compose_train(["debug=tiny", "train.epochs=3"]))
    )


def test_a_new_schema_key_with_a_default_does_not_move_any_id():
    @dataclasses.dataclass
    class LoopWithMore(LoopConfig):
        warmup_epochs: int = 0  # a key a later version adds

    @dataclasses.dataclass
    class TrainWithMore(TrainConfig):
        train: LoopWithMore = dataclasses.field(default_factory=LoopWithMore)

    for overrides in (
        ["debug=tiny"],
        ["experiment=blu_mnist", "data=fashion_mnist", "train.epochs=5"],
        ["model=mlp_float"],
    ):
        today = compose_train(overrides)
        later = TrainWithMore(
            **{f.name: getattr(today, f.name) for f in dataclasses.fields(today) if f.name != "train"},
            train=LoopWithMore(**dataclasses.asdict(today.train)),
        )
        assert run_id(later) == run_id(today) and cell_id(later) == cell_id(today)
        later.train.warmup_epochs = 2
        assert run_id(later) != run_id(today)


def test_configs_written_by_the_previous_version_load_as_todays():
    old = load_yaml(LEGACY / "ablate" / "tinygrid" / "cells" / "6bf2d582" / "seed-0" / "config.yaml")
    assert make_binarizer(old.binarize.weights) == SteSign(clip=None)  # was "sign_passthrough"
    assert make_binarizer(old.binarize.activations) == SteSign(clip=1.0)  # was "sign"
    assert old.train.weight_clip and old.model.dropout == 0.5 and old.model.width == 32
    today = compose_train(
        [
            "debug=tiny",
            "train.eval_every=8",
            "train.weight_clip=true",
            "model.dropout=0.5",
            "train.epochs=2",
            "model.width=32",
        ]
    )
    assert cell_id(old) == cell_id(today)
    stochastic = next((LEGACY / "train").glob("*/config.yaml"))
    assert make_binarizer(load_yaml(stochastic).binarize.activations) == StochasticSign()


def test_binarizer_params_are_hashed_as_the_binarizer_takes_them():
    two = compose_train(["debug=tiny", "+binarize.activations.params.clip=2"])
    assert run_id(two) == run_id(compose_train(["debug=tiny", "+binarize.activations.params.clip=2.0"]))


def test_a_run_config_with_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  width: [1,\n")
    with pytest.raises(
        ConfigError, match=rf"cannot read the config {path}: not valid YAML: .*\(line 3, column 1\)"
    ) as info:
        load_yaml(path)
    assert "\n" not in str(info.value)
