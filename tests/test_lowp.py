"""Exact low-precision products: int8 forward of +-1 x +-1 layers equals float32 bit for bit; gradients stay close."""

from __future__ import annotations

import warnings

import pytest
import torch

from bnnctl.config.load import compose_train
from bnnctl.errors import ConfigError
from bnnctl.nn import build_model
from bnnctl.nn.binarize import make_binarizer
from bnnctl.nn.layers import Binarize, BinaryLinear
from bnnctl.nn.lowp import exact_linear, resolve_format
from bnnctl.nn.products import integer_input_layers, set_binary_matmul
from bnnctl.training import Trainer
from helpers import tiny

CPU = torch.device("cpu")


def _random_statistics(model: torch.nn.Module) -> None:
    """Batch-norm statistics that make the signs after each layer vary (fresh ones are 0 and 1)."""
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.normal_(0, 3)
            module.running_var.uniform_(0.5, 4)


def _model(overrides: list[str], shape: tuple[int, ...]) -> torch.nn.Module:
    cfg = compose_train(overrides)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.binarize, shape, 10)
    _random_statistics(model)
    return model.eval()


@pytest.mark.parametrize(
    "overrides, shape, low_precision",
    [
        (["model=bnn_mlp", "model.width=1000"], (1, 28, 28), 3),  # BNN MLP: BN -> sign -> binary layer
        (["model=bnn_mlp", "model.width=37"], (1, 9, 7), 3),  # odd sizes everywhere
        (["model=blu_mlp", "model.width=333"], (1, 28, 28), 3),  # the BLU MLP (identity STE)
        (["experiment=bnn_cifar10", "model.width_mult=0.125"], (3, 32, 32), 3),  # the CNN: its FC layers
        (["experiment=bnn_cifar10", "model.width_mult=0.0301"], (3, 32, 32), 3),  # odd channel and FC widths
        (["model=bnn_mlp", "model.width=64", "binarize.activations.name=ternary"], (1, 28, 28), 3),  # {-1, 0, +1} too
    ],
)
def test_the_int8_forward_equals_the_float32_forward_bit_for_bit(overrides, shape, low_precision):
    model = _model(overrides, shape)
    x = torch.rand(37, *shape) * 2 - 1  # 37: not a multiple of anything
    reference = model(x)
    assert set_binary_matmul(model, "int8") == low_precision
    assert torch.equal(model(x), reference)


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=bnn_mnist", "model.width=301"],  # BN -> sign -> dropout 0.5: survivors +-2
        ["experiment=blu_mnist", "model.width=257", "model.dropout=0.75"],  # BLU MLP, dropout 0.75: +-4
    ],
)
def test_with_dropout_in_training_the_int8_forward_equals_float32_bit_for_bit(overrides):
    """The same dropout masks (same RNG state) through both products: training logits identical, gradients close."""
    model = _model(overrides, (1, 28, 28)).train()
    x, y = torch.rand(37, 1, 28, 28), torch.randint(0, 10, (37,))
    results = {}
    for fmt in ("fp32", "int8"):
        assert set_binary_matmul(model, fmt) == (3 if fmt == "int8" else 0)
        model.zero_grad()
        torch.manual_seed(1)
        logits = model(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        results[fmt] = logits.detach(), [p.grad.clone() for p in model.parameters()]
    assert torch.equal(results["fp32"][0], results["int8"][0])
    for a, b in zip(results["fp32"][1], results["int8"][1], strict=True):
        assert float((a - b).norm() / a.norm()) < 0.01


def test_only_dropouts_whose_scale_is_a_small_power_of_two_keep_integers():
    from bnnctl.nn.products import dropout_keeps_integers

    assert all(dropout_keeps_integers(p) for p in (0.0, 0.5, 0.75, 0.875, 63 / 64))  # scales 1, 2, 4, 8, 64
    assert not any(dropout_keeps_integers(p) for p in (0.2, 0.3, 0.6, 127 / 128, 1.0, -0.5))
    sign = Binarize(make_binarizer("ste_sign"))

    def fed(*between: torch.nn.Module) -> bool:
        return integer_input_layers(torch.nn.Sequential(sign, *between, BinaryLinear(8, 4))) != []

    assert fed(torch.nn.Dropout(0.75), torch.nn.Dropout(0.5), torch.nn.Flatten())  # +-8
    assert not fed(*[torch.nn.Dropout(0.5) for _ in range(7)])  # +-128: past int8
    assert not fed(torch.nn.Dropout(0.5), torch.nn.ReLU())


def test_large_sums_stay_exact_where_a_bf16_output_would_round():
    """Correlated +-1 rows: every dot is 4095 or close, which bf16 (8 significant bits) cannot hold."""
    x = torch.ones(5, 4095)
    w = torch.ones(3, 4095)
    w[1, :7] = -1
    out = exact_linear(x, w, "int8")
    assert out.dtype == torch.float32 and out[0].tolist() == [4095.0, 4081.0, 4095.0]
    assert torch.nn.functional.linear(x.bfloat16(), w.bfloat16()).float()[0, 1] != 4081.0  # why not bf16 output


def test_only_layers_fed_by_a_sign_with_binary_weights_get_the_low_precision_product():
    model = _model(["model=bnn_mlp", "model.width=32"], (1, 28, 28))
    layers = [m for m in model.modules() if isinstance(m, BinaryLinear)]
    chosen = integer_input_layers(model)
    assert layers[0] not in chosen  # real pixels in
    assert chosen == layers[1:]
    halves = _model(["experiment=bnn_mnist", "model.width=32"], (1, 28, 28))  # dropout 0.5 between: +-2 in training
    assert integer_input_layers(halves) == [m for m in halves.modules() if isinstance(m, BinaryLinear)][1:]
    fifths = _model(["experiment=bnn_mnist", "model.width=32", "model.dropout=0.2"], (1, 28, 28))  # +-1.25: real
    assert integer_input_layers(fifths) == []
    floating = _model(["model=mlp_float", "model.width=32"], (1, 28, 28))
    assert integer_input_layers(floating) == []


def test_int8_gradients_are_close_to_float32_and_training_learns():
    cfg = tiny("model=bnn_mlp", "model.width=256", "train.binary_matmul=int8")
    grads = {}
    for fmt in ("fp32", "int8"):
        model = _model(["model=bnn_mlp", "model.width=256"], (1, 28, 28)).train()
        set_binary_matmul(model, fmt)
        x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (64,))
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads[fmt] = [p.grad.clone() for p in model.parameters()]
    for a, b in zip(grads["fp32"], grads["int8"], strict=True):  # bf16 rounds g to 8 bits: 2^-9 relative
        assert float((a - b).norm() / a.norm()) < 0.01
        assert float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)) > 0.9999
    trainer = Trainer(cfg, build_model(cfg.model, cfg.binarize, (1, 28, 28), 10), CPU)
    assert trainer.binary_matmul == "int8" and trainer.low_precision_layers == 3


