import pytest

from bnnctl.config import CONFIG_GROUPS, compose_train, group_options, load_yaml, to_yaml
from bnnctl.errors import ConfigError


@pytest.mark.parametrize("group", ["model", "data", "optimizer", "binarize", "experiment"])
def test_every_option_of_every_group_composes_and_validates(group):
    options = group_options(group)
    assert options, f"conf/{group}/ has no options"
    for option in options:
        cfg = compose_train([f"{group}={option}", "debug=tiny"] if group != "data" else [f"data={option}"])
        assert cfg.choices[group] == option


def test_groups_and_their_options():
    assert group_options("model") == ["blu_mlp", "bnn_mlp", "mlp_float"]
    assert group_options("data") == ["cifar10", "fashion_mnist", "mnist", "synthetic"]
    assert group_options("binarize") == ["deterministic", "none", "passthrough", "stochastic"]
    assert set(CONFIG_GROUPS) >= {"model", "data", "optimizer", "binarize", "experiment", "debug"}


def test_blu_mnist_preset_is_the_ablation_reports_setting():
    cfg = compose_train(["experiment=blu_mnist"])
    assert (cfg.model.name, cfg.model.width, cfg.model.depth) == ("blu_mlp", 2048, 3)
    assert cfg.data.name == "mnist" and cfg.train.epochs == 15
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.betas, cfg.optimizer.schedule) == ("adam", 1e-3, [0.9, 0.999], "constant")
    assert not cfg.train.weight_clip and not cfg.train.grad_clip and cfg.model.dropout == 0
    assert cfg.run_name == "blu_mnist"
    # measured choices the report leaves open: identity STE, ToTensor's [0, 1] pixels
    assert cfg.choices["binarize"] == "passthrough" and cfg.binarize.activations == "sign_passthrough"
    assert cfg.data.pixel_range == "positive"
    assert compose_train(["experiment=blu_mnist", "binarize=deterministic"]).binarize.activations == "sign"


def test_bnn_mnist_preset_is_the_papers_setting_and_data_can_be_swapped():
    cfg = compose_train(["experiment=bnn_mnist", "data=fashion_mnist"])
    assert cfg.data.name == "fashion_mnist"  # the command line beats the preset
    m, o = cfg.model, cfg.optimizer
    assert (m.name, m.width, m.batch_norm, m.loss, m.dropout, m.input_dropout) == ("bnn_mlp", 4096, True, "square_hinge", 0.5, 0.2)
    assert (o.lr, o.lr_end, o.schedule, o.glorot_lr_scale) == (3e-3, 3e-7, "exponential", True)
    assert cfg.train.weight_clip and cfg.train.batch_size == 100


def test_bnn_fashion_preset_is_bnn_mnist_without_dropout_for_ten_epochs():
    fashion = compose_train(["experiment=bnn_fashion"])
    paper = compose_train(["experiment=bnn_mnist", "data=fashion_mnist", "train.epochs=10",
                           "model.dropout=0", "model.input_dropout=0"])
    assert fashion.model == paper.model and fashion.optimizer == paper.optimizer and fashion.train == paper.train
    assert fashion.data == paper.data and fashion.data.name == "fashion_mnist"


def test_float_baseline_switches_binarization_off_unless_told_otherwise():
    assert compose_train(["model=mlp_float"]).binarize.weights == "identity"
    assert compose_train(["experiment=bnn_mnist", "model=mlp_float"]).binarize.activations == "identity"
    assert compose_train(["model=mlp_float", "binarize=stochastic"]).binarize.activations == "stochastic"


def test_hydra_overrides_reach_the_typed_config():
    cfg = compose_train(["model=bnn_mlp", "train.epochs=3", "binarize=stochastic", "model.dropout=0.25", "train.weight_clip=true"])
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.binarize.activations == "stochastic"
    assert cfg.model.dropout == 0.25 and cfg.train.weight_clip is True


@pytest.mark.parametrize("overrides, message", [
    (["model=resnet"], r"unknown option 'resnet' for config group 'model' \(choose from: blu_mlp, bnn_mlp, mlp_float\)"),
    (["data=imagenet"], r"unknown option 'imagenet' for config group 'data'"),
    (["train.epoch=3"], r"train.epoch.*not in struct"),
    (["+train.epoch=3"], r"train.epoch.*not in 'LoopConfig'"),
    (["train.epochs=three"], r"train.epochs: Value 'three'.*Integer"),
    (["train.weight_clip=maybe"], r"train.weight_clip:.*not a valid bool"),
    (["train.epochs=-1"], r"train.epochs must be >= 1, got -1"),
    (["train.epochs=0"], r"train.epochs must be >= 1"),
    (["model.dropout=1.5"], r"model.dropout must be in \[0, 1\)"),
    (["binarize.weights=signum"], r"unknown binarizer 'signum'"),
    (["model.loss=mse"], r"unknown model.loss 'mse'"),
    (["train.device=tpu"], r"train.device must be"),
    (["epochs"], r"Error parsing override 'epochs'"),
])
def test_bad_input_is_one_line_naming_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        compose_train(overrides)
    assert "\n" not in str(info.value)


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = compose_train(["experiment=bnn_mnist", "data=fashion_mnist", "train.epochs=7"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    assert load_yaml(path) == cfg