def test_formats_are_resolved_for_the_device():
    assert resolve_format("fp32", CPU) == "fp32"
    from bnnctl.nn.lowp import cpu_has_fast_int8_and_bf16

    assert resolve_format("auto", CPU) == ("int8" if cpu_has_fast_int8_and_bf16() else "fp32")
    with pytest.raises(ConfigError, match="bf16 needs a bf16 product with float32 output"):
        resolve_format("bf16", CPU)
    with pytest.raises(ConfigError, match="train.binary_matmul must be one of"):
        resolve_format("fp8", CPU)


def test_auto_takes_int8_only_where_the_cpu_runs_it_in_hardware(monkeypatch):
    """On an AVX2 CPU without VNNI or native bf16 the int8 path is emulated (25x slower per epoch measured): fp32."""
    import bnnctl.nn.lowp as lowp

    monkeypatch.setattr(lowp, "cpu_has_vnni", lambda: True)  # VNNI without bf16 (Cascade Lake): still emulated bf16
    monkeypatch.setattr(lowp, "cpu_has_native_bf16", lambda: False)
    assert resolve_format("auto", CPU) == "fp32"
    assert "has no native bf16, so" in lowp.slow_format_warning("int8", CPU)
    cfg = tiny("model=bnn_mlp", "train.binary_matmul=int8")
    with pytest.warns(RuntimeWarning, match="train.binary_matmul=int8: this CPU .* has no native bf16"):
        Trainer(cfg, build_model(cfg.model, cfg.binarize, (1, 28, 28), 10), CPU)
    floating = tiny("model=mlp_float", "train.binary_matmul=int8")  # no +-1 x +-1 layer: nothing slow, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        Trainer(floating, build_model(floating.model, floating.binarize, (1, 28, 28), 10), CPU)
    monkeypatch.setattr(lowp, "cpu_has_native_bf16", lambda: True)
    assert resolve_format("auto", CPU) == "int8"
    assert lowp.slow_format_warning("int8", CPU) is None and lowp.slow_format_warning("fp32", CPU) is None


def test_a_run_records_the_product_format_it_used(tmp_path):
    from bnnctl.training import fit

    summary = fit(tiny("model=bnn_mlp", "train.epochs=1", "train.max_steps_per_epoch=2"))
    assert summary["binary_matmul"] == resolve_format("auto", CPU)
    assert (
        fit(tiny("train.epochs=1", "train.max_steps_per_epoch=2", "train.binary_matmul=fp32"))["binary_matmul"]
        == "fp32"
    )
